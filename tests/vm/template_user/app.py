"""The WSGI app of tests/vm/test_template_user.sh, run by memward-gunicorn as nobody.

gunicorn.conf.py's post_fork hook (the first code of the app's that runs in a forked
worker) records where the worker was then: /proc/self/cgroup and its ids, in FIRST.

    GET /            {"pid", "ruid", "euid", "first": FIRST, "cgroup": /proc/self/cgroup now}
    GET /alloc?mib=N the same, after keeping N MiB of touched anonymous memory
    GET /?ms=N       the same, after N ms (holds the sync worker, so requests sent at
                     once reach different workers)
"""

import json
import os
import time
import urllib.parse

FIRST = {}          # filled in the worker by post_fork
KEPT = []


def cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def app(environ, start_response):
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("PATH_INFO") == "/alloc" and "mib" in query:
        block = bytearray(int(query["mib"][0]) << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        KEPT.append(block)
    if "ms" in query:
        time.sleep(int(query["ms"][0]) / 1000)
    body = json.dumps({"pid": os.getpid(), "ruid": os.getuid(), "euid": os.geteuid(), "first": FIRST,
                       "cgroup": cgroup(), "kept_mib": sum(len(b) for b in KEPT) >> 20}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                              ("X-Worker-Pid", str(os.getpid()))])
    return [body]
