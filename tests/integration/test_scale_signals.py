"""SIGTTIN adds a worker, SIGTTOU removes one (gracefully), SIGUSR2 logs a status
line per worker."""

import signal
import time

import lib
from lib import check


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2))
    mw.wait_event("ready", count=2)

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

    since = time.monotonic()
    mw.signal(signal.SIGUSR2)
    workers = mw.current_workers()
    for pid in workers.values():
        mw.wait_text(r"\bpid=%d\b" % pid, since=since, timeout=5)

    lib.Load(port, threads=4, total=100).start().join(30).check_no_failures()
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("added pid %s, removed pid %s" % (new.get("pid"), gone.get("pid")))


if __name__ == "__main__":
    lib.main(test)
