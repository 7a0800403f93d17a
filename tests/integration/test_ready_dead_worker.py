"""A replacement whose READY=1 is read only after it died is never made ready.

One worker, recycled by max_lifetime (1 s), exec'd and then forked by a template
(workers/template.py). Its first replacement (generation 2, workers/ready_then_die.py)
stops memward -- in template mode once /status lists it, i.e. once memward has read its
SPAWNED -- sends "X_REQUESTS=3\\nREADY=1", has a detached helper send memward SIGCONT
once it has exited, and exits 1: memward wakes with the READY=1 and the SIGCHLD both
pending, whichever it reads first. What a user must see: the old worker is not stopped
for it (no event=stop replaced_by=<dead pid>) and keeps serving requests, memward says
it ignored that READY=1 (event=ready_ignored reason=exited), the dead one's exit is a
failed start (unexpected=yes state=starting, with the 3 requests it reported), and the
next replacement (generation 3, a normal worker) takes over after the backoff
(event=stop replaced_by=<its pid>). Without the check, the old worker was stopped for
the dead one and the slot served nothing until a respawn."""

import re
import time

import lib
from lib import check

BACKOFF = "2s"      # the window in which only the old worker may serve: room for a busy machine


def served_by(port):
    status, headers, body = lib.http_get(port, timeout=10.0)
    check(status == 200, "HTTP %d: %s" % (status, body))
    m = re.search(r"\bgeneration=(\S+)", body)
    return lib.worker_pid_of(headers, body), m.group(1) if m else None


def run(t, mode):
    port, mport = t.port(), t.port()
    workers = {"restart_backoff": {"initial": BACKOFF, "max": "4s"}, "env": {"DIE_GENERATION": "2"}}
    command = lib.test_worker("ready_then_die.py")
    if mode == "template":
        workers["mode"] = "template"
        workers["env"]["DIE_STATUS_PORT"] = str(mport)
        command = lib.test_worker("template.py")
    cfg = lib.config(port, count=1, command=command, workers=workers,
                     recycle={"max_lifetime": "1s", "max_lifetime_jitter": "0s"},
                     metrics={"listen": "127.0.0.1:%d" % mport})
    mw = t.memward(cfg, name="memward-" + mode)
    old = mw.wait_event("ready", timeout=20, generation=1)[0].int("pid")
    check(served_by(port)[0] == old, "%s: generation 1 does not serve" % mode)

    dead = mw.wait_event("spawn", timeout=15, generation=2)[0].int("pid")
    exit_line = mw.wait_event("exit", timeout=20, pid=dead)[0]

    # The old worker was not stopped for a dead one, and memward said why.
    stops = mw.events("stop", replaced_by=dead)
    check(not stops, "%s: the old worker was stopped for a dead replacement: %s"
          % (mode, stops[0].text if stops else ""))
    check(not mw.events("ready", pid=dead), "%s: the dead replacement was made ready" % mode)
    ignored = mw.events("ready_ignored", pid=dead)
    check(len(ignored) == 1 and ignored[0].get("reason") == "exited" and ignored[0].get("replacement") == "yes",
          "%s: want one event=ready_ignored reason=exited replacement=yes for pid %d: %r" % (mode, dead, ignored))
    # Its exit is a failed start, judged with the count it reported before it died.
    check(exit_line.get("code") == "1" and exit_line.get("unexpected") == "yes"
          and exit_line.get("state") == "starting" and exit_line.get("requests") == "3",
          "%s: the dead replacement's exit is not a failed start with requests=3: %s" % (mode, exit_line.text))

    # The old worker still serves, the only one to, while the slot backs off.
    check(lib.alive(old), "%s: the old worker %d is gone" % (mode, old))
    pid, gen = served_by(port)
    check(pid == old, "%s: a request after the dead replacement's exit was served by %s (generation %s), not by "
          "the old worker %d" % (mode, pid, gen, old))

    # The next replacement takes over as a recycle does.
    new = mw.wait_event("ready", timeout=20, generation=3)[0].int("pid")
    took_over = mw.wait_event("stop", timeout=10, pid=old)[0]
    check(took_over.get("replaced_by") == str(new), "%s: the old worker was stopped for %s, not for generation 3 "
          "(%d): %s" % (mode, took_over.get("replaced_by"), new, took_over.text))
    old_exit = mw.wait_event("exit", timeout=15, pid=old)[0]
    check(old_exit.get("code") == "0" and old_exit.get("unexpected") is None,
          "%s: the old worker did not stop gracefully: %s" % (mode, old_exit.text))
    deadline = time.monotonic() + 10
    while True:
        pid, gen = served_by(port)
        if gen is not None and gen.isdigit() and int(gen) >= 3:
            break
        check(time.monotonic() < deadline, "%s: still served by pid %s generation %s after the takeover"
              % (mode, pid, gen))
        time.sleep(0.05)

    rc = mw.stop()
    check(rc == 0, "%s: memward exited %s after SIGTERM" % (mode, rc))
    print("%s: dead replacement %d: READY=1 ignored, respawn_in=%s; old worker %d served until generation 3 (%d) "
          "took over" % (mode, dead, exit_line.get("respawn_in"), old, new))


def test(t):
    for mode in ("exec", "template"):
        run(t, mode)


if __name__ == "__main__":
    lib.main(test)
