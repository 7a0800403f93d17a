"""SIGHUP reloads the file, but the command line still overrides it, and what a reload
cannot change is said (memward(8): OPTIONS, SIGNALS).

  * memward -c FILE -w 3 --listen tcp://B -- CMD, with a file saying count: 2, another
    listen address and another command: 3 workers of CMD on B. A SIGHUP with the file
    now saying count: 4 and max_requests: 500 applies max_requests only: still 3
    workers, still CMD, no reload_listen_unchanged (the flag's address did not change).
  * Without flags, a reload whose file has a new listen address or a new metrics.listen
    logs reload_listen_unchanged and reload_metrics_unchanged, and both old sockets
    keep answering (the new ones are not opened until a restart)."""

import signal
import time

import lib
import metrics_helpers as mh
from lib import check


def reload(t, mw, name, cfg):
    """Rewrites the config file and sends SIGHUP; returns the reload_applied line."""
    t.write_config(cfg, name)
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    applied = mw.wait_event("reload_applied", since=since, timeout=10)[0]
    mw.wait_event("reload_done", since=since, timeout=20)
    return since, applied


def test(t):
    file_port, flag_port = t.port(), t.port()
    cmd = lib.EXAMPLE_COMMAND
    other = lib.test_worker("whoami.py")        # what the file says; the flag's command wins
    cfg = lib.config(file_port, count=2, command=other)
    mw = t.memward(cfg, args=["-w", "3", "--listen", "tcp://127.0.0.1:%d" % flag_port, "--"] + cmd,
                   name="flags", config_name="flags.yaml")
    mw.wait_event("ready", count=3)
    check(lib.http_get(flag_port, "/")[0] == 200, "the --listen port does not serve")

    cfg = lib.config(file_port, count=4, command=other, recycle={"max_requests": 500})
    since, applied = reload(t, mw, "flags.yaml", cfg)
    changed = applied.get("changed")
    check("recycle.max_requests" in changed and "workers.count" not in changed and "listen" not in changed
          and "workers.command" not in changed, "the reload applied %s" % applied.text)
    time.sleep(0.5)
    workers = mw.current_workers()
    check(len(workers) == 3, "after the reload: %d workers %r, -w 3 says 3" % (len(workers), workers))
    news = mw.events("spawn", since=since)
    check(news and all(int(s.get("request_limit")) > 0 for s in news), "max_requests not applied: %r" % news)
    status, headers, body = lib.http_get(flag_port, "/")
    check(status == 200 and "pid=" in body, "after the reload, %d %r: not the example worker" % (status, body))
    check(not mw.events("reload_listen_unchanged"), "a reload warned about listen with --listen unchanged")
    check(mw.stop() == 0, "memward did not exit 0")

    # Without flags: what only a restart changes is said, and the old sockets stay.
    port, mport = t.port(), t.port()
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=1), name="plain", config_name="plain.yaml")
    mw.wait_event("ready")
    new_port, new_mport = t.port(), t.port()
    reload(t, mw, "plain.yaml", mh.config(new_port, "127.0.0.1:%d" % new_mport, count=1))
    for event in ("reload_listen_unchanged", "reload_metrics_unchanged"):
        lines = mw.events(event)
        check(len(lines) == 1 and lines[0].get("level") == "warning", "%s: %r" % (event, lines))
    check(lib.http_get(port, "/")[0] == 200, "the old listen port stopped serving")
    check(mh.get(mport, "/healthz")[0] == 200, "the old metrics port stopped answering")
    for p in (new_port, new_mport):
        try:
            lib.http_get(p, "/", timeout=2)
            lib.fail("port %d from the reloaded file answers before a restart" % p)
        except ConnectionRefusedError:
            pass
    check(mw.stop() == 0, "memward did not exit 0")
    print("-w 3, --listen and -- CMD still win after SIGHUP; a new listen/metrics address "
          "is warned about and the old sockets keep serving")


if __name__ == "__main__":
    lib.main(test)
