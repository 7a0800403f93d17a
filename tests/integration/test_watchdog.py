"""workers.watchdog: memward gives each worker WATCHDOG_USEC and WATCHDOG_PID (its own
pid), as systemd gives a service; a worker that stops sending WATCHDOG=1 is recycled
with reason=watchdog; workers that keep pinging are left alone.

The example worker pings at half of WATCHDOG_USEC (nothing else tells it to ping: the
test sets no MEMWARD_WATCHDOG_USEC, which it would read first) from its main loop, so
a request that keeps it busy (/sleep) silences it. memward itself runs with a
WATCHDOG_USEC of its own, as under systemd, which the workers must not inherit."""

import threading
import time

import lib
from lib import check

WATCHDOG_S = 2      # the worker pings every second: a margin of 1 s for a busy machine


def environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(item.decode().split("=", 1) for item in f.read().split(b"\0") if b"=" in item)


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2, workers={"watchdog": "%ds" % WATCHDOG_S, "graceful_timeout": "10s"}),
                   env={"WATCHDOG_USEC": "9000000"})
    mw.wait_event("ready", count=2)
    for pid in mw.current_workers().values():
        env = environ(pid)
        check(env.get("WATCHDOG_USEC") == str(WATCHDOG_S * 1000000) and env.get("WATCHDOG_PID") == str(pid),
              "worker %d has WATCHDOG_USEC=%s WATCHDOG_PID=%s" % (pid, env.get("WATCHDOG_USEC"),
                                                                env.get("WATCHDOG_PID")))
        check("MEMWARD_WATCHDOG_USEC" not in env, "worker %d has MEMWARD_WATCHDOG_USEC" % pid)
    time.sleep(1.5 * WATCHDOG_S)
    check(not mw.events("recycle"), "a pinging worker was recycled: %r" % mw.events("recycle"))

    result = []
    th = threading.Thread(target=lambda: result.append(lib.http_get(port, "/sleep?ms=%d" % (3000 * WATCHDOG_S))))
    since = time.time()                 # our wall clock, to compare with memward's time=
    th.start()
    r = mw.wait_event("recycle", reason="watchdog", timeout=5 * WATCHDOG_S)[0]
    took = r.at - since                 # not when we read the line: a busy machine reads it late
    # Its last ping came at most a second before the request, so memward's watchdog
    # (2 s) fires 1 to 2 s into the request.
    check(took < WATCHDOG_S + 1.5, "watchdog recycle after %.1fs (watchdog %ds)" % (took, WATCHDOG_S))
    th.join(15)
    check(result and result[0][0] == 200, "the busy worker's request failed: %r" % result)
    busy = int(result[0][1]["x-worker-pid"])
    check(r.get("pid") == str(busy), "recycled pid %s, busy pid %d" % (r.get("pid"), busy))
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("WATCHDOG_USEC=%d and WATCHDOG_PID given; busy worker recycled %.1fs after it went quiet"
          % (WATCHDOG_S * 1000000, took))


if __name__ == "__main__":
    lib.main(test)
