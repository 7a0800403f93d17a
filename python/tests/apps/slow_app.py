"""wsgi_app, but its import takes 30 s (a large app loading); says so on stderr first."""
import sys
import time
sys.stderr.write("slow_app loading\n")
sys.stderr.flush()
time.sleep(30)
from wsgi_app import app  # noqa: F401,E402
