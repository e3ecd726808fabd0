#!/usr/bin/env bash
# The one entry point for everything CI checks: formatting, vet, staticcheck,
# the whole test suite with the race detector (including the end-to-end tests
# that build the binary and, as root, the pod-in-a-network-namespace test),
# and a short run of every fuzz target.
#
#   scripts/test.sh            # everything
#   FUZZTIME=0 scripts/test.sh # skip the fuzz step
#
# The fuzz budget is a count of executions per target (FUZZTIME, "Nx"), not a
# duration: with a duration, Go 1.26's fuzz coordinator can report a bare
# "context deadline exceeded" failure at the end of the window when a worker
# is mid-call or minimizing (go.dev/issue/75804, fixed in Go 1.27), failing
# CI with nothing found. A count has no deadline to race; a target that
# really hangs still fails, at go test's -timeout, with its stacks.
# FUZZMINIMIZE bounds the minimization of each new input (default 60 s).
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:-} -mod=readonly"
FUZZTIME="${FUZZTIME:-10000x}"
FUZZMINIMIZE="${FUZZMINIMIZE:-2000x}"

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [[ -n "$unformatted" ]]; then
	echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
STATICCHECK="$(go env GOPATH)/bin/staticcheck"
if [[ ! -x "$STATICCHECK" ]]; then
	GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
"$STATICCHECK" ./...

# The reliability suite drives compiled binaries under load for tens of
# seconds per scenario; the race detector would only slow its load
# generator, so it runs in its own step without -race.
step "go test -race (all packages but the reliability suite)"
go test -race -count=1 -timeout 20m $(go list ./... | grep -v /test/reliability) 2>&1 | tee /tmp/outrigger-test.log

step "proxy tests again with net/http alone serving HTTP/1.1 (--http1-fast=false)"
go test -race -count=1 -timeout 10m ./internal/proxy/ -args -http1-fast=false 2>&1 | tee -a /tmp/outrigger-test.log

step "reliability suite (test/reliability, no -race)"
go test -count=1 -timeout 20m ./test/reliability/ 2>&1 | tee -a /tmp/outrigger-test.log

step "container image (podman build of deploy/Dockerfile, then inspect)"
if [[ "${CI:-}" == "true" ]]; then
	REQUIRE_PODMAN=1 scripts/image.sh
elif command -v podman >/dev/null; then
	scripts/image.sh || [[ $? == 3 ]]
else
	echo "podman not installed: skipping the image build (CI installs it)"
fi

if [[ "$FUZZTIME" != "0" ]]; then
	step "fuzz (each target for $FUZZTIME)"
	for pkg in $(go list ./...); do
		dir="$(go list -f '{{.Dir}}' "$pkg")"
		for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
			echo "--- $pkg $target"
			go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZE" -timeout 5m "$pkg" >/tmp/outrigger-fuzz.log 2>&1 || { cat /tmp/outrigger-fuzz.log; exit 1; }
		done
	done
fi

passed=$(grep -c '^ok ' /tmp/outrigger-test.log || true)
failed=$(grep -c '^FAIL' /tmp/outrigger-test.log || true)
echo
echo "packages: $passed passed, $failed failed"
