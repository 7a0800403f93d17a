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

When uvicorn is the server loading the app, the middleware also fixes uvicorn's
graceful shutdown for keep-alive clients (see fix_uvicorn_shutdown), which rolling
restarts would otherwise hit. Standard library only.
"""

import asyncio
import os
import socket
import sys

# How long a stopping worker waits for its connections to be answered and closed:
# uvicorn's default keep-alive timeout, which closes the idle ones meanwhile.
DRAIN_GRACE = 5.0
CLOSE_HEADER = (b"connection", b"close")

# Set when this process's uvicorn begins its graceful shutdown (fix_uvicorn_shutdown);
# from then on every response says Connection: close (MemwardMiddleware).
draining = False


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


def fix_uvicorn_shutdown(grace=DRAIN_GRACE):
    """Makes uvicorn's graceful shutdown drop no request of a keep-alive client.

    On SIGTERM, uvicorn (seen in Debian 12's 0.17.6) stops accepting and then at once
    closes every connection that is not in the middle of a request: one it accepted a
    moment ago whose request it has not read yet (that client gets an empty reply),
    and every idle keep-alive connection, on which the client may be sending its next
    request right then (it reads a reset or an EOF). A response still in flight goes
    out without `Connection: close` and the connection is closed after it, so the
    client's next request on it fails the same way. Under load, and memward recycles
    under load, that is a request or more lost per keep-alive connection per recycle.

    This wraps uvicorn.server.Server.shutdown: stop accepting first (our fd only;
    connections still in the shared backlog go to the other workers), answer every
    request from now on with `Connection: close` (MemwardMiddleware adds it), and wait
    until every connection has been answered that way and closed by uvicorn, at most
    `grace` seconds; an idle connection that sends nothing is closed by uvicorn's
    keep-alive timeout meanwhile, as it would be without a stop. Then uvicorn's own
    shutdown closes whatever is left and finishes.

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
        global draining
        draining = True
        for server in getattr(self, "servers", []):
            server.close()
        state = getattr(self, "server_state", None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while state is not None and loop.time() < deadline and state.connections:
            await asyncio.sleep(0.02)
        await original(self, sockets)

    shutdown.memward_fixed = True
    server_class.shutdown = shutdown
    return True


def closing_send(send):
    """Wraps an HTTP request's ASGI `send`: once the worker is draining, the response
    that starts carries `Connection: close` (unless the app set a Connection header),
    so the client sends its next request on a new connection, to another worker."""
    async def send_(message):
        if draining and message.get("type") == "http.response.start":
            headers = list(message.get("headers") or [])
            if not any(bytes(name).lower() == b"connection" for name, _ in headers):
                message = dict(message, headers=headers + [CLOSE_HEADER])
        await send(message)
    return send_


class MemwardMiddleware:
    def __init__(self, app, fix_shutdown=True):
        self.app = app
        self.notifier = Notifier()
        self.fix_shutdown = fix_shutdown and fix_uvicorn_shutdown()
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
            await self.app(scope, receive, closing_send(send) if self.fix_shutdown else send)
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
