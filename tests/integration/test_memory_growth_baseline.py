"""The growth baseline is the worker's memory after warm-up, not during its start-up.

A grower worker (tests/integration/workers/grower.py) starts as a bare interpreter
(~10 MiB), loads 40 MiB during its 1.5 s start-up, says READY=1 and stays flat.
memory {growth_max: 2.0, warmup: 3s, retained_window: 6s, sample_interval: 250ms}: the
window is longer than warmup, as with the defaults (60s / 30s). A worker that stays
flat after warm-up has not grown: it must not be recycled for growth, however long we
watch (here 8 s past the first moment the baseline can exist). Control: SIGUSR1 makes
it keep 80 MiB more (3x its warmed-up size), and then reason=growth must come, with a
baseline near the ~50 MiB the worker held after start-up."""

import re
import signal
import time

import lib
from lib import check

MIB = 1 << 20
WINDOW = 6.0
WARMUP = 3.0


def test(t):
    port = t.port()
    cfg = lib.config(port, count=1, command=lib.test_worker("grower.py"),
                     workers={"env": {"STARTUP_MS": "1500", "STARTUP_MIB": "40", "GROW_MIB": "80"}},
                     memory={"metric": "anon", "sample_interval": "250ms", "retained_window": "6s",
                             "growth_max": 2.0, "warmup": "3s"})
    mw = t.memward(cfg)
    spawn = mw.wait_event("spawn", timeout=15)[0]
    mw.wait_event("ready", timeout=15)
    loaded = mw.wait_text(r"^grower pid=\d+ loaded", timeout=5)[0]
    loaded_kib = int(re.search(r"anon_kib=(\d+)", loaded.text).group(1))

    # The baseline exists from max(warmup, window) after the first sample; watch 8 s past that.
    deadline = spawn.t + max(WARMUP, WINDOW) + 8.0
    while time.monotonic() < deadline:
        rec = mw.events("recycle")
        if rec:
            lib.fail("a worker that stayed flat at %.1f MiB after its start-up was recycled %.1fs after "
                     "spawn: baseline=%.1f MiB is the memory of its start-up, not after warmup: %s"
                     % (loaded_kib / 1024, rec[0].t - spawn.t, rec[0].int("baseline") / MIB, rec[0].text))
        time.sleep(0.2)

    t_grow = time.monotonic()
    mw.signal(signal.SIGUSR1)
    rec = mw.wait_event("recycle", timeout=WINDOW + 5)[0]
    check(rec.get("reason") == "growth", "want reason=growth: %s" % rec.text)
    baseline = rec.int("baseline")
    check(0.8 * loaded_kib * 1024 <= baseline <= 1.2 * loaded_kib * 1024,
          "baseline %.1f MiB, want the ~%.1f MiB held after start-up: %s"
          % (baseline / MIB, loaded_kib / 1024, rec.text))
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print("flat at %.1f MiB for %.0fs after start-up: no recycle; grew by 80 MiB -> reason=growth %.2fs later, "
          "floor %.1f MiB > 2.0 x baseline %.1f MiB" % (loaded_kib / 1024, deadline - spawn.t, rec.t - t_grow,
                                                      rec.int("floor") / MIB, baseline / MIB))


if __name__ == "__main__":
    lib.main(test)
