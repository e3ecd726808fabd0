#!/usr/bin/env bash
# bench/propagation.sh — how fast a config push reaches watchers and the app.
#
# 1. Fan-out: one `outrigger config serve` (bbolt, then etcd if available),
#    N long-poll watchers (bench/watchers fanout), R pushes; push → every
#    watcher received: p50 / p99 / max, and the server's RSS with N waiting.
# 2. End to end: push → `outrigger sync` (long-poll, validate, atomic write,
#    SIGHUP via pid file, health check) → the stand-in legacy app serving the
#    new greeting (bench/watchers reload): p50 / p99 / max over R pushes.
#
# Run by bench/run.sh (which passes BIN and RESULTS), or alone:
#   bench/propagation.sh            # builds what it needs into a temp dir
# Environment (defaults in brackets):
#   WATCHERS       watcher counts [1000 10000]
#   FANOUT_PUSHES  pushes per fan-out run [20]
#   FANOUT_CLIENT  watcher client: http (net/http, as outrigger sync) or raw (minimal
#                  HTTP/1.1 loop, ~1/3 of the CPU, leaves more of it to the server) [http]
#   FANOUT_SOURCES loopback IPs the watchers dial from; not 127.0.0.1, whose ephemeral
#                  ports 10,000 connections plus the last run's TIME_WAITs nearly exhaust
#                  (other programs' 127.0.0.1:0 listeners then fail) [127.0.0.2,127.0.0.3,127.0.0.4]
#   RELOAD_PUSHES  pushes for the end-to-end run [100]
#   ETCD           1 = also run fan-out with --etcd (Debian's etcd-server) [1]
#   INSTALL        1 = apt-get install etcd-server if etcd is missing [1]
#   BASE_PORT      first loopback port used [29700]
#   BIN            directory with outrigger and watchers binaries [build them]
#   RESULTS        where propagation.md goes [a temp dir, printed]
# Everything listens on 127.0.0.1; every process is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WATCHERS=${WATCHERS:-1000 10000}
FANOUT_PUSHES=${FANOUT_PUSHES:-20}
FANOUT_CLIENT=${FANOUT_CLIENT:-http}
FANOUT_SOURCES=${FANOUT_SOURCES:-127.0.0.2,127.0.0.3,127.0.0.4}
RELOAD_PUSHES=${RELOAD_PUSHES:-100}
ETCD=${ETCD:-1}
INSTALL=${INSTALL:-1}
BASE_PORT=${BASE_PORT:-29700}

API_PORT=$((BASE_PORT + 0))
ETCD_API_PORT=$((BASE_PORT + 1))
ETCD_CLIENT_PORT=$((BASE_PORT + 79))
ETCD_PEER_PORT=$((BASE_PORT + 80))
APP_PORT=$((BASE_PORT + 8))

log() { printf '%s propagation.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

WORK=$(mktemp -d /tmp/outrigger-prop.XXXXXX)
STOP_WAIT=100 # config serve with 10,000 watchers may take a while to drain
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh" # PIDS, cleanup on exit, stop, show

wait_http() { # URL: until it answers 2xx (30 s)
	for _ in $(seq 300); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.1
	done
	return 1
}

if [[ -z ${BIN:-} ]]; then
	BIN="$WORK/bin"
	mkdir -p "$BIN"
	log "building outrigger and bench/watchers"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -o "$BIN/outrigger" ./cmd/outrigger &&
		go build -trimpath -o "$BIN/" ./bench/watchers) || die "build failed"
fi
if [[ -z ${RESULTS:-} ]]; then
	RESULTS=$(mktemp -d /tmp/outrigger-prop-results.XXXXXX)
fi
mkdir -p "$RESULTS"
OUT="$RESULTS/propagation.md"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log "open-file limit $(ulimit -n); results in $OUT"

# serve_api NAME PORT ARGS…: start a config server; sets API_PID.
serve_api() {
	local name=$1 port=$2
	shift 2
	"$BIN/outrigger" config serve --listen "127.0.0.1:$port" --log-level warn "$@" >"$WORK/$name.log" 2>&1 &
	API_PID=$!
	PIDS+=("$API_PID")
	wait_http "http://127.0.0.1:$port/readyz" || {
		tail -20 "$WORK/$name.log" >&2
		die "config serve ($name) did not become ready"
	}
}

# fanout STORE PORT: one row per watcher count.
fanout() {
	local store=$1 port=$2 n
	for n in $WATCHERS; do
		log "fan-out: $store, $n watchers, $FANOUT_PUSHES pushes"
		local cmd=("$BIN/watchers" fanout --server "http://127.0.0.1:$port" --name "fanout-$n" --n "$n"
			--pushes "$FANOUT_PUSHES" --server-pid "$API_PID" --label "$store" --client "$FANOUT_CLIENT" --sources "$FANOUT_SOURCES")
		show "${cmd[@]}" >>"$WORK/commands.txt"
		if ! "${cmd[@]}" >>"$WORK/fanout.rows" 2>>"$WORK/watchers.log"; then
			log "fan-out $store $n failed: $(tail -1 "$WORK/watchers.log")"
			echo "| $store | $n | $FANOUT_PUSHES | failed: $(tail -1 "$WORK/watchers.log" | tr '|' '/') | | | | | |" >>"$WORK/fanout.rows"
		fi
	done
}

: >"$WORK/fanout.rows"
: >"$WORK/commands.txt"

# --- fan-out, bbolt ------------------------------------------------------------
serve_api bbolt "$API_PORT" --data "$WORK/bolt"
echo "outrigger config serve --listen 127.0.0.1:$API_PORT --data DIR --log-level warn" >>"$WORK/commands.txt"
fanout bbolt "$API_PORT"
BOLT_PID=$API_PID

# --- fan-out, etcd ---------------------------------------------------------------
ETCD_NOTE=""
if [[ $ETCD == 1 ]]; then
	if ! command -v etcd >/dev/null && [[ $INSTALL == 1 ]]; then
		log "installing etcd-server"
		DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server >"$WORK/apt.log" 2>&1 || true
	fi
	if command -v etcd >/dev/null; then
		etcd --name bench --data-dir "$WORK/etcd" \
			--listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
			--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
			--initial-cluster "bench=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn >"$WORK/etcd.log" 2>&1 &
		ETCD_PID=$!
		PIDS+=("$ETCD_PID")
		if wait_http "http://127.0.0.1:$ETCD_CLIENT_PORT/health"; then
			serve_api etcd "$ETCD_API_PORT" --etcd "http://127.0.0.1:$ETCD_CLIENT_PORT"
			echo "outrigger config serve --listen 127.0.0.1:$ETCD_API_PORT --etcd http://127.0.0.1:$ETCD_CLIENT_PORT ($(etcd --version | head -1))" >>"$WORK/commands.txt"
			fanout etcd "$ETCD_API_PORT"
			stop "$API_PID"
		else
			ETCD_NOTE="etcd did not start: $(tail -1 "$WORK/etcd.log")"
		fi
		stop "$ETCD_PID"
	else
		ETCD_NOTE="etcd is not installed (apt-get install etcd-server); etcd rows skipped."
	fi
else
	ETCD_NOTE="etcd rows skipped (ETCD=0)."
fi

# --- end to end: push → sync → SIGHUP → app ------------------------------------
log "end to end: $RELOAD_PUSHES pushes through outrigger sync to the legacy app"
API_PID=$BOLT_PID
cfg='{"greeting": "bench start", "healthy": true}'
curl -sf -X PUT -H 'Content-Type: application/json' --data-binary "$cfg" \
	"http://127.0.0.1:$API_PORT/v1/configs/app" >/dev/null || die "initial push failed"
printf '%s\n' "$cfg" >"$WORK/app.json"
"$BIN/outrigger" legacy-app --listen "127.0.0.1:$APP_PORT" --config "$WORK/app.json" --pid-file "$WORK/app.pid" \
	>"$WORK/app.log" 2>&1 &
APP_PID=$!
PIDS+=("$APP_PID")
wait_http "http://127.0.0.1:$APP_PORT/healthz" || die "legacy app did not start: $(tail -3 "$WORK/app.log")"
SYNC_CMD=("$BIN/outrigger" sync --source "http://127.0.0.1:$API_PORT/v1/configs/app" --dest "$WORK/app.json"
	--format json --pid-file "$WORK/app.pid" --signal HUP --health "http://127.0.0.1:$APP_PORT/healthz"
	--min-reload-interval 0s --admin "" --log-level warn)
"${SYNC_CMD[@]}" >"$WORK/sync.log" 2>&1 &
SYNC_PID=$!
PIDS+=("$SYNC_PID")
sleep 1
kill -0 "$SYNC_PID" 2>/dev/null || die "outrigger sync exited: $(tail -3 "$WORK/sync.log")"
RELOAD_CMD=("$BIN/watchers" reload --server "http://127.0.0.1:$API_PORT" --name app
	--app "http://127.0.0.1:$APP_PORT/" --pushes "$RELOAD_PUSHES" --gap 700ms --label "push → sync → SIGHUP → app")
echo "outrigger legacy-app --listen 127.0.0.1:$APP_PORT --config app.json --pid-file app.pid" >>"$WORK/commands.txt"
show "${SYNC_CMD[@]}" >>"$WORK/commands.txt"
show "${RELOAD_CMD[@]}" >>"$WORK/commands.txt"
if ! RELOAD_ROW=$("${RELOAD_CMD[@]}" 2>>"$WORK/watchers.log"); then
	RELOAD_ROW="| push → sync → SIGHUP → app | $RELOAD_PUSHES | failed: $(tail -1 "$WORK/watchers.log" | tr '|' '/') | | |"
	tail -5 "$WORK/sync.log" >&2
fi
stop "$SYNC_PID"
stop "$APP_PID"
stop "$BOLT_PID"

{
	echo "### Fan-out: push → every long-poll watcher received it"
	echo
	echo "Latency from the start of the \`PUT\` to each watcher's response, over all watchers × pushes;"
	echo "RSS is the config server's with all watchers waiting. Client and server share the machine's CPUs (not pinned)."
	echo "\"Server-side wake\" is the server's own \`outrigger_config_watch_wake_seconds\` histogram over the same pushes (bucket"
	echo "upper bounds): from its watch hub learning of the version to a woken watcher's response. The gap to the client-side"
	echo "numbers is the store write before the hub hears of it, and the watchers' own share of the CPUs."
	echo
	echo "| store | watchers | pushes | p50 ms | p99 ms | max ms | missed | server-side wake p50 / p99 ms | server RSS MiB |"
	echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
	cat "$WORK/fanout.rows"
	[[ -n $ETCD_NOTE ]] && { echo; echo "$ETCD_NOTE"; }
	echo
	echo "### End to end: push → app serving the new config"
	echo
	echo "From the start of the \`PUT\` until the stand-in app's \`/\` shows the pushed greeting (polled every 1 ms):"
	echo "long-poll wake-up, JSON validation, atomic write, SIGHUP by pid file, the app's re-read. \`outrigger sync\` runs"
	echo "with \`--min-reload-interval 0s\` (the default 1 s rate limit would otherwise hold back pushes closer than 1 s),"
	echo "pushes are 700 ms apart so each health check finishes first."
	echo
	echo "| path | pushes | p50 ms | p99 ms | max ms |"
	echo "|---|--:|--:|--:|--:|"
	echo "$RELOAD_ROW"
	echo
	echo "Commands:"
	echo
	echo '```'
	cat "$WORK/commands.txt"
	echo '```'
} >"$OUT"
cat "$OUT"
