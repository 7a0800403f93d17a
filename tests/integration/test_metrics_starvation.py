"""Idle and slow connections cannot starve /healthz (issue 16 §2).

One example worker; metrics with the default max_connections and timeout. While these
hold connections to the endpoint:
  * IDLE TCP connections that never send a byte (issue 16: 17 of them kept /healthz
    failing 23 times out of 25, 2,000 of them 20 out of 20);
  * SLOWLORIS connections that send one byte of a request head every 0.5 s, and connect
    again (at their next tick) when memward closes them;
PROBES /healthz requests, one every 20 ms, each with a 1 s timeout as a Kubernetes
probe has, must all answer 200 within that second (the contract as the kubelet sees
it). The test prints their p50/p99/max and asserts p99 < P99_MAX: measured p99 0.6-0.9 ms
on an idle 2-core machine and 0.5-1.2 ms with one core busy (stress-ng --cpu 1), 5 runs
each (5.5-7.6 ms with both busy, 3 runs), so 100 ms leaves a wide margin for a noisy CI.
The probes are timed on this test's clock, though: with stress-ng --cpu 2 beside other
test runs (the slowloris clients then a thread of this process, competing for the
interpreter) one round had a p99 of 113 ms (max 148 ms, every probe within its second). So a round over
P99_MAX is probed once more, the attack still on, and fails only if over it again, as
test_keepalive_latency does: a slow memward is slow in both. Then every client socket is
closed, and memward's open fds must come back to their baseline and its RssAnon to
within RSS_MARGIN_KIB of it (under ASan the memory is not checked: the sanitizer's
shadow memory is not memward's).

Before the fix (MHD accepting by itself) all 100 probes timed out; the test stops
probing after 10 failures.

Then the one case where no slot holds a connection waiting for its request head: with
max_connections: 2, two clients pipeline 2,000 /metrics requests each and never read
(a 1 KiB receive buffer, so the responses cannot drain). /healthz probes made right
after must still answer 200 within 1 s: a response unread for 250 ms gives up its
slot."""

import math
import multiprocessing
import resource
import socket
import time

import lib
import metrics_helpers as mh
from lib import check

IDLE = 2000
SLOWLORIS = 100
MAX_CONNECTIONS = 16            # metrics.max_connections' default
PROBES = 100
PROBE_TIMEOUT = 1.0
P99_MAX = 0.1                   # seconds
ATTEMPTS = 2                    # rounds of PROBES while a round's p99 is over P99_MAX
RSS_MARGIN_KIB = 2048


class Slowloris(multiprocessing.Process):
    """SLOWLORIS connections, each sending one more byte of an endless request head every
    0.5 s; one that memward closed connects again at the next tick. A process of its own:
    as a thread of the probing process it held the interpreter between a probe's
    connect() and its request, a gap no real prober has, in which memward may rightly
    give the probe's still silent connection to newer ones (src/endpoint/http.c)."""

    HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = multiprocessing.Event()
        # Written by the child only, read by the test once it has exited.
        self._bytes = multiprocessing.Value("q", 0, lock=False)
        self._connects = multiprocessing.Value("q", 0, lock=False)
        self._cut = multiprocessing.Value("q", 0, lock=False)

    bytes = property(lambda self: self._bytes.value)
    connects = property(lambda self: self._connects.value)
    cut = property(lambda self: self._cut.value)

    def _connect(self, socks, sent, i):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        socks[i] = s
        sent[i] = 0
        self._connects.value += 1

    def run(self):
        socks, sent = [None] * SLOWLORIS, [0] * SLOWLORIS
        while not self.stop.is_set():
            for i in range(SLOWLORIS):
                s = socks[i]
                if s is None:
                    self._connect(socks, sent, i)
                    continue
                pos = sent[i]
                byte = self.HEAD[pos:pos + 1] if pos < len(self.HEAD) else b"a"
                try:
                    if s.send(byte) == 1:
                        sent[i] += 1
                        self._bytes.value += 1
                except BlockingIOError:
                    pass                # still connecting (the backlog was full)
                except OSError:
                    s.close()
                    socks[i] = None
                    self._cut.value += 1
            self.stop.wait(0.5)
        for s in socks:
            if s is not None:
                s.close()


def open_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def probe(mport):
    """Seconds a /healthz took, or the reason it failed."""
    t0 = time.monotonic()
    try:
        status, _, body = lib.http_get(mport, "/healthz", timeout=PROBE_TIMEOUT)
    except OSError as e:
        return None, "%s after %.3fs" % (e.__class__.__name__, time.monotonic() - t0)
    took = time.monotonic() - t0
    if status != 200:
        return None, "HTTP %d %r" % (status, body)
    if took > PROBE_TIMEOUT:
        return None, "answered after %.3fs" % took
    return took, None


def percentile(sorted_values, p):
    """Nearest-rank: of 100 values, p99 is the 99th smallest."""
    return sorted_values[max(0, math.ceil(len(sorted_values) * p) - 1)]


def wait_back(pid, fds_before, rss_before, sanitized, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        fds = mh.open_fds(pid)
        anon = mh.proc_status(pid)["RssAnon"]
        if fds <= fds_before and (sanitized or anon <= rss_before + RSS_MARGIN_KIB):
            return fds, anon
        if time.monotonic() > deadline:
            return fds, anon
        time.sleep(0.1)


def test(t):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + SLOWLORIS + 512
    if hard != resource.RLIM_INFINITY and hard < want:
        lib.skip("RLIMIT_NOFILE hard limit %d < %d: cannot open %d client sockets" % (hard, want, IDLE))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    port, mport = t.port(), t.port()
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=1))
    mw.wait_event("ready", timeout=15)
    check(lib.wait_http(mport, timeout=10, path="/healthz"), "/healthz never answered")
    # Steady state first: the exposition, /status and /healthz rendered a few times.
    for _ in range(5):
        mh.scrape(mport)
        mh.get(mport, "/status")
        mh.get(mport, "/healthz")
    time.sleep(1.2)
    fds_before = mh.open_fds(mw.pid)
    rss_before = mh.proc_status(mw.pid)["RssAnon"]
    sanitized = mh.is_sanitized(mw.pid)

    idle = open_idle(mport, IDLE)
    slow = Slowloris(mport)
    slow.start()
    peak_fds = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:          # slowloris under way, every slot taken
        peak_fds = max(peak_fds, mh.open_fds(mw.pid))
        time.sleep(0.05)

    p99s = []
    try:
        for attempt in range(ATTEMPTS):
            took, failures = [], []
            for _ in range(PROBES):
                secs, error = probe(mport)
                if error:
                    failures.append(error)
                    if len(failures) >= 10:
                        break           # failed already; do not wait out 100 timeouts
                else:
                    took.append(secs)
                peak_fds = max(peak_fds, mh.open_fds(mw.pid))
                time.sleep(0.02)
            if failures or not took:
                break                   # every probe must answer within its second: no second round
            p99s.append(percentile(sorted(took), 0.99))
            if p99s[-1] < P99_MAX:
                break
        check(mw.proc.poll() is None, "memward exited under the load")
    finally:
        slow.stop.set()
        slow.join(10)
        for s in idle:
            s.close()

    took.sort()
    if took:
        summary = ("/healthz behind %d idle + %d slowloris connections: %d/%d answered 200 within %.0fs; "
                   "p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                   % (IDLE, SLOWLORIS, len(took), len(took) + len(failures), PROBE_TIMEOUT,
                      percentile(took, 0.5) * 1000, percentile(took, 0.99) * 1000, took[-1] * 1000))
    else:
        summary = "/healthz behind %d idle + %d slowloris connections: none of %d answered" % (
            IDLE, SLOWLORIS, len(failures))
    summary += ("; slowloris sent %d bytes over %d connections, %d cut by memward; memward fds %d at rest, "
                "peak %d; p99 of each round %s ms" % (slow.bytes, slow.connects, slow.cut, fds_before, peak_fds,
                                                       ", ".join("%.1f" % (x * 1000) for x in p99s)))
    print(summary)
    check(peak_fds >= fds_before + MAX_CONNECTIONS - 2, "the clients never filled the %d connection slots: %s"
          % (MAX_CONNECTIONS, summary))
    check(not failures, "%d of %d probes failed (%s): %s"
          % (len(failures), len(failures) + len(took), ", ".join(failures[:5]), summary))
    p99 = percentile(took, 0.99)
    check(p99 < P99_MAX, "/healthz p99 %.1f ms >= %.0f ms: %s" % (p99 * 1000, P99_MAX * 1000, summary))

    fds_after, rss_after = wait_back(mw.pid, fds_before, rss_before, sanitized)
    memory = "RssAnon %d KiB before, %d KiB after" % (rss_before, rss_after)
    print("fds %d before, %d after; %s%s" % (fds_before, fds_after, memory,
                                             " (ASan build: not checked)" if sanitized else ""))
    check(fds_after <= fds_before, "memward holds %d fds after the clients left, %d before" % (fds_after,
                                                                                              fds_before))
    if not sanitized:
        check(rss_after <= rss_before + RSS_MARGIN_KIB, "memward's %s (margin %d KiB)" % (memory, RSS_MARGIN_KIB))
    check(mh.get(mport, "/healthz", timeout=PROBE_TIMEOUT)[0] == 200, "/healthz after the clients left")
    check(mw.stop() == 0, "memward did not exit 0")
    stalled_readers(t)


def stalled_readers(t):
    port, mport = t.port(), t.port()
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=1, metrics_extra={"max_connections": 2}),
                   name="stalled")
    mw.wait_event("ready", timeout=15)
    check(lib.wait_http(mport, timeout=10, path="/healthz"), "/healthz never answered")
    readers = []
    try:
        for _ in range(2):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.connect(("127.0.0.1", mport))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
            readers.append(s)
        time.sleep(0.05)
        took = []
        for _ in range(5):
            secs, error = probe(mport)
            check(not error, "/healthz behind 2 clients that do not read their responses: %s (before: %r)"
                  % (error, took))
            took.append(secs)
    finally:
        for s in readers:
            s.close()
    print("/healthz behind 2 clients that do not read their responses (max_connections: 2): %s ms"
          % ", ".join("%.1f" % (x * 1000) for x in took))
    check(mw.stop() == 0, "memward did not exit 0")


if __name__ == "__main__":
    lib.main(test)
