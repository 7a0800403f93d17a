"""examples/node/server.js (node's http module, no npm packages) behind memward,
recycled by max_requests.

server.listen({fd: 3}); READY=1 and X_REQUESTS go out through systemd-notify(1)
(Node has no AF_UNIX datagram sockets), the counters coalesced to one report per
100 ms. See example_run for the checks. Also: Node calls listen(2) again on the
inherited socket; with BACKLOG set as examples/node/memward.yaml does, the shared
socket keeps memward's backlog (1024), not Node's default 511."""

import os
import shutil
import subprocess

import lib
from lib import check
from example_run import run_example

EXAMPLE = os.path.join(lib.REPO, "examples", "node")


def listen_backlog(port):
    """The backlog of the listening socket on port, from ss -ltn (its Send-Q column)."""
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], capture_output=True, text=True).stdout
    fields = out.split()
    return int(fields[2]) if len(fields) >= 3 else None


def check_backlog(t, node):
    if not shutil.which("ss"):
        return
    port = t.port()
    cfg = lib.config(port, count=2, command=[node, "server.js"],
                     workers={"directory": EXAMPLE, "ready": "notify", "ready_timeout": "20s",
                              "env": {"BACKLOG": "1024"}},
                     listen=[{"address": "tcp://127.0.0.1:%d" % port, "backlog": 1024}])
    mw = t.memward(cfg, name="backlog")
    mw.wait_event("ready", count=2, timeout=30)
    backlog = listen_backlog(port)
    check(backlog == 1024, "the shared socket's backlog is %s after node listened, want 1024" % backlog)
    check(mw.stop() == 0, "memward did not exit 0")


def test(t):
    node = shutil.which("node") or "/usr/bin/node"
    if not os.access(node, os.X_OK):
        lib.skip("no node (apt-get install nodejs, or packaging/install-deps test)")
    if not shutil.which("systemd-notify"):
        lib.skip("no systemd-notify, which server.js sends notifications with (apt-get install systemd)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    check(version.startswith("v"), "node --version said %r" % version)
    check_backlog(t, node)
    mw = run_example(t, [node, "server.js"], directory=EXAMPLE, policy="node")
    problems = [l.text for l in mw.lines() if "systemd-notify" in l.text]
    check(not problems, "server.js could not notify: %s" % problems[:3])
    print("node %s" % version)


if __name__ == "__main__":
    lib.main(test)
