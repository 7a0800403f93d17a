"""workers.mode: template: workers forked from a template serve, are memward's own
children in their own process group and session, and outlive their template.

2 workers forked by tests/integration/workers/template.py, recycle max_requests 20:
  * the template has the variables of docs/fork-server.md §1 (MEMWARD_CONTROL_FD=4 with
    one socket, MEMWARD_TEMPLATE_GENERATION, MEMWARD_PROTOCOL=1, LISTEN_PID its own pid)
    and no NOTIFY_SOCKET;
  * every worker answers, its parent is memward, it leads its own process group and
    session (the template's group cannot reach it), and it is not the template;
  * the template is SIGKILLed under load: no request fails, memward logs
    template_exited, a template of generation 2 becomes ready, and the max_requests
    recycles that follow are forked by it (spawn ... template=2);
  * a forked worker is recycled by max_requests like an exec'd one, and exits 0;
  * SIGUSR1 is forwarded to the template as well;
  * SIGTTIN forks a third worker, SIGTTOU stops it."""

import os
import signal
import time

import lib
from lib import check

COUNT = 2


def test(t):
    port = t.port()
    cfg = lib.config(port, count=COUNT, command=lib.test_worker("template.py"),
                     workers={"mode": "template"}, recycle={"max_requests": 20})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=COUNT, timeout=20)
    ready = mw.wait_event("template_ready")[0]
    template_pid = int(ready.get("pid"))
    check(ready.get("generation") == "1", "first template: %s" % ready.text)

    workers = mw.current_workers()
    check(sorted(workers) == ["0", "1"], "slots: %r" % workers)
    for slot, pid in workers.items():
        _, ppid, pgrp = lib.proc_stat(pid)
        check(ppid == mw.proc.pid, "worker %s: parent %d, not memward %d" % (slot, ppid, mw.proc.pid))
        check(pgrp == pid and os.getsid(pid) == pid,
              "worker %s (pid %d) is not its own group/session leader: group %d" % (slot, pid, pgrp))
        check(pid != template_pid, "the template is not a worker")
    for e in mw.events("spawn"):
        check(e.get("template") == "1", "spawn without its template: %s" % e.text)
    _, tppid, tpgrp = lib.proc_stat(template_pid)
    check(tppid == mw.proc.pid and tpgrp == template_pid,
          "the template is memward's child in its own group: parent %d, group %d" % (tppid, tpgrp))

    # The template's environment (docs/fork-server.md §1), as exec'd.
    with open("/proc/%d/environ" % template_pid, "rb") as f:
        env = dict(e.split("=", 1) for e in f.read().decode().split("\0") if "=" in e)
    want = {"MEMWARD_CONTROL_FD": "4", "MEMWARD_TEMPLATE_GENERATION": "1", "MEMWARD_PROTOCOL": "1",
            "LISTEN_FDS": "1", "LISTEN_PID": str(template_pid), "LISTEN_FDNAMES": "http"}
    check(all(env.get(k) == v for k, v in want.items()), "template environment: %r" % {k: env.get(k) for k in want})
    for k in ("NOTIFY_SOCKET", "MEMWARD_WORKER_ID", "MEMWARD_WORKER_GENERATION", "WATCHDOG_USEC"):
        check(k not in env, "the template has %s" % k)

    # Requests are answered by forked workers.
    status, headers, body = lib.http_get(port, "/")
    check(status == 200 and "message=hello" in body, "answer: %d %r" % (status, body))

    # The template dies under load: the workers keep serving.
    load = t.load(port, threads=4, rate=100)
    time.sleep(0.5)
    os.kill(template_pid, signal.SIGKILL)
    mw.wait_event("template_exited", pid=template_pid)
    ready2 = mw.wait_event("template_ready", generation=2, timeout=20)[0]
    # Recycles after it fork from generation 2.
    mw.wait_for(lambda lines: [l for l in lines if l.event == "spawn" and l.get("template") == "2"],
                timeout=30, what="a spawn from template 2")
    time.sleep(0.5)
    load.stop().check_no_failures()
    check(load.ok > 50, "too few requests: %s" % load.summary())

    recycles = mw.events("recycle", reason="max_requests")
    check(len(recycles) >= 2, "forked workers not recycled by max_requests: %d" % len(recycles))
    recycled = {r.get("pid") for r in recycles}
    for e in mw.events("exit"):
        if e.get("pid") in recycled:
            check(e.get("status") == "exited" and e.get("code") == "0", "a recycled worker: %s" % e.text)
    check(int(ready2.get("pid")) != template_pid, "same template pid after a restart")

    # SIGUSR1 reaches the template too (it reopens the logs its future workers inherit).
    mw.signal(signal.SIGUSR1)
    mw.wait_text(r"template\[%s\]: SIGUSR1" % ready2.get("pid"), timeout=10)

    # SIGTTIN / SIGTTOU: one worker more, forked; one fewer, stopped.
    since = time.monotonic()
    mw.signal(signal.SIGTTIN)
    third = mw.wait_event("ready", since=since, worker=2, timeout=20)[0]
    check(lib.proc_stat(int(third.get("pid")))[1] == mw.proc.pid, "the third worker is not memward's child")
    mw.signal(signal.SIGTTOU)
    mw.wait_event("exit", worker=2, timeout=20)

    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)
    print("%d recycles, %s" % (len(recycles), load.summary()))


if __name__ == "__main__":
    lib.main(test)
