"""workers.start_limit_burst / start_limit_interval (issue 16 §5): a crash loop ends memward.

  crash loop   a worker that exits 1 at once, defaults (5 failed starts in 5 min,
               backoff from 100 ms): memward logs start_limit_hit with the figures that
               decided (failures=5, within= what its own clock measured, burst, interval)
               and exits 3, about 1.5 s after the first spawn (0.1+0.2+0.4+0.8 s of
               backoff), for Kubernetes or systemd to see.
  recycling    a healthy worker recycled 20 times (max_lifetime 200 ms) with
               start_limit_burst: 2 within 60 s: recycles are no failed starts, nothing
               trips, memward stops on SIGTERM with 0.
  serving      one slot crash-loops while the other serves, burst 10 within 60 s: no
               exit (the failing slot is retried; /healthz says 503 for it). After 9
               such failures the serving worker is killed: its one crash is no last straw
               (failures beside a serving worker are not counted), memward respawns it."""

import os
import signal
import time

import lib
from lib import check

FAIL_SLOT_1 = ["/bin/sh", "-c", 'if [ "$MEMWARD_WORKER_ID" = 1 ]; then exit 1; fi; exec "$0" "$@"'] \
    + lib.EXAMPLE_COMMAND


def crash_loop(t):
    cfg = lib.config(t.port(), count=1, command=["/bin/sh", "-c", "exit 1"],
                     workers={"restart_backoff": {"initial": "100ms", "max": "30s"}})
    mw = t.memward(cfg, name="crash_loop")
    first = mw.wait_event("spawn", timeout=10)[0]
    rc = mw.wait_exit(timeout=15)
    check(rc == 3, "memward exited %s, want 3" % rc)
    hits = mw.events("start_limit_hit")
    check(len(hits) == 1, "want one start_limit_hit line: %s" % hits)
    h = hits[0]
    check(h.get("failures") == "5" and h.get("burst") == "5" and h.get("interval") == "5m"
          and h.get("exit_code") == "3", "the figures: %s" % h.text)
    within = int(h.get("within").rstrip("ms"))
    # The backoff alone is 1.5 s; each exit adds a fork and an exec.
    check(1400 <= within <= 5000, "5 failures within %d ms, want about 1500" % within)
    check(len(mw.events("spawn")) == 5, "%d spawns, want 5" % len(mw.events("spawn")))
    took = h.t - first.t
    print("crash loop: start_limit_hit failures=5 within=%dms, exit 3 %.2fs after the first spawn" % (within, took))


def recycling(t):
    port = t.port()
    cfg = lib.config(port, count=1, workers={"start_limit_burst": 2, "start_limit_interval": "60s"},
                     recycle={"max_lifetime": "200ms"})
    mw = t.memward(cfg, name="recycling")
    t0 = time.monotonic()
    mw.wait_event("recycle", count=20, timeout=60, reason="max_lifetime")
    mw.wait_event("ready", count=21, timeout=20)
    took = time.monotonic() - t0
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    check(not mw.events("start_limit_hit"), "the start limit tripped: %s" % mw.events("start_limit_hit"))
    check(not [e for e in mw.events("exit") if e.get("unexpected")], "a worker failed: %s" % mw.events("exit"))
    check(mw.stop() == 0, "memward's exit code after SIGTERM")
    print("recycling: 20 recycles in %.1fs with start_limit_burst 2 / 60s, no start_limit_hit, exit 0" % took)


def serving(t):
    port = t.port()
    cfg = lib.config(port, count=2, command=FAIL_SLOT_1,
                     workers={"start_limit_burst": 10, "start_limit_interval": "60s",
                              "restart_backoff": {"initial": "100ms", "max": "1s"}})
    mw = t.memward(cfg, name="serving")
    w0 = mw.wait_event("ready", worker=0, timeout=20)[0].int("pid")
    mw.wait_event("exit", count=9, worker=1, timeout=30)
    check(mw.running(), "memward exited %s with a worker serving" % mw.proc.poll())
    check(not mw.events("start_limit_hit"), "the start limit tripped: %s" % mw.events("start_limit_hit"))
    status, _, _ = lib.http_get(port, "/")
    check(status == 200, "slot 0 does not serve: %d" % status)
    failed = len(mw.events("exit", worker=1))
    os.kill(w0, signal.SIGKILL)
    mw.wait_event("ready", count=2, worker=0, timeout=20)
    time.sleep(0.5)
    check(mw.running(), "memward exited %s after the serving worker's one crash" % mw.proc.poll())
    check(not mw.events("start_limit_hit"), "the start limit tripped: %s" % mw.events("start_limit_hit"))
    check(mw.stop() == 0, "memward's exit code after SIGTERM")
    print("serving: slot 1 failed %d times beside a serving slot 0, which then crashed once and came back; "
          "memward kept running, exit 0" % failed)


def test(t):
    crash_loop(t)
    recycling(t)
    serving(t)


if __name__ == "__main__":
    lib.main(test)
