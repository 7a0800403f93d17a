"""A notify datagram with a bad line is not dropped whole: READY=1 next to a line
without '=' (and a non-numeric X_REQUESTS) still makes the worker ready, as systemd
acts on the valid lines of a notification; the datagram is still counted as rejected
(memward_notify_rejected_total{why="malformed"}), once."""

import os

import lib
from lib import check
import metrics_helpers as mh

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "badline.py")


def test(t):
    port, mport = t.port(), t.port()
    mw = t.memward(lib.yaml_dump(mh.config(port, "127.0.0.1:%d" % mport, count=1,
                                           command=[lib.PYTHON, WORKER])))
    mw.wait_event("ready", count=1, timeout=15)
    _, samples = mh.scrape(mport)
    rejected = mh.values(samples, "memward_notify_rejected_total", why="malformed")
    check(rejected and rejected[0][1] == 1, "malformed datagrams counted: %r" % rejected)
    code, _, body = mh.get(mport, "/status")
    check(code == 200 and '"status":"starting"' in body.replace(" ", ""), "STATUS= was not applied: %s" % body[:300])
    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)


if __name__ == "__main__":
    lib.main(test)
