"""workers.watchdog: a worker that stops sending WATCHDOG=1 is recycled with
reason=watchdog; workers that keep pinging are left alone.

The example worker pings at half of MEMWARD_WATCHDOG_USEC (set in workers.env) from
its main loop, so a request that keeps it busy (/sleep) silences it."""

import threading
import time

import lib
from lib import check


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2, workers={
        "watchdog": "1s", "graceful_timeout": "10s",
        "env": {"MEMWARD_WATCHDOG_USEC": "400000"}}))
    mw.wait_event("ready", count=2)
    time.sleep(2.0)
    check(not mw.events("recycle"), "a pinging worker was recycled: %r" % mw.events("recycle"))

    result = []
    th = threading.Thread(target=lambda: result.append(lib.http_get(port, "/sleep?ms=3000")))
    th.start()
    since = time.monotonic()
    r = mw.wait_event("recycle", reason="watchdog", timeout=5)[0]
    took = r.t - since
    check(took < 2.5, "watchdog recycle after %.1fs (watchdog 1s)" % took)
    th.join(10)
    check(result and result[0][0] == 200, "the busy worker's request failed: %r" % result)
    busy = int(result[0][1]["x-worker-pid"])
    check(r.get("pid") == str(busy), "recycled pid %s, busy pid %d" % (r.get("pid"), busy))
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("busy worker recycled %.1fs after it went quiet" % took)


if __name__ == "__main__":
    lib.main(test)
