"""examples/wsgi (a plain WSGI app served by the standard library's wsgiref on fd 3)
behind memward, recycled by max_requests. See example_run for the checks."""

import os

import lib
from lib import check
from example_run import run_example

EXAMPLE = os.path.join(lib.REPO, "examples", "wsgi")


def test(t):
    mw = run_example(t, [lib.PYTHON, "serve.py", "app:app"], directory=EXAMPLE, policy="wsgi")
    problems = [l.text for l in mw.lines() if "sd_notify(" in l.text or "Traceback" in l.text]
    check(not problems, "errors in the workers' output: %s" % problems[:3])


if __name__ == "__main__":
    lib.main(test)
