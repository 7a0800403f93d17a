"""A worker that says READY=1, then, at each SIGUSR1 (which memward forwards to its
workers), sends the contents of $PARROT_FILE as one notify datagram of its own and
appends "<pid> <bytes sent>" to $PARROT_FILE.sent. A test's positive control: the
same bytes a foreign sender had ignored, coming from a worker."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402  (installs the SIGTERM handler)

said = []
signal.signal(signal.SIGUSR1, lambda *_: said.append(1))
common.notify("READY=1")
parent = os.getppid()
while not common._stop and os.getppid() == parent:
    if said:
        said.clear()
        path = os.environ["PARROT_FILE"]
        with open(path, "rb") as f:
            message = f.read()
        common.notify(message.decode())
        with open(path + ".sent", "a") as f:
            f.write("%d %d\n" % (os.getpid(), len(message)))
    time.sleep(0.05)
