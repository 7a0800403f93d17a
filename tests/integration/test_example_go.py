"""examples/go (net/http, standard library only) behind memward, recycled by max_requests.

The test builds examples/go with Debian's golang-go into its temporary directory
(GOCACHE and GOPATH there too, GOPROXY=off: the module has no dependencies) and runs
2 slots of the binary: net.FileListener on fd 3, READY=1 and X_REQUESTS over a
unixgram socket, http.Server.Shutdown on SIGTERM. See example_run for the checks."""

import os
import shutil
import subprocess

import lib
from lib import check
from example_run import run_example

EXAMPLE = os.path.join(lib.REPO, "examples", "go")


def find_go():
    for path in (shutil.which("go"), "/usr/bin/go", "/usr/lib/go/bin/go"):
        if path and os.access(path, os.X_OK):
            return path
    return None


def test(t):
    go = find_go()
    if not go:
        lib.skip("no go toolchain (apt-get install golang-go, or packaging/install-deps test)")
    binary = t.path("goworker")
    env = dict(os.environ, GOCACHE=t.path("gocache"), GOPATH=t.path("gopath"), GOPROXY="off",
               GOFLAGS="", GO111MODULE="on", GOTOOLCHAIN="local", GOWORK="off")
    p = subprocess.run([go, "build", "-o", binary, "."], cwd=EXAMPLE, env=env,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, "go build failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    run_example(t, [binary], policy="go")


if __name__ == "__main__":
    lib.main(test)
