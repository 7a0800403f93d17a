"""The notify socket trusts only workers and their descendants.

A process outside memward's tree (this test) sends X_REQUESTS=1000000,
WATCHDOG=1, READY=1 and garbage (oversized, embedded NUL, invalid UTF-8, empty)
to the socket the workers were given: nothing is recycled, memward keeps running
and serving. A worker's own grandchild, though, is trusted (the gunicorn case; see
test_gunicorn)."""

import socket
import time

import lib
from lib import check


def test(t):
    port = t.port()
    mw = t.memward(lib.config(port, count=2, recycle={"max_requests": 50}))
    mw.wait_event("ready", count=2)
    workers = mw.current_workers()
    addr = lib.worker_notify_socket(next(iter(workers.values())))

    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setblocking(False)
    payloads = [b"X_REQUESTS=1000000", b"READY=1\nX_REQUESTS=999", b"WATCHDOG=1",
                b"X_REQUESTS=1\0X_REQUESTS=1000000", b"\xff\xfe\xfd=\xff", b"",
                b"X_REQUESTS=-5", b"X_REQUESTS=99999999999999999999999999",
                b"X" * 60000, b"=" * 100, b"\n" * 100]
    sent = 0
    for _ in range(20):
        for p in payloads:
            try:
                s.sendto(p, addr)
                sent += 1
            except (BlockingIOError, OSError):
                time.sleep(0.01)
    s.close()
    time.sleep(1.0)
    check(mw.running(), "memward died from foreign datagrams")
    check(not mw.events("recycle"), "a foreign datagram caused a recycle: %r" % mw.events("recycle"))
    check(mw.current_workers() == workers, "workers changed: %r" % mw.current_workers())
    lib.Load(port, threads=4, total=40).start().join(30).check_no_failures()
    check(not mw.events("recycle"), "recycled below max_requests after foreign datagrams")
    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("%d foreign datagrams ignored" % sent)


if __name__ == "__main__":
    lib.main(test)
