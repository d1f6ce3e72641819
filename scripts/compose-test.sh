#!/usr/bin/env bash
# End-to-end test of the docker-compose dev cluster (compose.yaml):
#   1. builds the images (scripts/image.sh: btcmesh:dev + the local NATS image),
#   2. starts NATS + the six services (two txvalidators) under a throwaway
#      project name, host ports picked free on 127.0.0.1,
#   3. runs test/compose (go test -tags compose): mines 101 blocks with
#      `btcmesh ctl --rpc-<service>` against the published ports, pushes
#      signed transactions, kills txvalidator-1 (SIGKILL) while blocks are
#      being validated, and checks nothing was lost,
#   4. always tears the cluster down (containers, network, volumes).
# Env: SKIP_IMAGES=1 (use existing images), KEEP=1 (leave the cluster up
#      on failure to inspect it), COMPOSE (docker-compose).
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE=${COMPOSE:-docker-compose}
project=btcmesh-test-$$
log() { printf '[compose-test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Host ports, all distinct (scripts/free-ports picks them at once).
names=(NATS NATS_MONITOR UTXOSTORE HEADERS BLOCKVALIDATOR MINER P2P_GRPC P2P)
read -r -a ports <<<"$(scripts/free-ports "${#names[@]}")"
for i in "${!names[@]}"; do
  export "BTCMESH_PORT_${names[$i]}=${ports[$i]}"
done
# A batch lost with a killed worker is retried after this long.
export BTCMESH_SCRIPT_TIMEOUT=${BTCMESH_SCRIPT_TIMEOUT:-5s}

dc() { $COMPOSE -p "$project" -f compose.yaml "$@"; }

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "FAILED (exit $rc): cluster state and recent logs"
    dc ps || true
    dc logs --no-color --tail=40 || true
    if [ "${KEEP:-}" = 1 ]; then
      log "KEEP=1: leaving project $project up; remove it with: $COMPOSE -p $project -f compose.yaml down -v"
      exit $rc
    fi
  fi
  log "tearing down $project"
  dc down -v --remove-orphans --timeout 20 >/dev/null 2>&1 || true
  exit $rc
}
trap cleanup EXIT INT TERM

if [ "${SKIP_IMAGES:-}" != 1 ]; then
  log "building images"
  scripts/image.sh all
fi
[ -x bin/btcmesh ] || { log "bin/btcmesh missing (make build)"; exit 1; }

dc config -q
log "starting project $project (waits for each service to be healthy, in start order)"
dc up -d

# Every container healthy (depends_on already waited for all but p2p).
for i in $(seq 1 90); do
  unhealthy=$(for c in $(dc ps -q); do docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$c"; done | grep -v ' healthy$' || true)
  [ -z "$unhealthy" ] && break
  [ "$i" = 90 ] && { log "not healthy after 180 s: $unhealthy"; exit 1; }
  sleep 2
done
dc ps

# Nothing may be published beyond loopback.
if docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Ports}}' | tr ',' '\n' | grep -- '->' | grep -v '127.0.0.1:'; then
  log "a port is published beyond 127.0.0.1"; exit 1
fi

h=127.0.0.1
export BTCMESH_BIN=$PWD/bin/btcmesh
export BTCMESH_CTL_FLAGS="--rpc $h:$BTCMESH_PORT_HEADERS --rpc-headers $h:$BTCMESH_PORT_HEADERS --rpc-utxostore $h:$BTCMESH_PORT_UTXOSTORE --rpc-blockvalidator $h:$BTCMESH_PORT_BLOCKVALIDATOR --rpc-miner $h:$BTCMESH_PORT_MINER --rpc-p2p $h:$BTCMESH_PORT_P2P_GRPC"
export BTCMESH_COMPOSE="$COMPOSE -p $project -f $PWD/compose.yaml"
log "running test/compose against the published ports"
go test -count=1 -tags compose -run 'TestCompose$' -v -timeout 15m ./test/compose

dc ps
log "OK"
