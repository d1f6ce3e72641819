#!/usr/bin/env bash
# Build the container images locally, without a registry:
#   btcmesh:dev          FROM scratch + bin/btcmesh (static, from `make build`)
#   btcmesh/nats:<ver>   FROM scratch + nats-server built from the Go module
#                        proxy at the version go.mod pins (dev/offline use;
#                        users normally run the official `nats` image)
#
# Usage: scripts/image.sh [btcmesh|nats|all]     (default all)
# Env:   BTCMESH_IMAGE (btcmesh:dev), NATS_IMAGE (btcmesh/nats:<ver>),
#        BTCMESH_CACHE (~/.cache/btcmesh: where nats-server is built),
#        VERSION (image label), SKIP_BUILD=1 (use bin/btcmesh as it is).
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
GO=${GO:-go}
nats_version=$(awk '$1 == "github.com/nats-io/nats-server/v2" { print $2; exit }' go.mod)
[ -n "$nats_version" ] || { echo "image.sh: nats-server/v2 not found in go.mod" >&2; exit 1; }
BTCMESH_IMAGE=${BTCMESH_IMAGE:-btcmesh:dev}
NATS_IMAGE=${NATS_IMAGE:-btcmesh/nats:${nats_version#v}}
CACHE=${BTCMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/btcmesh}

build_btcmesh() {
  if [ "${SKIP_BUILD:-}" != 1 ]; then
    make --no-print-directory build
  fi
  [ -x bin/btcmesh ] || { echo "image.sh: bin/btcmesh missing: run make build" >&2; exit 1; }
  # The image is FROM scratch: a dynamically linked binary would not start.
  if file bin/btcmesh 2>/dev/null | grep -q 'dynamically linked'; then
    echo "image.sh: bin/btcmesh is dynamically linked; build it with make build (static)" >&2
    exit 1
  fi
  echo "image.sh: building $BTCMESH_IMAGE"
  # Send only what the Dockerfile copies as the build context.
  tar -c Dockerfile bin/btcmesh deploy/docker/rootfs |
    docker build -q -t "$BTCMESH_IMAGE" --build-arg "VERSION=${VERSION:-dev}" -f Dockerfile -
}

build_nats() {
  local out="$CACHE/nats-$nats_version"
  mkdir -p "$out/ctx"
  if [ ! -x "$out/ctx/nats-server" ]; then
    echo "image.sh: building nats-server $nats_version from the module proxy (pinned in go.mod)"
    CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$out/ctx/nats-server" github.com/nats-io/nats-server/v2
  fi
  CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$out/ctx/nats-healthcheck" ./deploy/docker/nats-healthcheck
  rm -rf "$out/ctx/etc" "$out/ctx/data"
  cp -r deploy/docker/rootfs/etc deploy/docker/rootfs/data "$out/ctx/"
  cp deploy/docker/nats/Dockerfile deploy/docker/nats/nats.conf "$out/ctx/"
  echo "image.sh: building $NATS_IMAGE"
  docker build -q -t "$NATS_IMAGE" --build-arg "NATS_VERSION=$nats_version" "$out/ctx"
}

case "$what" in
  btcmesh) build_btcmesh ;;
  nats) build_nats ;;
  all) build_nats; build_btcmesh ;;
  *) echo "usage: scripts/image.sh [btcmesh|nats|all]" >&2; exit 2 ;;
esac
