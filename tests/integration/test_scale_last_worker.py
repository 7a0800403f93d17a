"""SIGTTOU never stops the last worker (memward(8): SIGNALS).

  * One worker: SIGTTOU changes nothing but a line saying so (event=scale workers=1
    msg="the last worker stays"); nothing is stopped or spawned, and SIGTTIN
    afterwards still makes it two.
  * Two slots, slot 0 crash-looping (its worker exits 1 until the test allows it to
    start), slot 1 ready: SIGTTOU removes slot 1, but its worker, the only ready one,
    serves on until slot 0 has a ready worker; only then is it stopped."""

import os
import signal
import time

import lib
from lib import check

# Slot 0 exits 1 until $DIR/ok exists; every worker is then a sleep, ready after 300 ms.
SCRIPT = 'if [ "$MEMWARD_WORKER_ID" = 0 ] && [ ! -e "$DIR/ok" ]; then exit 1; fi; exec sleep 1000'


def test_one_worker(t):
    cfg = lib.config(t.port(), count=1, command=["/bin/sh", "-c", "exec sleep 1000"], listen=[],
                     workers={"ready": "300ms"})
    mw = t.memward(cfg, name="one")
    mw.wait_event("ready")
    only = mw.current_workers()
    since = time.monotonic()
    mw.signal(signal.SIGTTOU)
    said = mw.wait_event("scale", since=since, signal="SIGTTOU", timeout=5)[0]
    check(said.get("workers") == "1" and said.get("msg") == "the last worker stays", said.text)
    time.sleep(1.0)
    check(mw.current_workers() == only, "after SIGTTOU with one worker: %r, was %r" % (mw.current_workers(), only))
    check(not mw.events("stop", since=since) and not mw.events("spawn", since=since),
          "SIGTTOU with one worker stopped or spawned: %r" % (mw.events("stop") + mw.events("spawn", since=since)))
    since = time.monotonic()
    mw.signal(signal.SIGTTIN)
    mw.wait_event("ready", since=since)
    check(len(mw.current_workers()) == 2, "SIGTTOU then SIGTTIN: %r, want 2 workers" % mw.current_workers())
    check(mw.stop() == 0, "memward did not exit 0")


def test_only_ready_worker(t):
    d = t.path("gate")
    os.mkdir(d)
    cfg = lib.config(t.port(), count=2, command=["/bin/sh", "-c", SCRIPT], listen=[],
                     workers={"ready": "300ms", "env": {"DIR": d},
                              "restart_backoff": {"initial": "200ms", "max": "400ms"},
                              "start_limit_burst": 0})      # the crash loop is the point: no start limit
    mw = t.memward(cfg, name="crashloop")
    last = int(mw.wait_event("ready", worker=1)[0].get("pid"))
    mw.wait_event("exit", count=2, worker=0, timeout=10)        # slot 0 is crash-looping
    since = time.monotonic()
    mw.signal(signal.SIGTTOU)
    mw.wait_event("scale", since=since, signal="SIGTTOU", workers=1, timeout=5)
    time.sleep(2.0)
    check(lib.alive(last) and not mw.events("stop", since=since),
          "SIGTTOU stopped the only ready worker while slot 0 crash-looped: %r" % mw.events("stop", since=since))
    check(len(mw.events("exit", since=since, worker=0)) >= 2, "slot 0 stopped crash-looping by itself")

    open(os.path.join(d, "ok"), "w").close()
    ready0 = mw.wait_event("ready", since=since, worker=0, timeout=10)[0]
    stop = mw.wait_event("stop", since=since, timeout=10)[0]
    check(stop.get("pid") == str(last) and stop.get("reason") == "scale_down", "the stop: %s" % stop.text)
    check(stop.t >= ready0.t and mw.lines().index(stop) > mw.lines().index(ready0),
          "slot 1's worker was stopped before slot 0 was ready")
    check(mw.stop() == 0, "memward did not exit 0")
    print("SIGTTOU with one worker: nothing stopped; with slot 0 crash-looping, slot 1's worker served on "
          "%.1fs until slot 0 was ready" % (stop.t - since))


def test(t):
    test_one_worker(t)
    test_only_ready_worker(t)


if __name__ == "__main__":
    lib.main(test)
