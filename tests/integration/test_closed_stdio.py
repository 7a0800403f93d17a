"""memward started with stdout closed (`>&-`, a careless init): the gap is filled with
/dev/null, as tini and systemd do, so memward's own fds do not land on 1 and the
workers start with 0, 1 and 2 open."""

import os
import subprocess
import time

import lib
from lib import check


def test(t):
    marker = t.path("fds")
    script = ('for fd in 0 1 2; do l=$(readlink /proc/$$/fd/$fd || echo closed); echo "$l" >> %s; done; '
              'exec sleep 30' % marker)
    cfg = t.write_config(lib.config(0, count=1, command=["/bin/sh", "-c", script], listen=[]), "stdio.yaml")
    proc = subprocess.Popen([lib.MEMWARD, "-c", cfg], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: os.close(1), cwd=t.dir)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (os.path.exists(marker) and open(marker).read().count("\n") == 3):
            time.sleep(0.05)
        check(os.path.exists(marker), "the worker never ran")
        fds = open(marker).read().split()
        check(fds[1] == "/dev/null", "the worker's stdout is %r, want /dev/null (memward started with it closed)"
              % fds[1])
        check("closed" not in fds, "a standard fd of the worker is closed: %r" % fds)
        own = os.readlink("/proc/%d/fd/1" % proc.pid)
        check(own == "/dev/null", "memward's fd 1 is %r, want /dev/null" % own)
        proc.terminate()
        err = proc.communicate(timeout=15)[1].decode(errors="replace")
        check(proc.returncode == 0, "memward exited %s: %s" % (proc.returncode, err[-1000:]))
        print("stdout closed at start: memward's fd 1 and the worker's are /dev/null")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    lib.main(test)
