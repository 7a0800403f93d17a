"""A worker that says READY=1 and dies before memward can read it: the replacement
that dies between its READY=1 and memward's look at its notify socket.

In generation $DIE_GENERATION (default 2, the first replacement) it:
  1. with $DIE_STATUS_PORT set (template mode), waits until memward's /status on
     127.0.0.1:$DIE_STATUS_PORT lists its pid: memward has read its SPAWNED;
  2. stops memward (SIGSTOP to its parent; the tests run as root) and waits until
     /proc says it is stopped;
  3. sends "X_REQUESTS=3\\nREADY=1" on $NOTIFY_SOCKET;
  4. starts a helper, detached (double fork + setsid, so it is neither in the worker's
     process group nor its child), that waits on a pidfd for this worker's exit, then
     sends memward SIGCONT and exits;
  5. _exit(1).
memward then wakes with the datagram queued and the SIGCHLD pending, in whatever order
its loop reads them. Any other generation execs the example worker (same pid), which
serves HTTP and says READY=1 as usual. workers/template.py runs die_after_ready() in
its forked worker of that generation."""

import http.client
import json
import os
import select
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402  (installs the SIGTERM handler)

EXAMPLE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "examples", "python", "worker.py"))


def dies_now():
    """Whether this worker's generation is the one that dies after READY=1."""
    return os.environ.get("MEMWARD_WORKER_GENERATION") == os.environ.get("DIE_GENERATION", "2")


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def wait_listed(port, pid, timeout=10.0):
    """Until memward's /status lists pid among its workers (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
            conn.request("GET", "/status")
            workers = json.loads(conn.getresponse().read()).get("workers", [])
            conn.close()
            if any(w.get("pid") == pid for w in workers):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.01)


def continue_after_exit(memward, worker):
    """In the detached helper: SIGCONT to memward once worker has exited."""
    try:
        fd = os.pidfd_open(worker)
        select.select([fd], [], [], 10.0)   # readable once it has exited; bounded
    except OSError:
        pass                                # gone already
    os.kill(memward, signal.SIGCONT)


def die_after_ready():
    memward, worker = os.getppid(), os.getpid()
    if os.environ.get("DIE_STATUS_PORT"):
        wait_listed(int(os.environ["DIE_STATUS_PORT"]), worker)
    os.kill(memward, signal.SIGSTOP)
    deadline = time.monotonic() + 5.0
    while proc_state(memward) not in ("T", "t") and time.monotonic() < deadline:
        time.sleep(0.005)
    common.notify("X_REQUESTS=3\nREADY=1")
    intermediate = os.fork()
    if intermediate == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                try:
                    continue_after_exit(memward, worker)
                finally:
                    os._exit(0)
        finally:
            os._exit(0)
    os.waitpid(intermediate, 0)
    os._exit(1)


if __name__ == "__main__":
    if not dies_now():
        os.execv(sys.executable, [sys.executable, EXAMPLE])
    die_after_ready()
