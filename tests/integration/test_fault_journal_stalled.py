"""A journald that stops reading does not stall memward: entries it cannot take at
once are dropped, counted in memward_log_dropped_total{sink="journal"}, and told in a
log_lines_dropped entry once it reads again.

As test_metrics_journald does, the test runs itself again in a private mount namespace
with a tmpfs on /run and binds its own datagram socket at
/run/systemd/journal/socket, but reads nothing from it: its queue holds
net.unix.max_dgram_qlen datagrams, then the kernel refuses more. memward, with stderr
on the journal stream, gets SIGUSR2 (3 status lines) every 5 ms for 3 s. Meanwhile
/healthz must answer every time within 1 s (libsystemd's sd_journal_sendv() would
wait in sendmsg() here, and the loop with it). Then nothing of memward's went to
stderr instead, /metrics counts the dropped entries, and once the socket is drained
the next event is preceded by MEMWARD_EVENT=log_lines_dropped with exactly that
count. Then journald stalls again and goes away: the next event goes to stderr,
preceded by event=log_lines_dropped with the count of entries dropped meanwhile
(sink=journal). Needs root for the mount namespace; without it, it skips with that reason."""

import os
import signal
import socket
import time

import lib
import test_metrics_journald as tj
from lib import check

DURATION = 3.0
HEALTHZ_MAX = 1.0


def dropped(mport):
    status, _, body = lib.http_get(mport, "/metrics", timeout=5)
    check(status == 200, "/metrics: HTTP %d" % status)
    for line in body.splitlines():
        if line.startswith('memward_log_dropped_total{sink="journal"} '):
            return int(line.split()[1])
    lib.fail("no memward_log_dropped_total{sink=\"journal\"} in /metrics")


def settled(mport):
    """memward may not have handled the last SIGUSR2s yet: the count is final once two
    readings 200 ms apart agree."""
    n, deadline = dropped(mport), time.monotonic() + 10
    while True:
        time.sleep(0.2)
        again = dropped(mport)
        if again == n:
            return n
        check(time.monotonic() < deadline, "memward_log_dropped_total still rising 10 s after the signals")
        n = again


def inner(t):
    os.makedirs(os.path.dirname(tj.SOCKET_PATH), exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(tj.SOCKET_PATH)
    port, mport = t.port(), t.port()
    cfg = t.write_config(lib.config(port, count=1, metrics={"listen": "127.0.0.1:%d" % mport}))
    p, out, reader = tj.start(t, cfg, lambda st: "%d:%d" % (st.st_dev, st.st_ino), "stalled")
    try:
        check(lib.wait_http(port, timeout=15), "the worker never served")
        check(lib.wait_http(mport, timeout=15, path="/healthz"), "/healthz never answered")
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            qlen = int(f.read())

        worst, probes, t0 = 0.0, 0, time.monotonic()
        next_probe = t0
        while time.monotonic() - t0 < DURATION:
            p.send_signal(signal.SIGUSR2)
            time.sleep(0.005)
            if time.monotonic() >= next_probe:
                s = time.monotonic()
                try:
                    status, _, body = lib.http_get(mport, "/healthz", timeout=5)
                except OSError as e:
                    lib.fail("/healthz with journald not reading: %r" % e)
                took = time.monotonic() - s
                check(status == 200 and took < HEALTHZ_MAX, "/healthz with journald not reading: HTTP %d in %.2fs"
                      % (status, took))
                worst, probes = max(worst, took), probes + 1
                next_probe = time.monotonic() + 0.1
        n = settled(mport)
        check(n > 0, "no entry dropped with a queue of %d not read" % qlen)
        err = b"".join(out).decode("utf-8", "replace")
        check("event=" not in err, "dropped entries went to stderr instead:\n%s" % err[-2000:])

        # journald reads again: what was queued, then the report and the event after it.
        sock.setblocking(False)
        queued = 0
        while True:
            try:
                sock.recv(1 << 20)
                queued += 1
            except BlockingIOError:
                break
        sock.settimeout(5)
        p.send_signal(signal.SIGUSR2)
        first = tj.parse_entry(sock.recv(1 << 20))
        second = tj.parse_entry(sock.recv(1 << 20))
        check(first.get("MEMWARD_EVENT") == "log_lines_dropped" and first.get("MEMWARD_SINK") == "journal"
              and first.get("PRIORITY") == "4", "first entry after the drain: %r" % first)
        check(first.get("MEMWARD_COUNT") == str(n) and first["MESSAGE"] == "event=log_lines_dropped count=%d "
              "sink=journal" % n, "report %r, /metrics says %d" % (first, n))
        check(second.get("MEMWARD_EVENT") == "status", "after the report: %r" % second)
        check(dropped(mport) == n, "more dropped after the drain")

        # Stalled again, then journald goes away for good: the entries dropped meanwhile
        # are told on stderr, where the events go now.
        while dropped(mport) == n:
            for _ in range(20):
                p.send_signal(signal.SIGUSR2)
                time.sleep(0.005)
        m = settled(mport) - n
        sock.close()
        os.unlink(tj.SOCKET_PATH)
        p.send_signal(signal.SIGUSR2)
        tj.wait_output(out, b" event=status ")
        err = b"".join(out).decode("utf-8", "replace")
        report = err.find(" level=warning event=log_lines_dropped count=%d sink=journal\n" % m)
        check(0 <= report < err.find(" event=status "), "journald gone after %d dropped; stderr:\n%s"
              % (m, err[-2000:]))
        check(tj.stop(p, reader) == 0, "memward did not exit 0")
        print("journald not reading for %.0fs (queue %d, %d entries queued): /healthz %d times, worst %.0f ms; "
              "%d entries dropped, counted and told; then %d more, told on stderr once journald was gone"
              % (DURATION, qlen, queued, probes, worst * 1000, n, m))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        sock.close()


INNER = "MEMWARD_JOURNAL_STALLED_TEST_INNER"

if __name__ == "__main__":
    lib.main(inner if os.environ.get(INNER) else lambda t: tj.run_in_namespace(t, __file__, INNER))
