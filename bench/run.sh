#!/usr/bin/env bash
# bench/run.sh — Outrigger side by side with nginx, HAProxy and Caddy.
#
# One command: installs missing peers from Debian, builds Outrigger and the
# helper programs, generates one ECDSA P-256 certificate, and for each round
# runs every candidate in turn (interleaved: A B C D A B C D …) in front of
# the same plain Go HTTP backend on 127.0.0.1. Proxy and backend are pinned
# to one CPU (taskset -c $PROXY_CPU), the load generator to another
# ($LOAD_CPU). It writes a table of medians with ratios to nginx to
# docs/benchmarks.md and a chart to docs/benchmarks.svg, then (PROPAGATION=1)
# runs bench/propagation.sh for the config propagation numbers.
#
# Everything listens on 127.0.0.1 only. Every process it starts is stopped
# on exit (trap), even on Ctrl-C.
#
# Environment (defaults in brackets):
#   DURATION     wrk duration per scenario [10s]
#   ROUNDS       interleaved rounds; medians are taken over them [3]
#   CANDIDATES   space-separated subset of: nginx haproxy caddy outrigger naive direct ceiling
#                [all but naive; naive = httputil.ReverseProxy + default Transport, bench/naiveproxy]
#   H2_REQUESTS  h2load -n [20000 per second of DURATION, i.e. 200000 for 10s]
#   IDLE_CONNS   idle keep-alive TLS connections for the memory scenario [1000]
#   PROPAGATION  1 = also run bench/propagation.sh [1]
#   NOTE         a line printed above the table, e.g. "smoke run on a loaded machine"
#   RESULTS      raw results directory [bench/results/<UTC timestamp>]
#   OUT_MD, OUT_SVG  outputs [docs/benchmarks.md, docs/benchmarks.svg]
#   PROXY_CPU, LOAD_CPU  CPUs for proxy+backend and for the load generator [0, 1]
#   BASE_PORT    first of the loopback ports used [29000]
#   INSTALL      1 = apt-get install missing peers [1]
#   PROFILE      1 = run Outrigger with --pprof and save a CPU profile of each
#                h1 1 KiB run as RESULTS/r<N>.outrigger.h1_1k.pprof [0]
#   OUTRIGGER_ARGS  extra flags appended to `outrigger proxy`, word-split,
#                e.g. "--upstream-direct=false" for an A/B run []
#
# Smoke run:  DURATION=2s ROUNDS=1 bench/run.sh
# Full run:   ROUNDS=3 DURATION=10s bench/run.sh   (on an otherwise idle machine)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CANDIDATES=${CANDIDATES:-nginx haproxy caddy outrigger direct ceiling}
IDLE_CONNS=${IDLE_CONNS:-1000}
PROPAGATION=${PROPAGATION:-1}
NOTE=${NOTE:-}
OUT_MD=${OUT_MD:-$ROOT/docs/benchmarks.md}
OUT_SVG=${OUT_SVG:-$ROOT/docs/benchmarks.svg}
RESULTS=${RESULTS:-$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BASE_PORT=${BASE_PORT:-29000}
INSTALL=${INSTALL:-1}
PROFILE=${PROFILE:-0}
OUTRIGGER_ARGS=${OUTRIGGER_ARGS:-}

if [[ ! $DURATION =~ ^[0-9]+s$ ]]; then
	echo "run.sh: DURATION=$DURATION: use whole seconds, e.g. 10s" >&2
	exit 2
fi
if [[ ! $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
	echo "run.sh: ROUNDS=$ROUNDS: want a positive integer" >&2
	exit 2
fi
H2_REQUESTS=${H2_REQUESTS:-$((${DURATION%s} * 20000))}

for c in $CANDIDATES; do
	case $c in nginx | haproxy | caddy | outrigger | naive | direct | ceiling) ;;
	*)
		echo "run.sh: CANDIDATES: unknown candidate \"$c\" (want nginx haproxy caddy outrigger naive direct ceiling)" >&2
		exit 2
		;;
	esac
done

BACKEND_PORT=$((BASE_PORT + 80))
BACKEND_TLS_PORT=$((BASE_PORT + 443))
declare -A PORT=([nginx]=$((BASE_PORT + 101)) [haproxy]=$((BASE_PORT + 102)) [caddy]=$((BASE_PORT + 103)) [outrigger]=$((BASE_PORT + 104)) [naive]=$((BASE_PORT + 105)))
ADMIN_PORT=$((BASE_PORT + 114))

log() { printf '%s run.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# --- processes and cleanup --------------------------------------------------
WORK=$(mktemp -d /tmp/outrigger-bench.XXXXXX)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh" # PIDS, cleanup on exit, stop, show

# rss_kib PID [FIELD]: VmRSS (or another /proc/PID/status field in kB, e.g.
# RssAnon) of PID and all its descendants, in KiB.
rss_kib() {
	local todo=("$1") field=${2:-VmRSS} sum=0 p kids rss
	while ((${#todo[@]})); do
		p=${todo[0]}
		todo=("${todo[@]:1}")
		rss=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
		sum=$((sum + ${rss:-0}))
		kids=$(pgrep -P "$p" || true)
		for k in $kids; do todo+=("$k"); done
	done
	echo "$sum"
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s).
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# --- peers, build, certificate ----------------------------------------------
install_peers() {
	local missing=()
	command -v nginx >/dev/null || missing+=(nginx-light)
	command -v haproxy >/dev/null || missing+=(haproxy)
	command -v caddy >/dev/null || missing+=(caddy)
	command -v wrk >/dev/null || missing+=(wrk)
	command -v h2load >/dev/null || missing+=(nghttp2-client)
	command -v taskset >/dev/null || missing+=(util-linux)
	command -v openssl >/dev/null || missing+=(openssl)
	if ((${#missing[@]})); then
		[[ $INSTALL == 1 ]] || die "missing: ${missing[*]} (INSTALL=0)"
		log "installing ${missing[*]}"
		if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >"$WORK/apt.log" 2>&1; then
			log "apt-get install failed; updating the package lists and retrying"
			apt-get update >>"$WORK/apt.log" 2>&1 || true
			DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >>"$WORK/apt.log" 2>&1 ||
				{ tail -20 "$WORK/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
		fi
	fi
}

build() {
	log "building outrigger and the bench helpers"
	mkdir -p "$WORK/bin"
	(cd "$ROOT" &&
		CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -o "$WORK/bin/outrigger" ./cmd/outrigger &&
		go build -trimpath -o "$WORK/bin/" ./bench/backend ./bench/idleconns ./bench/chart ./bench/watchers ./bench/naiveproxy) ||
		die "build failed"
}

make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null || die "openssl could not make a certificate"
	cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/haproxy.pem"
}

# --- candidate configurations -------------------------------------------------
write_configs() {
	mkdir -p "$WORK/nginx/tmp" "$WORK/caddy/data" "$WORK/caddy/config"
	cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl http2;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The same job as Outrigger: the client's Host and its five
            # forwarding headers.
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header Forwarded "for=\$remote_addr;host=\\"\$http_host\\";proto=\$scheme";
            # 64 KiB responses fit in memory buffers rather than a temp file.
            proxy_buffer_size 16k;
            proxy_buffers 8 16k;
        }
    }
}
EOF
	cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8000
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    http-reuse always
frontend fe
    bind 127.0.0.1:${PORT[haproxy]} ssl crt $WORK/haproxy.pem alpn h2,http/1.1
    default_backend be
backend be
    # The same job as Outrigger: its five forwarding headers (HAProxy
    # passes Host through).
    option forwardfor
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header X-Real-IP %[src]
    http-request set-header Forwarded "for=%[src];host=\\"%[req.hdr(host)]\\";proto=https"
    server app 127.0.0.1:$BACKEND_PORT
EOF
	cat >"$WORK/Caddyfile" <<EOF
{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system {
		root $WORK/caddy/data
	}
	log {
		output discard
	}
}
https://127.0.0.1:${PORT[caddy]} {
	bind 127.0.0.1
	tls $WORK/cert.pem $WORK/key.pem
	# X-Forwarded-For/-Proto/-Host and Host are Caddy's defaults; the
	# other two make the same job as Outrigger's.
	reverse_proxy 127.0.0.1:$BACKEND_PORT {
		header_up X-Real-IP {remote_host}
		header_up Forwarded \`for={remote_host};host="{hostport}";proto=https\`
	}
}
EOF
}

# cmd_for CANDIDATE: the command line that runs it (printed into the docs).
cmd_for() {
	case $1 in
	nginx) echo "nginx -p $WORK/nginx -c $WORK/nginx/nginx.conf -g 'daemon off;'" ;;
	haproxy) echo "haproxy -db -f $WORK/haproxy.cfg" ;;
	caddy) echo "GOMAXPROCS=1 caddy run --adapter caddyfile --config $WORK/Caddyfile" ;;
	outrigger) echo "GOMAXPROCS=1 outrigger proxy --listen 127.0.0.1:${PORT[outrigger]} --upstream http://127.0.0.1:$BACKEND_PORT --cert $WORK/cert.pem --key $WORK/key.pem --admin 127.0.0.1:$ADMIN_PORT --access-log=false --log-level warn --shutdown-delay 0s --drain-timeout 1s${OUTRIGGER_ARGS:+ $OUTRIGGER_ARGS}" ;;
	naive) echo "GOMAXPROCS=1 naiveproxy --listen 127.0.0.1:${PORT[naive]} --upstream http://127.0.0.1:$BACKEND_PORT --cert $WORK/cert.pem --key $WORK/key.pem" ;;
	direct | ceiling) echo "backend --listen 127.0.0.1:$BACKEND_PORT --tls-listen 127.0.0.1:$BACKEND_TLS_PORT" ;;
	esac
}

# start_backend: sets BACKEND_PID.
start_backend() {
	port_free "$BACKEND_PORT" || die "port 127.0.0.1:$BACKEND_PORT is taken by another program (set BASE_PORT)"
	taskset -c "$PROXY_CPU" "$WORK/bin/backend" --listen "127.0.0.1:$BACKEND_PORT" \
		--tls-listen "127.0.0.1:$BACKEND_TLS_PORT" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
		>"$WORK/backend.log" 2>&1 &
	BACKEND_PID=$!
	PIDS+=("$BACKEND_PID")
	for _ in $(seq 100); do
		grep -q '^backend listening' "$WORK/backend.log" && return 0
		kill -0 "$BACKEND_PID" 2>/dev/null || break
		sleep 0.1
	done
	die "backend did not start: $(cat "$WORK/backend.log")"
}

# start_candidate NAME: sets CAND_PID (whose process tree is measured) and URL.
start_candidate() {
	local name=$1 logf="$WORK/$1.log"
	if [[ -n ${PORT[$name]:-} ]] && ! port_free "${PORT[$name]}"; then
		log "$name: port 127.0.0.1:${PORT[$name]} is taken by another program (set BASE_PORT)"
		return 1
	fi
	case $name in
	nginx)
		taskset -c "$PROXY_CPU" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$logf" 2>&1 &
		;;
	haproxy)
		taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy.cfg" >"$logf" 2>&1 &
		;;
	caddy)
		XDG_DATA_HOME="$WORK/caddy/data" XDG_CONFIG_HOME="$WORK/caddy/config" HOME="$WORK/caddy" GOMAXPROCS=1 \
			taskset -c "$PROXY_CPU" caddy run --adapter caddyfile --config "$WORK/Caddyfile" >"$logf" 2>&1 &
		;;
	outrigger)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$WORK/bin/outrigger" proxy --listen "127.0.0.1:${PORT[outrigger]}" \
			--upstream "http://127.0.0.1:$BACKEND_PORT" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
			--admin "127.0.0.1:$ADMIN_PORT" --access-log=false --log-level warn \
			--shutdown-delay 0s --drain-timeout 1s $([[ $PROFILE == 1 ]] && echo --pprof) $OUTRIGGER_ARGS >"$logf" 2>&1 &
		;;
	naive)
		GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$WORK/bin/naiveproxy" --listen "127.0.0.1:${PORT[naive]}" \
			--upstream "http://127.0.0.1:$BACKEND_PORT" --cert "$WORK/cert.pem" --key "$WORK/key.pem" >"$logf" 2>&1 &
		;;
	direct)
		CAND_PID=$BACKEND_PID URL="http://127.0.0.1:$BACKEND_PORT"
		return 0
		;;
	ceiling)
		CAND_PID=$BACKEND_PID URL="https://127.0.0.1:$BACKEND_TLS_PORT"
		return 0
		;;
	esac
	CAND_PID=$!
	PIDS+=("$CAND_PID")
	URL="https://127.0.0.1:${PORT[$name]}"
	if ! wait_port "${PORT[$name]}"; then
		log "$name did not start:"
		tail -20 "$logf" >&2
		stop "$CAND_PID"
		return 1
	fi
	# The first request proves the whole path works before measuring.
	for _ in $(seq 50); do
		if curl -skf -o /dev/null "$URL/1k"; then
			kill -0 "$CAND_PID" 2>/dev/null && return 0
			break # someone else answered on our port
		fi
		sleep 0.1
	done
	log "$name does not answer $URL/1k:"
	tail -20 "$logf" >&2
	stop "$CAND_PID"
	return 1
}

# record CMD…: log the exact command (first round only) and run it.
record() {
	[[ $ROUND == 1 ]] && show "$@" >>"$RESULTS/commands.txt"
	"$@"
}

# hold_idle PROTO BASE: opens $IDLE_CONNS idle TLS connections to $URL with
# bench/idleconns --proto PROTO (h1 or h2), waits until all are open plus
# 1 s, and sets IDLE_PID (the caller stops it after measuring). On failure
# it notes why in BASE.rss.txt and returns 1.
hold_idle() {
	local proto=$1 base=$2 ready="$WORK/idle.out"
	: >"$ready"
	[[ $ROUND == 1 ]] && show taskset -c "$LOAD_CPU" "$WORK/bin/idleconns" --url "$URL/1k" --n "$IDLE_CONNS" --proto "$proto" >>"$RESULTS/commands.txt"
	taskset -c "$LOAD_CPU" "$WORK/bin/idleconns" --url "$URL/1k" --n "$IDLE_CONNS" --proto "$proto" >"$ready" 2>&1 &
	IDLE_PID=$!
	PIDS+=("$IDLE_PID")
	for _ in $(seq 600); do
		grep -q '^ready' "$ready" && break
		kill -0 "$IDLE_PID" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q '^ready' "$ready"; then
		sleep 1
		return 0
	fi
	log "$name: idleconns --proto $proto failed: $(tail -3 "$ready")"
	echo "# idleconns --proto $proto failed: $(tail -1 "$ready")" >>"$base.rss.txt"
	stop "$IDLE_PID"
	return 1
}

# run_candidate ROUND NAME: every scenario for one candidate.
run_candidate() {
	local r=$1 name=$2 base
	base="$RESULTS/r$r.$name"
	start_backend
	if ! start_candidate "$name"; then
		echo "# $name did not start" >"$base.rss.txt"
		stop "$BACKEND_PID"
		return 0
	fi
	sleep 1
	{
		echo "idle_kib $(rss_kib "$CAND_PID")"
		echo "idle_anon_kib $(rss_kib "$CAND_PID" RssAnon)"
	} >"$base.rss.txt"
	# Warm-up (discarded): connections, TLS session caches, upstream pools, heaps.
	taskset -c "$LOAD_CPU" wrk -t1 -c64 -d1s "$URL/1k" >/dev/null 2>&1 || true

	log "round $r/$ROUNDS $name: h1 1 KiB"
	(while sleep 0.5; do echo "load_kib $(rss_kib "$CAND_PID")"; done) >>"$base.rss.txt" &
	local sampler=$!
	PIDS+=("$sampler") # so an interrupted run does not leave it sampling
	local profiler=""
	if [[ $PROFILE == 1 && $name == outrigger ]]; then
		curl -sf -o "$base.h1_1k.pprof" "http://127.0.0.1:$ADMIN_PORT/debug/pprof/profile?seconds=$((${DURATION%s} - 1 > 0 ? ${DURATION%s} - 1 : 1))" &
		profiler=$!
		PIDS+=("$profiler")
	fi
	record taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"$DURATION" --latency "$URL/1k" >"$base.h1_1k.txt" 2>&1 || true
	stop "$sampler"
	if [[ -n $profiler ]]; then
		wait "$profiler" || log "outrigger: CPU profile failed"
		stop "$profiler"
		log "CPU profile: go tool pprof -top $base.h1_1k.pprof"
	fi

	log "round $r/$ROUNDS $name: h1 64 KiB"
	record taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"$DURATION" --latency "$URL/64k" >"$base.h1_64k.txt" 2>&1 || true

	log "round $r/$ROUNDS $name: new connection per request"
	record taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"$DURATION" --latency -H "Connection: close" "$URL/1k" >"$base.newconn.txt" 2>&1 || true

	if [[ $name != direct ]]; then
		log "round $r/$ROUNDS $name: h2 1 KiB"
		record taskset -c "$LOAD_CPU" h2load -n "$H2_REQUESTS" -c 32 -m 10 "$URL/1k" >"$base.h2.txt" 2>&1 || true

		log "round $r/$ROUNDS $name: $IDLE_CONNS idle TLS connections"
		if hold_idle h1 "$base"; then
			{
				echo "conns_kib $(rss_kib "$CAND_PID")"
				echo "conns_anon_kib $(rss_kib "$CAND_PID" RssAnon)"
				echo "conns $IDLE_CONNS"
			} >>"$base.rss.txt"
			stop "$IDLE_PID"
		fi
		if [[ $name != ceiling ]]; then
			log "round $r/$ROUNDS $name: $IDLE_CONNS idle HTTP/2 connections"
			if hold_idle h2 "$base"; then
				echo "h2conns_kib $(rss_kib "$CAND_PID")" >>"$base.rss.txt"
				stop "$IDLE_PID"
			fi
		fi
	fi
	if [[ $name != direct && $name != ceiling ]]; then
		stop "$CAND_PID"
	fi
	stop "$BACKEND_PID"
}

versions() {
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/^MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
	echo "- load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- $("$WORK/bin/outrigger" version 2>&1 | head -1); $(go version)"
	echo "- $(nginx -v 2>&1); $(haproxy -v 2>&1 | head -1 | cut -d' ' -f1-3); Caddy $(caddy version 2>&1 | cut -d' ' -f1)"
	echo "- $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(h2load --version 2>&1 | head -1); $(openssl version)"
}

# --- main --------------------------------------------------------------------
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
install_peers
for p in "$BACKEND_PORT" "$BACKEND_TLS_PORT" "${PORT[@]}" "$ADMIN_PORT"; do
	port_free "$p" || die "port 127.0.0.1:$p is in use (set BASE_PORT)"
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
build
make_cert
write_configs
mkdir -p "$RESULTS"
: >"$RESULTS/commands.txt"
{
	echo -e "nginx\tnginx $(nginx -v 2>&1 | sed 's|.*nginx/||'), 1 worker, upstream keepalive 64"
	echo -e "haproxy\tHAProxy $(haproxy -v 2>&1 | head -1 | cut -d' ' -f3 | cut -d- -f1), nbthread 1, http-reuse always"
	echo -e "caddy\tCaddy $(caddy version 2>&1 | cut -d' ' -f1 | tr -d v), reverse_proxy, GOMAXPROCS=1"
	echo -e "outrigger\tOutrigger proxy, GOMAXPROCS=1"
	echo -e "naive\tnaive Go: httputil.ReverseProxy + cloned default Transport, GOMAXPROCS=1"
	echo -e "direct\tdirect to the backend: plain HTTP, no TLS, no proxy"
	echo -e "ceiling\tceiling: the Go backend serving TLS itself, no proxy"
} >"$RESULTS/labels.tsv"
log "results in $RESULTS; DURATION=$DURATION ROUNDS=$ROUNDS H2_REQUESTS=$H2_REQUESTS; candidates: $CANDIDATES"

for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
	for c in $CANDIDATES; do
		[[ $ROUND == 1 ]] && echo "# $c: $(cmd_for "$c")" >>"$RESULTS/commands.txt"
		run_candidate "$ROUND" "$c"
	done
done

cand_list=$(echo "$CANDIDATES" | tr ' ' ',')
baseline=nginx
[[ " $CANDIDATES " == *" nginx "* ]] || baseline=$(echo "$CANDIDATES" | awk '{print $1}')
"$WORK/bin/chart" --dir "$RESULTS" --candidates "$cand_list" --baseline "$baseline" \
	--md "$RESULTS/table.md" --svg "$OUT_SVG" \
	--subtitle "$(date -u '+%Y-%m-%d'), $(nproc) CPUs, ROUNDS=$ROUNDS DURATION=$DURATION${NOTE:+ — $NOTE}" >/dev/null
cp "$WORK/nginx/nginx.conf" "$WORK/haproxy.cfg" "$WORK/Caddyfile" "$RESULTS/"
versions >"$RESULTS/machine.md"

if [[ $PROPAGATION == 1 ]]; then
	log "config propagation benchmark"
	BIN="$WORK/bin" RESULTS="$RESULTS" BASE_PORT=$((BASE_PORT + 700)) "$ROOT/bench/propagation.sh" ||
		log "propagation benchmark failed; see above"
fi

NOTE="$NOTE" DURATION="$DURATION" ROUNDS="$ROUNDS" H2_REQUESTS="$H2_REQUESTS" IDLE_CONNS="$IDLE_CONNS" \
	PROXY_CPU="$PROXY_CPU" LOAD_CPU="$LOAD_CPU" "$ROOT/bench/report.sh" "$RESULTS" "$OUT_MD" "$OUT_SVG"
cat "$RESULTS/table.md"
log "wrote $OUT_MD and $OUT_SVG (raw results: $RESULTS)"
