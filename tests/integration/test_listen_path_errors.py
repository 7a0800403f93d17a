"""A regular file where a unix socket should go ends memward at start-up with one
clear error naming the path, for `listen:` and for `metrics.listen` alike (both go
through listen_address_open()), and the file is left as it was: memward replaces
only stale sockets (that a stale one is replaced, test_metrics checks)."""

import os

import lib
import metrics_helpers as mh
from lib import check

CONTENT = "not a socket\n"


def expect_refused(t, label, cfg, event, path):
    f = t.start_fails(label, cfg, event, path)
    check("not a socket" in f.get("msg", ""), "%s: the message does not say why:\n%s" % (label, f["stderr"]))
    check(f.get("error") == os.strerror(17), "%s: error=%r, want EEXIST's text" % (label, f.get("error")))
    with open(path) as fh:
        check(fh.read() == CONTENT, "%s: %s was modified" % (label, path))


def test(t):
    port = t.port()

    path = t.write("listen.sock", CONTENT)
    cfg = lib.config(port, count=1, listen=[{"address": "unix:" + path, "name": "http"}])
    expect_refused(t, "listen", cfg, "listen_failed", path)

    path = t.write("metrics.sock", CONTENT)
    expect_refused(t, "metrics", mh.config(t.port(), "unix:" + path, count=1), "metrics_listen_failed", path)


if __name__ == "__main__":
    lib.main(test)
