"""memward-asgi end to end, without memward: the test plays memward (fakememward)."""

import http.client
import json
import os
import signal
import time
import unittest

from tests.fakememward import (python_default_ignored, BIN_ASGI, PYTHON, http_get, is_our_child, proc_status,
                               python_has, signal_bits)
from tests.test_template_gunicorn import TemplateCase, assert_fresh_connection_answered, fd_links
from tests import test_template_gunicorn

setUpModule = test_template_gunicorn.setUpModule


class AsgiTest(TemplateCase):
    argv = [BIN_ASGI, "--post-fork", "asgi_app:post_fork", "--no-access-log", "asgi_app:app"]

    def setUp(self):
        if not python_has("uvicorn"):
            self.skipTest("%s cannot import uvicorn (apt-get install python3-uvicorn)" % PYTHON)
        super().setUp()

    def test_worker_is_memwards_child_reset_and_serving(self):
        mw = self.start()
        pid = self.spawn(mw, slot=1, generation=2, MEMWARD_WORKER_ID="1", TEST_VALUE="v")
        self.assertTrue(is_our_child(pid))
        self.assertEqual(os.getpgid(pid), pid)
        self.assertEqual(os.getsid(pid), pid)
        self.notify.wait_for(pid, "READY=1")

        status = proc_status(pid)
        self.assertEqual(int(status["SigBlk"], 16), 0)
        self.assertEqual(int(status["SigIgn"], 16), python_default_ignored())
        worker_fds, template_fds = fd_links(pid), fd_links(mw.pid)
        self.assertEqual(worker_fds[3], template_fds[3])
        self.assertNotIn(template_fds[4], worker_fds.values())

        code, body = http_get(mw.port)
        self.assertEqual(code, 200)
        self.assertEqual(body["pid"], pid)
        self.assertEqual(body["started_in"], pid)       # the lifespan runs in the worker
        self.assertEqual(body["post_fork"], pid)        # --post-fork, after the reset
        self.assertEqual(body["env"]["LISTEN_PID"], str(pid))
        self.assertEqual(body["env"]["MEMWARD_WORKER_ID"], "1")
        self.assertEqual(body["env"]["TEST_VALUE"], "v")
        self.assertIsNone(body["env"]["MEMWARD_CONTROL_FD"])
        self.assertTrue(body["gc_enabled"])
        self.assertGreater(body["frozen"], 0)
        self.assertEqual(self.notify.wait_for(pid, "X_REQUESTS=1"), "X_REQUESTS=1\nX_INFLIGHT=0")

        self.assertEqual(mw.stop_worker(pid), 0)
        self.notify.wait_for(pid, "STOPPING=1")
        mw.close_control()
        self.assert_exits(mw, 0)

    def test_two_workers_and_a_watchdog(self):
        mw = self.start()
        pids = [self.spawn(mw, slot, WATCHDOG_USEC="400000") for slot in range(2)]
        for pid in pids:
            self.notify.wait_for(pid, "READY=1")
            self.notify.wait_for(pid, "WATCHDOG=1", timeout=10)
        self.assertLessEqual({http_get(mw.port)[1]["pid"] for _ in range(6)}, set(pids))
        os.kill(mw.pid, signal.SIGTERM)
        self.assert_exits(mw, 0)
        self.assertIn(http_get(mw.port)[1]["pid"], pids)   # workers outlive the template

    def test_a_connection_accepted_before_the_stop_is_answered(self):
        assert_fresh_connection_answered(self, self.start())

    def test_a_stopping_worker_answers_the_next_request_on_a_kept_alive_connection(self):
        """A client that keeps its connection alive sends its next request whenever it
        likes; if the worker closed the idle connection at its stop, that request
        would fail. It gets an answer, with Connection: close, and then the close."""
        mw = self.start()
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        conn = http.client.HTTPConnection("127.0.0.1", mw.port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/")
        first = conn.getresponse()
        first.read()
        self.assertEqual((first.status, first.will_close), (200, False))

        os.killpg(pid, signal.SIGTERM)              # as memward stops a worker
        self.notify.wait_for(pid, "STOPPING=1")
        time.sleep(0.3)                             # uvicorn's shutdown has begun
        started = time.monotonic()
        conn.request("GET", "/")
        second = conn.getresponse()
        body = second.read()
        self.assertEqual(second.status, 200)
        self.assertEqual(second.getheader("connection"), "close")
        self.assertEqual(json.loads(body)["pid"], pid)
        self.assertEqual(mw.stop_worker(pid), 0)     # and it exits as soon as that is done
        self.assertLess(time.monotonic() - started, 3.0)

    def test_gc_recipe_off(self):
        mw = self.start(argv=[BIN_ASGI, "--no-gc-freeze", "asgi_app:app"])
        pid = self.spawn(mw)
        self.notify.wait_for(pid, "READY=1")
        body = http_get(mw.port)[1]
        self.assertTrue(body["gc_enabled"])
        self.assertEqual(body["frozen"], 0)

    def test_malformed_spawn(self):
        mw = self.start()
        mw.send_raw(b"SPAWN\nSLOT=1\nGENERATION=0\nCGROUP=0\n")
        self.assertIsNone(mw.receive())
        self.assert_exits(mw, 76)
        self.assertIn("GENERATION=0 is out of range", mw.log())


if __name__ == "__main__":
    unittest.main()
