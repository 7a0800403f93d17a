"""workers.stop_signal is what retires a worker: with stop_signal: SIGINT every worker
gets SIGINT, never SIGTERM, both when a reload replaces it and when memward shuts down
(on SIGTERM to memward); it exits 0 from its SIGINT handler, before graceful_timeout,
so nothing needs a SIGKILL. The default, for contrast, is SIGTERM.

Each worker is a shell that writes the name of the signal it got to $DIR/<pid>."""

import os
import signal
import time

import lib
from lib import check

SCRIPT = ('trap \'echo INT > "$DIR/$$"; exit 0\' INT; trap \'echo TERM > "$DIR/$$"; exit 0\' TERM; '
          'while :; do sleep 0.1; done')


def got(directory, pids, timeout=5.0):
    """{pid: signal name} the workers wrote."""
    deadline = time.monotonic() + timeout
    while True:
        out = {}
        for pid in pids:
            try:
                with open(os.path.join(directory, str(pid))) as f:
                    out[pid] = f.read().strip()
            except FileNotFoundError:
                pass
        if len(out) == len(pids) and all(out.values()) or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def run(t, name, stop_signal):
    directory = t.path(name)
    os.mkdir(directory)
    workers = {"ready": "300ms", "graceful_timeout": "10s", "env": {"DIR": directory}}
    if stop_signal:
        workers["stop_signal"] = stop_signal
    cfg = lib.config(t.port(), count=2, command=["/bin/sh", "-c", SCRIPT], listen=[], workers=workers)
    mw = t.memward(cfg, name=name, config_name=name + ".yaml")
    mw.wait_event("ready", count=2)
    first = list(mw.current_workers().values())

    since = time.monotonic()
    mw.signal(signal.SIGHUP)                    # a reload replaces every worker
    mw.wait_event("reload_done", since=since, timeout=15)
    second = list(mw.current_workers().values())
    check(not set(first) & set(second), "%s: the reload kept %r" % (name, set(first) & set(second)))
    check(mw.stop() == 0, "%s: memward did not exit 0" % name)
    secs = mw.shutdown_seconds()
    check(secs < 5, "%s: the shutdown took %.1fs: a worker waited for graceful_timeout" % (name, secs))
    exits = mw.events("exit")
    check(len(exits) == 4 and all(e.get("code") == "0" for e in exits), "%s: exits %r" % (name, exits))
    return got(directory, first), got(directory, second), secs


def test(t):
    reloaded, stopped, secs = run(t, "sigint", "SIGINT")
    check(set(reloaded.values()) == {"INT"}, "stop_signal SIGINT, on a reload the workers got %r" % reloaded)
    check(set(stopped.values()) == {"INT"}, "stop_signal SIGINT, at shutdown the workers got %r" % stopped)
    reloaded, stopped, _ = run(t, "default", None)
    check(set(reloaded.values()) == {"TERM"} and set(stopped.values()) == {"TERM"},
          "the default stop_signal: %r %r" % (reloaded, stopped))
    print("stop_signal SIGINT: 4 of 4 workers got SIGINT (2 on a reload, 2 at shutdown, %.2fs); "
          "default: SIGTERM" % secs)


if __name__ == "__main__":
    lib.main(test)
