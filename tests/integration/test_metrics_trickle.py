"""Clients that trickle their request head cannot starve the metrics endpoint.

metrics {max_connections: 2, timeout: 2s}. Two clients take both slots and send one
byte of a request head every 0.5 s, which resets an idle timeout forever. memward must
close each of them once its head is 2 s overdue, and a plain /healthz made meanwhile
must be answered within the timeout plus a moment (the old idle-only timeout let the
trickle hold the slots for as long as the clients kept going). At capacity the /healthz
takes the slot of one trickling client; the other keeps its slot until its head is
overdue (one new connection gives up one slot, not more)."""

import select
import socket
import threading
import time

import lib
from lib import check

TIMEOUT = 2.0
TRICKLE_FOR = 12.0


def trickle(port, result):
    t0 = time.monotonic()               # before memward can accept: its timeout counts from then
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    try:
        while time.monotonic() - t0 < TRICKLE_FOR:
            s.sendall(b"a")
            # Between bytes, watch for memward's close (EOF, after any answer): noticed
            # at once, not at the second send after it (up to a second late), which
            # would eat the margin of the bound below on a loaded machine.
            pause = time.monotonic() + 0.5
            while time.monotonic() < pause:
                if select.select([s], [], [], max(0.0, pause - time.monotonic()))[0] and not s.recv(65536):
                    raise ConnectionResetError("closed by memward")
        result["closed_after"] = None
    except OSError:
        result["closed_after"] = time.monotonic() - t0
    finally:
        s.close()


def test(t):
    port, mport = t.port(), t.port()
    cfg = lib.config(port, count=1, metrics={"listen": "127.0.0.1:%d" % mport, "max_connections": 2,
                                             "timeout": "%ds" % TIMEOUT})
    mw = t.memward(cfg)
    mw.wait_event("ready", timeout=15)
    check(lib.wait_http(mport, timeout=10, path="/healthz"), "/healthz never answered")

    results = [{}, {}]
    threads = [threading.Thread(target=trickle, args=(mport, r), daemon=True) for r in results]
    for th in threads:
        th.start()
    time.sleep(0.5)         # both slots taken

    t0 = time.monotonic()
    status, _, body = lib.http_get(mport, "/healthz", timeout=TRICKLE_FOR)
    waited = time.monotonic() - t0
    check(status == 200, "/healthz: HTTP %d %r" % (status, body))
    check(waited <= TIMEOUT + 1.5, "/healthz waited %.1fs behind two trickling clients (timeout %.0fs)"
          % (waited, TIMEOUT))
    for th in threads:
        th.join(TRICKLE_FOR + 5)
    for r in results:
        closed = r.get("closed_after")
        check(closed is not None and closed <= TIMEOUT + 2.0,
              "a trickling client kept its connection for %s s" % closed)
    last = max(r["closed_after"] for r in results)
    # Now that a close is noticed at once, 0.1 s for memward's millisecond timers (it was
    # noticed up to a second late before, so this bound is tighter than it was).
    check(last >= TIMEOUT - 0.1, "both trickling clients were cut before their head was overdue (%.1f and %.1f s): "
          "one /healthz took two slots" % (results[0]["closed_after"], results[1]["closed_after"]))
    check(mw.stop() == 0, "memward did not exit 0")
    print("/healthz answered after %.2fs behind 2 trickling clients; they were cut after %.3f and %.3f s"
          % (waited, results[0]["closed_after"], results[1]["closed_after"]))


if __name__ == "__main__":
    lib.main(test)
