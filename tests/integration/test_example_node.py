"""examples/node/server.js (node's http module, no npm packages) behind memward,
recycled by max_requests.

server.listen({fd: 3}); READY=1 and X_REQUESTS go out through systemd-notify(1)
(Node has no AF_UNIX datagram sockets), the counters coalesced to one report per
100 ms. See example_run for the checks."""

import os
import shutil
import subprocess

import lib
from lib import check
from example_run import run_example

EXAMPLE = os.path.join(lib.REPO, "examples", "node")


def test(t):
    node = shutil.which("node") or "/usr/bin/node"
    if not os.access(node, os.X_OK):
        lib.skip("no node (apt-get install nodejs, or packaging/install-deps test)")
    if not shutil.which("systemd-notify"):
        lib.skip("no systemd-notify, which server.js sends notifications with (apt-get install systemd)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    check(version.startswith("v"), "node --version said %r" % version)
    mw = run_example(t, [node, "server.js"], directory=EXAMPLE)
    problems = [l.text for l in mw.lines() if "systemd-notify" in l.text]
    check(not problems, "server.js could not notify: %s" % problems[:3])
    print("node %s" % version)


if __name__ == "__main__":
    lib.main(test)
