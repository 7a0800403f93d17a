"""The check shared by the test_example_<lang>.py tests: an example worker behind memward.

run_example() runs 2 slots of the example's command with ready: notify and
recycle {max_requests: 20, max_requests_jitter: 5}, sends 200 requests from 4
concurrent clients (paced, so that recycles happen while the load runs; a few more
if the machine is so busy that no replacement was ready in time), and checks that:

  * no request failed;
  * every slot was recycled for max_requests at least once, each at a drawn limit
    in [20, 25] and after at least that many requests (X_REQUESTS reached memward),
    or ahead of them, to have the replacement ready in time (expected_in=);
  * every response names (X-Worker-Pid or pid=) a process memward logged as spawned,
    and more than the first 2 workers answered;
  * every recycled worker exited 0 by itself (it stopped gracefully on SIGTERM);
  * a request on a connection that a worker accepted before it was told to stop,
    but that arrives after, is still answered by that worker (a SIGHUP rolls the
    workers while the request is held back): servers that close such "fresh"
    connections at shutdown drop a request now and then during every recycle;
  * with keepalive_stop=True (servers that keep connections alive: uvicorn), a
    request sent on a kept-alive connection after its worker was told to stop is
    answered by that worker, with `Connection: close`: a server that closes idle
    keep-alive connections at shutdown drops the request a keep-alive client happens
    to be sending then, during every recycle (issue 17: ~12 per recycle under wrk);
  * memward stops with exit code 0 on SIGTERM.

With policy=NAME the run carries the memory: section of examples/NAME/memward.yaml, the
policy the example ships, and checks that it recycled nothing under this light load.
"""

import collections
import http.client
import os
import signal
import socket
import time

import lib
from lib import check

SLOTS = 2
MAX_REQUESTS, JITTER = 20, 5
TOTAL = 200
EXTRA, EXTRA_FOR = 50, 20.0


MEMORY_REASONS = ("retained", "growth", "group_high", "pressure", "oom")


def example_policy(name, config="memward.yaml"):
    """The memory: section of examples/NAME/CONFIG."""
    import yaml
    with open(os.path.join(lib.REPO, "examples", name, config)) as f:
        memory = yaml.safe_load(f).get("memory")
    check(memory, "examples/%s/%s has no memory: policy" % (name, config))
    return memory


def check_no_memory_recycle(mw, policy):
    bad = [r.text for r in mw.events("recycle") if r.get("reason") in MEMORY_REASONS]
    check(not bad, "the policy %r recycled under a light load: %s" % (policy, bad[:3]))


def run_example(t, command, directory=None, env=None, ready_timeout="20s", rate=100, mode=None, policy=None,
                keepalive_stop=False):
    """mode: workers.mode (template: `command` is the template, every worker its fork)."""
    port = t.port()
    workers = {"ready": "notify", "ready_timeout": ready_timeout, "graceful_timeout": "10s"}
    if mode:
        workers["mode"] = mode
    if directory:
        workers["directory"] = directory
    if env:
        workers["env"] = env
    memory = example_policy(policy) if policy else None
    sections = {"memory": memory} if memory else {}
    mw = t.memward(lib.config(port, count=SLOTS, command=command, workers=workers,
                              recycle={"max_requests": MAX_REQUESTS,
                                       "max_requests_jitter": JITTER}, **sections))
    mw.wait_event("ready", count=SLOTS, timeout=30)

    status, headers, body = lib.http_get(port, "/hello")
    check(status == 200 and "path=/hello" in body, "unexpected answer %d %r" % (status, body))
    check(lib.worker_pid_of(headers, body) in mw.current_workers().values(),
          "the answer %r does not name a current worker %r" % (body, mw.current_workers()))

    # TOTAL requests; then, on a machine so busy that the replacements were not ready
    # before the load ended, more in batches of EXTRA until every slot has been recycled
    # and a replacement has answered (or EXTRA_FOR seconds have passed).
    sent, pids = 0, collections.Counter()
    deadline = time.monotonic() + EXTRA_FOR
    while True:
        load = t.load(port, threads=4, total=TOTAL if sent == 0 else EXTRA, rate=rate).join(60)
        load.check_no_failures()
        check(load.ok == load.total, "only %d of %d requests answered" % (load.ok, load.total))
        sent += load.total
        pids.update(load.pids)
        # The last reports may trigger a recycle after the load ends (server.js coalesces
        # them over 100 ms): let those arrive, then wait until every recycle is done.
        time.sleep(0.5)
        mw.wait_for(settled, 30, "every recycle to finish and every worker to be ready")
        recycles = mw.events("recycle", reason="max_requests")
        per_slot = collections.Counter(r.get("worker") for r in recycles)
        if ((len(per_slot) >= SLOTS and len(pids) > SLOTS) or time.monotonic() > deadline):
            break
    if memory:
        check_no_memory_recycle(mw, memory)
    for slot in range(SLOTS):
        check(per_slot[str(slot)] >= 1, "slot %d was never recycled for max_requests; per slot: %r"
              % (slot, dict(per_slot)))
    for r in recycles:
        check(MAX_REQUESTS <= r.int("limit") <= MAX_REQUESTS + JITTER,
              "limit outside [%d, %d]: %s" % (MAX_REQUESTS, MAX_REQUESTS + JITTER, r.text))
        check(r.int("requests") >= r.int("limit") or r.get("expected_in"),
              "recycled before its limit, and not ahead of it: %s" % r.text)

    spawned = {int(e.get("pid")) for e in mw.events("spawn")}
    strangers = sorted(p for p in pids if p not in spawned)
    check(not strangers, "responses from pids memward never spawned: %r (spawned %r)"
          % (strangers, sorted(spawned)))
    check(len(pids) > SLOTS, "only %d distinct workers answered: %r" % (len(pids), dict(pids)))

    recycled = {r.get("pid") for r in recycles}
    for e in [e for e in mw.events("exit") if e.get("pid") in recycled]:
        check(e.get("status") == "exited" and e.get("code") == "0",
              "a recycled worker did not exit 0 by itself: %s" % e.text)

    late_request(mw, port)
    if keepalive_stop:
        kept_alive_request(mw, port)

    rc = mw.stop(timeout=20)
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%d requests, 0 failed, %d recycles, per slot %r, %d workers answered" % (
        sent, len(recycles), dict(per_slot), len(pids)))
    return mw


def settled(lines):
    """True when every recycled worker has exited and every spawned one is ready or gone."""
    done = {l.get("pid") for l in lines if l.event in ("exit", "ready")}
    exited = {l.get("pid") for l in lines if l.event == "exit"}
    return (all(l.get("pid") in exited for l in lines if l.event == "recycle") and
            all(l.get("pid") in done for l in lines if l.event == "spawn"))


def connection_owner(sock, timeout=5.0):
    """The pid holding the accepted end of our TCP connection `sock`, from /proc (as root).

    An accepted socket has an inode in /proc/net/tcp and is an fd of the process that
    accepted it; one still in the listen backlog has inode 0."""
    client_port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = None
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if (int(local.rsplit(":", 1)[1], 16) == server_port and
                        int(remote.rsplit(":", 1)[1], 16) == client_port and fields[9] != "0"):
                    inode = fields[9]
        target = "socket:[%s]" % inode
        for pid in lib.all_pids() if inode else []:
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                        return pid
                except OSError:
                    pass
        time.sleep(0.05)
    lib.fail("no process accepted our connection within %.0fs" % timeout)


def late_request(mw, port):
    """Connects, finds the worker that accepted, has memward stop it (SIGHUP rolls every
    worker), then sends the request, which that worker must still answer."""
    old = set(mw.current_workers().values())
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        holder = connection_owner(sock)
        check(holder in old, "our connection was accepted by %d, not by a current worker %r"
              % (holder, sorted(old)))
        mw.signal(signal.SIGHUP)
        mw.wait_event("stop", pid=holder, timeout=30)
        time.sleep(0.3)                 # the stop signal has reached it
        sock.sendall(b"GET /late HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        reply = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError as e:
                lib.fail("the late request failed: %r (got %r)" % (e, reply))
            if not chunk:
                break
            reply += chunk
    finally:
        sock.close()
    head, _, body = reply.decode("latin-1").partition("\r\n\r\n")
    check(head.startswith("HTTP/1.1 200") or head.startswith("HTTP/1.0 200"),
          "the late request got %r" % reply[:200])
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in
                   (line.partition(":") for line in head.split("\r\n")[1:]))
    answered_by = lib.worker_pid_of(headers, body)
    check(answered_by == holder, "the late request was answered by %s, not by %s, the stopped "
          "worker holding its connection" % (answered_by, holder))
    old_workers_exit_0(mw, old)


def kept_alive_request(mw, port):
    """One request on a keep-alive connection, then the worker holding it is stopped
    (SIGHUP rolls every worker), then a second request on the same connection: the
    stopping worker answers it with Connection: close, where a server that closes its
    idle connections at shutdown would drop it."""
    old = set(mw.current_workers().values())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", "/first")
        first = conn.getresponse()
        first.read()
        check(first.status == 200 and not first.will_close,
              "the first request got %d, will_close=%s" % (first.status, first.will_close))
        holder = connection_owner(conn.sock)
        check(holder in old, "our connection was accepted by %d, not by a current worker %r"
              % (holder, sorted(old)))
        mw.signal(signal.SIGHUP)
        mw.wait_event("stop", pid=holder, timeout=30)
        time.sleep(0.3)                 # the stop signal has reached it
        try:
            conn.request("GET", "/second")
            second = conn.getresponse()
            body = second.read().decode("latin-1")
        except (OSError, http.client.HTTPException) as e:
            lib.fail("the request on the kept-alive connection of a stopping worker failed: %r" % e)
        headers = {k.lower(): v for k, v in second.getheaders()}
    finally:
        conn.close()
    check(second.status == 200, "the request after the stop got %d %r" % (second.status, body[:200]))
    check(headers.get("connection", "").lower() == "close",
          "the stopping worker's answer does not say Connection: close: %r" % headers)
    answered_by = lib.worker_pid_of(headers, body)
    check(answered_by == holder, "the request after the stop was answered by %s, not by %s, the "
          "stopped worker holding its connection" % (answered_by, holder))
    old_workers_exit_0(mw, old)


def old_workers_exit_0(mw, old):
    """Waits for the exit of every pid in `old` (the workers before a SIGHUP); each
    must have exited 0 by itself."""
    def all_exited(lines):
        exits = [l for l in lines if l.event == "exit" and l.get("pid", "").isdigit()
                 and int(l.get("pid")) in old]
        return exits if len(exits) >= len(old) else None
    for e in mw.wait_for(all_exited, 20, "the exit of the old workers"):
        check(e.get("status") == "exited" and e.get("code") == "0",
              "an old worker did not exit 0 after the reload: %s" % e.text)
