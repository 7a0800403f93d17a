"""What the template and its workers carry stays small.

pkg_resources, which gunicorn 20.1's util imports for worker classes named by entry
point only, is deferred until something uses it: run, it scans every installed
distribution and holds ~12 MiB, in the template and so in the tree. It still works
where it is used.

A fresh worker writes little: the template does, once before the forks, the work
every worker would otherwise do for itself right after one.

OpenSSL's random generator (gunicorn imports ssl) is instantiated by its first use.
When that first use was the worker's reseed (the reset's step 5), every worker built
OpenSSL's providers and DRBGs itself, in the holes of the malloc heap it shares with
the template, and copied megabytes of those heap pages (2.8 MiB per worker for
bench/fork's fat app). The template now primes the generator before forking.

The test app leaves a hole on every page of its malloc heap (TEST_HEAP_HOLES), as a
real app's imports do. Measured on a 2-core Debian 12 machine, on the [heap] mapping
(glibc's main arena, where OpenSSL allocates) of a worker that has said READY=1 and
served nothing: ~430 KiB Private_Dirty with the priming, ~1,490 KiB without it. The
bound is 800 KiB.
"""

import unittest

from tests.fakememward import BIN_GUNICORN, http_get
from tests import test_template_gunicorn
from tests.test_template_gunicorn import TemplateCase

HOLES = 20000
HEAP_BOUND_KB = 800

setUpModule = test_template_gunicorn.setUpModule


def heap_private_dirty_kb(pid):
    """Private_Dirty of the [heap] mapping in /proc/PID/smaps, in KiB."""
    total, in_heap = 0, False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                in_heap = parts[-1] == "[heap]"
            elif in_heap and parts[0] == "Private_Dirty:":
                total += int(parts[1])
    return total


class SharedStateTest(TemplateCase):
    def test_pkg_resources_waits_for_a_use(self):
        mw = self.start(argv=[BIN_GUNICORN, "wsgi_app:app"])
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        code, body = http_get(mw.port, "/pkg_resources")
        self.assertEqual(code, 200, body)
        self.assertEqual(body["pid"], pid)
        self.assertEqual(body["pkg_resources_before"], "_DeferredModule")
        self.assertEqual(body["pkg_resources_after"], "module")
        self.assertRegex(body["gunicorn_version"], r"^\d+\.\d+")

    def test_fresh_worker_keeps_the_heap_shared(self):
        mw = self.start(argv=[BIN_GUNICORN, "wsgi_app:app"],
                        env={"TEST_HEAP_HOLES": str(HOLES)})
        dirty = []
        for slot in range(2):
            pid = self.spawn(mw, slot=slot)
            self.notify.wait_for(pid, "READY=1")
            dirty.append(heap_private_dirty_kb(pid))
        detail = "fresh workers' [heap] Private_Dirty: %s KiB" % dirty
        self.assertLess(max(dirty), HEAP_BOUND_KB, detail)
        print("\n  %s " % detail, end="", flush=True)


if __name__ == "__main__":
    unittest.main()
