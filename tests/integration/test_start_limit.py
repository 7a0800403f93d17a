"""workers.start_limit_burst / start_limit_interval (issue 16 §5): a crash loop ends memward.

  crash loop   a worker that exits 1 at once, defaults (8 failed starts of a slot in
               5 min, backoff from 100 ms): memward logs start_limit_hit with the figures
               that decided (failures=8, within= what its own clock measured, burst,
               interval, ready_workers=0) and exits 3, about 12.7 s after the first spawn
               (0.1+0.2+0.4+0.8+1.6+3.2+6.4 s of backoff), for Kubernetes or systemd to see.
               The same with `ready: immediate`, where every spawn is ready at once.
  outage       6 workers whose dependency is down for 2.5 s at start-up, defaults: every
               slot fails at once, again and again, and memward retries them all until the
               dependency is back (a round of 6 simultaneous failures counts once): all 6
               ready, no start_limit_hit.
  forgotten    burst 3 within 60 s: the worker fails twice at boot, then serves for 10.5 s
               (the backoff's CRASH_LOOP_FORGIVE); killed once, it is respawned: the
               failures before it served that long are forgotten.
  recycling    a healthy worker recycled 20 times (max_requests 1, one worker: stopped
               at its limit before its replacement is ready, so its exit comes while
               none is) with start_limit_burst: 1 within 60 s: recycles are no failed
               starts, nothing trips, memward stops on SIGTERM with 0.
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


def crash_loop(t, ready="notify"):
    # ready: immediate makes every spawn "ready" at once: that must not forget the failures.
    cfg = lib.config(t.port(), count=1, command=["/bin/sh", "-c", "exit 1"],
                     workers={"restart_backoff": {"initial": "100ms", "max": "30s"}, "ready": ready})
    mw = t.memward(cfg, name="crash_loop_" + ready)
    first = mw.wait_event("spawn", timeout=10)[0]
    rc = mw.wait_exit(timeout=40)
    check(rc == 3, "memward exited %s, want 3" % rc)
    hits = mw.events("start_limit_hit")
    check(len(hits) == 1, "want one start_limit_hit line: %s" % hits)
    h = hits[0]
    check(h.get("failures") == "8" and h.get("burst") == "8" and h.get("interval") == "5m"
          and h.get("ready_workers") == "0" and h.get("exit_code") == "3", "the figures: %s" % h.text)
    within = int(h.get("within").rstrip("ms"))
    # The backoff alone is 12.7 s; each exit adds a fork and an exec.
    check(12600 <= within <= 20000, "8 failures within %d ms, want about 12700" % within)
    check(len(mw.events("spawn")) == 8, "%d spawns, want 8" % len(mw.events("spawn")))
    took = h.t - first.t
    print("crash loop (ready: %s): start_limit_hit failures=8 within=%dms, exit 3 %.2fs after the first spawn"
          % (ready, within, took))


# Exits 1 while the file $DEPENDENCY does not exist: a database not up yet.
NEEDS_DEPENDENCY = ["/bin/sh", "-c", '[ -e "$DEPENDENCY" ] || exit 1; exec "$0" "$@"'] + lib.EXAMPLE_COMMAND


def outage(t):
    dependency = os.path.join(t.dir, "dependency-up")
    cfg = lib.config(t.port(), count=6, command=NEEDS_DEPENDENCY,
                     workers={"restart_backoff": {"initial": "100ms", "max": "30s"},
                              "env": {"DEPENDENCY": dependency}})
    mw = t.memward(cfg, name="outage")
    first = mw.wait_event("spawn", timeout=10)[0]
    time.sleep(2.5)
    # At least 4 rounds of failures (24) before the dependency comes back: 2.5 s is ~5
    # rounds, fewer when every fork and exec is slow on a busy machine.
    mw.wait_event("exit", count=6 * 4, timeout=30)
    open(dependency, "w").close()
    failed = len(mw.events("exit"))
    mw.wait_event("ready", count=6, timeout=30)
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    check(not mw.events("start_limit_hit"), "the start limit tripped: %s" % mw.events("start_limit_hit"))
    check(failed >= 6 * 4, "only %d failed starts in the 2.5 s outage" % failed)
    took = mw.events("ready")[-1].t - first.t
    check(mw.stop() == 0, "memward's exit code after SIGTERM")
    print("outage: 6 workers, dependency down 2.5 s: %d failed starts, all ready %.1fs after the first spawn, "
          "no start_limit_hit" % (failed, took))


# Fails its first two starts (a counter in $COUNTER), then serves.
FAILS_TWICE = ["/bin/sh", "-c", 'n=$(cat "$COUNTER" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNTER"; '
               '[ "$n" -ge 2 ] || exit 1; exec "$0" "$@"'] + lib.EXAMPLE_COMMAND


def forgotten(t):
    cfg = lib.config(t.port(), count=1, command=FAILS_TWICE,
                     workers={"start_limit_burst": 3, "start_limit_interval": "60s",
                              "env": {"COUNTER": os.path.join(t.dir, "starts")}})
    mw = t.memward(cfg, name="forgotten")
    pid = mw.wait_event("ready", timeout=20)[0].int("pid")
    check(len([e for e in mw.events("exit") if e.get("unexpected")]) == 2, "want 2 failures at boot: %s"
          % mw.events("exit"))
    time.sleep(10.5)                # CRASH_LOOP_FORGIVE_USEC: served long enough to be forgiven
    os.kill(pid, signal.SIGKILL)
    mw.wait_event("ready", count=2, timeout=20)
    time.sleep(0.5)
    check(mw.running(), "memward exited %s after one crash of a worker that served" % mw.proc.poll())
    check(not mw.events("start_limit_hit"), "the start limit tripped: %s" % mw.events("start_limit_hit"))
    check(mw.stop() == 0, "memward's exit code after SIGTERM")
    print("forgotten: 2 failures at boot, served, killed once: respawned, no start_limit_hit (burst 3)")


def recycling(t):
    port = t.port()
    # max_requests 1 with one worker: each request stops the worker at its limit before
    # its replacement is ready, so its exit comes while no worker is ready: were recycles
    # counted as failed starts, the first would trip a limit of 1 (a ready worker forgets
    # the count, so a larger burst would not show it).
    cfg = lib.config(port, count=1, workers={"start_limit_burst": 1, "start_limit_interval": "60s"},
                     recycle={"max_requests": 1})
    mw = t.memward(cfg, name="recycling")
    t0 = time.monotonic()
    for i in range(20):
        mw.wait_event("ready", count=i + 1, timeout=20)
        status, _, _ = lib.http_get(port, "/")
        check(status == 200, "request %d: %d" % (i, status))
    mw.wait_event("ready", count=21, timeout=20)
    took = time.monotonic() - t0
    # How many old workers exited while none was ready (between their exit and the next ready).
    unserved = 0
    ready_workers = 0
    for line in mw.lines():
        if line.get("event") == "ready":
            ready_workers += 1
        elif line.get("event") == "exit":
            ready_workers -= 1
            if ready_workers == 0:
                unserved += 1
    check(unserved >= 1, "only %d recycles stopped the worker before its replacement was ready" % unserved)
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    check(not mw.events("start_limit_hit"), "the start limit tripped: %s" % mw.events("start_limit_hit"))
    check(not [e for e in mw.events("exit") if e.get("unexpected")], "a worker failed: %s" % mw.events("exit"))
    check(mw.stop() == 0, "memward's exit code after SIGTERM")
    print("recycling: 20 stop-first recycles (max_requests 1) in %.1fs, %d exits with no worker ready, "
          "start_limit_burst 1 / 60s: no start_limit_hit, exit 0" % (took, unserved))


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
    crash_loop(t, ready="immediate")
    outage(t)
    forgotten(t)
    recycling(t)
    serving(t)


if __name__ == "__main__":
    lib.main(test)
