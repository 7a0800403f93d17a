"""gunicorn settings for memward-gunicorn (memward.yaml, workers.mode: template).

memward-gunicorn reads this file with gunicorn's own code, imports the app once in the
template and runs gunicorn's worker class in every forked worker. No hooks are needed
for memward: each worker says READY=1, X_REQUESTS and STOPPING=1 by itself. The
worker count, the sockets and the recycling are memward's (workers.count, listen:,
recycle:), so `workers`, `bind` and `max_requests` are left unset here.

(gunicorn_exec.conf.py is the other path: memward execs a whole gunicorn per slot.)
"""

# Finish in-flight requests on SIGTERM; keep this below memward's graceful_timeout.
graceful_timeout = 20

# gunicorn's own worker classes work as they are: sync (the default) or
#   worker_class = "gthread"; threads = 4
# or "uvicorn.workers.UvicornWorker" for an ASGI app.

# What the workers must not share (database connections, HTTP clients' pools) is
# closed in a pre_fork(server, worker) hook, which runs in the template before every
# fork, and per-worker resources are opened in post_fork(server, worker) or lazily
# (python/README.md, "Before the fork"). This app opens none.
