"""Helpers shared by the metrics endpoint's integration tests (test_metrics*.py,
test_grafana_dashboard.py): the config, the exposition parser, memward's own memory,
and a real Prometheus server on loopback."""

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
import json

import lib
from lib import check, fail

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# What issue 5 asks /metrics to carry, at the least.
REQUIRED_FAMILIES = {
    "memward_workers": "gauge",
    "memward_worker_memory_bytes": "gauge",
    "memward_worker_requests_total": "counter",
    "memward_worker_start_time_seconds": "gauge",
    "memward_recycles_total": "counter",
    "memward_worker_exits_total": "counter",
    "memward_spawn_failures_total": "counter",
    "memward_pressure_events_total": "counter",
    "memward_group_memory_bytes": "gauge",
    "memward_group_memory_limit_bytes": "gauge",
    "memward_notify_rejected_total": "counter",
    "memward_log_dropped_total": "counter",
    "memward_mode_info": "gauge",
    "memward_build_info": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_start_time_seconds": "gauge",
}
# Present when the kernel has PSI (/proc/pressure or a cgroup's memory.pressure).
PSI_FAMILIES = {
    "memward_pressure_avg10": "gauge",
    "memward_pressure_stall_seconds_total": "counter",
}


def config(port, metrics, count=2, **kw):
    """lib.config() plus a metrics: section; metrics is the listen address string."""
    metrics_section = {"listen": metrics}
    metrics_section.update(kw.pop("metrics_extra", {}))
    return lib.config(port, count=count, metrics=metrics_section, **kw)


def get(port, path, timeout=5.0):
    return lib.http_get(port, path, timeout=timeout)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """({family: type}, [(name, {label: value}, float)]) of a 0.0.4 text exposition."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            m = _SAMPLE.match(line)
            check(m, "unparsable exposition line: %r" % line)
            labels = dict(_LABEL.findall(m.group(3) or ""))
            samples.append((m.group(1), labels, float(m.group(4))))
    return types, samples


def scrape(port):
    status, headers, body = get(port, "/metrics")
    check(status == 200, "/metrics answered %d: %s" % (status, body[:200]))
    return parse_exposition(body)


def values(samples, name, **labels):
    return [(l, v) for n, l, v in samples if n == name and all(l.get(k) == str(x) for k, x in labels.items())]


def promtool_check(text):
    """Runs `promtool check metrics` on the exposition; returns its output."""
    if not os.access(PROMTOOL, os.X_OK):
        fail("no promtool at %s: packaging/install-deps test installs Debian's prometheus" % PROMTOOL)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    check(p.returncode == 0, "promtool check metrics failed (%d):\n%s" % (p.returncode, out))
    return out


def proc_status(pid):
    """{field: kB} of the numeric kB lines of /proc/PID/status (VmRSS, RssAnon, ...)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                out[key] = int(parts[0])
    return out


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def is_sanitized(pid):
    """True when memward runs under ASan (make asan): its memory numbers mean nothing then."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


class Prometheus:
    """A real Prometheus server on loopback scraping the given targets every second,
    with its storage in the test's directory."""

    def __init__(self, ctx, targets, job="memward"):
        if not os.access(PROMETHEUS, os.X_OK):
            fail("no prometheus at %s: packaging/install-deps test installs it" % PROMETHEUS)
        self.port = lib.free_port()
        d = ctx.path("prometheus")
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: %s\n    static_configs:\n      - targets: [%s]\n"
                    % (job, ", ".join('"%s"' % t for t in targets)))
        self.log_path = os.path.join(d, "prometheus.log")
        env = dict(os.environ)
        env[lib.TAG_VAR] = ctx.tag          # the test's cleanup kills whatever carries it
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn",
             "--storage.tsdb.retention.time=1h"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=d)

    def api(self, path, **params):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read().decode())

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "prometheus exited %s:\n%s" % (self.proc.poll(), self.log()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        fail("prometheus not ready within %.0fs:\n%s" % (timeout, self.log()))

    def query(self, expr):
        data = self.api("/api/v1/query", query=expr)
        check(data.get("status") == "success", "query %r failed: %r" % (expr, data))
        return data["data"]["result"]

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
