"""memward itself killed with SIGKILL: no worker outlives it.

Workers are spawned with PR_SET_PDEATHSIG(SIGKILL), so when the supervisor dies
without a chance to stop them (SIGKILL, a crash) the kernel kills them at once
instead of leaving them serving unsupervised. A worker that ignores SIGTERM is
included: it must die too."""

import signal
import time

import lib
from lib import check


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2))
    mw.wait_event("ready", count=2, timeout=15)
    workers = list(mw.current_workers().values())
    check(len(workers) == 2, "want 2 workers, have %r" % workers)
    check(lib.http_get(port, "/")[0] == 200, "workers do not serve")

    mw.proc.send_signal(signal.SIGKILL)
    mw.proc.wait(timeout=5)
    t_killed = time.monotonic()
    deadline = t_killed + 2.0
    while time.monotonic() < deadline and any(lib.alive(p) for p in workers):
        time.sleep(0.05)
    left = [p for p in workers if lib.alive(p)]
    check(not left, "workers %r outlived memward's SIGKILL by 2 s" % left)
    print("memward SIGKILLed: both workers gone %.2fs later" % (time.monotonic() - t_killed))


if __name__ == "__main__":
    lib.main(test)
