"""A tiny ASGI application for the uvicorn example, wrapped in MemwardMiddleware.

    /usr/bin/python3 -m uvicorn --fd 3 app:app      (from examples/uvicorn, under memward)

GET / answers "worker=<id> pid=<pid> generation=<g> path=<path>", with the pid
also in an X-Worker-Pid header. The lifespan handler stands for whatever the app
does at start-up (connection pools, caches): READY=1 goes out once it is done.
"""

import os

from memward_asgi import MemwardMiddleware


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # ... open connection pools, warm caches ...
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        raise RuntimeError("unsupported scope %r" % scope["type"])
    body = ("worker=%s pid=%d generation=%s path=%s\n" % (
        os.environ.get("MEMWARD_WORKER_ID", "-"), os.getpid(),
        os.environ.get("MEMWARD_WORKER_GENERATION", "-"), scope["path"])).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-worker-pid", str(os.getpid()).encode())]})
    await send({"type": "http.response.body", "body": body})


app = MemwardMiddleware(application)
