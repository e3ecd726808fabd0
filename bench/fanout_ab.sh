#!/usr/bin/env bash
# bench/fanout_ab.sh — interleaved A/B of config fan-out between outrigger builds.
#
# For each round, each build in turn: one `outrigger config serve` (bbolt, temp dir),
# N long-poll watchers (bench/watchers fanout), PUSHES pushes; one line per run with
# the watchers' row (p50 / p99 / max ms, server-side wake, server RSS with all armed)
# and the CPU seconds the server and the watchers used during the push phase only
# (from /proc, so other loads on the machine do not inflate them). Compare medians
# over rounds: on a shared machine single runs of the latencies vary several-fold.
#
#   bench/fanout_ab.sh OLD_DIR NEW_DIR     # each holds outrigger and watchers binaries
# Environment (defaults in brackets):
#   ROUNDS    rounds [6]
#   N         watchers [10000]
#   PUSHES    pushes per run [10]
#   CLIENT    watcher client, raw or http [raw]
#   SOURCES   loopback IPs the watchers dial from [127.0.0.2,127.0.0.3,127.0.0.4]
#   PORT      the config server's port [29790]
# Everything listens on 127.0.0.1; every process is stopped on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-6}
N=${N:-10000}
PUSHES=${PUSHES:-10}
CLIENT=${CLIENT:-raw}
SOURCES=${SOURCES:-127.0.0.2,127.0.0.3,127.0.0.4}
PORT=${PORT:-29790}
(($# >= 2)) || {
	echo "usage: $0 BUILD_DIR BUILD_DIR..." >&2
	exit 2
}

WORK=$(mktemp -d /tmp/outrigger-fanout-ab.XXXXXX)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
TICK=$(getconf CLK_TCK)

cpu() { # PID: user+system CPU seconds so far (0 once it is gone)
	awk -v t="$TICK" '{print ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0
}

run() { # BUILD_DIR
	local dir=$1 data="$WORK/data.$RANDOM" sp wp s0 s1 c0 c1 c
	"$dir/outrigger" config serve --listen "127.0.0.1:$PORT" --data "$data" --log-level warn >"$WORK/server.log" 2>&1 &
	sp=$!
	PIDS+=("$sp")
	for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1; done
	"$dir/watchers" fanout --server "http://127.0.0.1:$PORT" --name fanout-ab --n "$N" --pushes "$PUSHES" \
		--server-pid "$sp" --label "$dir" --client "$CLIENT" --sources "$SOURCES" >"$WORK/row" 2>"$WORK/watchers.log" &
	wp=$!
	PIDS+=("$wp")
	while ! grep -q armed "$WORK/watchers.log" 2>/dev/null && kill -0 "$wp" 2>/dev/null; do sleep 0.05; done
	s0=$(cpu "$sp")
	c0=$(cpu "$wp")
	c1=$c0
	while kill -0 "$wp" 2>/dev/null; do
		c=$(cpu "$wp")
		[[ $c != 0 ]] && c1=$c
		sleep 0.1
	done
	wait "$wp" || tail -1 "$WORK/watchers.log" >&2
	s1=$(cpu "$sp")
	printf '%s push-phase CPU s: server %.2f watchers %.2f\n' "$(cat "$WORK/row")" \
		"$(echo "$s1 - $s0" | bc)" "$(echo "$c1 - $c0" | bc)"
	kill -TERM "$sp"
	wait "$sp" 2>/dev/null || true
	rm -rf "$data"
}

for r in $(seq "$ROUNDS"); do
	for dir in "$@"; do
		echo "# round $r $(date -u +%T) load $(cut -d' ' -f1 /proc/loadavg)"
		run "$dir"
	done
done
