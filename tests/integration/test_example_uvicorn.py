"""examples/uvicorn (Debian's python3-uvicorn, `uvicorn --fd 3 app:app`) behind memward,
recycled by max_requests.

uvicorn itself knows nothing of sd_notify: the example's ASGI middleware says READY=1
after the lifespan startup and X_REQUESTS=<n> after every response. See example_run
for the checks."""

import os
import subprocess

import lib
from lib import check
from example_run import run_example

EXAMPLE = os.path.join(lib.REPO, "examples", "uvicorn")


def test(t):
    p = subprocess.run([lib.PYTHON, "-c", "import uvicorn; print(uvicorn.__version__)"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        lib.skip("uvicorn is not installed for %s (apt-get install python3-uvicorn, "
                 "or packaging/install-deps test)" % lib.PYTHON)
    mw = run_example(t, [lib.PYTHON, "-m", "uvicorn", "--fd", "3", "--no-access-log", "app:app"],
                     directory=EXAMPLE, policy="uvicorn", keepalive_stop=True)
    problems = [l.text for l in mw.lines() if "sd_notify(" in l.text or "Traceback" in l.text]
    check(not problems, "errors in the workers' output: %s" % problems[:3])
    print("uvicorn %s" % p.stdout.strip())


if __name__ == "__main__":
    lib.main(test)
