# bench/lib.sh — process bookkeeping shared by the bench scripts (sourced).
#
# The sourcing script sets WORK (a temporary directory) first, appends every
# background PID it starts to PIDS, and may set STOP_WAIT (tenths of a
# second between TERM and KILL, default 50). On exit every PID still listed
# is stopped and WORK is removed, also on Ctrl-C.

PIDS=()
STOP_WAIT=${STOP_WAIT:-50}

cleanup() {
	local rc=$?
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq "$STOP_WAIT"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: TERM, then KILL after STOP_WAIT tenths of a second; forget it.
stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq "$STOP_WAIT"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local keep=()
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# show ARGS…: the command as one shell-readable line, temporary paths
# (BIN/, WORK/, bin/) removed.
show() {
	local a q="'" out=()
	for a in "$@"; do
		a=${a#"${BIN:-/nonexistent}/"}
		a=${a//"$WORK/"/}
		a=${a#bin/}
		case $a in
		'' | *[[:space:]\"\'\;\&\|\<\>\$\*\?\(\)]*) a="$q${a//$q/$q\\$q$q}$q" ;;
		esac
		out+=("$a")
	done
	printf '%s\n' "${out[*]}"
}
