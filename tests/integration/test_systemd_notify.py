"""memward under systemd (NOTIFY_SOCKET and WATCHDOG_USEC set for memward itself):
READY=1 once `count` workers are ready (not at the first: worker 1 takes 1.5 s longer
to boot: memward's log must say both workers' ready before service_ready, and its
messages "STATUS=1/2 workers ready" before READY=1), STATUS= lines, WATCHDOG=1 at about half of
WATCHDOG_USEC, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM.

The "systemd" is a datagram socket this test binds."""

import signal
import socket
import struct
import threading
import time

import lib
from lib import check

# <asm-generic/socket.h>; Python's socket module does not name them.
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35


class FakeSystemd:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.2)
        self.messages = []              # (monotonic time, text, the kernel's CLOCK_REALTIME stamp)
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            except OSError:
                return
            sent = [struct.unpack("@ll", payload[:struct.calcsize("@ll")]) for level, kind, payload in ancdata
                    if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS]
            self.messages.append((time.monotonic(), data.decode("utf-8", "replace"),
                                  sent[0][0] + sent[0][1] / 1e9 if sent else None))

    def having(self, assignment, since=0.0):
        return [(t, m) for t, m, _ in list(self.messages) if t >= since and assignment in m.split("\n")]

    def sent(self, assignment, since=0.0):
        """When the kernel queued each message with `assignment`: how late our thread got
        to read them (a busy machine) does not count."""
        return [k for t, m, k in list(self.messages) if t >= since and assignment in m.split("\n")]

    def wait(self, assignment, since=0.0, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = self.having(assignment, since)
            if hits:
                return hits
            time.sleep(0.02)
        lib.fail("systemd never got %s (got %r)" % (assignment, [m for _, m, _ in self.messages][-10:]))

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()


LATE_MS = 1500      # worker 1 boots this much later than worker 0
# Worker 1 sleeps LATE_MS before READY=1 (exec keeps the pid that LISTEN_PID names).
COMMAND = ["/bin/sh", "-c", 'if [ "$MEMWARD_WORKER_ID" = 1 ]; then export EXAMPLE_BOOT_DELAY_MS=%d; fi; '
           'exec "$0" "$@"' % LATE_MS] + lib.EXAMPLE_COMMAND


def test(t):
    port = t.port()
    sd = FakeSystemd(t.path("notify"))
    mw = t.memward(lib.config(port, count=2, command=COMMAND),
                   env={"NOTIFY_SOCKET": t.path("notify"), "WATCHDOG_USEC": "1000000"})
    try:
        mw.wait_event("service_ready", timeout=15)
        ready = sd.wait("READY=1")
        # In memward's own order (one stderr stream): both workers' ready, then READY=1.
        order = [l.event for l in mw.lines() if l.event in ("ready", "service_ready")]
        check(order[:3] == ["ready", "ready", "service_ready"], "memward logged %r" % order)
        check(mw.events("service_ready")[0].get("workers") == "2", mw.events("service_ready")[0].text)
        # What memward told systemd, in the order it said it (one socket, one reader).
        half = sd.having("STATUS=1/2 workers ready")
        check(half and half[0][0] <= ready[0][0], "no STATUS=1/2 workers ready before READY=1: %r"
              % [m for _, m, _ in sd.messages][:10])
        gap = ready[0][0] - half[0][0]     # ~LATE_MS; not judged: worker 0's own start-up varies under load
        check(not [m for t0, m, _ in sd.messages if t0 < ready[0][0] and "2/2" in m],
              "2/2 workers ready before READY=1: %r" % sd.messages[:10])

        # Pings over 2.5 s from now, not since memward started: how long the workers took to
        # boot (longer on a busy machine) must not count. At half of WATCHDOG_USEC they come
        # every ~0.5 s (1 s apart would be the whole interval, no margin for systemd).
        since = time.monotonic()
        time.sleep(2.5)
        pings = sd.sent("WATCHDOG=1", since=since)
        check(None not in pings, "a datagram without SCM_TIMESTAMPNS")
        gaps = sorted(b - a for a, b in zip(pings, pings[1:]))
        check(len(pings) >= 3 and 0.3 <= gaps[len(gaps) // 2] <= 0.75,
              "WATCHDOG=1 with WATCHDOG_USEC=1s: %d pings in 2.5 s, %s s apart"
              % (len(pings), " ".join("%.2f" % g for g in gaps)))

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
        print("READY=1 %.2fs after STATUS=1/2 workers ready (worker 1 booted %.1fs later)"
              % (gap, LATE_MS / 1000))
    finally:
        sd.close()


if __name__ == "__main__":
    lib.main(test)
