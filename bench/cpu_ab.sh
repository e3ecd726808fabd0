#!/usr/bin/env bash
# bench/cpu_ab.sh — proxy CPU time per request of two Outrigger builds,
# interleaved (A B A B …), which a busy machine disturbs far less than
# requests per second.
#
#   bench/cpu_ab.sh REF_A [REF_B]      git revisions; REF_B defaults to the working tree
#
# Rounds alternate the order (A B, B A, …). Each build runs as bench/run.sh runs it (GOMAXPROCS=1, proxy and
# bench/backend on CPU $PROXY_CPU, load generator on $LOAD_CPU), in front of
# the same backend on 127.0.0.1. Per round and build: wrk -t1 -c64 for
# $DURATION on /1k (HTTP/1.1 keep-alive), then h2load -n $H2_REQUESTS -c 32
# -m 10 on /1k (HTTP/2). It prints utime+stime of the proxy process from
# /proc/PID/stat divided by the requests completed, in µs, one line per run,
# then the medians.
#
# Environment: ROUNDS [3], DURATION [4s], H2_REQUESTS [40000],
# PROXY_CPU/LOAD_CPU [0/1], BASE_PORT [29500], OUTRIGGER_ARGS [] (extra flags
# for both builds).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REF_A=${1:?usage: bench/cpu_ab.sh REF_A [REF_B]}
REF_B=${2:-}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4s}
H2_REQUESTS=${H2_REQUESTS:-40000}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BASE_PORT=${BASE_PORT:-29500}
WORK=$(mktemp -d /tmp/outrigger-cpuab.XXXXXX)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
for tool in wrk h2load openssl taskset; do
	command -v "$tool" >/dev/null || { echo "cpu_ab.sh: $tool is missing (bench/run.sh installs it)" >&2; exit 1; }
done

build() { # build NAME REF: REF empty = working tree
	local dir="$WORK/src-$1"
	if [[ -z $2 ]]; then
		dir=$ROOT
	else
		git -C "$ROOT" worktree add -q --detach "$dir" "$2"
	fi
	(cd "$dir" && go build -trimpath -tags grpcnotrace -o "$WORK/$1/outrigger" ./cmd/outrigger)
	[[ -z $2 ]] || git -C "$ROOT" worktree remove --force "$dir"
}
build a "$REF_A"
build b "$REF_B"
(cd "$ROOT" && go build -trimpath -o "$WORK/bin/" ./bench/backend)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

BACKEND=$BASE_PORT LISTEN=$((BASE_PORT + 1)) ADMIN=$((BASE_PORT + 2))
taskset -c "$PROXY_CPU" "$WORK/bin/backend" --listen "127.0.0.1:$BACKEND" >"$WORK/backend.log" 2>&1 &
PIDS+=($!)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
per_req() { # per_req TICKS REQUESTS → µs
	awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0) }'
}

: >"$WORK/results"
for r in $(seq "$ROUNDS"); do
	order="a b"
	((r % 2)) || order="b a" # A B B A A B …: the second slot of a round measured slower here
	for b in $order; do
		# shellcheck disable=SC2086
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$WORK/$b/outrigger" proxy --listen "127.0.0.1:$LISTEN" \
			--upstream "http://127.0.0.1:$BACKEND" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
			--admin "127.0.0.1:$ADMIN" --access-log=false --log-level warn --shutdown-delay 0s \
			--drain-timeout 1s ${OUTRIGGER_ARGS:-} >"$WORK/proxy.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$LISTEN/1k" >/dev/null && break; sleep 0.1; done
		t0=$(cpu_ticks "$pid")
		n=$(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"$DURATION" "https://127.0.0.1:$LISTEN/1k" |
			awk '/requests in/ {print $1}')
		t1=$(cpu_ticks "$pid")
		h1=$(per_req $((t1 - t0)) "$n")
		n=$(taskset -c "$LOAD_CPU" h2load -n "$H2_REQUESTS" -c 32 -m 10 "https://127.0.0.1:$LISTEN/1k" |
			awk '/^requests:/ {print $8}')
		t2=$(cpu_ticks "$pid")
		h2=$(per_req $((t2 - t1)) "$n")
		echo "round $r build $b (${b}): h1 $h1 µs/req, h2 $h2 µs/req"
		echo "$b $h1 $h2" >>"$WORK/results"
		stop "$pid"
	done
done
for b in a b; do
	awk -v b="$b" '$1 == b { h1[++n] = $2; h2[n] = $3 }
		function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }; return a[int((n + 1) / 2)] }
		END { printf "median %s: h1 %.1f µs/req, h2 %.1f µs/req (%d rounds)\n", b, med(h1, n), med(h2, n), n }' "$WORK/results"
done
