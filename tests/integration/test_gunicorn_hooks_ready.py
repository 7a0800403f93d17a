"""examples/gunicorn/gunicorn_exec.conf.py's READY=1 is not lost when memward's notify queue
is full. Under load the workers' X_REQUESTS datagrams fill it (net.unix.max_dgram_qlen,
10 by default); a READY=1 sent without waiting and dropped there leaves the slot never
ready in memward's eyes: not recycled at its limits, killed at workers.ready_timeout.
The hook runs in a thread against a real unix datagram socket whose queue we filled;
it must wait until we read the queue, then send READY=1."""

import importlib.util
import os
import socket
import tempfile
import threading
import time

import lib
from lib import check

HOOKS = os.path.join(lib.REPO, "examples", "gunicorn", "gunicorn_exec.conf.py")


def test(t):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(path)
        os.environ["MEMWARD_NOTIFY_SOCKET"] = path      # as on_starting leaves it
        try:
            spec = importlib.util.spec_from_file_location("memward_gunicorn_conf", HOOKS)
            hooks = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(hooks)
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            queued = 0
            try:
                while queued < 100000:
                    sender.sendto(b"X_REQUESTS=%d" % (queued + 1), socket.MSG_DONTWAIT, path)
                    queued += 1
            except BlockingIOError:
                pass                                    # the queue is full
            sender.close()
            check(queued > 0, "could not fill the queue")
            hook = threading.Thread(target=hooks.post_worker_init, args=(None,), daemon=True)
            hook.start()
            time.sleep(0.3)                             # memward busy with the others
            receiver.settimeout(2)
            got = [receiver.recv(4096) for _ in range(queued)]
            hook.join(5)
            check(not hook.is_alive(), "post_worker_init is still blocked after the queue was read")
            try:
                got.append(receiver.recv(4096))
            except socket.timeout:
                pass
            ready = [d for d in got if d.startswith(b"READY=1")]
            check(ready, "READY=1 was dropped: %d datagrams queued, then got %r" % (queued, got[-3:]))
        finally:
            os.environ.pop("MEMWARD_NOTIFY_SOCKET", None)
            receiver.close()


if __name__ == "__main__":
    lib.main(test)
