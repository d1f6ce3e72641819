#!/usr/bin/env bash
# Shows the txvalidator HorizontalPodAutoscaler of deploy/k8s scaling a
# Deployment up and down on a real Kubernetes control plane on 127.0.0.1,
# with simulated nodes and CPU use (no container runtime, no image):
#
#   etcd (Debian's etcd-server or $ETCD), kube-apiserver,
#   kube-controller-manager (HPA every 5 s) and kube-scheduler v1.33.13
#   built from the Go module proxy (as scripts/k8s-check.sh, same cache);
#   kwok v0.7.0 managing one fake Node (annotation kwok.x-k8s.io/node=fake)
#   and serving kubelet resource metrics from a Metric resource, with a
#   ClusterResourceUsage that reads each pod's kwok.x-k8s.io/usage-cpu
#   annotation; metrics-server v0.9.0 on the host, reached by the
#   apiserver through an ExternalName Service and the APIService
#   v1beta1.metrics.k8s.io (front-proxy certificates).
#
# It applies the regtest overlay's Namespace, ConfigMap, txvalidator
# Deployment and HPA (kubectl kustomize deploy/k8s/overlays/regtest), then
# simulates a script-validation load: a total CPU use (LOW_MILLICORES,
# then HIGH_MILLICORES, then LOW again) spread evenly over the validator
# pods, written to their usage-cpu annotation every 2 s. With the overlay's
# target (70 % of a 100m request) the HPA must scale the Deployment above
# UP_TO replicas under the high load and back to its minimum after it.
# Replica counts are printed with timestamps. By default the HPA's
# scale-down behaviour is shortened for the demo (stabilization
# SCALEDOWN_WINDOW s, then 100 % per 15 s, instead of the overlay's 300 s
# and 1 pod per minute); KEEP_OVERLAY_BEHAVIOR=1 keeps the overlay's as
# is (scaling down then takes about 10 minutes).
#
# Everything listens on 127.0.0.1 only and is stopped on exit.
# Cold builds (once, nice -n 19, cached in $K8S_CACHE/bin):
# controller-manager + scheduler 5-11 min, kwok ~3.5 min, metrics-server ~5.
#
# Env: K8S_CACHE (~/.cache/btcmesh/k8s-v1.33.13), ETCD, NICE (19),
#      LOW_MILLICORES (60), HIGH_MILLICORES (480), UP_TO (5),
#      SCALEDOWN_WINDOW (30), KEEP_OVERLAY_BEHAVIOR (0), PHASE_TIMEOUT (300).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSION=v1.33.13
STAGING_VERSION=v0.33.13
KWOK_VERSION=v0.7.0
METRICS_SERVER_VERSION=v0.9.0
K8S_CACHE=${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/btcmesh/k8s-$KUBE_VERSION}
NICE=${NICE:-19}
LOW=${LOW_MILLICORES:-60}
HIGH=${HIGH_MILLICORES:-480}
UP_TO=${UP_TO:-5}
SCALEDOWN_WINDOW=${SCALEDOWN_WINDOW:-30}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-300}
NS=btcmesh-regtest
SELECTOR=app.kubernetes.io/name=btcmesh,app.kubernetes.io/component=txvalidator
export GOWORK=off GOTOOLCHAIN=local GOFLAGS=-mod=mod

log() { printf '[k8s-autoscale %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "FAIL: $*"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/btcmesh-k8s-autoscale.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ $rc -ne 0 ] && [ -d "$work" ]; then
    for f in "$work"/*.log; do [ -f "$f" ] && { echo "---- tail of $f"; tail -n 15 "$f"; }; done
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------- build (cached)
mkdir -p "$K8S_CACHE/mod" "$K8S_CACHE/bin"
mod=$K8S_CACHE/mod
if [ ! -f "$mod/go.mod" ]; then
  log "preparing the throwaway module in $mod"
  (
    cd "$mod"
    go mod init btcmesh.local/k8scheck >/dev/null 2>&1
    kgomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$kgomod" | awk -v v="$STAGING_VERSION" '{ print "replace " $1 " => " $1 " " v }' >> go.mod
    go mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
  )
fi
build_kube() { # NAME: k8s.io/kubernetes/cmd/NAME
  local name=$1 pkg=k8s.io/kubernetes/cmd/$1
  [ -x "$K8S_CACHE/bin/$name" ] && return
  log "building $name $KUBE_VERSION (cold: several minutes; nice -n $NICE)"
  (
    cd "$mod"
    nice -n "$NICE" go get "$pkg@$KUBE_VERSION" >/dev/null 2>&1 || nice -n "$NICE" go get "$pkg@$KUBE_VERSION"
    nice -n "$NICE" env CGO_ENABLED=0 go build -trimpath -o "$K8S_CACHE/bin/$name" \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=33" \
      "$pkg"
  )
}
install_tool() { # NAME MODULE/PATH@VERSION
  [ -x "$K8S_CACHE/bin/$1" ] && return
  log "installing $2 (cold: minutes; nice -n $NICE)"
  (cd "$work" && nice -n "$NICE" env GOBIN="$K8S_CACHE/bin" CGO_ENABLED=0 go install "$2")
}
build_kube kube-apiserver
build_kube kube-controller-manager
build_kube kube-scheduler
install_tool kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
install_tool metrics-server "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
kwokdir=$(cd "$mod" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
[ -d "$kwokdir/kustomize/crd/bases" ] || die "kwok $KWOK_VERSION sources (CRDs, metric templates) not found"
bin=$K8S_CACHE/bin

ETCD=${ETCD:-$(command -v etcd || true)}
if [ -z "$ETCD" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's etcd-server"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
    ETCD=$(command -v etcd)
  else
    die "no etcd: apt-get install etcd-server, or set ETCD"
  fi
fi

# ---------------------------------------------------------------- certificates
read -r etcd_port peer_port api_port kwok_port ms_port <<<"$(scripts/free-ports 5)"

cd "$work"
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
# Front proxy: the apiserver authenticates to metrics-server with a client
# certificate signed by this CA, which metrics-server trusts through the
# extension-apiserver-authentication ConfigMap.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=front-proxy-ca -keyout front-proxy-ca.key -out front-proxy-ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=front-proxy-client -keyout front-proxy-client.key -out front-proxy-client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial \
  -days 1 -extfile client.ext -out front-proxy-client.crt 2>/dev/null
# kwok's kubelet-style server (metrics-server scrapes it with --kubelet-insecure-tls).
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kwok -addext subjectAltName=IP:127.0.0.1 \
  -keyout kwok.key -out kwok.crt 2>/dev/null
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,admin,admin,system:masters" > tokens.csv
cd - >/dev/null

export KUBECONFIG=$work/kubeconfig
kubectl config set-cluster local --server "https://127.0.0.1:$api_port" --insecure-skip-tls-verify=true >/dev/null
kubectl config set-credentials admin --token "$token" >/dev/null
kubectl config set-context local --cluster local --user admin >/dev/null
kubectl config use-context local >/dev/null

# ---------------------------------------------------------------- control plane
"$ETCD" --name autoscale --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "autoscale=http://127.0.0.1:$peer_port" > "$work/etcd.log" 2>&1 &
pids+=($!)

"$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --endpoint-reconciler-type none \
  --cert-dir "$work/certs" \
  --token-auth-file "$work/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$work/sa.pub" --service-account-signing-key-file "$work/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --requestheader-client-ca-file "$work/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$work/front-proxy-client.crt" --proxy-client-key-file "$work/front-proxy-client.key" \
  > "$work/apiserver.log" 2>&1 &
pids+=($!)
for i in $(seq 1 120); do
  kubectl get --raw /readyz >/dev/null 2>&1 && break
  [ "$i" = 120 ] && die "kube-apiserver not ready after 120 s"
  sleep 1
done
log "kube-apiserver $KUBE_VERSION ready on 127.0.0.1:$api_port"

"$bin/kube-controller-manager" --kubeconfig "$KUBECONFIG" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port 0 \
  --service-account-private-key-file "$work/sa.key" --root-ca-file "$work/certs/apiserver.crt" \
  --horizontal-pod-autoscaler-sync-period 5s \
  --horizontal-pod-autoscaler-downscale-stabilization 30s \
  --horizontal-pod-autoscaler-cpu-initialization-period 15s \
  --horizontal-pod-autoscaler-initial-readiness-delay 5s \
  > "$work/controller-manager.log" 2>&1 &
pids+=($!)
"$bin/kube-scheduler" --kubeconfig "$KUBECONFIG" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port 0 \
  > "$work/scheduler.log" 2>&1 &
pids+=($!)

# ---------------------------------------------------------------- kwok: a fake node with metrics
kubectl apply -f "$kwokdir/kustomize/crd/bases/kwok.x-k8s.io_metrics.yaml" \
  -f "$kwokdir/kustomize/crd/bases/kwok.x-k8s.io_clusterresourceusages.yaml" >/dev/null
kubectl wait --for condition=established --timeout=60s crd/metrics.kwok.x-k8s.io crd/clusterresourceusages.kwok.x-k8s.io >/dev/null
# kwok's stock Metric serves /metrics/nodes/{nodeName}/metrics/resource;
# metrics-server asks a kubelet for /metrics/resource, which kwok answers
# for the node named like the Metric: the same metrics under that name.
python3 - "$kwokdir/kustomize/metrics/resource/metrics-resource.yaml" > "$work/kwok-metric.yaml" <<'PY'
import sys, yaml
m = yaml.safe_load(open(sys.argv[1]))
assert m["kind"] == "Metric" and m["spec"]["path"] == "/metrics/nodes/{nodeName}/metrics/resource", m["spec"]["path"]
m["metadata"]["name"] = "kwok-node-0"
m["spec"]["path"] = "/metrics/resource"
yaml.safe_dump(m, sys.stdout)
PY
kubectl apply -f "$work/kwok-metric.yaml" -f "$kwokdir/kustomize/metrics/usage/usage-from-annotation.yaml" >/dev/null
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
YAML
"$bin/kwok" --kubeconfig "$KUBECONFIG" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --node-ip 127.0.0.1 --node-port "$kwok_port" --server-address "127.0.0.1:$kwok_port" \
  --tls-cert-file "$work/kwok.crt" --tls-private-key-file "$work/kwok.key" \
  --node-lease-duration-seconds 40 \
  --enable-crds Metric,ClusterResourceUsage \
  > "$work/kwok.log" 2>&1 &
pids+=($!)
kubectl wait --for condition=Ready --timeout=90s node/kwok-node-0 >/dev/null || die "kwok node not Ready"
log "kwok $KWOK_VERSION: node kwok-node-0 Ready, kubelet endpoint 127.0.0.1:$kwok_port"

# ---------------------------------------------------------------- metrics-server behind the aggregator
"$bin/metrics-server" --kubeconfig "$KUBECONFIG" \
  --authentication-kubeconfig "$KUBECONFIG" --authorization-kubeconfig "$KUBECONFIG" \
  --bind-address 127.0.0.1 --secure-port "$ms_port" --cert-dir "$work/ms-certs" \
  --kubelet-use-node-status-port --kubelet-insecure-tls --kubelet-preferred-address-types InternalIP \
  --metric-resolution 15s --kubelet-request-timeout 5s \
  > "$work/metrics-server.log" 2>&1 &
pids+=($!)
sleep 2
kill -0 "${pids[-1]}" 2>/dev/null || die "metrics-server exited"
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  type: ExternalName
  externalName: localhost
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  insecureSkipTLSVerify: true
  service:
    name: metrics-server
    namespace: kube-system
    port: $ms_port
YAML
kubectl wait --for condition=Available --timeout=120s apiservice/v1beta1.metrics.k8s.io >/dev/null \
  || die "metrics.k8s.io not available through the aggregator"
log "metrics-server $METRICS_SERVER_VERSION serving metrics.k8s.io on 127.0.0.1:$ms_port"

# ---------------------------------------------------------------- the overlay's txvalidator
kubectl kustomize deploy/k8s/overlays/regtest > "$work/regtest.yaml"
python3 - "$work/regtest.yaml" "$work/txvalidator.yaml" "$SCALEDOWN_WINDOW" "${KEEP_OVERLAY_BEHAVIOR:-0}" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
keep = []
for d in docs:
    kind, name = d["kind"], d["metadata"]["name"]
    if kind == "Namespace" or (kind == "ConfigMap" and name.startswith("btcmesh-")):
        keep.append(d)
    elif kind in ("Deployment", "HorizontalPodAutoscaler") and name == "txvalidator":
        if kind == "HorizontalPodAutoscaler" and sys.argv[4] != "1":
            d["spec"]["behavior"]["scaleDown"] = {
                "stabilizationWindowSeconds": int(sys.argv[3]),
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            }
        keep.append(d)
kinds = sorted(d["kind"] for d in keep)
assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Namespace"], kinds
yaml.safe_dump_all(keep, open(sys.argv[2], "w"))
PY
kubectl apply -f "$work/txvalidator.yaml" > "$work/apply.out" 2>&1 || { cat "$work/apply.out"; die "apply of the regtest txvalidator"; }
! grep -i warning "$work/apply.out" || die "server warnings (PodSecurity?)"
kubectl -n "$NS" rollout status deploy/txvalidator --timeout=120s >/dev/null || die "txvalidator pods not ready on the kwok node"
hpa_min=$(kubectl -n "$NS" get hpa txvalidator -o jsonpath='{.spec.minReplicas}')
hpa_max=$(kubectl -n "$NS" get hpa txvalidator -o jsonpath='{.spec.maxReplicas}')
target=$(kubectl -n "$NS" get hpa txvalidator -o jsonpath='{.spec.metrics[0].resource.target.averageUtilization}')
request=$(kubectl -n "$NS" get deploy txvalidator -o jsonpath='{.spec.template.spec.containers[0].resources.requests.cpu}')
log "regtest txvalidator applied: HPA min $hpa_min max $hpa_max, target $target % of $request CPU; $(kubectl -n "$NS" get hpa txvalidator -o jsonpath='{.spec.behavior.scaleDown}')"

# ---------------------------------------------------------------- simulated load
echo "$LOW" > "$work/load"
(
  # Spread the total load evenly over the validator pods, as a NATS queue
  # group spreads script batches over its workers.
  while :; do
    total=$(cat "$work/load")
    mapfile -t pods < <(kubectl -n "$NS" get pods -l "$SELECTOR" --field-selector=status.phase=Running -o name 2>/dev/null)
    if [ "${#pods[@]}" -gt 0 ]; then
      kubectl -n "$NS" annotate --overwrite "${pods[@]}" "kwok.x-k8s.io/usage-cpu=$((total / ${#pods[@]}))m" >/dev/null 2>&1 || true
    fi
    sleep 2
  done
) &
pids+=($!)

status_line() {
  local spec ready cur desired
  spec=$(kubectl -n "$NS" get deploy txvalidator -o jsonpath='{.spec.replicas}')
  ready=$(kubectl -n "$NS" get deploy txvalidator -o jsonpath='{.status.readyReplicas}')
  cur=$(kubectl -n "$NS" get hpa txvalidator -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}')
  desired=$(kubectl -n "$NS" get hpa txvalidator -o jsonpath='{.status.desiredReplicas}')
  printf '[k8s-autoscale %s] load %4sm total  replicas %s (ready %s)  hpa cpu %s%% desired %s\n' \
    "$(date +%H:%M:%S)" "$(cat "$work/load")" "$spec" "${ready:-0}" "${cur:-?}" "${desired:-?}"
  REPLICAS=$spec
}
phase() { # NAME LOAD CONDITION: watch until the Deployment's replicas satisfy CONDITION
  local name=$1 load=$2 cond=$3 t0=$SECONDS seen_metrics=0
  echo "$load" > "$work/load"
  log "phase $name: total CPU use ${load}m over the validator pods; waiting for replicas $cond"
  while :; do
    status_line
    if [ "$seen_metrics" = 0 ] && kubectl -n "$NS" get hpa txvalidator -o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}' | grep -q .; then
      seen_metrics=1
    fi
    # shellcheck disable=SC2086
    if [ "$seen_metrics" = 1 ] && [ "$REPLICAS" $cond ]; then
      log "phase $name done after $((SECONDS - t0)) s: $REPLICAS replicas"
      return 0
    fi
    [ $((SECONDS - t0)) -ge "$PHASE_TIMEOUT" ] && { kubectl -n "$NS" describe hpa txvalidator | tail -n 20; die "phase $name: replicas $REPLICAS, not $cond after $PHASE_TIMEOUT s"; }
    sleep 5
  done
}

phase idle "$LOW" "-eq $hpa_min"
kubectl top pods -n "$NS" 2>/dev/null | sed 's/^/    /' || true
phase busy "$HIGH" "-ge $UP_TO"
# Let it settle at what the load needs, then show it.
for _ in 1 2 3 4 5 6; do sleep 5; status_line; done
kubectl top pods -n "$NS" 2>/dev/null | sed 's/^/    /' || true
peak=$REPLICAS
phase quiet "$LOW" "-eq $hpa_min"
log "OK: the regtest HPA scaled txvalidator $hpa_min -> $peak under ${HIGH}m of load and back to $REPLICAS"
