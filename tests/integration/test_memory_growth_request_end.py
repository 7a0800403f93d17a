"""memory.growth_max is judged at request end, not only at the next sample tick.

One example worker, memory {metric: anon, growth_max: 3.0, warmup: 0s,
retained_window: 8s, sample_interval: 4s, retained_requests: 1}. Its baseline (~10 MiB
for the idle interpreter) appears at a sample tick, which /status shows; right after
it, /alloc?mib=100 makes the worker keep ~10x its baseline. Expected: reason=growth,
source=request_end, within 1 s of the response — the next tick is ~4 s away, so only
the request-end reading can have decided — with the same baseline as /status and a
floor above growth_max x baseline."""

import json
import time

import lib
import metrics_helpers as mh
from lib import check

MIB = 1 << 20
GROWTH_MAX = 3.0
TICK = 4.0


def baseline_of(mport, pid):
    status, _, body = mh.get(mport, "/status")
    check(status == 200, "/status answered %d" % status)
    for w in json.loads(body)["workers"]:
        if w["pid"] == pid:
            return w["memory"]["baseline"]
    return None


def test(t):
    port, mport = t.port(), t.port()
    cfg = mh.config(port, "127.0.0.1:%d" % mport, count=1,
                    memory={"metric": "anon", "sample_interval": "4s", "retained_window": "8s",
                            "warmup": "0s", "growth_max": GROWTH_MAX, "retained_requests": 1,
                            "boundary_min_interval": "0"})
    mw = t.memward(cfg)
    pid = mw.wait_event("ready", timeout=15)[0].int("pid")
    mw.wait_event("metrics_listen", timeout=5)

    # The baseline is set by a tick: poll /status closely, so that the next tick is
    # still about TICK seconds away when the request ends.
    deadline = time.monotonic() + 30
    baseline = None
    while baseline is None:
        check(time.monotonic() < deadline, "no baseline within 30 s")
        time.sleep(0.1)
        baseline = baseline_of(mport, pid)
    t_tick = time.monotonic()
    check(not mw.events("recycle"), "recycled before the allocation: %r" % mw.events("recycle"))

    status, headers, body = lib.http_get(port, "/alloc?mib=100", timeout=30)
    t_done, wall_done = time.monotonic(), time.time()
    check(status == 200 and lib.worker_pid_of(headers, body) == pid, "/alloc: HTTP %d %r" % (status, body))
    check(t_done - t_tick < TICK - 1.5, "the allocation took %.2fs: too close to the next tick" % (t_done - t_tick))
    rec = mw.wait_event("recycle", timeout=TICK + 3)[0]
    latency = rec.at - wall_done        # memward's time=, not when we read its line
    check(rec.get("reason") == "growth" and rec.int("pid") == pid, "want reason=growth for %d: %s" % (pid, rec.text))
    check(latency <= 1.0, "growth recycle %.2fs after the request ended (next tick ~%.1fs after it), want <= 1 s: %s"
          % (latency, TICK - (t_done - t_tick), rec.text))
    check(rec.get("source") == "request_end", "not judged by the request-end floor: %s" % rec.text)
    check(rec.int("baseline") == baseline, "baseline=%s in the log, %d in /status" % (rec.get("baseline"), baseline))
    check(rec.int("floor") > GROWTH_MAX * baseline, "floor not above %.1f x baseline: %s" % (GROWTH_MAX, rec.text))
    check(mw.stop() == 0, "memward did not exit 0")
    print("baseline %.1f MiB; kept 100 MiB: reason=growth %.3fs after the request ended, floor %.1f MiB"
          % (baseline / MIB, latency, rec.int("floor") / MIB))


if __name__ == "__main__":
    lib.main(test)
