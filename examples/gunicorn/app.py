"""A tiny WSGI application for the gunicorn example."""

import os


def app(environ, start_response):
    body = ("worker=%s pid=%d path=%s\n" % (
        os.environ.get("MEMWARD_WORKER_ID", "-"), os.getpid(),
        environ.get("PATH_INFO", "/"))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
