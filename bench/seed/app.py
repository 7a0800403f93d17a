"""The seeds' workload as a WSGI app: an occasional heavy request whose leftovers pin
pymalloc's arenas.

Every HEAVY_EVERY-th request a process serves (default 200; counted per process, so
every worker of every server gets its own) builds about HEAVY_MIB MiB (default 150)
of small dicts and strings and keeps one object in KEEP_EVERY (default 2000) in a
module-level list. The rest is freed when the request ends, but one survivor in every
pymalloc pool is enough to keep nearly every arena mapped: after its first heavy
request a worker holds ~140 MiB it will never give back. Later heavy requests reuse
those arenas, so nothing grows after that. KEEP_EVERY=0 keeps nothing: the memory is
then a transient spike that pymalloc returns to the kernel (issue 4's pattern).

Every other request is trivial. Works under gunicorn (app:app), uWSGI (--wsgi-file,
callable "application" or "app") and bench/seed/worker.py.

Environment: HEAVY_EVERY, HEAVY_MIB, KEEP_EVERY (read once at import).
"""

import os

HEAVY_EVERY = int(os.environ.get("HEAVY_EVERY", "200"))
HEAVY_MIB = float(os.environ.get("HEAVY_MIB", "150"))
KEEP_EVERY = int(os.environ.get("KEEP_EVERY", "2000"))

# What one item below costs in resident memory: a 4-key dict, two short unique
# strings, an int and a float, and its list slot. Measured with CPython 3.11 on
# x86-64 (Debian 12): ~410 bytes.
BYTES_PER_ITEM = 410
HEAVY_ITEMS = int(HEAVY_MIB * 1024 * 1024 / BYTES_PER_ITEM)

_requests = 0
_kept = []      # the survivors of every heavy request; never cleared


def heavy():
    """Builds HEAVY_ITEMS small objects, keeps 1 in KEEP_EVERY, frees the rest on return."""
    items = []
    append = items.append
    for i in range(HEAVY_ITEMS):
        append({"id": i, "name": "user-%d" % i, "email": "user%d@example.com" % i, "score": i * 0.5})
    if KEEP_EVERY > 0:
        _kept.extend(items[::KEEP_EVERY])
    return len(items)


def app(environ, start_response):
    global _requests
    _requests += 1
    if HEAVY_EVERY > 0 and _requests % HEAVY_EVERY == 0:
        n = heavy()
        body = "heavy pid=%d requests=%d items=%d kept=%d\n" % (os.getpid(), _requests, n, len(_kept))
    else:
        body = "ok pid=%d requests=%d\n" % (os.getpid(), _requests)
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


application = app
