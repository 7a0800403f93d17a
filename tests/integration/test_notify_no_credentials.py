"""A notify datagram whose sender memward cannot identify is rejected as
no_credentials (memward(8): memward_notify_rejected_total{why}).

memward runs in a PID namespace of its own (unshare --pid --fork --mount-proc); this
test, outside it, sends to the notify socket (abstract, so reachable from the same
network namespace). The kernel attaches the sender's credentials, but a pid from
outside the namespace reads as 0: memward cannot tell whether a worker sent it.
Every datagram (each sent in full) is counted under why="no_credentials", none under
"foreign", and none is acted on: X_REQUESTS=1000000 against max_requests 50 recycles
nothing."""

import os
import shutil
import signal
import socket
import subprocess
import time

import lib
import metrics_helpers as mh
from lib import check

UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
N = 30


def rejected(mport):
    _, samples = mh.scrape(mport)
    return {l["why"]: int(v) for l, v in mh.values(samples, "memward_notify_rejected_total") if v}


def test(t):
    if os.geteuid() != 0:
        lib.skip("unshare --pid needs root")
    probe = subprocess.run([UNSHARE, "--pid", "--fork", "--mount-proc", "/bin/true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        lib.skip("unshare --pid --fork --mount-proc does not work here: %s" % probe.stderr.decode().strip())
    port, mport = t.port(), t.port()
    path = t.write_config(mh.config(port, "127.0.0.1:%d" % mport, count=1, recycle={"max_requests": 50}))
    memward = lib.MEMWARD
    lib.MEMWARD = UNSHARE           # lib.Memward runs lib.MEMWARD with the args
    try:
        mw = lib.Memward(t, ["--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", memward, "-c", path],
                         None, None, "nsmemward")
    finally:
        lib.MEMWARD = memward
    t.memwards.append(mw)
    mw.wait_event("ready", timeout=15)
    start = mw.events("start")[0]
    check(start.get("pid") == "1", "memward is not PID 1 of its namespace: %s" % start.text)
    name = start.get("notify_socket")
    check(name.startswith("@"), "notify socket %r is not abstract" % name)

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.settimeout(5.0)
        for _ in range(N):
            check(s.sendto(b"X_REQUESTS=1000000", "\0" + name[1:]) == 18, "a datagram was not sent in full")
    deadline = time.monotonic() + 5
    while rejected(mport) != {"no_credentials": N} and time.monotonic() < deadline:
        time.sleep(0.1)
    got = rejected(mport)
    check(got == {"no_credentials": N}, "memward_notify_rejected_total %r, want no_credentials: %d" % (got, N))
    check(not mw.events("recycle"), "a datagram without a known sender was acted on: %r" % mw.events("recycle"))
    check(lib.http_get(port, "/")[0] == 200, "the worker does not serve")
    inner = lib.children_map().get(mw.pid, [])      # unshare does not forward SIGTERM: memward's host pid
    check(len(inner) == 1, "unshare's children: %r" % inner)
    os.kill(inner[0], signal.SIGTERM)
    rc = mw.wait_exit(15)
    check(rc == 0, "memward (under unshare) exited %s" % rc)
    print("%d datagrams from outside memward's PID namespace: all rejected as no_credentials, none acted on" % N)


if __name__ == "__main__":
    lib.main(test)
