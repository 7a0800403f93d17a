"""A recycle is reported with the figure that decided it, the same everywhere.

One example worker, memory {metric: anon, retained_requests: 1, retained_max: 100MiB,
retained_window: 3s, sample_interval: 500ms}: after a whole window the worker has a
time-window floor (~10 MiB, what it held while idle). Then /alloc?mib=150 makes it
keep 150 MiB, and the request-end reading recycles it at once (reason=retained,
source=request_end). Its replacement takes 3 s to become ready
(EXAMPLE_BOOT_DELAY_MS), so the old worker is still there to be described. Expected,
read right after the recycle line and again 1.5 s later (when the window's floor has
moved on):
  * the `event=recycle` line's floor=, /status's recycle history (retained,
    retained_source), /status's entry of the worker (memory.retained and
    memory.retained_source) and /metrics' memward_worker_memory_bytes{kind="retained"}
    of that pid all give the same number, the request-end floor: not the window's
    ~10 MiB that the window alone would say;
  * after the worker is gone, the history still holds that number.
Runs in whatever accounting mode the machine gives (procfs here)."""

import json
import time

import lib
import metrics_helpers as mh
from lib import check

MIB = 1 << 20
WINDOW = 3.0
RETAINED_MAX_MIB = 100
ALLOC_MIB = 150


def status_doc(mport):
    status, _, body = mh.get(mport, "/status")
    check(status == 200, "/status answered %d: %s" % (status, body[:200]))
    return json.loads(body)


def figures(mport, pid):
    """What /status (history, worker) and /metrics say about pid's retained memory."""
    doc = status_doc(mport)
    _, samples = mh.scrape(mport)
    history = [r for r in doc["recycles"] if r["pid"] == pid]
    worker = [w for w in doc["workers"] if w["pid"] == pid]
    gauge = mh.values(samples, "memward_worker_memory_bytes", pid=pid, kind="retained")
    return history, worker, gauge


def test(t):
    port, mport = t.port(), t.port()
    cfg = mh.config(port, "127.0.0.1:%d" % mport, count=1,
                    workers={"env": {"EXAMPLE_BOOT_DELAY_MS": "3000"}},
                    memory={"metric": "anon", "sample_interval": "500ms", "retained_window": "3s",
                            "retained_requests": 1, "retained_max": "%dMiB" % RETAINED_MAX_MIB,
                            "boundary_min_interval": "0"})
    mw = t.memward(cfg)
    mw.wait_event("ready", timeout=20)
    mw.wait_event("metrics_listen", timeout=5)
    # A whole window of idle samples: the time-window floor exists and is small.
    time.sleep(WINDOW + 1.0)
    check(not mw.events("recycle"), "recycled before any allocation: %r" % mw.events("recycle"))

    status, headers, body = lib.http_get(port, "/alloc?mib=%d" % ALLOC_MIB, timeout=30)
    check(status == 200, "/alloc: HTTP %d %r" % (status, body))
    victim = lib.worker_pid_of(headers, body)
    rec = mw.wait_event("recycle", reason="retained", timeout=5)[0]
    check(rec.int("pid") == victim, "recycled %s, the allocation was in %d: %s" % (rec.get("pid"), victim, rec.text))
    check(rec.get("source") == "request_end", "not decided at the request end: %s" % rec.text)
    floor = rec.int("floor")
    check(floor > RETAINED_MAX_MIB * MIB, "floor=%d not above retained_max: %s" % (floor, rec.text))

    for when in ("at once", "1.5s later"):
        history, worker, gauge = figures(mport, victim)
        check(len(history) == 1, "%s: /status recycles for pid %d: %r" % (when, victim, history))
        check(history[0]["reason"] == "retained" and history[0]["retained"] == floor
              and history[0].get("retained_source") == "request_end",
              "%s: /status recycle record %r, the log says floor=%d source=request_end"
              % (when, history[0], floor))
        check(len(worker) == 1, "%s: worker %d gone from /status before its replacement was ready: %r"
              % (when, victim, status_doc(mport)["workers"]))
        mem = worker[0]["memory"]
        check(worker[0]["recycle"] == "retained" and mem["retained"] == floor
              and mem.get("retained_source") == "request_end",
              "%s: /status worker %r, the log says floor=%d source=request_end" % (when, worker[0], floor))
        check(len(gauge) == 1 and gauge[0][1] == floor,
              "%s: memward_worker_memory_bytes{pid=%d,kind=retained} = %r, the log says floor=%d"
              % (when, victim, gauge, floor))
        if when == "at once":
            # 1.5 s after the recycle by memward's clock, not after our late read of its
            # line: the replacement boots 3 s, and only until then is the worker described.
            time.sleep(max(0.0, rec.at + 1.5 - time.time()))

    mw.wait_event("exit", pid=victim, timeout=20)
    history, worker, gauge = figures(mport, victim)
    check(len(history) == 1 and history[0]["retained"] == floor, "after the exit: %r" % history)
    check(not worker and not gauge, "pid %d still described after its exit: %r %r" % (victim, worker, gauge))
    check(mw.stop() == 0, "memward did not exit 0")
    print("request-end recycle: floor=%.1f MiB in the log, the history, /status and /metrics alike"
          % (floor / MIB))


if __name__ == "__main__":
    lib.main(test)
