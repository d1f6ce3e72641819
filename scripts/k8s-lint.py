#!/usr/bin/env python3
"""Offline checks of rendered btcmesh Kubernetes manifests.

Reads the output of `kubectl kustomize <overlay>` on stdin (or files given
as arguments) and fails on what a cluster would reject or what our rules
forbid, so that mistakes show up before any API server is involved:

  * every object is namespaced into the overlay's single namespace and the
    namespace enforces the "restricted" Pod Security Standard;
  * workload selectors match their pod template labels; Services, PDBs,
    HPAs, NetworkPolicies select something that exists; named ports resolve;
  * every container has CPU and memory requests and limits (requests <= limits),
    the restricted security context, no host namespaces or host ports,
    a pinned image; btcmesh containers have native gRPC startup, readiness
    and liveness probes on 8555 and Prometheus scrape annotations;
  * StatefulSets have a governing Service and PVC templates;
  * referenced ConfigMaps exist; container port names are unique.
"""
import re
import sys

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume", "StorageClass", "APIService"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}

errors = []


def err(obj, msg):
    md = obj.get("metadata", {})
    errors.append(f"{obj.get('kind')}/{md.get('name')}: {msg}")


def quantity(q):
    """Parses a CPU or memory quantity into a float (cores or bytes)."""
    s = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", s)
    if not m or (m.group(2) and m.group(2) not in units):
        raise ValueError(f"bad quantity {q!r}")
    return float(m.group(1)) * units.get(m.group(2), 1)


def matches(selector, labels):
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        val = labels.get(e["key"])
        op = e["operator"]
        if op == "In" and val not in e["values"]:
            return False
        if op == "NotIn" and val in e["values"]:
            return False
        if op == "Exists" and val is None:
            return False
        if op == "DoesNotExist" and val is not None:
            return False
    return True


def main(paths):
    docs = []
    if paths:
        for p in paths:
            with open(p) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
    else:
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    if not docs:
        print("k8s-lint: no objects", file=sys.stderr)
        return 1

    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    if len(namespaces) != 1:
        errors.append(f"want exactly one Namespace, found {len(namespaces)}")
        ns = None
    else:
        ns = namespaces[0]["metadata"]["name"]
        labels = namespaces[0]["metadata"].get("labels", {})
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            err(namespaces[0], "namespace must enforce pod-security restricted")

    names = {}
    for d in docs:
        key = (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
        if key in names:
            err(d, "duplicate object")
        names[key] = d
        if d["kind"] not in CLUSTER_SCOPED and d["metadata"].get("namespace") != ns:
            err(d, f"namespace {d['metadata'].get('namespace')!r}, want {ns!r}")

    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    pods = []  # (workload, template)
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        spec = d["spec"]
        tmpl = spec["template"]
        tlabels = tmpl["metadata"].get("labels", {})
        if not matches(spec["selector"], tlabels):
            err(d, "selector does not match the pod template labels")
        pods.append((d, tmpl))
        check_pod(d, tmpl, configmaps)
        if d["kind"] == "StatefulSet":
            if spec.get("serviceName") not in services:
                err(d, f"serviceName {spec.get('serviceName')!r} is not a Service here")
            if not spec.get("volumeClaimTemplates"):
                err(d, "StatefulSet without volumeClaimTemplates")

    def port_names(tmpl):
        return {p["name"]: p["containerPort"] for c in tmpl["spec"]["containers"] for p in c.get("ports", []) if "name" in p}

    for d in docs:
        kind = d["kind"]
        if kind == "Service":
            sel = d["spec"].get("selector")
            if not sel:
                err(d, "Service without selector")
                continue
            selected = [t for _, t in pods if matches({"matchLabels": sel}, t["metadata"].get("labels", {}))]
            if not selected:
                err(d, "Service selects no pods")
            for p in d["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                for t in selected:
                    pn = port_names(t)
                    if isinstance(tp, str) and tp not in pn:
                        err(d, f"targetPort {tp!r} not a named port of the selected pods")
                    if isinstance(tp, int) and tp not in pn.values():
                        err(d, f"targetPort {tp} not a container port of the selected pods")
        elif kind == "PodDisruptionBudget":
            if not any(matches(d["spec"]["selector"], t["metadata"].get("labels", {})) for _, t in pods):
                err(d, "PDB selects no pods")
            if ("minAvailable" in d["spec"]) == ("maxUnavailable" in d["spec"]):
                err(d, "PDB needs exactly one of minAvailable / maxUnavailable")
        elif kind == "HorizontalPodAutoscaler" or kind == "ScaledObject":
            ref = d["spec"]["scaleTargetRef"]
            if ("Deployment", ns, ref["name"]) not in names and ("StatefulSet", ns, ref["name"]) not in names:
                err(d, f"scale target {ref['name']!r} not found")
            if kind == "HorizontalPodAutoscaler" and d["spec"].get("minReplicas", 1) > d["spec"]["maxReplicas"]:
                err(d, "minReplicas > maxReplicas")
        elif kind == "NetworkPolicy":
            check_netpol(d, pods, port_names)

    ns_scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "ScaledObject"}
    hpa_scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    for both in ns_scaled & hpa_scaled:
        errors.append(f"{both}: both an HPA and a KEDA ScaledObject scale it")

    for e in errors:
        print("k8s-lint:", e, file=sys.stderr)
    if errors:
        return 1
    print(f"k8s-lint: {len(docs)} objects in namespace {ns}: ok")
    return 0


def check_pod(w, tmpl, configmaps):
    spec = tmpl["spec"]
    psc = spec.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        err(w, "pod securityContext.runAsNonRoot must be true")
    if not psc.get("runAsUser"):
        err(w, "pod securityContext.runAsUser must be a non-zero uid")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(w, "pod seccompProfile must be RuntimeDefault")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            err(w, f"{flag} is forbidden")
    for v in spec.get("volumes", []):
        if "hostPath" in v:
            err(w, f"hostPath volume {v['name']} is forbidden")
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            err(w, f"volume {v['name']} refers to missing ConfigMap {v['configMap']['name']}")
    is_btcmesh = tmpl["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "btcmesh"
    if is_btcmesh:
        ann = tmpl["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "9555":
            err(w, "btcmesh pods need prometheus.io/scrape and prometheus.io/port annotations")
    for c in spec.get("initContainers", []) + spec["containers"]:
        where = f"container {c['name']}"
        image = c.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
            err(w, f"{where}: image {image!r} has no tag")
        if image.endswith(":latest"):
            err(w, f"{where}: image {image!r} uses :latest")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    err(w, f"{where}: resources.{kind}.{r} missing")
        for r in ("cpu", "memory"):
            try:
                if r in res.get("requests", {}) and r in res.get("limits", {}) and quantity(res["requests"][r]) > quantity(res["limits"][r]):
                    err(w, f"{where}: {r} request above limit")
            except ValueError as e:
                err(w, f"{where}: {e}")
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            err(w, f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            err(w, f"{where}: readOnlyRootFilesystem must be true")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            err(w, f"{where}: capabilities must drop ALL and add none")
        if sc.get("privileged"):
            err(w, f"{where}: privileged")
        seen = set()
        for p in c.get("ports", []):
            if "hostPort" in p:
                err(w, f"{where}: hostPort is forbidden")
            n = p.get("name")
            if n in seen:
                err(w, f"{where}: duplicate port name {n}")
            seen.add(n)
        for ef in c.get("envFrom", []):
            ref = ef.get("configMapRef", {}).get("name")
            if ref and ref not in configmaps:
                err(w, f"{where}: envFrom missing ConfigMap {ref}")
        envs = [e["name"] for e in c.get("env", [])]
        if len(envs) != len(set(envs)):
            err(w, f"{where}: duplicate env names")
        if is_btcmesh:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if c.get(probe, {}).get("grpc", {}).get("port") != 8555:
                    err(w, f"{where}: {probe} must be a gRPC probe on 8555")
        elif not all(probe in c for probe in ("readinessProbe", "livenessProbe")):
            err(w, f"{where}: readiness and liveness probes required")


def check_netpol(d, pods, port_names):
    spec = d["spec"]
    selected = [t for _, t in pods if matches(spec["podSelector"], t["metadata"].get("labels", {}))]
    # Policies for operator pods (btcmesh.io/ctl) select pods started later.
    if spec["podSelector"] and not selected and "btcmesh.io/ctl" not in spec["podSelector"].get("matchLabels", {}):
        err(d, "podSelector selects no pods")
    for rule in spec.get("ingress", []):
        for p in rule.get("ports", []):
            if isinstance(p.get("port"), str) and not any(p["port"] in port_names(t) for t in selected):
                err(d, f"ingress port {p['port']!r} is not a named port of the selected pods")
    for rule in spec.get("egress", []):
        peers = [t for _, t in pods if any("podSelector" in to and "namespaceSelector" not in to and matches(to["podSelector"], t["metadata"].get("labels", {})) for to in rule.get("to", []))]
        for p in rule.get("ports", []):
            if isinstance(p.get("port"), str) and peers and not any(p["port"] in port_names(t) for t in peers):
                err(d, f"egress port {p['port']!r} is not a named port of the destination pods")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
