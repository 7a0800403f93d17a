#!/usr/bin/python3
"""Runs a WSGI app as a memward worker with the standard library's wsgiref server.

    /usr/bin/python3 serve.py MODULE:CALLABLE          (e.g. serve.py app:app)

Serves the socket memward passes at fd 3 (LISTEN_FDS/LISTEN_PID), one request at a
time; says READY=1 on $NOTIFY_SOCKET before serving and X_REQUESTS=<n> after every
request; on SIGTERM finishes the request in flight and exits 0. wsgiref is not a
production server: this shows the protocol in the fewest lines.
"""
import importlib, os, signal, socket, sys, threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

def notify(message, flags=0):
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if addr[:1] in ("/", "@"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            try:
                s.sendto(message.encode(), flags, "\0" + addr[1:] if addr[0] == "@" else addr)
            except BlockingIOError:     # memward's queue is full: the next report has the total
                pass
            except OSError as e:        # never fail a request over a report
                sys.stderr.write("serve.py: sd_notify(%r): %s\n" % (message, e))

class Server(WSGIServer):
    requests = 0
    def process_request(self, request, client_address):
        super().process_request(request, client_address)
        self.requests += 1
        notify("X_REQUESTS=%d" % self.requests, socket.MSG_DONTWAIT)

class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):   # no access log, like gunicorn's default
        pass

def main(spec):
    if os.environ.pop("LISTEN_PID", None) != str(os.getpid()) or int(os.environ.pop("LISTEN_FDS", "0")) < 1:
        sys.exit("serve.py: no listening socket at fd 3: run me under memward")
    module, _, name = spec.partition(":")
    sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module), name or "application")
    server = Server(None, QuietHandler, bind_and_activate=False)   # we bind nothing...
    server.socket.close()                           # ...and serve memward's socket instead
    server.socket = socket.socket(fileno=3)         # family and type are read from the fd
    server.socket.setblocking(False)    # shared: when another worker wins the accept(), go back to select()
    server.server_name, server.server_port = server.socket.getsockname()[:2]
    server.setup_environ()
    server.set_app(app)
    # shutdown() waits for serve_forever() to return, so it cannot run in the handler itself.
    stop = lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    notify("READY=1\nSTATUS=serving")
    server.serve_forever(poll_interval=0.2)
    notify("STOPPING=1")
    server.socket.close()               # our fd only; never shutdown() a shared socket

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "app:app")
