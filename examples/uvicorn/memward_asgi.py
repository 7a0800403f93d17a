"""ASGI middleware that tells memward when the app is ready and how many requests it served.

    from memward_asgi import MemwardMiddleware
    app = MemwardMiddleware(app)

uvicorn does not speak sd_notify, so this middleware does, on the AF_UNIX datagram
socket memward passes in $NOTIFY_SOCKET:

  * READY=1 when the app's lifespan startup has completed (for an app without
    lifespan support, when uvicorn starts the lifespan protocol). uvicorn starts
    accepting right after that; the listening socket has been listening since
    memward opened it, so a connection that comes in between waits in the kernel's
    backlog and is not refused;
  * X_REQUESTS=<n> (cumulative) and X_INFLIGHT=<m> (requests still in progress)
    after every HTTP response, which is what memward's recycle.max_requests counts.

The datagrams are sent without blocking; if memward's queue is full a report is
dropped rather than delaying a request (the next one carries the new total).
Without NOTIFY_SOCKET (not under memward) nothing is sent.

When uvicorn is the server loading the app, the middleware also fixes one thing in
uvicorn's graceful shutdown (see fix_uvicorn_shutdown), which rolling restarts
would otherwise hit. Standard library only.
"""

import asyncio
import os
import socket
import sys

FRESH_CONNECTION_GRACE = 5.0    # seconds; Go's net/http Shutdown waits as long


class Notifier:
    """sd_notify(3) without libsystemd: one datagram per message."""

    def __init__(self):
        addr = os.environ.get("NOTIFY_SOCKET", "")
        self.sock = None
        if not addr or addr[0] not in "/@":
            return
        self.addr = "\0" + addr[1:] if addr[0] == "@" else addr     # '@': abstract namespace
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def send(self, message, wait=True):
        if self.sock is None:
            return
        try:
            self.sock.sendto(message.encode(), 0 if wait else socket.MSG_DONTWAIT, self.addr)
        except BlockingIOError:
            pass                # superseded by the next report
        except OSError as e:
            sys.stderr.write("memward_asgi: sd_notify(%r): %s\n" % (message, e))


def fix_uvicorn_shutdown(grace=FRESH_CONNECTION_GRACE):
    """Makes uvicorn's graceful shutdown wait for requests already on their way.

    On SIGTERM, uvicorn (seen in Debian 12's 0.17.6) stops accepting and then at once
    closes every connection that is not in the middle of a request, including one it
    accepted a moment ago whose request it has not read yet: that client gets an
    empty reply. Under load, and memward recycles under load, that happens now and
    then. This wraps uvicorn.server.Server.shutdown: stop accepting first (our fd
    only; connections still in the shared backlog go to the other workers), wait
    until every accepted connection has sent its request (at most `grace` seconds),
    then let uvicorn's own shutdown finish those requests and exit.

    Does nothing unless uvicorn.server is loaded (another ASGI server runs the app).
    Returns whether uvicorn's Server is patched.
    """
    server_module = sys.modules.get("uvicorn.server")
    server_class = getattr(server_module, "Server", None)
    if server_class is None:
        return False
    original = server_class.shutdown
    if getattr(original, "memward_fixed", False):
        return True

    async def shutdown(self, sockets=None):
        for server in getattr(self, "servers", []):
            server.close()
        state = getattr(self, "server_state", None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # A protocol whose `cycle` is None has not read a request yet.
        while (state is not None and loop.time() < deadline and
               any(getattr(c, "cycle", False) is None for c in list(state.connections))):
            await asyncio.sleep(0.02)
        await original(self, sockets)

    shutdown.memward_fixed = True
    server_class.shutdown = shutdown
    return True


class MemwardMiddleware:
    def __init__(self, app, fix_shutdown=True):
        self.app = app
        self.notifier = Notifier()
        if fix_shutdown:
            fix_uvicorn_shutdown()
        self.requests = 0
        self.inflight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope, receive, send):
        self.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            # After the last body chunk went out (or the app failed): one request done.
            self.inflight -= 1
            self.requests += 1
            self.notifier.send("X_REQUESTS=%d\nX_INFLIGHT=%d" % (self.requests, self.inflight),
                               wait=False)

    async def _lifespan(self, scope, receive, send):
        started = False

        async def send_wrapper(message):
            nonlocal started
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                started = True
                self.notifier.send("READY=1\nSTATUS=serving")
            elif message["type"] == "lifespan.shutdown.complete":
                self.notifier.send("STOPPING=1")

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if started:
                raise
            # An app without lifespan support raises here; uvicorn (--lifespan auto)
            # logs that and starts serving anyway, so say READY=1 for it.
            self.notifier.send("READY=1\nSTATUS=serving (app without lifespan)")
            raise
