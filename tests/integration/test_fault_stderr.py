"""Logging never blocks the loop: memward's stderr is a pipe nobody reads.

With max_requests 2 every couple of requests produces several log lines, so the
64 KiB pipe fills within a second. memward must keep serving and recycling
(observed through /metrics), also after a SIGHUP with a broken config file (whose
errors must not be written with a blocking write), and say how many lines it dropped
once the pipe drains.
How many recycles a number of requests brings depends on the machine's load (the
requests a worker at its limit takes before its stop, those that queue while a slot's
replacement boots), so each phase sends requests until its recycles are counted,
within a bound of time: a loop blocked on the pipe counts none."""

import fcntl
import re
import subprocess
import termios
import time

import lib
from lib import check


def recycles_total(port):
    status, _, body = lib.http_get(port, "/metrics", timeout=5)
    check(status == 200, "/metrics: HTTP %d" % status)
    return sum(float(m) for m in re.findall(r'^memward_recycles_total\{[^}]*\} (\S+)$', body, re.M))


def pipe_bytes(f):
    """(bytes queued, capacity) of the pipe whose read end is the file f."""
    queued = fcntl.ioctl(f.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(queued, "little"), fcntl.fcntl(f.fileno(), fcntl.F_GETPIPE_SZ)


def load_until(t, port, mport, want, what, timeout=30.0):
    """Paced requests, 100 at a time, until memward_recycles_total reaches want;
    returns it and the requests sent."""
    deadline, sent = time.monotonic() + timeout, 0
    while True:
        time.sleep(0.5)
        n = recycles_total(mport)
        if n >= want:
            return n, sent
        check(time.monotonic() < deadline, "%s: %d recycles after %d requests, want %d within %.0fs"
              % (what, n, sent, want, timeout))
        t.load(port, threads=2, total=100, rate=50).join(60).check_no_failures()
        sent += 100


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
        # ~1 KiB of log per recycle: 150 are far more than the pipe holds.
        first, more = load_until(t, port, mport, 150, "filling the pipe", timeout=60)
        queued, capacity = pipe_bytes(proc.stderr)
        check(queued > capacity - 4096, "the pipe holds %d of %d bytes after %d recycles: not full"
              % (queued, capacity, first))
        # The pipe has been full for a while: the loop must still be live and on time.
        second, sent2 = load_until(t, port, mport, first + 30, "with a full stderr")
        # A reload with a broken file while the pipe is full: its errors go the same way.
        with open(cfg) as f:
            good = f.read()
        # Many errors: more text than the little room a "full" pipe may still have.
        bogus = "".join("  no_such_key_%d: 1\n" % i for i in range(200))
        with open(cfg, "w") as f:
            f.write(good.replace("workers:\n", "workers:\n" + bogus, 1))
        proc.send_signal(1)
        time.sleep(0.5)
        third, sent3 = load_until(t, port, mport, second + 30, "after a broken reload with a full stderr")
        # Drain the pipe; the next line tells how many were dropped.
        proc.stderr.read1(1 << 20) if hasattr(proc.stderr, "read1") else None
        time.sleep(0.2)
        lib.http_get(port, "/")
        proc.send_signal(15)
        rest = proc.communicate(timeout=30)[1].decode(errors="replace")
        check(proc.returncode == 0, "memward exited %s" % proc.returncode)
        m = re.search(r"event=log_lines_dropped count=(\d+)", rest)
        check(m and int(m.group(1)) > 0, "no log_lines_dropped report after the pipe drained")
        print("stderr pipe full: %d recycles after 1000+%d requests; then +%d after %d requests, +%d after "
              "%d after a broken reload; %s lines dropped and reported"
              % (first, more, second - first, sent2, third - second, sent3, m.group(1)))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    lib.main(test)
