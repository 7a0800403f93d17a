#!/usr/bin/python3
"""bench/seed's worker forked from a template: setup (f), (d) in workers.mode: template.

The template (python/memward/template.py, memward's Python runtime) imports app.py
once; every worker is a fork of it that runs worker.py's loop, the same server as (d)'s
exec'd workers, on the sockets memward passed. Only exec versus fork differs.
"""

import gc
import os
import sys

# The GC recipe's first step, before the app is imported (python/README.md).
gc.disable()

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"))

from memward import template  # noqa: E402

import worker  # noqa: E402


class SeedAdapter(template.Adapter):
    def runtime(self):
        return "%s bench/seed worker.py" % super().runtime()

    def load(self, listen_fds):
        worker.load_app()

    def run_worker(self, context, spawn, ppid):
        return worker.Worker().run()


if __name__ == "__main__":
    sys.exit(template.Template(SeedAdapter(), name="seed-template").run())
