"""SIGTTIN adds a worker, SIGTTOU removes one (gracefully), SIGUSR2 logs a status
line per worker.

A slot removed is a recycle with reason scale_down, like the man page lists it: one
event=recycle line (then event=stop) and memward_recycles_total{reason="scale_down"}
rises by one -- for SIGTTOU and for a reload that lowers workers.count alike."""

import signal
import time

import lib
import metrics_helpers as mh
from lib import check


def scale_down_total(mport):
    _, samples = mh.scrape(mport)
    found = mh.values(samples, "memward_recycles_total", reason="scale_down")
    check(len(found) == 1, "memward_recycles_total{reason=\"scale_down\"}: %r" % found)
    return found[0][1]


def test(t):
    port, mport = t.port(), t.port()

    def cfg(count):
        return mh.config(port, "127.0.0.1:%d" % mport, count=count)

    mw = t.memward(cfg(2), name="memward", config_name="memward.yaml")
    mw.wait_event("ready", count=2)
    check(scale_down_total(mport) == 0, "scale_down counted before any scale-down")

    since = time.monotonic()
    mw.signal(signal.SIGTTIN)
    new = mw.wait_event("ready", since=since, worker=2)[0]
    check(len(mw.current_workers()) == 3, "after SIGTTIN: %r" % mw.current_workers())

    since = time.monotonic()
    mw.signal(signal.SIGTTOU)
    gone = mw.wait_event("exit", since=since)[0]
    check(gone.get("code") == "0", "the worker removed by SIGTTOU did not exit 0: %s" % gone.text)
    time.sleep(0.3)
    check(len(mw.current_workers()) == 2, "after SIGTTOU: %r" % mw.current_workers())
    check(not mw.events("spawn", since=since), "SIGTTOU respawned a worker")
    recycles = mw.events("recycle", since=since)
    check([r.get("reason") for r in recycles] == ["scale_down"] and recycles[0].get("pid") == gone.get("pid"),
          "SIGTTOU: want one event=recycle reason=scale_down for pid %s, got %r" % (gone.get("pid"), recycles))
    check(mw.events("stop", since=since, reason="scale_down", pid=gone.get("pid")),
          "no event=stop reason=scale_down line")
    check(scale_down_total(mport) == 1, "after SIGTTOU: scale_down %r, want 1" % scale_down_total(mport))

    since = time.monotonic()
    mw.signal(signal.SIGUSR2)
    workers = mw.current_workers()
    for pid in workers.values():
        mw.wait_text(r"\bpid=%d\b" % pid, since=since, timeout=5)

    lib.Load(port, threads=4, total=100).start().join(30).check_no_failures()

    # A reload that lowers workers.count removes slot 1 the same way (and rolls slot 0).
    t.write_config(cfg(1), "memward.yaml")
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    mw.wait_event("reload_done", since=since, timeout=20)
    mw.wait_event("exit", since=since, worker=1, timeout=10)
    check(len(mw.events("recycle", since=since, reason="scale_down", worker=1)) == 1,
          "reload to 1 worker: no single event=recycle reason=scale_down for slot 1")
    check(scale_down_total(mport) == 2, "after the reload: scale_down %r, want 2" % scale_down_total(mport))

    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("added pid %s, removed pid %s; scale_down recycles counted: 2" % (new.get("pid"), gone.get("pid")))


if __name__ == "__main__":
    lib.main(test)
