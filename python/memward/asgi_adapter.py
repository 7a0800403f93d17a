"""memward-asgi: an ASGI app loaded once in the template, served by uvicorn in each worker.

    memward-asgi [--lifespan auto|on|off] [--no-access-log] ... module:app

The template builds uvicorn's Config and loads the app (uvicorn.Config.load(): the
import, the protocol classes, the proxy-headers middleware); each worker runs a
uvicorn Server on memward's listening sockets (fd 3...) with its own event loop. The
ASGI lifespan runs in every worker, after the fork: its startup is where per-worker
connections belong. --pre-fork/--post-fork name functions to call in the template
before each fork and in the worker after memward's reset (python/README.md).

Each worker says READY=1 once uvicorn's startup has completed (lifespan startup done,
servers listening), WATCHDOG=1 from uvicorn's 0.1 s tick, X_REQUESTS/X_INFLIGHT after
every HTTP request, STOPPING=1 when it begins to stop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from typing import Any, Callable, List, Optional

from memward import notify, protocol, template

# How long a stopping worker waits for its connections to be answered and closed:
# uvicorn's default keep-alive timeout, which closes the idle ones meanwhile.
DRAIN_GRACE = 5.0
# How long a stopping worker whose app memward does not wrap waits for each accepted
# connection's request; Go's net/http Shutdown waits as long.
FRESH_CONNECTION_GRACE = 5.0


CLOSE_HEADER = (b"connection", b"close")


def closing_send(send: Callable, draining: Callable[[], bool]) -> Callable:
    """Wraps an HTTP request's ASGI `send`: while draining() is true, the response
    that starts carries `Connection: close` (unless the app set a Connection header
    itself), so that the client opens a new connection for its next request instead
    of sending it on one this worker is about to close. uvicorn closes the
    connection after such a response (h11: MUST_CLOSE; httptools: keep_alive off)."""
    async def send_(message: dict) -> None:
        if message.get("type") == "http.response.start" and draining():
            headers = list(message.get("headers") or [])
            if not any(bytes(name).lower() == b"connection" for name, _ in headers):
                message = dict(message, headers=headers + [CLOSE_HEADER])
        await send(message)
    return send_


class RequestCounter:
    """ASGI 3 middleware: brackets each HTTP request for a WorkerReporter, says
    STOPPING=1 when the lifespan shutdown begins, and once `draining` is set (the
    worker is stopping) answers with `Connection: close` (closing_send)."""

    def __init__(self, app: Any, reporter: notify.WorkerReporter) -> None:
        self.app = app
        self.reporter = reporter
        self.draining = False

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            self.reporter.request_started()
            try:
                await self.app(scope, receive, closing_send(send, lambda: self.draining))
            finally:
                self.reporter.request_finished()
        elif scope["type"] == "lifespan":
            async def receive_(*args: Any) -> dict:
                message = await receive(*args)
                if message.get("type") == "lifespan.shutdown":
                    self.reporter.stopping()
                return message
            await self.app(scope, receive_, send)
        else:
            await self.app(scope, receive, send)


async def stop_accepting_and_wait(server: Any, counter: Optional["RequestCounter"] = None) -> None:
    """The graceful-shutdown fix for a uvicorn Server (0.17.6) that is about to shut
    down. uvicorn stops accepting and at once closes every connection that is not in
    the middle of a request: one accepted a moment ago whose request it has not read yet
    (that client gets an empty reply), and every idle keep-alive connection, on which
    the client may be sending its next request right then (it reads a reset or an EOF);
    a response in flight goes out without `Connection: close` and the connection is
    closed after it, so the client's next request on it fails the same way.

    This stops accepting first (our fds only: connections still in the shared backlog
    go to the other workers). With the app's RequestCounter, every request from now on
    is answered with `Connection: close` and it waits until every connection has been
    answered that way and closed by uvicorn, at most DRAIN_GRACE (an idle connection
    that sends nothing is closed by uvicorn's keep-alive timeout meanwhile, as it would
    be without a stop). Without one (gunicorn's UvicornWorker, whose app memward does
    not wrap) it waits until each accepted connection has sent its request, at most
    FRESH_CONNECTION_GRACE. uvicorn's own shutdown then finishes as usual. Used by
    memward-asgi's workers and by gunicorn's UvicornWorker under memward-gunicorn."""
    if counter is not None:
        counter.draining = True
    for listener in getattr(server, "servers", []):
        listener.close()
    loop = asyncio.get_running_loop()
    if counter is not None:
        deadline = loop.time() + DRAIN_GRACE
        while loop.time() < deadline and server.server_state.connections:
            await asyncio.sleep(0.02)
        return
    deadline = loop.time() + FRESH_CONNECTION_GRACE
    while (loop.time() < deadline and
           any(getattr(c, "cycle", False) is None for c in list(server.server_state.connections))):
        await asyncio.sleep(0.02)


def _server_class() -> type:
    """uvicorn's Server with memward's reporting and a graceful-shutdown fix."""
    import uvicorn

    class MemwardServer(uvicorn.Server):
        reporter: notify.WorkerReporter
        counter: RequestCounter

        async def startup(self, sockets: Optional[list] = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                self.reporter.heartbeat()           # READY=1: lifespan done, listening

        async def on_tick(self, counter: int) -> bool:
            self.reporter.heartbeat()               # WATCHDOG=1, rate-limited
            return await super().on_tick(counter)

        async def shutdown(self, sockets: Optional[list] = None) -> None:
            self.reporter.stopping()
            await stop_accepting_and_wait(self, self.counter)
            await super().shutdown(sockets=sockets)

    return MemwardServer


def _import(name: str) -> Callable:
    from uvicorn.importer import import_from_string
    return import_from_string(name)


class AsgiAdapter(template.Adapter):
    """uvicorn in memward's template; `options` from parse_args()."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.config: Any = None
        self.listen_fds: List[int] = []
        self.pre_fork_hook: Optional[Callable] = None
        self.post_fork_hook: Optional[Callable] = None

    def runtime(self) -> str:
        import uvicorn
        return "%s uvicorn/%s asgi" % (super().runtime(), uvicorn.__version__)

    def load(self, listen_fds: List[int]) -> None:
        import uvicorn
        o = self.options
        if not listen_fds:
            raise SystemExit("memward-asgi: memward passed no listening socket (LISTEN_FDS)")
        if o.app_dir is not None:
            sys.path.insert(0, o.app_dir)
        self.config = uvicorn.Config(
            o.app, lifespan=o.lifespan, access_log=o.access_log, log_level=o.log_level,
            http=o.http, ws=o.ws, loop=o.loop, interface=o.interface,
            proxy_headers=o.proxy_headers, forwarded_allow_ips=o.forwarded_allow_ips,
            root_path=o.root_path, timeout_keep_alive=o.timeout_keep_alive,
            limit_concurrency=o.limit_concurrency, backlog=o.backlog, factory=o.factory,
            server_header=o.server_header, date_header=o.date_header)
        self.config.load()              # imports the app, once, here in the template
        self.config.setup_event_loop()  # the loop policy only: each worker makes its loop
        self.listen_fds = listen_fds
        if o.pre_fork:
            self.pre_fork_hook = _import(o.pre_fork)
        if o.post_fork:
            self.post_fork_hook = _import(o.post_fork)

    def pre_fork(self, spawn: protocol.Spawn) -> Any:
        if self.pre_fork_hook is not None:
            self.pre_fork_hook()
        return None

    def run_worker(self, context: Any, spawn: protocol.Spawn, ppid: int) -> int:
        if self.post_fork_hook is not None:
            self.post_fork_hook()
        reporter = notify.WorkerReporter.from_environ("uvicorn worker")
        # memward's drawn request limit: uvicorn stops gracefully once it has served that
        # many (it checks on its 0.1 s tick, so a busy worker may serve a few more).
        limit = notify.max_requests()
        if limit is not None:
            self.config.limit_max_requests = limit if limit > 0 else None
        counter = RequestCounter(self.config.loaded_app, reporter)
        self.config.loaded_app = counter
        server = _server_class()(self.config)
        server.reporter = reporter
        server.counter = counter
        # Duplicates, so that fd 3... stay open as LISTEN_FDS says after uvicorn closes
        # its sockets at shutdown.
        sockets = [socket.socket(fileno=os.dup(fd)) for fd in self.listen_fds]
        server.run(sockets=sockets)
        return 0 if server.started else 3


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="memward-asgi",
        description="Serve an ASGI app with uvicorn in workers forked by memward's "
                    "template (workers.mode: template). See python/README.md.")
    p.add_argument("app", help="the ASGI app, as module:attribute")
    p.add_argument("--app-dir", default=".",
                   help="put this directory first on sys.path (default: the current one)")
    p.add_argument("--factory", action="store_true",
                   help="APP is a function that returns the ASGI app")
    p.add_argument("--lifespan", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--interface", choices=["auto", "asgi3", "asgi2", "wsgi"], default="auto")
    p.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto")
    p.add_argument("--ws", choices=["auto", "none", "websockets", "wsproto"], default="auto")
    p.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    p.add_argument("--log-level", default=None,
                   choices=["critical", "error", "warning", "info", "debug", "trace"])
    p.add_argument("--no-access-log", dest="access_log", action="store_false")
    p.add_argument("--proxy-headers", dest="proxy_headers", action="store_true", default=True)
    p.add_argument("--no-proxy-headers", dest="proxy_headers", action="store_false")
    p.add_argument("--forwarded-allow-ips", default=None)
    p.add_argument("--root-path", default="")
    p.add_argument("--timeout-keep-alive", type=int, default=5, metavar="SECONDS")
    p.add_argument("--limit-concurrency", type=int, default=None, metavar="N")
    p.add_argument("--backlog", type=int, default=2048)
    p.add_argument("--no-server-header", dest="server_header", action="store_false")
    p.add_argument("--no-date-header", dest="date_header", action="store_false")
    p.add_argument("--pre-fork", metavar="MODULE:FUNCTION",
                   help="call FUNCTION() in the template before every fork "
                        "(close connections opened at import)")
    p.add_argument("--post-fork", metavar="MODULE:FUNCTION",
                   help="call FUNCTION() in each worker after memward's reset, "
                        "before uvicorn starts")
    p.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false", default=None,
                   help="turn the GC recipe off (as MEMWARD_GC_FREEZE=0)")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """The memward-asgi command."""
    options = parse_args(argv)
    if options.gc_freeze is False:
        import gc
        gc.enable()                     # the script disabled it before parsing options
    return template.Template(AsgiAdapter(options), gc_freeze=options.gc_freeze,
                             name="memward-asgi").run()
