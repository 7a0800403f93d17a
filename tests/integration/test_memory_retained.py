"""A worker that keeps 200 MiB is recycled for retained memory, without a failed request.

2 example workers, memory {metric: anon, sample_interval: 500ms, retained_max: 150MiB,
retained_window: 3s}, a steady HTTP load throughout. One worker is asked to keep
200 MiB (/alloc?mib=200). Expected:
  * `event=recycle reason=retained` names that worker, no sooner than most of the window
    after the allocation began (the floor, not a sample, decides) and no later than
    retained_window + 2 x sample_interval after it finished;
  * the recycle line shows the numbers behind it: floor > retained_max (~200 MiB),
    window=3s, metric=anon;
  * a replacement for the same slot becomes ready, the old worker then exits 0;
  * the other worker is left alone, and not one request of the load fails.
Runs in whatever accounting mode the machine gives (procfs on the CI hybrid)."""

import time

import lib
from lib import check

MIB = 1 << 20
WINDOW = 3.0
SAMPLE = 0.5
ALLOC_MIB = 200
RETAINED_MAX_MIB = 150


def test(t):
    port = t.port()
    cfg = lib.config(port, count=2, memory={
        "metric": "anon",
        "sample_interval": "500ms",
        "retained_max": "%dMiB" % RETAINED_MAX_MIB,
        "retained_window": "3s",
    })
    mw = t.memward(cfg)
    mw.wait_event("ready", count=2, timeout=15)
    acct = mw.events("accounting")
    workers = mw.current_workers()
    check(len(workers) == 2, "want 2 workers, have %r" % workers)
    # Idle workers hold ~10 MiB: nothing is recycled over a full window.
    time.sleep(WINDOW + SAMPLE)
    check(not mw.events("recycle"), "recycled before any allocation: %r" % mw.events("recycle"))

    load = t.load(port, threads=4, rate=40)
    time.sleep(0.5)
    t_begin = time.time()               # compared with memward's time=, not when we read its line
    status, headers, body = lib.http_get(port, "/alloc?mib=%d" % ALLOC_MIB, timeout=30)
    t_done = time.time()
    check(status == 200 and "kept %d MiB" % ALLOC_MIB in body, "/alloc: HTTP %d %r" % (status, body))
    victim = lib.worker_pid_of(headers, body)
    slot = next((s for s, p in workers.items() if p == victim), None)
    check(slot is not None, "/alloc answered by pid %s, not one of %r" % (victim, workers))
    other = next(p for s, p in workers.items() if s != slot)

    rec = mw.wait_event("recycle", reason="retained", timeout=WINDOW + 4 * SAMPLE + 5)[0]
    latency = rec.at - t_done
    since_begin = rec.at - t_begin
    check(rec.int("pid") == victim and rec.get("worker") == slot,
          "recycled the wrong worker (allocated in worker %s pid %d): %s" % (slot, victim, rec.text))
    check(latency <= WINDOW + 2 * SAMPLE,
          "recycled %.2fs after the allocation, want <= retained_window + 2 samples = %.1fs: %s"
          % (latency, WINDOW + 2 * SAMPLE, rec.text))
    check(since_begin >= 0.8 * WINDOW,
          "recycled %.2fs after the allocation began: the floor over a %gs window cannot be "
          "above retained_max that soon: %s" % (since_begin, WINDOW, rec.text))
    floor = rec.int("floor")
    check(RETAINED_MAX_MIB * MIB < floor < (ALLOC_MIB + 60) * MIB,
          "floor=%d (%.1f MiB), want between retained_max %d MiB and %d MiB: %s"
          % (floor, floor / MIB, RETAINED_MAX_MIB, ALLOC_MIB + 60, rec.text))
    check(rec.get("metric") == "anon" and rec.get("window") == "3s",
          "recycle line without metric=anon window=3s: %s" % rec.text)
    for key in ("baseline", "anon", "current", "peak", "requests", "age"):
        check(rec.get(key) is not None, "recycle line without %s=: %s" % (key, rec.text))

    # Replacement first, then the old worker stops gracefully.
    spawn = mw.wait_event("spawn", worker=slot, generation=2, timeout=5)[0]
    new_pid = spawn.int("pid")
    mw.wait_event("ready", pid=new_pid, timeout=15)
    ex = mw.wait_event("exit", pid=victim, timeout=15)[0]
    ready_line = mw.events("ready", pid=new_pid)[0]
    check(ready_line.t <= ex.t, "the old worker exited before its replacement was ready")
    check(ex.get("status") == "exited" and ex.get("code") == "0",
          "the recycled worker did not exit 0: %s" % ex.text)

    # Keep the load on the new pair for a moment, then stop it.
    time.sleep(1.0)
    load.stop()
    load.check_no_failures()
    # The other worker may have taken every request of the load (one hot worker can win
    # every accept): two held at once reach both.
    if new_pid not in load.pids:
        lib.reach_workers(port, [new_pid], path="/sleep?ms=500", n=2)
    recycles = mw.events("recycle")
    check(len(recycles) == 1, "want exactly one recycle, got: %r" % recycles)
    check(lib.alive(other), "the other worker (pid %d) is gone" % other)

    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("%s; recycled %.2fs after /alloc?mib=%d returned (%.2fs after it began; bound %.1fs); "
          "floor=%.1f MiB; replacement pid %d ready %.2fs after the recycle; load %s"
          % (acct[0].text.split("event=accounting ", 1)[-1] if acct else "?", latency, ALLOC_MIB,
             since_begin, WINDOW + 2 * SAMPLE, floor / MIB, new_pid, ready_line.t - rec.t,
             load.summary()))


if __name__ == "__main__":
    lib.main(test)
