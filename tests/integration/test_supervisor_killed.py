"""memward itself killed with SIGKILL: no worker outlives it.

Workers are spawned with PR_SET_PDEATHSIG(SIGKILL), so when the supervisor dies
without a chance to stop them (SIGKILL, a crash) the kernel kills them at once
instead of leaving them serving unsupervised. Worker 1 ignores SIGTERM (a shell that
sets SIGTERM to SIG_IGN and execs sleep, checked in /proc/PID/status): only a SIGKILL
ends it, and it must die too. Worker 0 is the example worker and serves."""

import signal
import time

import lib
from lib import check

# Worker 1 ignores SIGTERM (SIG_IGN survives exec); worker 0 is the example worker.
COMMAND = ["/bin/sh", "-c", 'if [ "$MEMWARD_WORKER_ID" = 1 ]; then trap "" TERM; exec sleep 1000; fi; '
           'exec "$0" "$@"'] + lib.EXAMPLE_COMMAND


def ignores_sigterm(pid):
    mask = lib.signal_mask_field(pid, "SigIgn")
    return mask is not None and bool(mask & (1 << (signal.SIGTERM - 1)))


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2, command=COMMAND, workers={"ready": "1s"}))
    mw.wait_event("ready", count=2, timeout=15)
    workers = mw.current_workers()
    check(len(workers) == 2, "want 2 workers, have %r" % workers)
    check(ignores_sigterm(workers["1"]) and not ignores_sigterm(workers["0"]),
          "worker 1 (%d) should ignore SIGTERM, worker 0 (%d) not" % (workers["1"], workers["0"]))
    check(lib.http_get(port, "/")[0] == 200, "workers do not serve")

    mw.proc.send_signal(signal.SIGKILL)
    mw.proc.wait(timeout=5)
    t_killed = time.monotonic()
    deadline = t_killed + 2.0
    while time.monotonic() < deadline and any(lib.alive(p) for p in workers.values()):
        time.sleep(0.05)
    left = [p for p in workers.values() if lib.alive(p)]
    check(not left, "workers %r outlived memward's SIGKILL by 2 s" % left)
    print("memward SIGKILLed: both workers, one ignoring SIGTERM, gone %.2fs later"
          % (time.monotonic() - t_killed))


if __name__ == "__main__":
    lib.main(test)
