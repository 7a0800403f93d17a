"""A template that misbehaves is killed and restarted with a growing backoff, while the
workers that run keep serving (docs/fork-server.md §4).

  * never READY: event=template_timeout reason=ready_timeout, the template's process
    group is killed, and the next start waits longer each time (restart_in grows);
  * garbage instead of SPAWNED: event=template_protocol_error reason=malformed, and the
    spawn counts as a failed one for its slot;
  * SPAWNED naming the template itself (its parent is memward too): reason=bad_pid; a
    template that closes its channel and lives on: reason=channel_closed; READY with
    PROTOCOL=2: reason=unsupported_protocol; each killed and restarted;
  * READY, then an exit at every SPAWN: template_exited unexpected=yes with failures
    1, 2, 3, ...: READY alone does not reset the backoff, a SPAWNED would;
  * SPAWN_FAILED: spawn_failed for the slot with the template's errno, and the template
    stays up (no template_exited);
  * an exit at the 2nd SPAWN: the worker forked by the first SPAWN keeps serving, a new
    template forks the rest, every slot gets ready;
  * a template that ignores SIGTERM and the channel's EOF, replaced by a reload: SIGKILL
    after graceful_timeout (event=template_kill), and it is reaped."""

import signal

import lib
from lib import check


def start(t, mode, count=1, ready_timeout="10s", extra_env=None):
    port = t.port()
    env = {"TEST_TEMPLATE_MODE": mode}
    env.update(extra_env or {})
    cfg = lib.config(port, count=count, command=lib.test_worker("template.py"),
                     workers={"mode": "template", "env": env, "ready_timeout": ready_timeout,
                              "graceful_timeout": "1s",
                              "fork_timeout": "5s",
                              "restart_backoff": {"initial": "100ms", "max": "2s"}})
    return port, t.memward(cfg, name=mode or "plain")


def never_ready(t):
    _, mw = start(t, "never_ready", ready_timeout="500ms")
    timeouts = mw.wait_event("template_timeout", count=3, timeout=30)
    for e in timeouts:
        check(e.get("reason") == "ready_timeout", "reason: %s" % e.text)
    exits = mw.wait_event("template_exited", count=3, timeout=10)
    delays = [int(e.get("restart_in").rstrip("ms")) for e in exits[:3]]
    check(all(e.get("killed") == "yes" and e.get("signal") == "SIGKILL" for e in exits[:3]),
          "not killed: %r" % [e.text for e in exits[:3]])
    check(delays[0] < delays[1] < delays[2], "the backoff does not grow: %r" % delays)
    gens = [e.get("generation") for e in mw.events("template_start")]
    check(gens[:3] == ["1", "2", "3"], "generations: %r" % gens)
    check(mw.stop() == 0, "memward exit code")


def garbage(t):
    _, mw = start(t, "garbage")
    err = mw.wait_event("template_protocol_error", timeout=20)[0]
    check(err.get("reason") == "malformed", "reason: %s" % err.text)
    mw.wait_event("spawn_failed", timeout=10)
    mw.wait_event("template_exited", timeout=10, killed="yes")
    check(mw.stop() == 0, "memward exit code")


def protocol_faults(t):
    for mode, reason in (("claim_self", "bad_pid"), ("close_channel", "channel_closed"),
                         ("protocol2", "unsupported_protocol")):
        _, mw = start(t, mode)
        err = mw.wait_event("template_protocol_error", timeout=20)[0]
        check(err.get("reason") == reason, "%s: %s" % (mode, err.text))
        mw.wait_event("template_exited", timeout=10, killed="yes")
        check(not mw.events("ready"), "%s: a worker became ready" % mode)
        mw.stop()


def crash_on_spawn(t):
    _, mw = start(t, "crash_on_spawn")
    exits = mw.wait_event("template_exited", count=3, timeout=30, unexpected="yes")
    failures = [e.int("failures") for e in exits[:3]]
    check(failures == [1, 2, 3], "READY must not reset the template's failures: %r" % failures)
    check(len(mw.events("template_ready")) >= 3, "it got READY each time")
    check(mw.events("spawn_failed"), "the spawns in flight did not fail")
    check(mw.stop() == 0, "memward exit code")


def fail_spawn(t):
    _, mw = start(t, "fail_spawn")
    failed = mw.wait_event("spawn_failed", count=2, timeout=20)
    check(all("ENOMEM" in e.text or "Cannot allocate" in e.text for e in failed),
          "the template's errno: %r" % [e.text for e in failed])
    check(not mw.events("template_exited"), "the template must stay up after SPAWN_FAILED")
    check(len(mw.events("template_start")) == 1, "one template only")
    check(mw.stop() == 0, "memward exit code")


def exit_on_second_spawn(t):
    port, mw = start(t, "exit_on_spawn", count=3)
    mw.wait_event("template_exited", timeout=20, unexpected="yes")
    mw.wait_event("ready", count=3, timeout=30)
    first = mw.events("spawn")[0]
    status, _, body = lib.http_get(port, "/")
    check(status == 200, "answer: %d %r" % (status, body))
    check(lib.alive(int(first.get("pid"))), "the first worker died with its template")
    check(mw.stop() == 0, "memward exit code")


def stubborn_on_reload(t):
    port, mw = start(t, "", extra_env={"TEST_TEMPLATE_STUBBORN": "1"})
    mw.wait_event("ready", timeout=20)
    first = mw.events("template_ready")[0]
    mw.signal(signal.SIGHUP)
    mw.wait_event("reload_done", timeout=30)
    kill = mw.wait_event("template_kill", timeout=20)[0]
    check(kill.get("generation") == "1", "killed: %s" % kill.text)
    gone = mw.wait_event("template_exited", generation=1, retired="yes", timeout=10)[0]
    check(gone.get("signal") == "SIGKILL", "how it went: %s" % gone.text)
    check(not lib.alive(int(first.get("pid"))), "the old template lives on")
    status, _, _ = lib.http_get(port, "/")
    check(status == 200, "answer: %d" % status)
    check(mw.stop() == 0, "memward exit code")


def test(t):
    never_ready(t)
    garbage(t)
    protocol_faults(t)
    crash_on_spawn(t)
    fail_spawn(t)
    exit_on_second_spawn(t)
    stubborn_on_reload(t)


if __name__ == "__main__":
    lib.main(test)
