"""EMFILE at start-up: with an open-files limit too low for the configured workers,
memward says so in one clear line and exits 1 at once — no spawn, no busy loop.
With a limit it may raise (soft < hard) it raises it and runs."""

import subprocess
import time

import lib
from lib import check


def run(t, limit, seconds):
    port = t.port()
    argv = ["prlimit", "--nofile=%s" % limit, lib.MEMWARD, "-w", "2", "--listen", "tcp://127.0.0.1:%d" % port,
            "--", "/bin/sleep", "100"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        err = p.communicate(timeout=seconds)[1].decode(errors="replace")
        return p.returncode, err, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        p.terminate()
        err = p.communicate(timeout=30)[1].decode(errors="replace")
        return None, err, time.monotonic() - t0


def test(t):
    rc, err, took = run(t, "30:30", 10)
    check(rc == 1, "memward exited %s with a 30-fd hard limit: %s" % (rc, err[-500:]))
    check(took < 2.0, "took %.1fs to give up" % took)
    check("event=fd_limit_too_low" in err and "needed=" in err, "no clear fd limit message: %s" % err[-500:])
    check("event=spawn" not in err, "workers were spawned anyway")
    check(err.count("\n") < 10, "more than a few log lines: a loop? %s" % err[-500:])

    rc, err, _ = run(t, "30:4096", 2)
    check(rc is None and "event=spawn" in err and "fd_limit_too_low" not in err,
          "with a raisable soft limit memward did not run: rc=%s %s" % (rc, err[-500:]))
    print("hard limit 30: exit 1 after %.2fs with event=fd_limit_too_low; soft 30/hard 4096: raised and ran" % took)


if __name__ == "__main__":
    lib.main(test)
