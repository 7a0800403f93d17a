"""A pre_fork hook that fails on a DNS lookup (socket.gaierror, errno -2)."""
import socket

def pre_fork(server, worker):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
