"""Logging never blocks the loop: memward's stderr is a pipe nobody reads.

With max_requests 2 every couple of requests produces several log lines, so the
64 KiB pipe fills within a second. memward must keep serving and recycling on time
(observed through /metrics), also after a SIGHUP with a broken config file (whose
errors must not be written with a blocking write), and say how many lines it dropped
once the pipe drains."""

import re
import subprocess
import time

import lib
from lib import check


def recycles_total(port):
    status, _, body = lib.http_get(port, "/metrics", timeout=5)
    check(status == 200, "/metrics: HTTP %d" % status)
    return sum(float(m) for m in re.findall(r'^memward_recycles_total\{[^}]*\} (\S+)$', body, re.M))


def test(t):
    port, mport = t.port(), t.port()
    cfg = t.write_config(lib.config(port, count=2, recycle={"max_requests": 2},
                                    metrics={"listen": "127.0.0.1:%d" % mport}), "stderr.yaml")
    proc = subprocess.Popen([lib.MEMWARD, "-c", cfg], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=t.dir)
    try:
        check(lib.wait_http(port, timeout=15), "workers never served")
        check(lib.wait_http(mport, timeout=15, path="/metrics"), "metrics endpoint never answered")
        load = t.load(port, threads=4, total=1000, rate=50)
        load.join(timeout=120)
        load.check_no_failures()
        first = recycles_total(mport)
        # ~1 KiB of log per recycle: far more than the pipe holds.
        check(first >= 150, "only %d recycles for 1000 requests at max_requests 2" % first)
        # The pipe has been full for a while: the loop must still be live and on time.
        load2 = t.load(port, threads=2, total=200, rate=50)
        load2.join(timeout=60)
        load2.check_no_failures()
        time.sleep(0.5)
        second = recycles_total(mport)
        check(second >= first + 30, "recycles stalled with a full stderr: %d -> %d" % (first, second))
        # A reload with a broken file while the pipe is full: its errors go the same way.
        with open(cfg) as f:
            good = f.read()
        # Many errors: more text than the little room a "full" pipe may still have.
        bogus = "".join("  no_such_key_%d: 1\n" % i for i in range(200))
        with open(cfg, "w") as f:
            f.write(good.replace("workers:\n", "workers:\n" + bogus, 1))
        proc.send_signal(1)
        time.sleep(0.5)
        load3 = t.load(port, threads=2, total=200, rate=50)
        load3.join(timeout=60)
        load3.check_no_failures()
        time.sleep(0.5)
        third = recycles_total(mport)
        check(third >= second + 30, "recycles stalled after a broken reload with a full stderr: %d -> %d"
              % (second, third))
        # Drain the pipe; the next line tells how many were dropped.
        proc.stderr.read1(1 << 20) if hasattr(proc.stderr, "read1") else None
        time.sleep(0.2)
        lib.http_get(port, "/")
        proc.send_signal(15)
        rest = proc.communicate(timeout=30)[1].decode(errors="replace")
        check(proc.returncode == 0, "memward exited %s" % proc.returncode)
        m = re.search(r"event=log_lines_dropped count=(\d+)", rest)
        check(m and int(m.group(1)) > 0, "no log_lines_dropped report after the pipe drained")
        print("stderr pipe full: %d recycles served on time; %s lines dropped and reported"
              % (second, m.group(1)))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    lib.main(test)
