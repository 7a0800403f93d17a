"""A worker that stops itself at the request limit memward gave it, as memward-gunicorn
does (docs/fork-server.md §2), with nothing but the standard library.

Reads MEMWARD_MAX_REQUESTS, serves HTTP/1.0-style (one request per connection) on the
listening socket memward passed (LISTEN_FDS, fd 3), answers "pid=<pid> served=<n>",
sends X_REQUESTS=<n> after each request and exits 0 by itself once n reaches the limit.
SIGTERM: exits 0 after the request it is in.

SELFSTOP_READY_DELAY=<seconds>: waits that long before READY=1 (a slow start-up, so
that a replacement is in flight for a while).
SELFSTOP_EXIT_AT_ONCE=1: exits 0 right after READY=1, having served nothing."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402  (installs the SIGTERM handler)

LISTEN_FDS_START = 3


def serve_one(conn, served):
    conn.settimeout(5.0)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    body = ("pid=%d served=%d\n" % (os.getpid(), served)).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                 b"X-Worker-Pid: %d\r\nContent-Length: %d\r\n\r\n%s" % (os.getpid(), len(body), body))
    return True


def main():
    limit = int(os.environ.get("MEMWARD_MAX_REQUESTS") or 0)
    check = os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID") == str(os.getpid())
    if not check:
        sys.exit("selfstop: no listening socket (LISTEN_FDS=%r LISTEN_PID=%r)"
                 % (os.environ.get("LISTEN_FDS"), os.environ.get("LISTEN_PID")))
    time.sleep(float(os.environ.get("SELFSTOP_READY_DELAY") or 0))
    common.notify("READY=1")
    if os.environ.get("SELFSTOP_EXIT_AT_ONCE") == "1":
        sys.exit(0)

    listener = socket.socket(fileno=LISTEN_FDS_START)
    listener.settimeout(0.05)       # to see SIGTERM and a changed parent
    parent = os.getppid()
    served = 0
    while not common._stop and os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except (socket.timeout, InterruptedError):
            continue
        with conn:
            if not serve_one(conn, served + 1):
                continue
        served += 1
        common.notify("X_REQUESTS=%d" % served)
        if limit and served >= limit:
            # Gone at once, as a runtime at its limit is: memward has the count.
            os._exit(0)


if __name__ == "__main__":
    main()
