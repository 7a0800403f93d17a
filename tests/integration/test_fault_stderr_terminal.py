"""memward's stderr is a terminal nobody reads (docker run -t with no reader, a terminal
held by Ctrl-S): a terminal takes what room it has of a write, so part of a line.

memward, its stderr on a pty in raw mode, gets SIGUSR2 (3 status lines of a few
hundred bytes) every 2 ms for 2 s: far more than the ~64 KiB the pty holds. /healthz
must answer within 1 s meanwhile. Then the pty is read, one more SIGUSR2 sent, and
read again: every line on it must be whole (time= first, one event, the fields its
event has; main's binary cut a line mid-value and continued it with the
log_lines_dropped line), and the reports' counts must add up to
memward_log_dropped_total{sink="stderr"}."""

import os
import re
import select
import signal
import subprocess
import time
import tty

import lib
from lib import check

DURATION = 2.0
HEALTHZ_MAX = 1.0
LINE = re.compile(r'^time=\S+ level=(info|warning) event=(\w+)( \S+=("([^"\\]|\\.)*"|\S*))*$')


def dropped(mport):
    status, _, body = lib.http_get(mport, "/metrics", timeout=5)
    check(status == 200, "/metrics: HTTP %d" % status)
    m = re.search(r'^memward_log_dropped_total\{sink="stderr"\} (\d+)$', body, re.M)
    check(m, "no memward_log_dropped_total{sink=\"stderr\"} in /metrics")
    return int(m.group(1))


def read_until_quiet(fd, quiet=1.0):
    """What arrives on fd until nothing has for `quiet` seconds: the pty's buffers move
    data on in a kernel worker."""
    data = b""
    while select.select([fd], [], [], quiet)[0]:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test(t):
    port, mport = t.port(), t.port()
    cfg = t.write_config(lib.config(port, count=1, metrics={"listen": "127.0.0.1:%d" % mport}), "terminal.yaml")
    master, slave = os.openpty()
    tty.setraw(slave)  # '\n' stays '\n': the bytes read are the bytes memward wrote
    proc = subprocess.Popen([lib.MEMWARD, "-c", cfg], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, cwd=t.dir)
    os.close(slave)
    out = b""
    try:
        # The start-up lines are a few KiB: the pty holds them until read here.
        check(lib.wait_http(mport, timeout=15, path="/healthz"), "/healthz never answered")
        check(lib.wait_http(port, timeout=15), "the worker never served")
        out += read_until_quiet(master, 0.2)

        worst, t0, next_probe = 0.0, time.monotonic(), 0.0
        while time.monotonic() - t0 < DURATION:
            proc.send_signal(signal.SIGUSR2)
            time.sleep(0.002)
            if time.monotonic() >= next_probe:
                s = time.monotonic()
                status, _, _ = lib.http_get(mport, "/healthz", timeout=5)
                took = time.monotonic() - s
                check(status == 200 and took < HEALTHZ_MAX, "/healthz with the terminal not read: HTTP %d in %.2fs"
                      % (status, took))
                worst, next_probe = max(worst, took), time.monotonic() + 0.1
        # memward may not have handled the last SIGUSR2 yet: the count is final once two
        # readings 200 ms apart agree.
        n, again = -1, dropped(mport)
        while again != n:
            time.sleep(0.2)
            n, again = again, dropped(mport)
        check(n > 0, "nothing dropped on a terminal nobody read")

        out += read_until_quiet(master)
        proc.send_signal(signal.SIGUSR2)
        out += read_until_quiet(master)
        check(dropped(mport) == n, "more dropped once the terminal was read")
        text = out.decode("utf-8", "replace")
        check(text.endswith("\n"), "the last line is not finished: %r" % text[-300:])
        told, lines = 0, text[:-1].split("\n")
        for line in lines:
            m = LINE.match(line)
            # The head of a cut line followed by a whole one reads as logfmt too: one time=
            # and one event= per line tell them apart (no value here holds either).
            check(m and line.count("time=") == 1 and line.count(" event=") == 1,
                  "a line cut or glued onto another: %r" % line[:400])
            if m.group(2) == "log_lines_dropped":
                f = lib.parse_logfmt(line)
                check(f.get("sink") == "stderr", "report %r" % line)
                told += int(f["count"])
        check(told == n, "reports add up to %d, /metrics says %d" % (told, n))
        check(lines[-1].find(" event=status ") > 0, "the last line is not a status line: %r" % lines[-1])
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        check(proc.returncode == 0, "memward exited %s" % proc.returncode)
        print("terminal not read for %.0fs: /healthz worst %.0f ms; %d lines whole, %d dropped, counted and told"
              % (DURATION, worst * 1000, len(lines), n))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


if __name__ == "__main__":
    lib.main(test)
