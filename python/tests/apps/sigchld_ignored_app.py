"""wsgi_app, plus SIGCHLD ignored at import (an app that does not want zombies)."""
import signal
from wsgi_app import app  # noqa: F401
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
