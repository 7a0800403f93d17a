"""memward's Python runtime: the template (fork-server) side of docs/fork-server.md.

Modules, one per role, each importable without side effects:

    memward.protocol         parse and format the control-channel messages
    memward.notify           sd_notify client and per-worker reporting (READY, X_REQUESTS, ...)
    memward.template         the template process: READY, SPAWN, the double fork, the reset
    memward.gunicorn_adapter memward-gunicorn: gunicorn's config, app and worker classes
    memward.asgi_adapter     memward-asgi: an ASGI app served by uvicorn in each worker

See python/README.md.
"""

__version__ = "0.1.0"
