"""The races of docs/fork-server.md §3 and a spawn memward gives up on (§4).

  * The worker says READY=1 before its SPAWNED is read (the test template waits 300 ms
    before answering): memward keeps the datagram and applies it once the SPAWNED names
    the worker, so the worker becomes ready without waiting for a second READY=1.
  * Under load the worker serves many requests before its SPAWNED is read: its READY=1 is
    followed by more X_REQUESTS datagrams than memward keeps records of early senders;
    they are folded into one record per sender, so READY=1 is not pushed out (it was: the
    worker never became ready, and its slot's recycles stopped) and the count is the last.
  * The worker exits before its SPAWNED is read: memward reaps an unknown pid, and the
    SPAWNED that names it later is a worker that exited at once (exit ... unexpected=yes
    for that pid), not a protocol error.
  * The template forks a worker and never answers: after fork_timeout memward logs
    template_timeout reason=fork_timeout, kills the template, fails the spawn, and kills
    the worker it forked, which nobody supervises (procfs mode: template_orphan_killed
    pid= that worker, the stable name, besides orphans_killed trigger=template_exit;
    cgroup mode: its leaf is killed)."""

import re
import time

import lib
from lib import check


def start(t, env, **workers):
    port = t.port()
    w = {"mode": "template", "env": env, "restart_backoff": {"initial": "100ms", "max": "1s"}}
    w.update(workers)
    cfg = lib.config(port, count=1, command=lib.test_worker("template.py"), workers=w)
    return port, t.memward(cfg, name=env.get("TEST_TEMPLATE_MODE") or "+".join(sorted(env)))


def early_ready(t):
    port, mw = start(t, {"TEST_TEMPLATE_ANSWER_DELAY_MS": "300"})
    ready = mw.wait_event("ready", timeout=20)[0]
    spawn = mw.events("spawn")[0]
    check(ready.get("pid") == spawn.get("pid"), "ready for another pid: %s / %s" % (ready.text, spawn.text))
    status, _, body = lib.http_get(port, "/")
    check(status == 200, "answer: %d" % status)
    check(not mw.events("template_protocol_error"), "a protocol error")
    check(mw.stop() == 0, "memward exit code")


def early_ready_then_requests(t):
    # 40 requests: more datagrams than memward's 16 records of early senders.
    port, mw = start(t, {"TEST_TEMPLATE_ANSWER_DELAY_MS": "2000"}, ready_timeout="60s")
    mw.wait_event("template_ready", timeout=20)
    for _ in range(40):
        status, _, _ = lib.http_get(port, "/")
        check(status == 200, "answer: %d" % status)
    ready = mw.wait_event("ready", timeout=20)[0]
    spawn = mw.events("spawn")[0]
    check(ready.get("pid") == spawn.get("pid"), "ready for another pid: %s / %s" % (ready.text, spawn.text))
    check(mw.stop() == 0, "memward exit code")
    exits = [e for e in mw.events("exit") if e.get("pid") == spawn.get("pid")]
    check(exits and int(exits[0].get("requests")) >= 40, "requests counted: %s" % [e.text for e in exits])


def exit_before_spawned(t):
    _, mw = start(t, {"TEST_TEMPLATE_ANSWER_DELAY_MS": "300", "TEST_TEMPLATE_WORKER_EXIT": "7"})
    exits = mw.wait_event("exit", count=2, timeout=20)
    for e in exits[:2]:
        check(e.get("unexpected") == "yes" and e.get("code") == "7", "exit: %s" % e.text)
    spawned = {e.get("pid") for e in mw.events("spawn")}
    check({e.get("pid") for e in exits[:2]} <= spawned, "exits of pids never spawned")
    check(not mw.events("template_protocol_error"), "a reaped worker taken for a bad pid: %r"
          % [e.text for e in mw.events("template_protocol_error")])
    check(not mw.events("template_exited"), "the template died")
    check(mw.stop() == 0, "memward exit code")


def fork_and_hang(t):
    port, mw = start(t, {"TEST_TEMPLATE_MODE": "fork_and_hang"}, fork_timeout="1s")
    err = mw.wait_event("template_timeout", timeout=20)[0]
    check(err.get("reason") == "fork_timeout", "reason: %s" % err.text)
    mw.wait_event("spawn_failed", timeout=10)
    mw.wait_event("template_exited", killed="yes", timeout=10)
    forked = [int(m.group(1)) for m in re.finditer(r"template\[\d+\]: forked (\d+)", mw.text())]
    check(forked, "the template forked nothing")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and lib.alive(forked[0]):
        time.sleep(0.1)
    check(not lib.alive(forked[0]), "the worker of a spawn given up on lives on unsupervised (pid %d)" % forked[0])
    if mw.events("accounting")[0].get("mode") == "procfs":
        # Killed either with the template's process group (it never left it: a member of a
        # group memward killed is dying, not an orphan, and is not logged) or, when it had
        # left it, by the sweep after the template's exit: then also under the stable name
        # this case had before orphans_killed existed.
        swept = [e for e in mw.events("orphans_killed") if e.get("trigger") == "template_exit"]
        killed = mw.events("template_orphan_killed")
        check(not swept or (killed and killed[0].int("pid") == forked[0]),
              "swept (%s) but no template_orphan_killed pid=%d (its stable name): %s"
              % ([e.text for e in swept], forked[0], [e.text for e in killed]))
    check(mw.stop() == 0, "memward exit code")


def test(t):
    early_ready(t)
    early_ready_then_requests(t)
    exit_before_spawned(t)
    fork_and_hang(t)


if __name__ == "__main__":
    lib.main(test)
