"""recycle.max_requests is a bound, also when recycles queue (issue 17 §2).

4 example workers that take a second to start (EXAMPLE_BOOT_DELAY_MS=1000, like a
gunicorn that imports its app), recycle {max_requests: 150, max_requests_jitter: 50},
max_concurrent 1, and a sustained load of 240 requests/s for 20 s: each worker reaches
its limit every 2.5-3.5 s, more recycles than one at a time can carry, each a second
long. Before, a worker served on until its queued recycle's replacement was ready, and
lives grew with the queue (1.5-3x the limit here). Now a worker at its limit stops at
once -- to a replacement started ahead of the limit, or before its replacement is ready
-- so every life stays within its drawn limit plus 10 % of max_requests.

The bound is checked on what memward logged, not on timing: each worker's limit from its
event=spawn line (request_limit=), the requests it served from its event=exit line
(memward's count of its X_REQUESTS when it was reaped), so a slow machine can only make
the lives shorter. And not one request fails."""

import statistics

import lib
from lib import check

COUNT = 4
MAX_REQUESTS, JITTER = 150, 50
SLACK = MAX_REQUESTS // 10
RATE, SECONDS = 240, 20


def lives(mw):
    """[(pid, limit, requests at exit)] of every worker that exited."""
    limits = {l.get("pid"): l.int("request_limit") for l in mw.events("spawn")}
    return [(e.get("pid"), limits[e.get("pid")], e.int("requests")) for e in mw.events("exit")]


def down_seconds(mw):
    """Slot-seconds without a ready worker after a stop before the replacement was ready:
    the capacity the bound costs (printed, not checked: it is timing)."""
    down, total = {}, 0.0
    for line in mw.lines():
        if line.event == "stop" and line.get("stop_first") == "yes":
            down.setdefault(line.get("worker"), line.t)
        elif line.event == "ready" and line.get("worker") in down:
            total += line.t - down.pop(line.get("worker"))
        elif line.event == "shutdown":
            break
    return total


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=COUNT,
                              workers={"env": {"EXAMPLE_BOOT_DELAY_MS": "1000"}, "graceful_timeout": "10s"},
                              recycle={"max_requests": MAX_REQUESTS, "max_requests_jitter": JITTER,
                                       "max_concurrent": 1}))
    mw.wait_event("ready", count=COUNT, timeout=20)

    load = t.load(port, threads=8, total=RATE * SECONDS, rate=RATE, timeout=30).join(SECONDS * 3)
    rc = mw.stop(timeout=30)
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    load.check_no_failures()

    recycles = mw.events("recycle", reason="max_requests")
    check(len(recycles) >= 12, "only %d max_requests recycles: the load did not queue them" % len(recycles))
    served = lives(mw)
    recycled = {r.get("pid") for r in recycles}
    over = [(pid, limit, n) for pid, limit, n in served if n > limit + SLACK]
    ratios = [n / limit for pid, limit, n in served if pid in recycled]
    summary = ("%d recycles, %d workers exited; life/limit min %.2f mean %.2f max %.2f; requests per life "
               "min %d mean %.0f max %d; %s"
               % (len(recycles), len(served), min(ratios), statistics.mean(ratios), max(ratios),
                  min(n for _, _, n in served), statistics.mean(n for _, _, n in served),
                  max(n for _, _, n in served), load.summary()))
    check(not over, "lives past limit + %d: %s\n%s"
          % (SLACK, ", ".join("pid %s served %d, limit %d" % (pid, n, limit) for pid, limit, n in over[:10]),
             summary))
    print(summary)
    print("stopped before the replacement was ready: %d of %d recycles, %.1f slot-seconds down of %d"
          % (len(mw.events("stop", stop_first="yes")), len(recycles), down_seconds(mw), COUNT * SECONDS))


if __name__ == "__main__":
    lib.main(test)
