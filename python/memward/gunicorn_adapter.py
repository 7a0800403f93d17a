"""memward-gunicorn: gunicorn's configuration, app and worker classes, memward's processes.

    memward-gunicorn -c gunicorn.conf.py [-k gthread --threads 4 ...] app:app

takes gunicorn's own command line. The template loads gunicorn's configuration with
gunicorn's own machinery (gunicorn.app.wsgiapp.WSGIApplication: command line,
GUNICORN_CMD_ARGS, the config file) and imports the app once, as `gunicorn --preload`
would; it never starts gunicorn's Arbiter loop: memward manages the workers. For every
SPAWN it builds gunicorn's configured worker class (sync, gthread,
uvicorn.workers.UvicornWorker, ...) on memward's listening sockets and runs it in the
forked worker, calling gunicorn's server hooks where gunicorn calls them:

    template:  nworkers_changed, on_starting, when_ready (before READY);
               pre_fork(server, worker) before each fork; on_exit(server) at exit
    worker:    post_fork(server, worker) after memward's reset; then gunicorn's own
               worker code calls post_worker_init, pre_request/post_request,
               worker_int, worker_abort; worker_exit(server, worker) at its end
    never:     on_reload, pre_exec, child_exit (memward reloads, execs and reaps)

`server` is a gunicorn Arbiter object that is set up (configuration, logger, listeners)
but never run. The worker says READY=1 the first time its loop calls notify(), that
is once it accepts (for UvicornWorker: after the ASGI lifespan startup), WATCHDOG=1
from the same notify() calls, X_REQUESTS/X_INFLIGHT after every request, and
STOPPING=1 when it begins to stop.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
import types
from typing import Any, List, Optional

from memward import notify, protocol, template


def _uvicorn_server_class() -> type:
    """uvicorn's Server as UvicornWorker runs it, reporting to memward."""
    import uvicorn

    class WorkerServer(uvicorn.Server):
        reporter: notify.WorkerReporter

        async def on_tick(self, counter: int) -> bool:
            # Every 0.1 s tick: WATCHDOG=1 at the reporter's pace. gunicorn's notify()
            # (callback_notify) runs only on every 10th tick, once a second at most.
            self.reporter.heartbeat()
            return await super().on_tick(counter)

        async def shutdown(self, sockets: Optional[list] = None) -> None:
            # STOPPING=1 whatever the app: uvicorn installs its own SIGTERM handler
            # (the worker's handle_exit never runs), and an app without lifespan never
            # sees lifespan.shutdown. Then memward-asgi's graceful-shutdown fix: a
            # connection accepted just before the stop is answered, not reset.
            from memward.asgi_adapter import stop_accepting_and_wait
            self.reporter.stopping()
            await stop_accepting_and_wait(self)
            await super().shutdown(sockets=sockets)

    return WorkerServer


class _DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module not run yet, and runs it at the first access
    to an attribute the module itself defines (or to __path__: a submodule's import).

    importlib.util.LazyLoader cannot do this for a module imported twice: from 3.11 on,
    `import name` reads sys.modules[name].__spec__, and any attribute access loads its
    lazy module. Here __spec__, __name__ and __file__ are plain attributes."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        try:
            real = importlib.import_module(name)
        except BaseException:
            sys.modules.setdefault(name, self)
            raise
        # Whoever holds this object (gunicorn.util's global) sees the real module's names.
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def defer_pkg_resources() -> bool:
    """Puts off pkg_resources until something uses it.

    gunicorn 20.1's util imports it at the top for one purpose, worker classes named
    by entry point (`-k egg:dist#name`, or a name it does not know), which its config
    resolves in the template. Run for nothing otherwise, it scans every installed
    distribution: ~12 MiB of the template's memory on Debian 12, more than gunicorn
    itself, and so of the tree it shares with its workers. Whoever uses it (the config,
    the app, a hook) runs it then, in the template when that is where it is used.
    Returns False, and changes nothing, when it is imported already or not installed."""
    if "pkg_resources" in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec("pkg_resources")
    except (ImportError, ValueError):
        return False
    if spec is None or spec.loader is None:
        return False
    module = _DeferredModule("pkg_resources")
    module.__spec__ = spec
    module.__loader__ = spec.loader
    if spec.origin:
        module.__file__ = spec.origin
    sys.modules["pkg_resources"] = module
    return True


class _CappedSelector:
    """A selector whose select() waits at most `cap` seconds; the rest is the
    wrapped selector's."""

    def __init__(self, selector: Any, cap: float) -> None:
        self._selector = selector
        self._cap = cap

    def select(self, timeout: Optional[float] = None) -> list:
        if timeout is None or timeout > self._cap:
            timeout = self._cap
        return self._selector.select(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


def _worker_subclass(base: type) -> type:
    """`base` (gunicorn's configured worker class) with memward's reporting added.

    notify() is what every gunicorn worker calls from its loop for the arbiter's
    heartbeat; here it also says READY=1 (first call) and WATCHDOG=1. Requests are
    counted around handle_request() for the WSGI workers, and by wrapping the app
    uvicorn loaded (after its interface detection) for uvicorn's workers, which have
    no handle_request()."""
    namespace: dict = {}

    def notify_(self: Any) -> None:
        base.notify(self)
        reporter = getattr(self, "memward", None)
        if reporter is not None:
            reporter.heartbeat()
    namespace["notify"] = notify_

    def handle_exit(self: Any, sig: int, frame: Any) -> None:
        reporter = getattr(self, "memward", None)
        if reporter is not None:
            reporter.stopping()
        base.handle_exit(self, sig, frame)
    namespace["handle_exit"] = handle_exit

    if any(cls.__module__ == "gunicorn.workers.gthread" for cls in base.__mro__):
        def run(self: Any) -> None:
            # gthread's loop calls notify() between poller.select(1.0) calls: once a
            # second, too seldom for a watchdog of 1 s or less. Its waits are capped
            # at half the ping interval, so that pings are at most 1.5 intervals apart.
            # (With --worker-connections connections open it waits for a request to
            # finish instead, up to 1 s: python/README.md.)
            interval = self.memward.ping_interval()
            if interval is not None:
                self.poller = _CappedSelector(self.poller, interval / 2)
            base.run(self)
        namespace["run"] = run

    if hasattr(base, "handle_request"):
        def handle_request(self: Any, *args: Any, **kwargs: Any) -> Any:
            reporter = self.memward
            reporter.request_started()
            try:
                return base.handle_request(self, *args, **kwargs)
            finally:
                reporter.request_finished()
        namespace["handle_request"] = handle_request
    elif any(cls.__module__.startswith("uvicorn.") for cls in base.__mro__):
        async def _serve(self: Any) -> None:
            # UvicornWorker._serve(), with the request counter around the app that
            # uvicorn's Config.load() made: wrapping self.wsgi instead would hide the
            # app's interface from load()'s detection (an ASGI 2 app, called as ASGI 3,
            # answers 500).
            from gunicorn.arbiter import Arbiter
            from memward.asgi_adapter import RequestCounter
            self.config.app = self.wsgi
            if not self.config.loaded:
                self.config.load()
            self.config.loaded_app = RequestCounter(self.config.loaded_app, self.memward)
            server = _uvicorn_server_class()(config=self.config)
            server.reporter = self.memward
            await server.serve(sockets=self.sockets)
            if not server.started:
                sys.exit(Arbiter.WORKER_BOOT_ERROR)
        namespace["_serve"] = _serve

    namespace["__doc__"] = "gunicorn's %s, reporting to memward." % base.__name__
    namespace["__module__"] = base.__module__
    return type(base.__name__, (base,), namespace)


def use_request_limit(worker: Any, environ: Optional[dict] = None) -> Optional[int]:
    """Makes the worker stop by itself after exactly the number of requests memward drew
    for it (MEMWARD_MAX_REQUESTS; 0: none), in place of gunicorn's max_requests plus its
    own jitter, which Worker.__init__ drew: gunicorn's workers count self.nr against
    self.max_requests and finish the request at the limit ("Autorestarting worker after
    current request"); UvicornWorker gave the same number to uvicorn's Config
    (limit_max_requests) when it was made. Returns the limit set, None without the
    variable (not under memward: gunicorn's own max_requests then stands). memward always
    sets it, 0 when recycle.max_requests is off: gunicorn's --max-requests is then off
    too, since an exit at a limit memward did not draw would look like a crash to it."""
    limit = notify.max_requests(os.environ if environ is None else environ)
    if limit is None:
        return None
    worker.max_requests = limit if limit > 0 else sys.maxsize
    config = getattr(worker, "config", None)
    if config is not None and hasattr(config, "limit_max_requests"):
        config.limit_max_requests = worker.max_requests
    return limit


class GunicornAdapter(template.Adapter):
    """gunicorn in memward's template. argv is gunicorn's command line (without argv[0])."""

    def __init__(self, argv: Optional[List[str]] = None, prog: str = "memward-gunicorn"
                 ) -> None:
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.prog = prog
        self.application: Any = None
        self.arbiter: Any = None
        self.cfg: Any = None
        self.log: Any = None
        self.worker_class: Any = None
        self.age = 0

    def runtime(self) -> str:
        import gunicorn
        return "%s gunicorn/%s %s" % (super().runtime(), gunicorn.__version__,
                                      self.cfg.worker_class_str if self.cfg else "")

    # ---------------------------------------------------------------- template

    def load(self, listen_fds: List[int]) -> None:
        """gunicorn's start-up up to the point where its arbiter would fork workers:
        Application.run() and Arbiter.start(), without pidfile, daemon, signals or loop."""
        defer_pkg_resources()
        from gunicorn import sock
        from gunicorn.app.wsgiapp import WSGIApplication
        from gunicorn.arbiter import Arbiter

        saved_argv = sys.argv
        sys.argv = [self.prog] + self.argv      # gunicorn's parser reads sys.argv
        try:
            application = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog=self.prog)
        finally:
            sys.argv = saved_argv
        cfg = application.cfg
        if cfg.print_config or cfg.check_config:
            if cfg.print_config:
                print(cfg)
            application.load()          # errors propagate: exit non-zero, as gunicorn
            sys.exit(0)
        if cfg.daemon:
            raise SystemExit("%s: --daemon makes no sense under memward" % self.prog)
        if cfg.pythonpath:
            for path in cfg.pythonpath.split(","):
                path = os.path.abspath(path)
                if path not in sys.path:
                    sys.path.insert(0, path)
        if not listen_fds:
            raise SystemExit("%s: memward passed no listening socket (LISTEN_FDS)" % self.prog)

        # memward owns the sockets: gunicorn's --bind is replaced by the fds memward
        # passed. gunicorn gets a duplicate of each (it closes the fd it is given),
        # so fd 3... stay what LISTEN_FDS says in every worker; and none is named
        # twice, which is what makes gunicorn 20.1 die with EBADF on fd://3 binds.
        bind = cfg.settings["bind"]
        given = [str(b) for b in bind.get()]
        if given != list(bind.default) and given != ["fd://%d" % fd for fd in listen_fds]:
            sys.stderr.write("%s: --bind %s ignored: memward passes the listening "
                             "sockets (listen: in memward's config)\n"
                             % (self.prog, " ".join(given)))
        cfg.set("bind", [])
        if cfg.workers != 1:
            sys.stderr.write("%s: workers=%d ignored: memward's workers.count decides\n"
                             % (self.prog, cfg.workers))

        # Arbiter.__init__ is gunicorn's setup(): the logger, cfg.env, SERVER_SOFTWARE,
        # nworkers_changed. Its run() is never called.
        arbiter = Arbiter(application)
        arbiter.pid = os.getpid()
        arbiter.systemd = True          # never unlink a socket path it did not create
        application.wsgi()              # the app, once, before on_starting (--preload)
        cfg.on_starting(arbiter)
        arbiter.LISTENERS = sock.create_sockets(cfg, arbiter.log,
                                                [os.dup(fd) for fd in listen_fds])
        cfg.set("bind", ["fd://%d" % fd for fd in listen_fds])
        arbiter.address = cfg.address
        arbiter.log.info("Listening at: %s (%s)", ",".join(str(s) for s in arbiter.LISTENERS),
                         arbiter.pid)
        arbiter.log.info("Using worker: %s", cfg.worker_class_str)
        if hasattr(arbiter.worker_class, "check_config"):
            arbiter.worker_class.check_config(cfg, arbiter.log)
        cfg.when_ready(arbiter)

        self.application, self.arbiter, self.cfg, self.log = application, arbiter, cfg, arbiter.log
        self.worker_class = _worker_subclass(arbiter.worker_class)

    def worker_timeout(self, spawn: protocol.Spawn) -> float:
        """The timeout gunicorn's arbiter gives its workers (cfg.timeout / 2), which is
        how long their loops may block between notify() calls; shortened so that a
        memward watchdog gets its pings in time."""
        timeout = self.cfg.timeout / 2.0
        env = dict(spawn.env)
        watchdog = notify.watchdog_seconds({"WATCHDOG_USEC": env.get("WATCHDOG_USEC", "")})
        if watchdog is not None:
            timeout = min(timeout, watchdog / 4) if timeout > 0 else watchdog / 4
        return timeout

    def pre_fork(self, spawn: protocol.Spawn) -> Any:
        self.age += 1
        worker = self.worker_class(self.age, self.arbiter.pid, self.arbiter.LISTENERS,
                                   self.application, self.worker_timeout(spawn),
                                   self.cfg, self.log)
        try:
            self.cfg.pre_fork(self.arbiter, worker)
        except BaseException:
            worker.tmp.close()
            raise
        return worker

    def after_fork(self, worker: Any) -> None:
        # The worker's heartbeat file is for an arbiter; the template keeps no copy.
        if worker is not None:
            worker.tmp.close()

    def reopen_logs(self) -> None:
        self.log.reopen_files()

    def on_exit(self) -> None:
        if self.arbiter is not None:
            self.cfg.on_exit(self.arbiter)

    # ------------------------------------------------------------------ worker

    def run_worker(self, worker: Any, spawn: protocol.Spawn, ppid: int) -> int:
        """gunicorn's Arbiter.spawn_worker() from the fork on, with memward's reset
        already done: post_fork, init_process (which loads nothing: the app is
        preloaded), exit codes as gunicorn's, worker_exit at the end."""
        from gunicorn import util
        from gunicorn.errors import AppImportError
        from gunicorn.arbiter import Arbiter

        worker.pid = os.getpid()
        worker.ppid = ppid              # memward: the worker exits if that changes
        worker.memward = notify.WorkerReporter.from_environ("gunicorn worker")
        use_request_limit(worker)
        try:
            util._setproctitle("worker [%s]" % self.arbiter.proc_name)
            self.log.info("Booting worker with pid: %s", worker.pid)
            self.cfg.post_fork(self.arbiter, worker)
            worker.init_process()
            return 0
        except SystemExit as e:
            return template._exit_code(e)
        except AppImportError as e:
            self.log.debug("Exception while loading the application", exc_info=True)
            print("%s" % e, file=sys.stderr)
            return Arbiter.APP_LOAD_ERROR
        except Exception:
            self.log.exception("Exception in worker process")
            # Arbiter.spawn_worker(): sys.exit(-1) once booted, exit status 255.
            return Arbiter.WORKER_BOOT_ERROR if not worker.booted else 255
        finally:
            self.log.info("Worker exiting (pid: %s)", worker.pid)
            try:
                worker.tmp.close()
                self.cfg.worker_exit(self.arbiter, worker)
            except Exception:
                self.log.warning("Exception during worker exit:\n%s", traceback.format_exc())


def main(argv: Optional[List[str]] = None) -> int:
    """The memward-gunicorn command."""
    return template.Template(GunicornAdapter(argv), name="memward-gunicorn").run()
