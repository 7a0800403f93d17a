"""A worker that reports what memward gave it, as JSON in $ENVDUMP_DIR/<pid>.json:
its environment, open fds (with what they point at), the listening sockets at fd
3.., its signal mask and ignored signals, cwd, process group and session. Then
READY=1 and idle until SIGTERM (exit 0)."""

import os

# Look at the fds before Python (or anything below) opens more.
fds = {}
for name in os.listdir("/proc/self/fd"):
    try:
        fds[int(name)] = os.readlink("/proc/self/fd/" + name)
    except OSError:
        pass                    # the directory fd listdir itself used, already closed

import json
import socket
import sys

import common


def status_field(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return None


sockets = {}
for fd in sorted(fds):
    if fd < 3:
        continue
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError as e:
        sockets[fd] = {"error": str(e)}
        continue
    with s:
        try:
            name = s.getsockname()
        except OSError:
            name = None
        sockets[fd] = {
            "family": int(s.family),
            "type": int(s.type),
            "name": list(name) if isinstance(name, tuple) else name,
            "listening": s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
            "cloexec": not os.get_inheritable(fd),
        }

report = {
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "pgid": os.getpgid(0),
    "sid": os.getsid(0),
    "cwd": os.getcwd(),
    "env": dict(os.environ),
    "fds": {str(k): v for k, v in sorted(fds.items())},
    "sockets": {str(k): v for k, v in sockets.items()},
    "sigblk": status_field("SigBlk"),
}
out = os.environ["ENVDUMP_DIR"]
tmp = os.path.join(out, ".%d.tmp" % os.getpid())
with open(tmp, "w") as f:
    json.dump(report, f)
os.rename(tmp, os.path.join(out, "%d.json" % os.getpid()))
common.notify("READY=1")
common.idle_until_term()
sys.exit(0)
