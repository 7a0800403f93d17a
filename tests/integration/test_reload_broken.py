"""SIGHUP with a broken config file: memward logs every error as FILE:LINE:COL and
keeps serving with the old config; no worker is replaced, no request fails.

Two broken files in turn: a schema error (workers.count: four) and a YAML syntax
error (an unclosed flow sequence)."""

import re
import signal
import time

import lib
from lib import check


def position(text, needle):
    """1-based (line, column) of the first occurrence of needle."""
    before = text[:text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def test(t):
    port = t.port()
    good = lib.yaml_dump(lib.config(port, count=2))
    check("  count: 2\n" in good, "config layout changed: %s" % good)
    mw = t.memward(good, name="memward", config_name="memward.yaml")
    path = t.path("memward.yaml")
    mw.wait_event("ready", count=2)
    workers = mw.current_workers()
    load = t.load(port, threads=4, pause=0.005)
    time.sleep(0.5)

    # 1. A value of the wrong type.
    broken = good.replace("  count: 2\n", "  count: four\n")
    line, col_value = position(broken, "four")
    _, col_key = position(broken, "count: four")
    t.write("memward.yaml", broken)
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    hits = mw.wait_text(re.escape(path) + r":%d:\d+" % line, timeout=10, since=since)
    cols = {int(c) for c in re.findall(re.escape(path) + r":%d:(\d+)" % line, hits[0].text)}
    check(cols & {col_key, col_value},
          "error at column %r, want %d or %d: %s" % (cols, col_key, col_value, hits[0].text))
    check("workers.count" in mw.text(), "the error does not name workers.count")
    time.sleep(1.0)

    # 2. A YAML syntax error.
    broken = good.replace("  count: 2\n", "  count: [2\n")
    t.write("memward.yaml", broken)
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    mw.wait_text(re.escape(path) + r":\d+:\d+", timeout=10, since=since)
    time.sleep(1.0)

    load.stop()
    load.check_no_failures()
    check(load.ok > 50, "the load barely ran: " + load.summary())
    check(mw.running(), "memward exited %s" % mw.proc.poll())
    check(mw.current_workers() == workers,
          "workers changed: %r -> %r" % (workers, mw.current_workers()))
    check(len(mw.events("spawn")) == 2, "workers were spawned after the broken reloads")
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)
    print(load.summary())


if __name__ == "__main__":
    lib.main(test)
