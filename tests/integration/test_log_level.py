"""log.level is the lowest level logged (memward.yaml(5): LOG).

The same short run at three levels: start with listen: [] (a warning, no_sockets),
one worker ready (info: spawn, ready), one foreign notify datagram (debug:
notify_rejected why=foreign; counted in /metrics at every level, so it did arrive),
SIGTERM. At debug all three levels show; at info the debug line is gone; at warning
only warnings and errors are left (no spawn line, no shutdown line)."""

import socket
import time

import lib
import metrics_helpers as mh
from lib import check

ORDER = ["debug", "info", "notice", "warning", "error"]


def run(t, level):
    mport = t.port()
    cfg = mh.config(t.port(), "127.0.0.1:%d" % mport, count=1, command=["/bin/sh", "-c", "exec sleep 1000"],
                    listen=[], workers={"ready": "200ms"}, log={"level": level})
    mw = t.memward(cfg, name=level)
    # At level warning no spawn line says the worker's pid: it is memward's only child.
    deadline = time.monotonic() + 10
    while not lib.descendants(mw.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(lib.descendants(mw.pid), "%s: no worker" % level)
    pid = lib.descendants(mw.pid)[0]
    time.sleep(0.5)             # ready after 200 ms
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        check(s.sendto(b"READY=1", lib.worker_notify_socket(pid)) == 7, "the datagram was not sent")
    # It did arrive, whether or not the level lets its debug line out.
    deadline = time.monotonic() + 5
    while not mh.values(mh.scrape(mport)[1], "memward_notify_rejected_total", why="foreign")[0][1]:
        check(time.monotonic() < deadline, "%s: the foreign datagram was never counted" % level)
        time.sleep(0.05)
    check(mw.stop() == 0, "%s: memward did not exit 0" % level)
    levels = [l.get("level") for l in mw.lines()]
    check(all(lv in ORDER for lv in levels), "%s: unknown levels in %r" % (level, set(levels)))
    return mw, levels


def test(t):
    mw, levels = run(t, "debug")
    check(mw.events("notify_rejected", why="foreign") and "info" in levels and "warning" in levels,
          "log.level debug: levels %r, notify_rejected %r" % (sorted(set(levels)), mw.events("notify_rejected")))
    seen = {"debug": sorted(set(levels), key=ORDER.index)}

    mw, levels = run(t, "info")
    check("debug" not in levels and mw.events("spawn") and mw.events("no_sockets"),
          "log.level info: levels %r" % sorted(set(levels)))
    seen["info"] = sorted(set(levels), key=ORDER.index)

    mw, levels = run(t, "warning")
    check(set(levels) <= {"warning", "error"} and mw.events("no_sockets") and not mw.events("spawn"),
          "log.level warning: levels %r" % sorted(set(levels)))
    seen["warning"] = sorted(set(levels), key=ORDER.index)
    print("levels logged: %s" % "; ".join("%s -> %s" % (k, ",".join(v)) for k, v in seen.items()))


if __name__ == "__main__":
    lib.main(test)
