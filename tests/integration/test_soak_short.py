"""The CI variant of `make soak`: 30 s of constant load, max_requests 20 recycles and a
SIGHUP every 8 s (every third one with a broken file). Zero failed requests, memward's
RssAnon within 64 KiB and its fd count unchanged from start to end."""

import os
import sys

os.environ.setdefault("SOAK_SECONDS", "30")
os.environ.setdefault("SOAK_RELOAD_EVERY", "8")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak"))

import lib  # noqa: E402
import soak  # noqa: E402

if __name__ == "__main__":
    lib.main(soak.test)
