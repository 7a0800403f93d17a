"""A tiny ASGI app for the template tests. Its lifespan startup runs in each worker.

    GET /   {"pid", "ppid", "env", "started_in", "gc_enabled", "frozen"}
"""

import gc
import json
import os
import signal

signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})

ENV_KEYS = ("LISTEN_PID", "LISTEN_FDS", "NOTIFY_SOCKET", "MEMWARD_WORKER_ID",
            "MEMWARD_WORKER_GENERATION", "WATCHDOG_USEC", "WATCHDOG_PID",
            "MEMWARD_CONTROL_FD", "TEST_VALUE")

STATE = {"started_in": None, "post_fork": None}


def post_fork():
    STATE["post_fork"] = os.getpid()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                STATE["started_in"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = json.dumps({
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "env": {k: os.environ.get(k) for k in ENV_KEYS},
        "started_in": STATE["started_in"],
        "post_fork": STATE["post_fork"],
        "gc_enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
