"""An exec worker that stops itself at the request limit memward gave it is a
max_requests recycle, end to end (the C side of issue 15 §4, without gunicorn).

tests/integration/workers/selfstop.py, 1 slot, recycle.max_requests 3 (jitter 0):
it reads MEMWARD_MAX_REQUESTS, serves on the LISTEN_FDS socket, sends X_REQUESTS=n
after each request and exits 0 by itself right after the 3rd. memward, idle, reads
X_REQUESTS=3 and stops the worker at its limit within a millisecond, before the
worker's exit: a worker's own stop is what memward meets when it is busy, and reads
its signals before the count. So each life's last request is served while memward is
held (SIGSTOP, once it has read the count before and sleeps in epoll_wait) with a
SIGUSR2 (a status dump) pending: epoll hands over ready sources in the order they
became ready, so on SIGCONT memward takes the signalfd first, finds SIGCHLD with the
SIGUSR2, reads the worker's last X_REQUESTS (supervisor_reap()) and judges the exit
(supervisor_worker_exited()). A life has a limit of 2: with one request before the
hold, memward has no request rate yet and cannot start a replacement ahead of the limit.

Checked on what memward logged and measured: each life ends in exactly one
event=recycle reason=max_requests line and an exit 0 with stopped_by=worker, never
unexpected=yes (no backoff respawn_in=, no failures= towards the start limit); the
replacement is spawned at once (memward's own time=, < 1 s, where
restart_backoff.initial is 2 s); memward_recycles_total{reason="max_requests"} equals
the lives, and not one request fails.

Negative case: the same worker exiting 0 right after READY=1, having served nothing
(limit 5), is an unexpected exit with its backoff, never a recycle."""

import os
import signal
import time

import lib
from lib import check
import metrics_helpers as mh

LIMIT, LIVES = 2, 4
BACKOFF_MS = 2000
AT_ONCE_MS = 1000       # spawn after exit, by memward's clock; a failure would wait BACKOFF_MS


def wall_ms(line):
    """memward's own time= (UTC, millisecond precision), in ms."""
    return line.at * 1000


def cfg(port, mport, limit, env=None):
    return mh.config(port, "127.0.0.1:%d" % mport, count=1, command=lib.test_worker("selfstop.py"),
                     workers={"env": env or {}, "graceful_timeout": "5s",
                              "restart_backoff": {"initial": "%dms" % BACKOFF_MS, "max": "4s"}},
                     recycle={"max_requests": limit, "max_requests_jitter": 0})


def wait_state(pid, state, timeout=10):
    deadline = time.monotonic() + timeout
    while (lib.proc_stat(pid) or ("?",))[0] != state:
        check(time.monotonic() < deadline, "process %d not in state %s: %r" % (pid, state, lib.proc_stat(pid)))
        time.sleep(0.005)


def wait_idle(pid, timeout=10):
    """Until pid sleeps in epoll_wait (its wchan, or its syscall number on x86-64)."""
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/%d/wchan" % pid) as f:
            wchan = f.read().strip()
        with open("/proc/%d/syscall" % pid) as f:
            nr = f.read().split()[0]
        if wchan in ("do_epoll_wait", "ep_poll") or (wchan == "0" and nr in ("232", "281", "441")):
            return
        check(time.monotonic() < deadline, "memward not idle in epoll_wait: wchan %s syscall %s" % (wchan, nr))
        time.sleep(0.002)


def wait_metric(mport, name, value, timeout=10, **labels):
    deadline = time.monotonic() + timeout
    while True:
        _, samples = mh.scrape(mport)
        found = mh.values(samples, name, **labels)
        if found and found[0][1] == value:
            return
        check(time.monotonic() < deadline, "%s%r: %r, want %r" % (name, labels, found, value))
        time.sleep(0.005)


def recycles_metric(mport, reason):
    _, samples = mh.scrape(mport)
    found = mh.values(samples, "memward_recycles_total", reason=reason)
    return found[0][1] if found else 0


def self_stops(t):
    port, mport = t.port(), t.port()
    mw = t.memward(cfg(port, mport, LIMIT))
    mw.wait_event("ready", timeout=15)

    answered, failed = [], []

    def get():
        try:
            status, headers, body = lib.http_get(port, timeout=10)
            (answered if status == 200 else failed).append((status, body))
            return int(headers.get("x-worker-pid") or 0)
        except OSError as e:
            failed.append(repr(e))
            return 0

    for life in range(LIVES):
        mw.wait_event("ready", count=life + 1, timeout=15)
        for _ in range(LIMIT - 1):
            get()
        # memward has read the count so far and waits in epoll_wait: nothing of the
        # notify socket is queued ahead of what follows.
        wait_metric(mport, "memward_worker_requests_total", LIMIT - 1, slot=0)
        memward = mw.proc.pid
        wait_idle(memward)
        os.kill(memward, signal.SIGSTOP)
        try:
            wait_state(memward, "T")
            # Ready ahead of the worker's last count: memward reads its signals first,
            # SIGCHLD with this one, and reaps.
            os.kill(memward, signal.SIGUSR2)
            pid = get()
            deadline = time.monotonic() + 10
            while pid and pid not in lib.zombies_of(memward) and time.monotonic() < deadline:
                time.sleep(0.01)
            check(pid in lib.zombies_of(memward), "worker %d did not exit at its limit %d" % (pid, LIMIT))
        finally:
            os.kill(memward, signal.SIGCONT)
    check(not failed, "failed requests: %r" % failed[:5])

    def lives_ended(lines):
        return len([l for l in lines if l.event == "exit"]) >= LIVES and \
            len([l for l in lines if l.event == "spawn"]) > LIVES or None
    mw.wait_for(lives_ended, 10, "%d lives ended and replaced" % LIVES)
    metric = recycles_metric(mport, "max_requests")
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)

    lines = mw.lines()
    exits = [l for l in mw.events("exit") if l.int("requests") > 0]
    check(len(exits) == LIVES, "%d worker lives ended serving, want %d: %r" % (len(exits), LIVES, exits))
    bad = [l.text for l in lines if l.get("unexpected") == "yes" or "respawn_in=" in l.text
           or "failures=" in l.text or l.event == "start_limit_hit"]
    check(not bad, "a worker's own stop at its limit was taken for a failure: %r" % bad[:3])
    recycles = mw.events("recycle")
    check(all(r.get("reason") == "max_requests" for r in recycles), "other recycles: %r" % recycles)
    by_pid = {}
    for r in recycles:
        by_pid.setdefault(r.get("pid"), []).append(r)
    spawns = mw.events("spawn")
    mine = 0
    for e in exits:
        pid = e.get("pid")
        check(e.get("status") == "exited" and e.get("code") == "0", "not an exit 0: %s" % e.text)
        check(e.int("requests") == LIMIT, "a life of %s requests, limit %d: %s" % (e.get("requests"), LIMIT, e.text))
        check(len(by_pid.get(pid, [])) == 1, "worker %s: %d recycle lines, want 1: %r"
              % (pid, len(by_pid.get(pid, [])), by_pid.get(pid)))
        if e.get("stopped_by") == "worker":
            mine += 1
            after = [s for s in spawns if s.t >= by_pid[pid][0].t]
            check(after, "no replacement spawned after worker %s stopped itself" % pid)
            waited = wall_ms(after[0]) - wall_ms(e)
            check(waited < AT_ONCE_MS, "the replacement of worker %s came %.0f ms after its exit (backoff?)"
                  % (pid, waited))
    check(mine == LIVES, "%d of %d lives ended by the worker itself" % (mine, LIVES))
    check(metric == LIVES, "memward_recycles_total{reason=\"max_requests\"} %r after %d lives" % (metric, LIVES))
    return "%d answered, %d lives of %d requests, %d ended by the worker itself, %d max_requests recycles" % (
        len(answered), len(exits), LIMIT, mine, metric)


def exits_at_once(t):
    port, mport = t.port(), t.port()
    mw = t.memward(cfg(port, mport, 5, env={"SELFSTOP_EXIT_AT_ONCE": "1"}))
    first = mw.wait_event("exit", timeout=15)[0]
    metric = recycles_metric(mport, "max_requests")
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    check(first.get("code") == "0" and first.int("requests") == 0, "not an exit 0 with 0 requests: %s" % first.text)
    check(first.get("unexpected") == "yes" and (lib.parse_duration(first.get("respawn_in")) or 0) > 0,
          "an exit 0 with no request served is not a failure with backoff: %s" % first.text)
    check("stopped_by=" not in first.text, "taken for a stop of its own: %s" % first.text)
    check(not mw.events("recycle"), "recycled: %r" % mw.events("recycle"))
    check(metric == 0, "memward_recycles_total{reason=\"max_requests\"} %r" % metric)
    return "exit 0 at once: %s" % first.text


def test(t):
    print(self_stops(t))
    print(exits_at_once(t))


if __name__ == "__main__":
    lib.main(test)
