"""The GC recipe keeps the template's pages shared with its workers.

The test app builds 200,000 small dicts (with a list each) at import, in the template.
A worker then runs gc.collect(). With the recipe (gc.freeze() before the fork) the
collection never touches the template's objects, so the worker's Private_Dirty stays a
small part of the template's heap; without it (MEMWARD_GC_FREEZE=0) the collection
writes to the GC header of every object and copies those pages into the worker.

Ratios, not sizes, with wide margins; measured on a 2-core Debian 12 machine:
frozen ~0.04 of the template's Private_Dirty, off ~0.49.
"""

import unittest

from tests.fakememward import BIN_GUNICORN, http_get, smaps_rollup_kb
from tests import test_template_gunicorn
from tests.test_template_gunicorn import TemplateCase

TABLE_SIZE = 200000

setUpModule = test_template_gunicorn.setUpModule


class GcSharingTest(TemplateCase):
    def dirtied_fraction(self, freeze):
        mw = self.start(argv=[BIN_GUNICORN, "wsgi_app:app"],
                        env={"TEST_TABLE_SIZE": str(TABLE_SIZE), "MEMWARD_GC_FREEZE": freeze})
        template_heap = smaps_rollup_kb(mw.pid)["Private_Dirty"]     # before any fork
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        code, body = http_get(mw.port, "/collect")
        self.assertEqual((code, body["pid"], body["table"]), (200, pid, TABLE_SIZE))
        self.assertEqual(body["frozen"] > 0, freeze == "1")
        worker_dirty = smaps_rollup_kb(pid)["Private_Dirty"]
        mw.stop_worker(pid)
        return worker_dirty / template_heap

    def test_frozen_pages_stay_shared(self):
        frozen = self.dirtied_fraction("1")
        off = self.dirtied_fraction("0")
        detail = "worker Private_Dirty / template heap: frozen %.3f, off %.3f" % (frozen, off)
        self.assertLess(frozen, 0.15, detail)
        self.assertGreater(off, 0.25, detail)
        self.assertGreater(off, 3 * frozen, detail)
        print("\n  %s " % detail, end="", flush=True)


if __name__ == "__main__":
    unittest.main()
