"""When recycles start and when deadlines fire, whatever else wakes memward.

1. memory_stop_first with max_concurrent 1: the old worker goes first, but its slot
   counts as busy until the replacement is ready. Three workers that are all over
   retained_max at once are recycled one after another, never two slots down at once --
   also when the replacements crash while starting (a deploy that broke start-up): the
   slot stays busy through its backoff.
   The workers (workers/mapper.py) hold ~80 MiB rss, ~36 MiB pss and ~8 MiB anon over
   their process trees, and retained_max lies between the configured metric and the
   next smaller one (rss: 56 MiB, pss: 20 MiB): only the configured metric can trigger
   these recycles, and each recycle line must name it with a floor above the limit.
2. A worker spawned during a pass is on the timer at once: with a 10 s sample tick,
   `ready: 1s` makes it ready after ~1 s, and a worker that never says READY=1 is
   killed at ready_timeout (1 s), not at the next tick.
3. SIGUSR1 that arrives while a worker is still starting (no handler yet; the default
   action would kill it) is delivered once the worker is ready."""

import os
import signal
import time

import lib
from lib import check

SLEEPER = ["/bin/sh", "-c", "exec sleep 1000"]
MAPPER = lib.test_worker("mapper.py")
MiB = 1024 * 1024
# retained_max per metric: below that metric of a mapper.py worker, above every smaller one.
LIMIT_MIB = {"rss": 56, "pss": 20}


def memory(metric):
    return {"metric": metric, "sample_interval": "200ms", "retained_window": "600ms",
            "retained_max": "%dMiB" % LIMIT_MIB[metric]}


def check_metric(mw, metric):
    """Every memory recycle was decided by `metric`, with a floor above its limit and
    below the next larger metric's limit (a floor of the wrong metric lands outside)."""
    recycles = mw.events("recycle", reason="retained")
    check(recycles, "no retained recycle")
    upper = {"pss": LIMIT_MIB["rss"]}.get(metric)
    for r in recycles:
        floor = int(r.get("floor"))
        check(r.get("metric") == metric and floor > LIMIT_MIB[metric] * MiB and
              (upper is None or floor < upper * MiB),
              "want metric=%s with a floor in (%d, %s) MiB: %s" % (metric, LIMIT_MIB[metric], upper, r.text))
    return [int(r.get("floor")) // MiB for r in recycles]


def test_stop_first_respects_max_concurrent(t):
    port = t.port()
    cfg = lib.config(port, count=3, command=MAPPER, listen=[],
                     workers={"ready": "1500ms", "ready_timeout": "30s", "graceful_timeout": "5s"},
                     recycle={"max_concurrent": 1, "memory_stop_first": True}, memory=memory("rss"))
    mw = t.memward(cfg, name="stopfirst")
    mw.wait_event("ready", count=3, timeout=15)
    mw.wait_event("stop", count=3, timeout=60, stop_first="yes")
    mw.stop(timeout=15)

    worst, stops = slots_down_at_worst(mw)
    check(stops >= 3, "only %d stop-first recycles" % stops)
    check(worst == 1, "%d slots were down at once with max_concurrent 1" % worst)
    floors = check_metric(mw, "rss")
    print("%d stop-first recycles, never more than %d slot down; rss floors %r MiB (retained_max %d MiB)"
          % (stops, worst, floors, LIMIT_MIB["rss"]))


def slots_down_at_worst(mw):
    """Replays the log: the most slots that had no ready worker at once after a stop-first stop."""
    down, worst, stops = set(), 0, 0
    for line in mw.lines():
        if line.event == "stop" and line.get("stop_first") == "yes":
            stops += 1
            down.add(line.get("worker"))
            worst = max(worst, len(down))
        elif line.event == "ready":
            down.discard(line.get("worker"))
        elif line.event == "shutdown":
            break
    return worst, stops


def test_stop_first_replacements_that_fail(t):
    port = t.port()
    # Generation 1 runs; every later one crashes 0.3 s after it starts.
    script = 'if [ "$MEMWARD_WORKER_GENERATION" -gt 1 ]; then sleep 0.3; exit 1; fi; exec "$0" "$@"'
    cfg = lib.config(port, count=3, command=["/bin/sh", "-c", script] + MAPPER, listen=[],
                     workers={"ready": "1500ms", "ready_timeout": "30s", "graceful_timeout": "5s",
                              "restart_backoff": {"initial": "5s", "max": "30s"}},
                     recycle={"max_concurrent": 1, "memory_stop_first": True}, memory=memory("pss"))
    mw = t.memward(cfg, name="stopfirst_fail")
    mw.wait_event("ready", count=3, timeout=15)
    mw.wait_event("stop", timeout=20, stop_first="yes")
    # Waited for, not assumed 4 s after the stop: on a loaded machine the old worker's
    # exit, the spawn and the crash can take that long, and we would stop memward before
    # (or just as) the slot entered its backoff.
    crashed = mw.wait_event("exit", unexpected="yes", timeout=30)[0]
    # 3 s into the failed slot's 5 s backoff, by memward's clock: were the slot not busy
    # meanwhile, the next worker over retained_max would be stopped within a sample tick.
    time.sleep(max(0.0, crashed.at + 3 - time.time()))
    mw.stop(timeout=15)
    worst, stops = slots_down_at_worst(mw)
    check(stops >= 1, "no stop-first recycle happened")
    check(worst == 1, "%d slots were down at once after a replacement failed, with max_concurrent 1" % worst)
    floors = check_metric(mw, "pss")
    print("stop-first replacement crashed: still only %d slot down during its backoff; pss floors %r MiB "
          "(retained_max %d MiB)" % (worst, floors, LIMIT_MIB["pss"]))


def test_deadlines_of_new_workers(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=SLEEPER, listen=[],
                     workers={"ready": "1s", "ready_timeout": "5s"},
                     memory={"sample_interval": "10s", "retained_window": "20s"})
    mw = t.memward(cfg, name="delay")
    ready = mw.wait_event("ready", timeout=8)[0]
    check(int(ready.get("startup").rstrip("ms")) <= 1500, "ready after %sms, want ~1000: %s" % (ready.get("startup"), ready.text))
    mw.stop()

    cfg = lib.config(port, count=1, command=SLEEPER, listen=[],
                     workers={"ready": "notify", "ready_timeout": "1s"},
                     memory={"sample_interval": "10s", "retained_window": "20s"})
    mw = t.memward(cfg, name="timeout")
    timeout = mw.wait_event("ready_timeout", timeout=8)[0]
    spawn = mw.events("spawn", pid=timeout.get("pid"))[0]
    fired = timeout.at - spawn.at        # memward's own clock: the 10 s tick would say ~10 s
    check(fired <= 2.0, "ready_timeout fired %.3fs after the spawn, want ~1 s" % fired)
    mw.stop()
    print("ready: 1s -> startup=%s; ready_timeout 1s -> fired %.3fs after the spawn"
          % (ready.get("startup"), fired))


def wait_file(path, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        check(time.monotonic() < deadline, "timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.05)


def test_usr1_while_starting(t):
    port = t.port()
    marker, go, armed = t.path("usr1"), t.path("go"), t.path("armed")
    # The handler comes only when the test says so, like an app that installs it after
    # its imports: whenever the SIGUSR1 reaches memward, the worker has none yet, and
    # /bin/sh dies of one then. Readiness is a delay far longer than any wait of ours.
    script = ('while [ ! -e %s ]; do sleep 0.05; done; trap "echo got >> %s" USR1; : > %s; '
              'while :; do sleep 0.1; done' % (go, marker, armed))
    cfg = lib.config(port, count=1, command=["/bin/sh", "-c", script], listen=[],
                     workers={"ready": "8s", "ready_timeout": "20s"})
    mw = t.memward(cfg, name="usr1")
    # Once the worker is spawned, not after a fixed pause: a loaded machine can outlast
    # that before memward spawned it (a SIGUSR1 with no worker reaches nobody) or even
    # before memward blocked SIGUSR1 (whose default action would kill memward).
    spawn = mw.wait_event("spawn", timeout=15)[0]
    mw.signal(signal.SIGUSR1)
    sent = time.time() - spawn.at       # memward's time= against our wall clock
    time.sleep(0.5)
    check(not mw.events("exit"), "the starting worker died of the SIGUSR1 (sent %.2fs after its spawn): %s"
          % (sent, [e.text for e in mw.events("exit")]))
    check(not mw.events("ready"), "ready before the test could look (SIGUSR1 sent %.2fs after the spawn)" % sent)
    open(go, "w").close()
    wait_file(armed, "the worker's handler installed")
    check(not os.path.exists(marker), "SIGUSR1 reached the worker before it was ready")
    mw.wait_event("ready", timeout=30)
    wait_file(marker, "SIGUSR1 delivered to the worker once it was ready")
    check(not mw.events("exit"), "the worker died: %s" % [e.text for e in mw.events("exit")])
    check(mw.stop() == 0, "memward did not exit 0")
    print("SIGUSR1 sent %.2fs after the spawn, the worker without a handler: held, delivered once it was ready"
          % sent)


def test(t):
    test_stop_first_respects_max_concurrent(t)
    test_stop_first_replacements_that_fail(t)
    test_deadlines_of_new_workers(t)
    test_usr1_while_starting(t)


if __name__ == "__main__":
    lib.main(test)
