"""A worker whose readiness datagram carries one malformed line next to READY=1, as a
buggy STATUS formatter might produce: systemd acts on the valid lines, so must memward."""

import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import idle_until_term, notify  # noqa: E402

notify("STATUS=starting\nthis line has no equals sign\nREADY=1\nX_REQUESTS=not-a-number")
idle_until_term()
