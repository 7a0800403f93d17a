"""The "fat" WSGI app of bench/fork (issue 15 §4): what a real Python service loads.

At import it pulls in numpy and matplotlib (Agg) and builds a 400,000-row table of
dicts, about 200 MiB in one process; then it answers every request at once:

    GET /          "400000 rows pid=<pid>"
    GET /gc        gc.collect() first: CPython's collector writes into every object it
                   tracks, which is what turns copy-on-write sharing into copies
    ?hold=MS       either path keeps the connection MS milliseconds before answering,
                   so that concurrent clients reach every worker (bench/fork/run)

The body names the worker's pid so that the runner can tell which worker served it.
"""

import gc
import os
import time

import numpy  # noqa: F401
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot  # noqa: E402,F401

TABLE = {i: {"id": i, "name": "row-%d" % i, "values": [i, i * 2, i * 3]} for i in range(400000)}


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/gc":
        gc.collect()
    query = environ.get("QUERY_STRING", "")
    if query.startswith("hold="):
        time.sleep(int(query[5:] or 0) / 1000.0)
    body = b"%d rows pid=%d\n" % (len(TABLE), os.getpid())
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
