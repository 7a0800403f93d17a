"""The notify socket trusts only workers and their descendants.

A process outside memward's tree (this test) sends X_REQUESTS=1000000,
WATCHDOG=1, READY=1 and garbage (oversized, embedded NUL, invalid UTF-8, empty)
to the socket the workers were given. Every datagram is sent in full (sendto's
return), and memward counts each one in memward_notify_rejected_total (why="foreign",
or "oversized" for the one over 4 KiB): they did arrive, and nothing is recycled,
memward keeps running and serving.

The positive control, in the same run: a worker sends the same X_REQUESTS=1000000
itself (tests/integration/workers/parrot.py, at the SIGUSR1 memward forwards), and
memward recycles it for max_requests at once. So the foreign datagrams were ignored
because of who sent them, not because of what they said. A worker's own grandchild is
trusted too (the gunicorn case; see test_gunicorn)."""

import signal
import socket
import time

import lib
import metrics_helpers as mh
from lib import check

MAX_REQUESTS = 50
PAYLOAD = b"X_REQUESTS=1000000"


def rejected(mport):
    _, samples = mh.scrape(mport)
    return {l["why"]: int(v) for l, v in mh.values(samples, "memward_notify_rejected_total")}


def sent_by_workers(path, n, timeout=5.0):
    """The (pid, bytes) lines parrot.py writes after its datagram went out: n of them
    (memward may act on a datagram before its sender has written the line)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                said = [tuple(map(int, line.split())) for line in f if line.endswith("\n")]
        except FileNotFoundError:
            said = []
        if len(said) >= n or time.monotonic() > deadline:
            return said
        time.sleep(0.05)


def test(t):
    port, mport = t.port(), t.port()
    parrot = t.write("parrot", PAYLOAD.decode())
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=2, command=lib.test_worker("parrot.py"),
                             listen=[], workers={"env": {"PARROT_FILE": parrot}},
                             recycle={"max_requests": MAX_REQUESTS}))
    mw.wait_event("ready", count=2)
    workers = mw.current_workers()
    addr = lib.worker_notify_socket(next(iter(workers.values())))
    before = rejected(mport)
    check(sum(before.values()) == 0, "rejections before the test sent anything: %r" % before)

    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.settimeout(5.0)       # blocking: memward's queue holds 10, each send waits its turn
    payloads = [PAYLOAD, b"READY=1\nX_REQUESTS=999", b"WATCHDOG=1",
                b"X_REQUESTS=1\0X_REQUESTS=1000000", b"\xff\xfe\xfd=\xff", b"",
                b"X_REQUESTS=-5", b"X_REQUESTS=99999999999999999999999999",
                b"X" * 60000, b"=" * 100, b"\n" * 100]
    sent = oversized = 0
    for _ in range(20):
        for p in payloads:
            n = s.sendto(p, addr)
            check(n == len(p), "sendto sent %d of %d bytes" % (n, len(p)))
            sent += 1
            oversized += len(p) > 4096
    s.close()

    want = {"foreign": sent - oversized, "oversized": oversized}
    deadline = time.monotonic() + 5
    while True:
        got = {k: v for k, v in rejected(mport).items() if v}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(got == want, "memward_notify_rejected_total %r, want %r for the %d datagrams sent" % (got, want, sent))
    check(mw.running(), "memward died from foreign datagrams")
    check(not mw.events("recycle"), "a foreign datagram caused a recycle: %r" % mw.events("recycle"))
    check(mw.current_workers() == workers, "workers changed: %r" % mw.current_workers())

    # The control: the same X_REQUESTS=1000000, from the workers themselves.
    since = time.monotonic()
    mw.signal(signal.SIGUSR1)
    recycles = mw.wait_event("recycle", count=2, since=since, timeout=10)
    for r in recycles:
        check(r.get("reason") == "max_requests" and r.get("requests") == "1000000",
              "the worker's own X_REQUESTS=1000000: %s" % r.text)
    check({int(r.get("pid")) for r in recycles} == set(workers.values()),
          "recycled %r, want the workers %r" % ([r.get("pid") for r in recycles], workers))
    said = sent_by_workers(parrot + ".sent", 2)
    check(sorted(pid for pid, _ in said) == sorted(workers.values()) and all(n == len(PAYLOAD) for _, n in said),
          "the workers said %r" % said)
    check(rejected(mport) == {k: before.get(k, 0) + want.get(k, 0) for k in before},
          "a worker's own datagram was counted as rejected: %r" % rejected(mport))
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("%d foreign datagrams sent and counted as rejected (%d oversized), none acted on; "
          "the workers' own X_REQUESTS=1000000 recycled both %.2fs after SIGUSR1"
          % (sent, oversized, max(r.t for r in recycles) - since))


if __name__ == "__main__":
    lib.main(test)
