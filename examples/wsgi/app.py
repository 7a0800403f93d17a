"""A plain WSGI application (PEP 3333), nothing memward-specific in it.

GET / answers "worker=<id> pid=<pid> generation=<g> path=<path>", with the pid also
in an X-Worker-Pid header.
"""

import os


def app(environ, start_response):
    body = ("worker=%s pid=%d generation=%s path=%s\n" % (
        os.environ.get("MEMWARD_WORKER_ID", "-"), os.getpid(),
        os.environ.get("MEMWARD_WORKER_GENERATION", "-"),
        environ.get("PATH_INFO", "/"))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body))),
                              ("X-Worker-Pid", str(os.getpid()))])
    return [body]
