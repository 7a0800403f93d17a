"""memward under systemd (NOTIFY_SOCKET and WATCHDOG_USEC set for memward itself):
READY=1 once `count` workers are ready, STATUS= lines, WATCHDOG=1 at about half of
WATCHDOG_USEC, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM.

The "systemd" is a datagram socket this test binds."""

import signal
import socket
import threading
import time

import lib
from lib import check


class FakeSystemd:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []              # (monotonic time, text)
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def having(self, assignment, since=0.0):
        return [(t, m) for t, m in list(self.messages) if t >= since and assignment in m.split("\n")]

    def wait(self, assignment, since=0.0, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = self.having(assignment, since)
            if hits:
                return hits
            time.sleep(0.02)
        lib.fail("systemd never got %s (got %r)" % (assignment, [m for _, m in self.messages][-10:]))

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()


def test(t):
    port = t.port()
    sd = FakeSystemd(t.path("notify"))
    mw = t.memward(lib.config(port, count=2, workers={"env": {"EXAMPLE_BOOT_DELAY_MS": "300"}}),
                   env={"NOTIFY_SOCKET": t.path("notify"), "WATCHDOG_USEC": "1000000"})
    try:
        ready_lines = mw.wait_event("ready", count=2)
        ready = sd.wait("READY=1")
        check(ready[0][0] >= ready_lines[0].t - 0.1,
              "READY=1 came before the workers were ready")
        check(any(m.startswith("STATUS=") or "\nSTATUS=" in m for _, m in sd.messages),
              "no STATUS= sent: %r" % sd.messages[:5])

        time.sleep(2.0)
        pings = sd.having("WATCHDOG=1")
        check(3 <= len(pings) <= 8, "%d WATCHDOG=1 pings in ~2.3 s with WATCHDOG_USEC=1s" % len(pings))

        since = time.monotonic()
        mw.signal(signal.SIGHUP)
        reloading = sd.wait("RELOADING=1", since=since)
        mw.wait_event("ready", count=2, since=since, timeout=15)
        again = sd.wait("READY=1", since=reloading[0][0], timeout=10)
        check(again[0][0] >= reloading[0][0], "READY=1 before RELOADING=1")

        since = time.monotonic()
        mw.signal(signal.SIGTERM)
        rc = mw.wait_exit(10)
        check(rc == 0, "memward exited %s" % rc)
        sd.wait("STOPPING=1", since=since, timeout=2)
    finally:
        sd.close()


if __name__ == "__main__":
    lib.main(test)
