#!/usr/bin/python3
"""Soak: memward under constant load with frequent recycles and reloads.

4 example workers, recycle.max_requests 20 (jitter 5), memory policies on
(retained_max with a short window, request-end checks), a constant HTTP load,
and a SIGHUP every RELOAD_EVERY seconds; every third reload is given a broken
file (memward must keep serving on the old config), then the good file again.

Prints requests served, failed (must be 0), recycles, reloads, memward's
RssAnon and open fds at start and end (equal within 64 KiB and 0 fds), and
p50/p99 latency. Exits 1 when a bound is broken.

    SOAK_SECONDS=600 tests/soak/soak.py     # make soak
    SOAK_SECONDS=45  tests/soak/soak.py     # the CI variant (make check runs it)
"""
import os
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import lib  # noqa: E402
from lib import check  # noqa: E402
from metrics_helpers import is_sanitized  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
RELOAD_EVERY = float(os.environ.get("SOAK_RELOAD_EVERY", "30"))
RATE = float(os.environ.get("SOAK_RATE", "150"))


def status_of(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return int(out["RssAnon"].split()[0]), len(os.listdir("/proc/%d/fd" % pid))


class LatencyLoad(lib.Load):
    """lib.Load that also records each request's latency."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.latencies = []

    def _run(self):
        while self._claim():
            t0 = time.monotonic()
            try:
                status, headers, body = lib.http_get(self.port, self.path, self.timeout)
                if status != 200:
                    raise RuntimeError("HTTP %d" % status)
                with self._lock:
                    self.ok += 1
                    self.latencies.append(time.monotonic() - t0)
            except Exception as e:
                with self._lock:
                    self.failed += 1
                    if len(self.errors) < 20:
                        self.errors.append("%.3f %r" % (time.monotonic(), e))


def settled(lines):
    """True once every worker memward recycled has exited and 4 ready workers remain
    (read from memward's log lines)."""
    gone = {l.get("pid") for l in lines if l.event == "exit"}
    recycled = {l.get("pid") for l in lines if l.event == "recycle"}
    ready = {l.get("pid") for l in lines if l.event == "ready"}
    return recycled <= gone and len(ready - gone) == 4


def test(t):
    port = t.port()
    good = lib.config(port, count=4, recycle={"max_requests": 20, "max_requests_jitter": 5},
                      workers={"graceful_timeout": "10s"},
                      memory={"sample_interval": "500ms", "retained_max": "300MiB", "retained_window": "5s",
                              "retained_requests": 1, "boundary_min_interval": "50ms"},
                      pressure={"trigger": "some 150ms 2s", "cooldown": "5s"})
    path = t.write_config(good, "soak.yaml")
    mw = t.memward(args=["-c", path], name="soak")
    mw.wait_event("ready", count=4, timeout=30)
    time.sleep(1.0)
    rss0, fds0 = status_of(mw.pid)

    load = LatencyLoad(port, threads=8, rate=RATE, timeout=15.0).start()
    t.loads.append(load)
    start = time.monotonic()
    reloads = broken = 0
    next_reload = start + RELOAD_EVERY
    while time.monotonic() - start < SECONDS:
        time.sleep(0.2)
        if time.monotonic() >= next_reload:
            reloads += 1
            if reloads % 3 == 0:
                broken += 1
                with open(path, "w") as f:
                    f.write("workers:\n  count: four\n")
                since = time.monotonic()
                mw.signal(signal.SIGHUP)
                # The good file goes back only once memward has read the broken one: after a
                # fixed pause, a busy memward could read the good file instead.
                mw.wait_event("reload_failed", since=since, timeout=15)
                t.write_config(good, "soak.yaml")
            else:
                mw.signal(signal.SIGHUP)
            next_reload += RELOAD_EVERY
    load.stop(timeout=60)
    # The end measurement once the last recycles and reload are over (every worker
    # recycled has exited, 4 ready workers), however long that takes on a busy machine.
    mw.wait_for(settled, 30, "the last recycles to finish")
    time.sleep(0.5)
    rss1, fds1 = status_of(mw.pid)
    asan = is_sanitized(mw.pid)  # ASan's quarantine makes RSS meaningless
    recycles = mw.events("recycle")
    lat = sorted(load.latencies) or [0.0]
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    rc = mw.stop(timeout=30)

    print("soak %.0fs: requests served %d, failed %d, recycles %d (max_requests %d, reload %d), "
          "reloads %d (broken %d), RssAnon %d -> %d KiB, fds %d -> %d, p50 %.1f ms, p99 %.1f ms"
          % (SECONDS, load.ok, load.failed, len(recycles),
             len([r for r in recycles if r.get("reason") == "max_requests"]),
             len([r for r in recycles if r.get("reason") == "reload"]),
             reloads, broken, rss0, rss1, fds0, fds1, p50 * 1000, p99 * 1000))
    load.check_no_failures()
    check(rc == 0, "memward exited %s" % rc)
    if asan:
        print("ASan build: the RssAnon bound is not checked (quarantine)")
    else:
        check(abs(rss1 - rss0) <= 64, "RssAnon moved by %d KiB (bound 64 KiB)" % (rss1 - rss0))
    check(fds1 == fds0, "open fds %d at start, %d at the end" % (fds0, fds1))
    check(len(mw.events("config_error")) + len(mw.events("reload_failed")) >= broken,
          "a broken reload was not reported")
    if SECONDS >= 600:
        check(len(recycles) >= 1000, "only %d recycles in the long run (want >= 1000)" % len(recycles))


if __name__ == "__main__":
    lib.main(test)
