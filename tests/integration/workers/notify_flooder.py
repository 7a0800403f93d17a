"""A worker whose helper floods memward's notify socket (test_fault_notify_flood).

In slot $FLOOD_SLOT (default 0) the worker forks one helper (a worker descendant, so
its datagrams are accepted as the worker's), sends READY=1 and idles until SIGTERM.
It never accepts a connection and never reports a request, so max_requests never
recycles it. The helper waits until $FLOOD_DIR/start exists, then sends for
$FLOOD_SECONDS at $FLOOD_RATE datagrams/s at most, with non-blocking sends (memward's
queue is only net.unix.max_dgram_qlen deep; a full queue is counted, not waited on),
and writes what it achieved to $FLOOD_DIR/worker.json.

Every other slot execs the example worker, which serves HTTP on the shared socket.

    notify_flooder.py --foreign ADDRESS SECONDS RATE OUTPUT

is the same flood from a process outside memward's tree (the test runs it): every
datagram it gets through must be rejected as foreign.
"""

import array
import json
import os
import socket
import sys
import time

import common

EXAMPLE_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                              "examples", "python", "worker.py")
DATAGRAM_MAX = 4096     # NOTIFY_DATAGRAM_MAX in include/memward/linux/notify.h

# (why, payload, number of fds to pass): `why` is how memward must count the datagram
# when a worker's descendant sends it ("accepted": not a rejection). A valid X_REQUESTS
# stays far below any max_requests the test sets, so the flood never recycles its worker.
MIX = [
    ("accepted", b"X_REQUESTS=1", 0),
    ("accepted", b"WATCHDOG=1", 0),
    ("accepted", b"X_REQUESTS=1\nX_INFLIGHT=1\nWATCHDOG=1\nSTATUS=flooding\n", 0),
    ("accepted", b"\xff\xfe=\x80", 0),                                 # bad UTF-8, unknown key
    ("accepted", b"STATUS=\xc3\x28 \xed\xa0\x80 " + "\u00e9".encode() * 100, 0),  # bad UTF-8, cut at 127 bytes
    ("oversized", b"X_REQUESTS=1\n" + b"x" * DATAGRAM_MAX, 0),
    ("oversized", b"S" * 65000, 0),
    ("oversized", b"x" * 5000, 2),                                     # oversized and fds
    ("malformed", b"X_REQUESTS=\xff\xfe\x80", 0),                      # bad UTF-8 as a counter
    ("malformed", b"no equals sign here", 0),
    ("malformed", b"X_REQUESTS=18446744073709551616", 0),             # 2^64
    ("malformed", b"X_REQUESTS=" + b"9" * 300, 0),
    ("malformed", b"X_REQUESTS=1\0X_REQUESTS=100000", 0),              # embedded NUL
    ("malformed", b"=1", 0),
    ("fds", b"X_REQUESTS=1", 1),
    ("fds", b"WATCHDOG=1", 3),
    ("fds", b"X_REQUESTS=1", 20),                                     # more than memward's cmsg room
]


def flood(addr, seconds, rate):
    """Sends MIX round-robin for `seconds`; returns per-kind counts and the rates."""
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    s.connect(addr)
    s.setblocking(False)
    pipe_r, pipe_w = os.pipe()
    passed = array.array("i", [pipe_r, pipe_w] * 10)
    mix = [(kind, payload, [(socket.SOL_SOCKET, socket.SCM_RIGHTS, passed[:n])] if n else None)
           for kind, payload, n in MIX]
    sent = {kind: 0 for kind, _, _ in MIX}
    full = 0
    attempts = 0
    t0 = time.monotonic()
    end = t0 + seconds
    i = 0
    while True:
        if attempts % 256 == 0:
            now = time.monotonic()
            if now >= end:
                break
            ahead = t0 + attempts / rate - now
            if ahead > 0:
                time.sleep(ahead)
        kind, payload, anc = mix[i]
        i = (i + 1) % len(mix)
        attempts += 1
        try:
            if anc:
                s.sendmsg([payload], anc)
            else:
                s.send(payload)
            sent[kind] += 1
        except BlockingIOError:
            full += 1
    elapsed = time.monotonic() - t0
    s.close()
    total = sum(sent.values())
    return {"pid": os.getpid(), "seconds": elapsed, "attempts": attempts, "sent": sent, "sent_total": total,
            "queue_full": full, "attempt_rate": attempts / elapsed, "send_rate": total / elapsed}


def write_json(path, data):
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.rename(path + ".tmp", path)


def helper(directory, seconds, rate):
    while not os.path.exists(os.path.join(directory, "start")):
        time.sleep(0.01)
    write_json(os.path.join(directory, "worker.json"), flood(os.environ["NOTIFY_SOCKET"], seconds, rate))


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--foreign":
        write_json(sys.argv[5], flood(sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
        return 0
    if os.environ.get("MEMWARD_WORKER_ID") != os.environ.get("FLOOD_SLOT", "0"):
        os.execv(sys.executable, [sys.executable, EXAMPLE_WORKER])
    if os.fork() == 0:
        try:
            # Only a first-generation worker floods, and the helper dies with its worker.
            if os.environ.get("MEMWARD_WORKER_GENERATION") == "1":
                helper(os.environ["FLOOD_DIR"], float(os.environ.get("FLOOD_SECONDS", "5")),
                       float(os.environ.get("FLOOD_RATE", "100000")))
        finally:
            os._exit(0)
    common.notify("READY=1")
    common.idle_until_term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
