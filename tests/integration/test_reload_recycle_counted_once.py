"""A reload that cancels a replacement in flight does not count the recycle again.

One slot of tests/integration/workers/selfstop.py that takes 3 s to say READY=1,
recycle.max_requests 60 (jitter 0), 10 requests/s: memward starts the replacement
ahead of the limit (its lead is 1.5 x the measured 3 s start-up), logs and counts a
max_requests recycle for the worker. A SIGHUP with a changed workers.env comes while
that replacement is still starting: memward stops the replacement of the old
configuration and replaces the same worker with one of the new (reason=reload); the
3 s start-up leaves a stalled test time to send it. That
is still one worker replaced once: one event=recycle line for its pid, and
memward_recycles_total over all reasons equals the workers recycled. Before, the
reload reset the worker's "counted" mark and its replacement counted it again
(recycle reason=reload for the same pid: 2 lines, the counter at 2). Not one request
fails meanwhile."""

import signal
import time

import lib
from lib import check
import metrics_helpers as mh

LIMIT, RATE = 60, 10


def test(t):
    port, mport = t.port(), t.port()

    def cfg(generation):
        return mh.config(port, "127.0.0.1:%d" % mport, count=1, command=lib.test_worker("selfstop.py"),
                         workers={"env": {"SELFSTOP_READY_DELAY": "3", "GENERATION": generation},
                                  "ready_timeout": "20s"},
                         recycle={"max_requests": LIMIT, "max_requests_jitter": 0})

    mw = t.memward(cfg("v1"), name="memward", config_name="memward.yaml")
    mw.wait_event("ready", timeout=20)
    load = t.load(port, threads=2, rate=RATE)
    first = mw.wait_event("recycle", timeout=20)[0]
    old = first.get("pid")
    check(first.get("reason") == "max_requests" and first.get("expected_in"),
          "not a max_requests recycle started ahead of the limit: %s" % first.text)
    t.write_config(cfg("v2"), "memward.yaml")
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    mw.wait_event("reload_done", since=since, timeout=30)
    load.stop()
    load.check_no_failures()
    mw.wait_event("exit", pid=old, timeout=15)
    _, samples = mh.scrape(mport)
    counted = {l["reason"]: v for l, v in mh.values(samples, "memward_recycles_total") if v}
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)

    cancelled = [l for l in mw.events("stop", since=since, reason="reload") if "old configuration" in l.text]
    check(cancelled, "the reload cancelled no replacement in flight: the case is not tested")
    mine = mw.events("recycle", pid=old)
    check(len(mine) == 1, "worker %s replaced once, %d recycle lines: %r" % (old, len(mine), [l.text for l in mine]))
    recycled = {l.get("pid") for l in mw.events("recycle")}
    check(sum(counted.values()) == len(recycled),
          "memward_recycles_total %r for %d workers recycled" % (counted, len(recycled)))
    print("worker %s: %s; replacement cancelled: %s; memward_recycles_total %r; %s" % (
        old, mine[0].text.split("event=recycle ")[1], cancelled[0].get("pid"), counted, load.summary()))


if __name__ == "__main__":
    lib.main(test)
