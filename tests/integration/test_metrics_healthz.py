"""/healthz is 503 while fewer than workers.count workers are ready, 200 otherwise.

2 example workers that take 1.5 s to become ready (EXAMPLE_BOOT_DELAY_MS):
  * during start-up /healthz answers 503 "unavailable: 0/2 workers ready" (or 1/2),
    then 200 "ok: 2/2 workers ready" once both sent READY=1;
  * a worker killed with SIGKILL leaves its slot empty until the replacement is
    ready: /healthz flips to 503 "1/2" within the restart backoff, then back to 200;
  * during a rolling recycle (a reload) it stays 200: the old worker serves until its
    replacement is ready. (A worker that reaches max_requests before its replacement
    is ready stops first, and its slot is down meanwhile: test_max_requests_bound.);
  * after SIGTERM, while workers stop (one finishing a request in flight), it says
    503 "unavailable: shutting down, N/2 workers ready"."""

import os
import signal
import time

import lib
import metrics_helpers as mh
from lib import check

COUNT = 2
BOOT_MS = 1500
STOP_MS = 4000         # the request in flight at SIGTERM: it keeps /healthz answerable while we ask


def healthz(mport):
    status, _, body = mh.get(mport, "/healthz", timeout=3)
    return status, body


def wait_health(mport, want_status, timeout, what):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status, body = healthz(mport)
        if not seen or seen[-1] != (status, body):
            seen.append((status, body))
        if status == want_status:
            return time.time(), body, seen     # our wall clock, to compare with memward's time=
        time.sleep(0.05)
    lib.fail("%s: /healthz never answered %d within %.1fs; seen %r" % (what, want_status, timeout, seen))


def test(t):
    port, mport = t.port(), t.port()
    cfg = mh.config(port, "127.0.0.1:%d" % mport, count=COUNT,
                    workers={"env": {"EXAMPLE_BOOT_DELAY_MS": str(BOOT_MS)}, "graceful_timeout": "15s",
                             "restart_backoff": {"initial": "200ms", "max": "1s"}})
    mw = t.memward(cfg)
    mw.wait_event("metrics_listen", timeout=10)

    # Start-up: nothing ready for 1.5 s.
    status, body = healthz(mport)
    check(status == 503 and body.startswith("unavailable: ") and "/2 workers ready" in body,
          "right after start: %d %r" % (status, body))
    t_ok, body, seen = wait_health(mport, 200, 30, "start-up")
    check(body == "ok: 2/2 workers ready\n", "ready body %r" % body)
    ready_lines = mw.wait_event("ready", count=COUNT, timeout=10)
    # Compared on one clock, memward's time= (ms) against the moment the 200 came back: the
    # line is written before the loop can answer, however late we read it.
    check(t_ok >= ready_lines[-1].at - 0.002, "200 before the workers were ready: %r" % seen)

    # Kill one: its slot is empty until the replacement has booted.
    victim = int(mw.current_workers()["1"])
    os.kill(victim, signal.SIGKILL)
    t_down, body, seen = wait_health(mport, 503, 5, "after SIGKILL")
    check(body == "unavailable: 1/2 workers ready\n", "while down: %r" % body)
    t_up, body, seen = wait_health(mport, 200, 30, "after the respawn")
    check(body == "ok: 2/2 workers ready\n", "after the respawn: %r" % body)
    respawn = mw.wait_event("ready", count=COUNT + 1, timeout=10)[-1]
    check(respawn.get("worker") == "1", "the respawned worker: %s" % respawn.text)
    # Down while the replacement booted, by memward's clock; 200 only once it was ready.
    died = mw.wait_event("exit", pid=victim, timeout=10)[0]
    check(respawn.at - died.at >= BOOT_MS / 1000 * 0.8,
          "the replacement was ready %.2fs after the kill, before it could boot" % (respawn.at - died.at))
    check(t_up >= respawn.at - 0.002, "back to 200 %.3fs before the replacement was ready"
          % (respawn.at - t_up))

    # A rolling recycle keeps capacity: 200 throughout, until both old workers are gone.
    old = set(mw.current_workers().values())
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    load = t.load(port, threads=1, rate=20)
    statuses = set()
    # Bounded for a loaded machine: each replacement boots in turn, 1.5 s plus Python's start.
    deadline = time.monotonic() + COUNT * (BOOT_MS / 1000 + 13)
    while time.monotonic() < deadline and len(mw.events("exit", since=since)) < COUNT:
        statuses.add(healthz(mport)[0])
        time.sleep(0.05)
    load.stop()
    load.check_no_failures()
    gone = {int(e.get("pid")) for e in mw.events("exit", since=since)}
    check(gone == old, "the reload replaced %r, want %r" % (gone, old))
    statuses.add(healthz(mport)[0])
    check(statuses == {200}, "/healthz during a rolling recycle: %r" % statuses)

    # Shutdown: 503 while workers stop. A request in flight (/sleep) keeps its worker
    # stopping until it is answered, and the endpoint answers meanwhile.
    # SIGTERM once a worker has accepted the request, not after a fixed pause, which a
    # busy machine can outlast before the request even connects.
    th, slow = lib.request_in_flight(port, "/sleep?ms=%d" % STOP_MS, mw.current_workers().values())
    mw.signal(signal.SIGTERM)
    mw.wait_event("shutdown", timeout=10)
    status, body = healthz(mport)
    t_answered = time.time()            # our wall clock, to compare with memward's time=
    check(status == 503 and body.startswith("unavailable: shutting down, "), "during shutdown: %d %r"
          % (status, body))
    th.join(30)
    check(slow and isinstance(slow[0], tuple) and slow[0][0] == 200, "the request in flight at SIGTERM: %r" % slow)
    check(mw.wait_exit(30) == 0, "memward did not exit 0")
    # By memward's time= of the last exit, not when we read its line.
    check(mw.events("exit") and mw.events("exit")[-1].at > t_answered - 0.002,
          "every worker had exited before /healthz answered")
    print("503 -> 200 at start-up; 503 for %.2fs after SIGKILL; 200 throughout a rolling recycle"
          % (t_up - t_down))


if __name__ == "__main__":
    lib.main(test)
