"""The worker command stops being executable between recycles: capacity is kept.

The command is a script in the test's directory that execs the example worker. Two
workers start; then, twice:
  1. chmod -x on the script, and a SIGHUP rolls every worker;
  2. the script is deleted, and max_requests falls due on every worker.
Each time, for FAIL_WINDOW seconds, checked:
  * memward logs spawn_failed naming the script and the error (Permission denied,
    No such file or directory);
  * the old workers keep serving: no failed request, only their pids answer (a
    replacement that cannot be executed never stops the worker it was to replace);
  * the attempts back off: few spawn_failed lines, gaps that grow, and memward's CPU
    time over the window stays below CPU_MAX (no busy loop).
  * the recycle is logged (and counted) once per slot, however often its spawn is
    retried, and the first retry comes after restart_backoff.initial: the episode
    before, over for more than 10 s, does not carry over.
Then the script is made executable again (or put back): the pending recycles
complete within a restart_backoff.max or so, and only new workers serve."""

import os
import signal
import time

import lib
from lib import check

COUNT = 2
FAIL_WINDOW = 4.0
BACKOFF = {"initial": "100ms", "max": "1s"}
ATTEMPTS_MAX = 2 * 8            # per slot 0, .1, .3, .7, 1.5, 2.5, 3.5 s: 7 in 4 s
CPU_MAX = 0.05                  # of one core, over FAIL_WINDOW
RECOVER_MAX = 5.0
LIMIT = 100
FORGIVE = 10.5                  # CRASH_LOOP_FORGIVE_USEC in src/supervisor/supervisor.c, and a margin


def write_script(path):
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s %s \"$@\"\n" % (lib.PYTHON, lib.EXAMPLE_WORKER))
    os.chmod(path, 0o755)


def break_and_repair(t, mw, port, script, label, trigger, repair, error):
    old = set(mw.current_workers().values())
    check(len(old) == COUNT, "%s: workers before: %r" % (label, old))
    since = time.monotonic()
    load = t.load(port, threads=2, rate=10)
    cpu0 = lib.cpu_seconds(mw.pid)
    trigger()
    first = mw.wait_event("spawn_failed", since=since, timeout=10)[0]
    time.sleep(max(0.0, FAIL_WINDOW - (time.monotonic() - first.t)))
    cpu = (lib.cpu_seconds(mw.pid) - cpu0) / (time.monotonic() - since)
    failed = mw.events("spawn_failed", since=since)

    check(mw.running(), "%s: memward exited %s" % (label, mw.proc.poll()))
    check(script in first.text and error in first.get("error", ""),
          "%s: the failure does not name %s and %r: %s" % (label, script, error, first.text))
    check(not mw.events("spawn", since=since), "%s: a worker was spawned from a broken command" % label)
    check(set(mw.current_workers().values()) == old, "%s: the old workers did not all keep running" % label)
    check(not mw.events("stop", since=since) and not mw.events("exit", since=since),
          "%s: a worker was stopped: %r" % (label, mw.events("stop", since=since) + mw.events("exit", since=since)))
    check("cannot be executed" in first.text or "not found" in first.text, "%s: no msg: %s" % (label, first.text))
    recycles = mw.events("recycle", since=since)
    check(sorted(l.get("worker") for l in recycles) == [str(i) for i in range(COUNT)],
          "%s: want one recycle line per slot, however often its spawn is retried: %r" % (label, recycles))
    check(len(failed) <= ATTEMPTS_MAX, "%s: %d spawn attempts in %.0fs" % (label, len(failed), FAIL_WINDOW))
    for slot in map(str, range(COUNT)):
        mine = [l for l in failed if l.get("worker") == slot]
        check(mine and mine[0].get("failures") == "1" and mine[0].get("retry_in") == BACKOFF["initial"],
              "%s: slot %s did not start at the initial backoff: %s" % (label, slot, mine[:1]))
        times = [l.at for l in mine]         # memward's clock: ours reads lines late
        gaps = [b - a for a, b in zip(times, times[1:])]
        check(len(times) >= 4 and gaps[-1] >= 3 * gaps[0], "%s: slot %s retried at gaps %r (no backoff?)"
              % (label, slot, [round(g, 3) for g in gaps]))
    check(cpu < CPU_MAX, "%s: memward used %.1f%% of a core while retrying" % (label, cpu * 100))

    repaired = time.monotonic()
    repair()
    spawned = mw.wait_event("spawn", count=COUNT, since=repaired, timeout=RECOVER_MAX)
    mw.wait_event("exit", count=COUNT, since=repaired, timeout=15)
    new = set(mw.current_workers().values())
    check(not (new & old) and new == {int(l.get("pid")) for l in spawned},
          "%s: workers after the repair: %r (old %r)" % (label, new, old))
    # Only the new workers answer once the old ones are gone.
    served_before = dict(load.pids)
    time.sleep(1.0)
    load.stop()
    load.check_no_failures()
    late = {pid for pid, n in load.pids.items() if n > served_before.get(pid, 0)}
    check(late and late <= new, "%s: answered after the recycle by %r, new workers %r" % (label, late, new))
    check(set(load.pids) <= old | new, "%s: unknown pids answered: %r" % (label, load.pids))
    recovered = max(l.t for l in spawned) - repaired
    print("%s: %d attempts in %.0fs, %s; memward CPU %.2f%%; recycled %.2fs after the repair; %s"
          % (label, len(failed), FAIL_WINDOW, first.get("error"), cpu * 100, recovered, load.summary()))


def test(t):
    port = t.port()
    script = t.path("worker.sh")
    write_script(script)
    mw = t.memward(lib.config(port, count=COUNT, command=[script], workers={"restart_backoff": BACKOFF},
                              recycle={"max_requests": LIMIT}))
    mw.wait_event("ready", count=COUNT, timeout=15)

    break_and_repair(t, mw, port, script, "chmod -x, SIGHUP",
                     trigger=lambda: (os.chmod(script, 0o644), mw.signal(signal.SIGHUP)),
                     repair=lambda: os.chmod(script, 0o755), error="Permission denied")
    mw.wait_event("reload_done", timeout=10)
    # Served without a failure for longer than memward's crash-loop window (10 s): the
    # next failure is a new problem and starts again at the initial delay.
    time.sleep(FORGIVE)

    def drive_to_limit():
        os.unlink(script)
        since = time.monotonic()
        # Both workers reach the limit at about the same time, so that each retries over
        # the whole window: two clients whose requests hold a worker 20 ms each, so that
        # while one worker holds a request the other takes the next (a hot worker that
        # wins every accept would otherwise take them all).
        while len({l.get("worker") for l in mw.events("recycle", since=since)}) < COUNT:
            t.load(port, threads=2, total=LIMIT, path="/sleep?ms=20").join(60).check_no_failures()
            check(time.monotonic() < since + 30, "max_requests did not fall due on every worker")

    break_and_repair(t, mw, port, script, "deleted, max_requests", trigger=drive_to_limit,
                     repair=lambda: write_script(script), error="No such file or directory")
    check(mw.stop() == 0, "memward did not exit 0")


if __name__ == "__main__":
    lib.main(test)
