"""Placement by memward (docs/fork-server.md section 3, SPAWN with PLACE=1), end to end
with the real template (memward-gunicorn) and the test playing memward.

A template that runs as another user than memward cannot move its intermediate process
into the worker's leaf; memward does it for the PLACE the template sends. What a user
relies on: nothing of the worker exists before PLACED (the intermediate waits, and has
forked nothing), the worker serves once it is placed, a PLACED with ERRNO gives
SPAWN_FAILED with that errno and no worker while the template keeps serving, and a
template whose channel closes or that gets the wrong answer exits without a worker.
(The cgroup itself is the VM's: tests/vm/test_template_user.sh.)
"""

import errno
import os
import time
import unittest

from tests.fakememward import (BIN_GUNICORN, TIMEOUT, FakeMemward, children_of, become_subreaper,
                               http_get, proc_status, python_has, reap_all)
from memward import protocol
from memward.template import EXIT_PROTOCOL


def setUpModule():
    become_subreaper()


class PlaceTest(unittest.TestCase):
    def setUp(self):
        if not python_has("gunicorn"):
            self.skipTest("/usr/bin/python3 cannot import gunicorn (apt-get install gunicorn)")
        self.mw = FakeMemward([BIN_GUNICORN, "wsgi_app:app"])
        self.addCleanup(self.mw.cleanup)
        self.mw.start()
        ready = self.mw.wait_ready()
        self.assertTrue(ready.place, "READY does not offer PLACE=1: %r" % (ready,))

    def our_new_children(self, before):
        reap_all()
        return sorted(set(children_of(os.getpid())) - before)

    def check_waiting(self, place):
        """What memward checks (its parent is the template, its user the template's),
        and that it has started no worker while it waits to be placed."""
        status = proc_status(place.pid)
        self.assertEqual(int(status["PPid"]), self.mw.pid)
        self.assertEqual(status["Uid"], proc_status(self.mw.pid)["Uid"])
        time.sleep(0.3)         # long enough for a fork that was not waiting to show
        self.assertEqual(children_of(place.pid), [], "the intermediate forked before PLACED")
        self.assertIn(place.pid, children_of(self.mw.pid))

    def test_placed_worker_serves(self):
        seen = []
        place, answer = self.mw.spawn_placed(3, 7, before_placed=lambda p: (self.check_waiting(p),
                                                                              seen.append(p)))
        self.assertEqual(seen, [place])
        self.assertEqual((place.slot, place.generation), (3, 7))
        self.assertIsInstance(answer, protocol.Spawned, self.mw.log())
        self.assertEqual((answer.slot, answer.generation), (3, 7))
        self.assertNotEqual(answer.pid, place.pid)
        # The intermediate is gone, the worker is ours and serves.
        deadline = time.monotonic() + TIMEOUT
        while os.path.exists("/proc/%d" % place.pid) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.01)
        self.assertEqual(int(proc_status(answer.pid)["PPid"]), os.getpid())
        status, body = http_get(self.mw.port, "/")
        self.assertEqual(status, 200)
        self.assertEqual(body["pid"], answer.pid)
        self.assertEqual(body["env"]["LISTEN_PID"], str(answer.pid))

    def test_placement_refused(self):
        before = set(children_of(os.getpid()))
        place, answer = self.mw.spawn_placed(2, 5, errno_=errno.EACCES)
        self.assertIsInstance(answer, protocol.SpawnFailed, self.mw.log())
        self.assertEqual((answer.slot, answer.generation, answer.errno), (2, 5, errno.EACCES))
        self.assertIn("could not place", answer.message)
        self.assertFalse(os.path.exists("/proc/%d/status" % place.pid)
                         and int(proc_status(place.pid)["PPid"]) == self.mw.pid,
                         "the intermediate lives on")
        self.assertEqual(self.our_new_children(before), [], "a worker came out of a refused placement")
        # The template stays and serves the next request.
        place, answer = self.mw.spawn_placed(2, 6)
        self.assertIsInstance(answer, protocol.Spawned, self.mw.log())
        self.assertEqual(http_get(self.mw.port, "/")[0], 200)

    def test_memward_gone_while_placing(self):
        before = set(children_of(os.getpid()))
        self.mw.send_raw(protocol.format_message(protocol.Spawn(1, 1, False, place=True)))
        place = self.mw.receive()
        self.assertIsInstance(place, protocol.Place)
        self.mw.close_control()
        self.assertEqual(self.mw.wait_exit(), 0, self.mw.log())
        self.assertFalse(os.path.exists("/proc/%d" % place.pid), "the intermediate outlived its template")
        self.assertEqual(self.our_new_children(before), [], "a worker came out of an unplaced spawn")

    def test_wrong_answer_is_a_protocol_error(self):
        before = set(children_of(os.getpid()))
        self.mw.send_raw(protocol.format_message(protocol.Spawn(1, 1, False, place=True)))
        place = self.mw.receive()
        self.assertIsInstance(place, protocol.Place)
        self.mw.send_raw(protocol.format_message(protocol.Placed(1, 2)))
        self.assertEqual(self.mw.wait_exit(), EXIT_PROTOCOL, self.mw.log())
        self.assertIn("while waiting for PLACED for slot 1 generation 1", self.mw.log())
        self.assertFalse(os.path.exists("/proc/%d" % place.pid), "the intermediate outlived its template")
        self.assertEqual(self.our_new_children(before), [], "a worker came out of an unplaced spawn")


if __name__ == "__main__":
    unittest.main()
