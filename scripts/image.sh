#!/usr/bin/env bash
# Builds the Outrigger container image from deploy/Dockerfile and checks it.
#
#   scripts/image.sh                      # build outrigger:$VERSION with podman and check it
#   VERSION=v1.2.0 scripts/image.sh       # stamp a release version (default: git describe, else dev)
#   IMAGE=registry.example/outrigger scripts/image.sh
#   CHECK_ONLY=1 scripts/image.sh         # build the binary and context, lint the Dockerfile, no podman
#   MAX_MB=30 scripts/image.sh            # size budget; the check fails above it
#
# Steps:
#   1. go build a static binary (CGO_ENABLED=0, -trimpath, -s -w, main.version=$VERSION)
#   2. lay out a temporary build context: the binary and rootfs/ with the host's CA bundle,
#      passwd/group lines for user 65532 and an empty sticky tmp/ (deploy/Dockerfile documents it)
#   3. check the Dockerfile statically (FROM scratch, numeric non-root USER, ENTRYPOINT, CMD,
#      every OCI label, every COPY source present in the context)
#   4. podman build (FROM scratch: no registry needed), then `podman image inspect`:
#      size (MB, fails above MAX_MB), User, Entrypoint, Cmd, labels; and run `IMAGE version`.
# If podman is missing or cannot build in this sandbox (no user namespaces, no overlay or vfs
# storage), the script says so, keeps the static checks, and exits 3 — unless REQUIRE_PODMAN=1,
# which makes that a failure (exit 1). Debian: apt-get install -y podman.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
REVISION="${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
CREATED="${CREATED:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
IMAGE="${IMAGE:-localhost/outrigger}"
MAX_MB="${MAX_MB:-30}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
DOCKERFILE=deploy/Dockerfile
TAG="${IMAGE}:${VERSION}"

say() { printf 'image.sh: %s\n' "$*"; }
die() { printf 'image.sh: FAIL: %s\n' "$*" >&2; exit 1; }

ctx="$(mktemp -d "${TMPDIR:-/tmp}/outrigger-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

# 1. The binary.
say "building binary $VERSION"
CGO_ENABLED=0 GOOS="${GOOS:-linux}" GOARCH="${GOARCH:-$(go env GOARCH)}" \
	go build -trimpath -tags grpcnotrace -ldflags "-s -w -X main.version=${VERSION}" -o "$ctx/outrigger" ./cmd/outrigger
if command -v file >/dev/null && ! file "$ctx/outrigger" | grep -q 'statically linked'; then
	die "$ctx/outrigger is not statically linked: $(file "$ctx/outrigger")"
fi

# 2. The context.
[[ -r "$CA_BUNDLE" ]] || die "CA bundle $CA_BUNDLE not readable (Debian: apt-get install -y ca-certificates)"
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"
cp "$CA_BUNDLE" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
echo 'outrigger:x:65532:65532:outrigger:/nonexistent:/sbin/nologin' >"$ctx/rootfs/etc/passwd"
echo 'outrigger:x:65532:' >"$ctx/rootfs/etc/group"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"

# 3. Static checks of the Dockerfile.
static_errors=()
grep -Eq '^FROM scratch$' "$DOCKERFILE" || static_errors+=("final stage is not FROM scratch")
grep -Eq '^USER 65532:65532$' "$DOCKERFILE" || static_errors+=("USER is not the numeric 65532:65532")
grep -Fq 'ENTRYPOINT ["/outrigger"]' "$DOCKERFILE" || static_errors+=('ENTRYPOINT is not ["/outrigger"]')
grep -Fq 'CMD ["proxy"]' "$DOCKERFILE" || static_errors+=('CMD is not ["proxy"]')
labels=(title description version revision source licenses created)
for l in "${labels[@]}"; do
	grep -Fq "org.opencontainers.image.$l=" "$DOCKERFILE" || static_errors+=("label org.opencontainers.image.$l missing")
done
while read -r src; do
	[[ -e "$ctx/$src" ]] || static_errors+=("COPY source $src is not in the build context")
done < <(grep -E '^COPY ' "$DOCKERFILE" | grep -v -- '--from' | awk '{print $(NF-1)}')
if ((${#static_errors[@]})); then
	printf '  %s\n' "${static_errors[@]}" >&2
	die "$DOCKERFILE: static check failed"
fi
say "static checks of $DOCKERFILE passed"

if [[ "${CHECK_ONLY:-0}" == 1 ]]; then
	say "CHECK_ONLY=1: not building the image"
	exit 0
fi

# 4. Build and inspect.
no_podman() {
	say "cannot build the image here: $*"
	if [[ "${REQUIRE_PODMAN:-0}" == 1 ]]; then
		die "REQUIRE_PODMAN=1 and podman cannot build"
	fi
	say "static checks passed; image build SKIPPED (exit 3)"
	exit 3
}
command -v podman >/dev/null || no_podman "podman is not installed (Debian: apt-get install -y podman)"

build_log="$ctx/build.log"
say "podman build -t $TAG"
if ! podman build --quiet -f "$DOCKERFILE" \
	--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED" \
	-t "$TAG" "$ctx" >"$build_log" 2>&1; then
	cat "$build_log" >&2
	if grep -Eqi 'user namespace|newuidmap|overlay|mount|operation not permitted|cgroup' "$build_log"; then
		no_podman "podman failed for a sandbox reason (see its output above)"
	fi
	die "podman build failed"
fi

fmt='{{.Size}}|{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}'
IFS='|' read -r size user entrypoint cmd < <(podman image inspect --format "$fmt" "$TAG")
mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1000000 }')
errors=()
awk -v s="$size" -v m="$MAX_MB" 'BEGIN { exit !(s > m * 1000000) }' && errors+=("size ${mb} MB exceeds ${MAX_MB} MB")
[[ "$user" == "65532:65532" ]] || errors+=("User is \"$user\", want 65532:65532")
[[ "$entrypoint" == '["/outrigger"]' ]] || errors+=("Entrypoint is $entrypoint, want [\"/outrigger\"]")
[[ "$cmd" == '["proxy"]' ]] || errors+=("Cmd is $cmd, want [\"proxy\"]")
for l in "${labels[@]}"; do
	v="$(podman image inspect --format "{{index .Labels \"org.opencontainers.image.$l\"}}" "$TAG")"
	[[ -n "$v" && "$v" != "<no value>" ]] || errors+=("label org.opencontainers.image.$l is empty")
done
v="$(podman image inspect --format '{{index .Labels "org.opencontainers.image.version"}}' "$TAG")"
[[ "$v" == "$VERSION" ]] || errors+=("label version is \"$v\", want \"$VERSION\"")

# The file system: export a (never started) container and list it.
cid="$(podman create "$TAG" 2>/dev/null || true)"
if [[ -n "$cid" ]]; then
	listing="$(podman export "$cid" | tar -tvf - 2>/dev/null || true)"
	podman rm "$cid" >/dev/null 2>&1 || true
	grep -Eq '^drwxrwxrwt .* tmp/?$' <<<"$listing" || errors+=("/tmp is not a sticky world-writable directory")
	grep -Eq '^-r-xr-xr-x .* outrigger$' <<<"$listing" || errors+=("/outrigger is missing or not mode 0555")
	grep -Eq ' etc/ssl/certs/ca-certificates.crt$' <<<"$listing" || errors+=("the CA bundle is missing")
	grep -Eq ' etc/passwd$' <<<"$listing" || errors+=("/etc/passwd is missing")
	files="$(grep -c '^-' <<<"$listing" || true)"
else
	files="? (podman create failed)"
fi

# Run it once, if this sandbox can run containers (it may build but not run).
# (Sandboxes without CAP_SYS_RESOURCE fail in crun's setrlimit: that is reported, not failed.)
if out="$(podman run --rm --network none "$TAG" version 2>&1)"; then
	if grep -Fq "$VERSION" <<<"$out"; then
		ran="ok: $(head -1 <<<"$out")"
	else
		errors+=("'$TAG version' printed \"$out\", which lacks $VERSION")
	fi
else
	ran="not run: podman run cannot start containers here: $(tail -1 <<<"$out")"
fi

cat <<EOF

image      $TAG
size       ${mb} MB (budget ${MAX_MB} MB)
user       $user
entrypoint $entrypoint
cmd        $cmd
files      $files regular files
labels     $(podman image inspect --format '{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}' "$TAG" | sed 's/org.opencontainers.image.//g')
run        $ran
EOF

if ((${#errors[@]})); then
	printf '  %s\n' "${errors[@]}" >&2
	die "image $TAG failed its checks"
fi
say "image $TAG OK"
