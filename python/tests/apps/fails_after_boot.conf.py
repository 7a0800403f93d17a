"""gunicorn settings whose worker fails in its loop, after it booted."""


def post_worker_init(worker):
    def run():
        raise RuntimeError("the worker's loop failed")
    worker.run = run
