"""bench/leak/app.py -- a Flask app that leaks through an unbounded cache (issue 17).

`page()` is memoised with functools.lru_cache(maxsize=None) and keyed by the `id`
query parameter, which the benchmark's client makes unique per request: every request
adds an entry of LEAK_KIB KiB (default 4) that is never evicted, so a worker's memory
grows with the requests it has served until it is restarted. This is the mistake of
caching by something unbounded (a user id, a search string) with no maxsize.

    gunicorn -w 4 -b 127.0.0.1:8000 --chdir bench/leak app:app
    curl 'http://127.0.0.1:8000/?id=1'
"""

import functools
import os

from flask import Flask, request

LEAK_BYTES = int(os.environ.get("LEAK_KIB", "4")) * 1024

app = Flask(__name__)


@functools.lru_cache(maxsize=None)
def page(key):
    """The "rendered" page for key: LEAK_BYTES of text, kept for ever by the cache."""
    head = "<p>item %s</p>\n" % key
    return head + "." * max(0, LEAK_BYTES - len(head))


@app.route("/")
def index():
    body = page(request.args.get("id", ""))
    return body[:64]
