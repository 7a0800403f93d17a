"""packaging/kubernetes/deployment.yaml agrees with the memward config it embeds.

Parses the manifest (python3-yaml), takes memward.yaml out of the ConfigMap, lets the real
parser fill in its defaults (`memward --check-config`, the worker command given after --
as the container's args would), and checks:
  * the config is valid, and the Deployment mounts that ConfigMap where the image's
    ENTRYPOINT reads it (/etc/memward/memward.yaml);
  * terminationGracePeriodSeconds >= workers.graceful_timeout;
  * metrics.listen is on all addresses (probes and Prometheus do not come over the pod's
    loopback) and its port is the readiness probe's port (a named port is resolved), the
    prometheus.io/port annotation and a containerPort; the probe asks /healthz; the
    prometheus.io/scrape and prometheus.io/path annotations are "true" and /metrics;
  * every listen: port of the config is a containerPort;
  * with memory.worker_max set: (workers.count + recycle.max_concurrent) x worker_max
    <= the container's memory limit, since a recycle runs the replacement next to the
    worker it replaces; and the memory request is set and not above the limit.
"""

import os
import re

import lib
from lib import check

MANIFEST = os.path.join(lib.REPO, "packaging", "kubernetes", "deployment.yaml")
CONFIG_PATH = "/etc/memward/memward.yaml"


def k8s_quantity(q):
    """A Kubernetes memory quantity ("1536Mi", "1G", "1.5Gi", "1e9") in bytes."""
    m = re.fullmatch(r"([0-9.]+(?:[eE][0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?", str(q).strip())
    check(m, "cannot parse the quantity %r" % q)
    factor = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
              "Ei": 2**60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
              "E": 10**18, "m": 1e-3}[m.group(2)]
    return float(m.group(1)) * factor


def memward_size(s):
    """A size as --check-config prints it ("256MiB", "0"), in bytes."""
    m = re.fullmatch(r"([0-9]+)(B|K|KiB|M|MiB|G|GiB)?", str(s))
    check(m, "cannot parse the memward size %r" % s)
    unit = m.group(2) or "B"
    return int(m.group(1)) * {"B": 1, "K": 2**10, "KiB": 2**10, "M": 2**20, "MiB": 2**20,
                              "G": 2**30, "GiB": 2**30}[unit]


def memward_seconds(s):
    m = re.fullmatch(r"([0-9]+)(us|ms|s|m|h)?", str(s))
    check(m, "cannot parse the memward duration %r" % s)
    return int(m.group(1)) * {None: 0, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
                              "h": 3600}[m.group(2)]


def host_port(address):
    """("0.0.0.0", 9181) from "0.0.0.0:9181", "tcp://0.0.0.0:9181", "[::]:9181"."""
    a = re.sub(r"^tcp://", "", address)
    m = re.fullmatch(r"\[([^\]]+)\]:([0-9]+)|([^:]+):([0-9]+)", a)
    check(m, "not a TCP address: %r" % address)
    return (m.group(1), int(m.group(2))) if m.group(1) else (m.group(3), int(m.group(4)))


def one(docs, kind):
    found = [d for d in docs if d and d.get("kind") == kind]
    check(len(found) == 1, "expected one %s in %s, found %d" % (kind, MANIFEST, len(found)))
    return found[0]


def test(t):
    try:
        import yaml
    except ImportError:
        lib.skip("python3-yaml is not installed (packaging/install-deps test)")

    with open(MANIFEST, encoding="utf-8") as f:
        docs = list(yaml.safe_load_all(f))
    cm = one(docs, "ConfigMap")
    dep = one(docs, "Deployment")
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    containers = spec["containers"]
    check(len(containers) == 1, "expected one container, found %d" % len(containers))
    c = containers[0]

    # The ConfigMap is mounted where the ENTRYPOINT reads it.
    check("memward.yaml" in cm.get("data", {}), "ConfigMap %s has no memward.yaml" % cm["metadata"]["name"])
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounted = [m for m in c.get("volumeMounts", [])
               if volumes.get(m["name"], {}).get("configMap", {}).get("name") == cm["metadata"]["name"]]
    check(mounted and os.path.join(mounted[0]["mountPath"], "memward.yaml") == CONFIG_PATH,
          "ConfigMap %s is not mounted so that %s is its memward.yaml: %r"
          % (cm["metadata"]["name"], CONFIG_PATH, c.get("volumeMounts")))

    # The embedded config is valid; take its effective values, defaults included.
    path = t.write("memward.yaml", cm["data"]["memward.yaml"])
    command = c.get("args") or ["/bin/true"]
    rc, out, err, _ = t.run(["--check-config", "-c", path, "--"] + command)
    check(rc == 0, "the ConfigMap's memward.yaml is invalid:\n%s" % err)
    cfg = yaml.safe_load(out)

    # Shutdown: the kubelet must not SIGKILL memward before its workers drained.
    grace = spec.get("terminationGracePeriodSeconds", 30)
    graceful = memward_seconds(cfg["workers"]["graceful_timeout"])
    check(grace >= graceful, "terminationGracePeriodSeconds %s < workers.graceful_timeout %ss"
          % (grace, graceful))

    # Ports: metrics endpoint = probes = scrape annotation = a containerPort.
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    check(cfg["metrics"]["listen"], "metrics.listen is off: no /healthz for the probe")
    host, mport = host_port(cfg["metrics"]["listen"])
    check(host in ("0.0.0.0", "::"), "metrics.listen %r is not reachable from outside the pod"
          % cfg["metrics"]["listen"])
    check(mport in ports.values(), "metrics port %d is not a containerPort: %r" % (mport, ports))

    def probe_port(probe, what):
        check(probe and "httpGet" in probe, "%s is not an httpGet probe: %r" % (what, probe))
        p = probe["httpGet"]["port"]
        if isinstance(p, str) and not p.isdigit():
            check(p in ports, "%s names port %r, which the container does not have" % (what, p))
            p = ports[p]
        return int(p), probe["httpGet"].get("path", "/")

    rport, rpath = probe_port(c.get("readinessProbe"), "readinessProbe")
    check(rport == mport and rpath == "/healthz",
          "readinessProbe asks %d%s, want %d/healthz (metrics.listen)" % (rport, rpath, mport))
    if c.get("livenessProbe"):
        lport, _ = probe_port(c["livenessProbe"], "livenessProbe")
        check(lport == mport, "livenessProbe port %d is not the metrics port %d" % (lport, mport))

    ann = pod.get("metadata", {}).get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true", "prometheus.io/scrape is %r"
          % ann.get("prometheus.io/scrape"))
    check(str(ann.get("prometheus.io/port")) == str(mport), "prometheus.io/port %r != metrics port %d"
          % (ann.get("prometheus.io/port"), mport))
    check(ann.get("prometheus.io/path", "/metrics") == "/metrics", "prometheus.io/path is %r"
          % ann.get("prometheus.io/path"))

    for entry in cfg.get("listen") or []:
        if entry["address"].startswith("tcp://"):
            _, p = host_port(entry["address"])
            check(p in ports.values(), "listen port %d is not a containerPort: %r" % (p, ports))

    # Memory: what memward may let the workers use fits the container's limit.
    resources = c.get("resources", {})
    limit = resources.get("limits", {}).get("memory")
    request = resources.get("requests", {}).get("memory")
    check(request, "no memory request")
    if limit:
        limit_b = k8s_quantity(limit)
        check(k8s_quantity(request) <= limit_b, "memory request %s > limit %s" % (request, limit))
        wmax = str(cfg["memory"]["worker_max"])
        if wmax.endswith("%"):
            per_worker = float(wmax[:-1]) / 100 * limit_b
        else:
            per_worker = memward_size(wmax)
        if per_worker > 0:
            n = cfg["workers"]["count"] + cfg["recycle"]["max_concurrent"]
            check(n * per_worker <= limit_b,
                  "(workers.count + recycle.max_concurrent) x memory.worker_max = %d x %s = %.0f "
                  "bytes > the memory limit %s" % (n, wmax, n * per_worker, limit))
            print("memory: %d x %s <= %s" % (n, wmax, limit))
    print("grace %ss >= graceful_timeout %ss; metrics/probe/scrape port %d" % (grace, graceful, mport))


if __name__ == "__main__":
    lib.main(test)
