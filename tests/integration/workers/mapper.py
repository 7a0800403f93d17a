"""A worker whose memory metrics are far apart, so a test can tell which one memward
judged: it maps $MAPPER_MIB MiB of shared memory (a memfd), touches every page, and
forks a child that touches them too. Over the worker's process tree the mapping then
counts twice in rss, once in pss (each process is charged half) and not at all in anon
(shared memory is not anonymous), so rss ~ 2*MiB, pss ~ MiB, anon ~ a few MiB of
interpreter. Both processes sleep until SIGTERM (the child until its parent is gone)."""

import mmap
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402  (installs the SIGTERM handler)

size = int(os.environ.get("MAPPER_MIB", "32")) * 1024 * 1024
fd = os.memfd_create("mapper")
os.ftruncate(fd, size)
area = mmap.mmap(fd, size, mmap.MAP_SHARED)
page = mmap.PAGESIZE


def touch():
    for off in range(0, size, page):
        area[off] = 1


touch()
parent = os.getpid()
if os.fork() == 0:
    touch()
    common.idle_until_term(parent)
    os._exit(0)
common.idle_until_term()
