"""Hostile clients on the metrics endpoint do not hurt supervision.

One example worker with recycle {max_requests: 20}; metrics {max_connections: 8,
timeout: 2s}. While these run against the endpoint at the same time:
  * slowloris: 32 connections that send a request head one byte every 0.4 s;
  * a flood of 10,000 connection attempts (non-blocking connects, held 3 s);
  * 1 MiB request lines;
  * garbage bytes (binary junk, a request line of junk, a huge header);
the test drives the worker to its limit three times, sequentially, and checks:
  * every max_requests recycle is logged less than RECYCLE_DELAY_MAX after the 20th
    response (supervision is not held up: notify datagrams are read on time) and
    says requests=20 (no backlog of X_REQUESTS piled up);
  * memward holds max_connections HTTP connections at the peak (the attack worked)
    and never more (open fds);
  * memward's anonymous memory (RssAnon) stays below baseline + RSS_GROWTH_MAX_KIB, and
    VmRSS below baseline + RSS_GROWTH_MAX_KIB (stated bound: 1 MiB over the idle
    baseline, for 8 connections of 16 KiB each plus rendering buffers);
  * the oversized and garbage requests get a 4xx or a closed connection, never a 200
    (while the flood runs the endpoint is at capacity, and a request head that never
    completes is what gives up its slot to a new connection: closed; the last round
    runs after the flood, and there each gets its 4xx);
  * afterwards /metrics and /healthz answer 200 again and the fd count is back.
Under ASan (make asan) the memory bound is not checked: the sanitizer's shadow memory
and quarantine are not memward's."""

import os
import random
import resource
import socket
import threading
import time

import lib
import metrics_helpers as mh
from lib import check

LIMIT = 20
ROUNDS = 3
MAX_CONN = 8
SLOWLORIS = 32
FLOOD = 10000
RECYCLE_DELAY_MAX = 1.0         # seconds from the 20th response to the recycle line
RSS_GROWTH_MAX_KIB = 1024


class Monitor(threading.Thread):
    """Samples memward's RssAnon, VmRSS and open fds every 20 ms; keeps the peaks."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = {"RssAnon": 0, "VmRSS": 0, "fds": 0}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                st = mh.proc_status(self.pid)
                fds = mh.open_fds(self.pid)
            except OSError:
                return
            for k, v in (("RssAnon", st.get("RssAnon", 0)), ("VmRSS", st.get("VmRSS", 0)), ("fds", fds)):
                self.peak[k] = max(self.peak[k], v)
            time.sleep(0.02)


def slowloris(mport, stop, stats):
    socks = []
    for _ in range(SLOWLORIS):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", mport))
        socks.append(s)
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
    pos = 0
    while not stop.is_set() and pos < len(head):
        for s in socks:
            try:
                s.send(head[pos:pos + 1])
                stats["slow_bytes"] += 1
            except OSError:
                pass
        pos += 1
        stop.wait(0.4)
    for s in socks:
        s.close()


def flood(mport, stats):
    socks = []
    t0 = time.monotonic()
    for _ in range(FLOOD):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", mport))
        socks.append(s)
    stats["flood_open_s"] = time.monotonic() - t0
    stats["flood"] = len(socks)
    time.sleep(3)
    for s in socks:
        s.close()
    stats["flood_done"].set()


def send_and_read(mport, payload, timeout=20.0):
    """Sends payload (as far as the server lets us) and returns what came back. While the
    flood fills the backlog a connect can time out: it is tried again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", mport), timeout=2)
            break
        except OSError:
            check(time.monotonic() < deadline, "could not connect to the endpoint for %.0fs" % timeout)
    s.settimeout(max(1.0, deadline - time.monotonic()))
    try:
        try:
            s.sendall(payload)
        except OSError:
            pass                        # the server closed on us mid-send: fine
        out = b""
        try:
            while len(out) < 65536:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except OSError:
            pass
        return out
    finally:
        s.close()


def oversized(mport, stats):
    try:
        _oversized(mport, stats)
    except Exception as e:          # reported by the main thread
        stats["errors"].append(repr(e))


def _oversized(mport, stats):
    rnd = random.Random(5)
    cases = [
        b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n",
        bytes(rnd.getrandbits(8) for _ in range(65536)),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200) + b"\r\n\r\n",   # a TLS hello
        b"\x00\xff GARBAGE \x01\x02\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET\r\n\r\n",
    ]
    for i in range(3):
        if i == 2:
            stats["flood_done"].wait(30)
        for payload in cases:
            reply = send_and_read(mport, payload)
            first = reply.split(b"\r\n", 1)[0].decode("latin-1")
            stats["replies"].append(first)
            if reply:
                code = first.split(" ")[1] if first.count(" ") >= 1 else "?"
                check(first.startswith("HTTP/1.") and code.startswith(("4", "5")),
                      "hostile request %r... answered %r" % (payload[:40], first))


def test(t):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FLOOD + 512
    if hard != resource.RLIM_INFINITY and hard < want:
        lib.skip("RLIMIT_NOFILE hard limit %d < %d: cannot open %d client sockets" % (hard, want, FLOOD))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    port, mport = t.port(), t.port()
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=1, recycle={"max_requests": LIMIT},
                             metrics_extra={"max_connections": MAX_CONN, "timeout": "2s"}))
    mw.wait_event("ready", timeout=15)
    # Steady state first: the exposition and /status rendered a few times.
    for _ in range(5):
        mh.scrape(mport)
        mh.get(mport, "/status")
    time.sleep(1.2)
    before = mh.proc_status(mw.pid)
    fds_before = mh.open_fds(mw.pid)
    sanitized = mh.is_sanitized(mw.pid)

    mon = Monitor(mw.pid)
    mon.start()
    stop = threading.Event()
    stats = {"slow_bytes": 0, "replies": [], "errors": [], "flood_done": threading.Event()}
    threads = [threading.Thread(target=slowloris, args=(mport, stop, stats), daemon=True),
               threading.Thread(target=flood, args=(mport, stats), daemon=True),
               threading.Thread(target=oversized, args=(mport, stats), daemon=True)]
    for th in threads:
        th.start()

    # The rounds run while every attack is under way: the flood is open, slowloris has
    # taken every connection slot.
    deadline = time.monotonic() + 15
    while (stats.get("flood") is None or stats["slow_bytes"] < SLOWLORIS * 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(stats.get("flood") == FLOOD, "the flood did not open its sockets in time")
    delays = []
    try:
        for r in range(ROUNDS):
            if r:
                time.sleep(1.5)         # past the 2 s idle timeout over the rounds
            seen = len(mw.events("recycle"))
            for _ in range(LIMIT):
                status, _, _ = lib.http_get(port, "/", timeout=10)
                check(status == 200, "worker answered %d" % status)
            t_last = time.time()        # against memward's time=: the attack's threads may delay our reading
            line = mw.wait_event("recycle", count=seen + 1, timeout=10)[-1]
            delays.append(line.at - t_last)
            check(line.get("reason") == "max_requests" and
                  (line.int("requests") == LIMIT or (line.get("expected_in") and line.int("requests") < LIMIT)),
                  "round %d: %s" % (r, line.text))
            old = line.get("pid")
            mw.wait_event("exit", timeout=10, pid=old)
            check(mon.peak["fds"] <= fds_before + MAX_CONN + 2,
                  "memward holds %d fds (baseline %d, max_connections %d)" % (mon.peak["fds"], fds_before, MAX_CONN))
    finally:
        stop.set()
        for th in threads:
            th.join(30)
    check(not any(th.is_alive() for th in threads), "attack threads did not finish")
    time.sleep(0.3)
    mon.stop.set()
    mon.join(5)

    check(not stats["errors"], "oversized/garbage requests: %r" % stats["errors"])
    codes = {r.split(" ")[1] for r in stats["replies"] if r.startswith("HTTP/")}
    check({"400", "414", "431"} <= codes, "the oversized and garbage requests were not all answered with their "
          "4xx: %r" % sorted(set(stats["replies"])))
    for d in delays:
        check(d < RECYCLE_DELAY_MAX, "a recycle came %.3fs after the limit was reached (delays %r)" % (d, delays))
    check(stats.get("flood") == FLOOD, "flood opened %r sockets" % stats.get("flood"))
    check(mon.peak["fds"] <= fds_before + MAX_CONN + 2, "peak fds %d, baseline %d" % (mon.peak["fds"], fds_before))
    check(mon.peak["fds"] >= fds_before + MAX_CONN, "the attack never filled the %d connection slots (peak fds %d, "
          "baseline %d)" % (MAX_CONN, mon.peak["fds"], fds_before))

    # Afterwards: the endpoint serves again once the hostile connections are gone.
    deadline = time.monotonic() + 8
    while True:
        try:
            status, _, _ = mh.get(mport, "/metrics", timeout=3)
            if status == 200:
                break
        except OSError:
            status = None
        check(time.monotonic() < deadline, "/metrics did not come back (last %r)" % status)
        time.sleep(0.2)
    check(mh.get(mport, "/healthz")[0] == 200, "/healthz after the attack")
    deadline = time.monotonic() + 5
    while mh.open_fds(mw.pid) > fds_before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(mh.open_fds(mw.pid) <= fds_before + 1, "fds after: %d, before %d" % (mh.open_fds(mw.pid), fds_before))
    after = mh.proc_status(mw.pid)

    growth_anon = mon.peak["RssAnon"] - before["RssAnon"]
    growth_rss = mon.peak["VmRSS"] - before["VmRSS"]
    summary = ("RssAnon %d KiB before, peak %d KiB (+%d), after %d KiB; VmRSS %d -> peak %d KiB (+%d); "
               "peak fds %d (baseline %d); recycle delays %s ms; flood opened in %.2fs; %d slowloris bytes; "
               "replies %s" % (before["RssAnon"], mon.peak["RssAnon"], growth_anon, after["RssAnon"],
                               before["VmRSS"], mon.peak["VmRSS"], growth_rss, mon.peak["fds"], fds_before,
                               [round(d * 1000) for d in delays], stats.get("flood_open_s", 0),
                               stats["slow_bytes"], sorted(set(stats["replies"]))))
    if sanitized:
        summary = "ASan build, memory bound not checked: " + summary
    else:
        check(growth_anon <= RSS_GROWTH_MAX_KIB, "RssAnon grew by %d KiB: %s" % (growth_anon, summary))
        check(growth_rss <= RSS_GROWTH_MAX_KIB, "VmRSS grew by %d KiB: %s" % (growth_rss, summary))
    check(mw.stop() == 0, "memward did not exit 0")
    print(summary)


if __name__ == "__main__":
    lib.main(test)
