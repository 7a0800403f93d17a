"""Bits shared by the test workers (standard library only)."""

import os
import signal
import socket
import time


def notify(message):
    """sd_notify(3): one datagram to $NOTIFY_SOCKET ('@' = abstract namespace)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.sendto(message.encode(), addr)
    return True


# Installed on import, before any READY=1: a SIGTERM that comes right after READY=1
# must find the handler in place.
_stop = []
signal.signal(signal.SIGTERM, lambda *_: _stop.append(1))
signal.signal(signal.SIGINT, lambda *_: _stop.append(1))


def idle_until_term(parent=None):
    """Sleeps until SIGTERM/SIGINT (returns) or the parent changes (returns)."""
    parent = parent or os.getppid()
    while not _stop and os.getppid() == parent:
        time.sleep(0.05)
