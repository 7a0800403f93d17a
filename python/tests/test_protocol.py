"""docs/fork-server.md section 2: parsing and formatting, every malformed case."""

import unittest

from memward import protocol
from memward.protocol import (Place, Placed, ProtocolError, Ready, Spawn, SpawnFailed, Spawned,
                              format_message, parse_message)

SPAWN = b"SPAWN\nSLOT=3\nGENERATION=7\nCGROUP=1\nENV=NOTIFY_SOCKET=@mw\nENV=A=b=c\nENV=EMPTY=\n"


class ParseTest(unittest.TestCase):
    def test_spawn(self):
        self.assertEqual(parse_message(SPAWN),
                         Spawn(3, 7, True, (("NOTIFY_SOCKET", "@mw"), ("A", "b=c"), ("EMPTY", ""))))

    def test_spawn_without_env(self):
        self.assertEqual(parse_message(b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\n"),
                         Spawn(0, 1, False, ()))

    def test_ready(self):
        self.assertEqual(parse_message(b"READY\nPROTOCOL=1\nRUNTIME=python/3.11.2 x\n"),
                         Ready(1, "python/3.11.2 x"))
        self.assertEqual(parse_message(b"READY\nPROTOCOL=1\n"), Ready(1, None))

    def test_spawned_and_failed(self):
        self.assertEqual(parse_message(b"SPAWNED\nSLOT=4095\nGENERATION=18446744073709551615\n"
                                       b"PID=2147483647\n"),
                         Spawned(4095, 2**64 - 1, 2**31 - 1))
        self.assertEqual(parse_message(b"SPAWN_FAILED\nSLOT=1\nGENERATION=2\nERRNO=11\n"
                                       b"MESSAGE=fork: Resource temporarily unavailable\n"),
                         SpawnFailed(1, 2, 11, "fork: Resource temporarily unavailable"))
        self.assertEqual(parse_message(b"SPAWN_FAILED\nSLOT=1\nGENERATION=2\nERRNO=11\n"),
                         SpawnFailed(1, 2, 11, None))

    def test_placement_by_memward(self):
        # Section 3: READY offers it, SPAWN asks for it, PLACE names the pid, PLACED answers.
        self.assertEqual(parse_message(b"READY\nPROTOCOL=1\nPLACE=1\n"), Ready(1, None, True))
        self.assertEqual(parse_message(b"READY\nPROTOCOL=1\nPLACE=0\n"), Ready(1, None, False))
        self.assertEqual(parse_message(b"SPAWN\nSLOT=3\nGENERATION=7\nCGROUP=0\nPLACE=1\nENV=A=b\n"),
                         Spawn(3, 7, False, (("A", "b"),), place=True))
        self.assertEqual(parse_message(b"PLACE\nSLOT=3\nGENERATION=7\nPID=4100\n"), Place(3, 7, 4100))
        self.assertEqual(parse_message(b"PLACED\nSLOT=3\nGENERATION=7\n"), Placed(3, 7, 0))
        self.assertEqual(parse_message(b"PLACED\nSLOT=3\nGENERATION=7\nERRNO=13\n"), Placed(3, 7, 13))

    def test_empty_value_and_keys_in_any_order(self):
        self.assertEqual(parse_message(b"SPAWN_FAILED\nERRNO=5\nMESSAGE=\nGENERATION=2\nSLOT=1\n"),
                         SpawnFailed(1, 2, 5, ""))

    def test_unknown_keys_are_ignored(self):
        self.assertEqual(parse_message(b"SPAWN\nSLOT=0\nX_LATER=whatever\nGENERATION=1\n"
                                       b"CGROUP=0\nV2_KEY=\n"),
                         Spawn(0, 1, False, ()))

    def test_value_runs_to_end_of_line(self):
        message = parse_message(b"SPAWN_FAILED\nSLOT=1\nGENERATION=2\nERRNO=1\n"
                                b"MESSAGE= a = b \xc3\xa9 \n")
        self.assertEqual(message.message, " a = b \u00e9 ")

    def test_last_line_without_newline(self):
        self.assertEqual(parse_message(b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0"),
                         Spawn(0, 1, False, ()))
        self.assertEqual(parse_message(b"READY\nPROTOCOL=1"), Ready(1, None))

    def test_leading_zeros_are_digits(self):
        self.assertEqual(parse_message(b"SPAWN\nSLOT=0004095\nGENERATION=" + b"0" * 100
                                       + b"1\nCGROUP=0\n"), Spawn(4095, 1, False, ()))

    def test_keys_of_other_types_and_unknown_keys_repeat_freely(self):
        self.assertEqual(parse_message(b"SPAWN\nX=1\nX=2\nPID=1\nPID=2\nSLOT=0\n"
                                       b"GENERATION=1\nCGROUP=0\n"), Spawn(0, 1, False, ()))
        self.assertEqual(parse_message(b"READY\nPROTOCOL=1\nENV=A=1\nENV=A=1\nENV=x\n"),
                         Ready(1, None))

    def test_64_env_lines(self):
        message = parse_message(b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\n"
                                + b"".join(b"ENV=V%d=%d\n" % (i, i) for i in range(64)))
        self.assertEqual(len(message.env), 64)

    def test_bytes_that_are_not_utf8_come_through(self):
        message = parse_message(b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nENV=A=\xff\xfe\n")
        self.assertEqual(message.env[0][1].encode("utf-8", "surrogateescape"), b"\xff\xfe")
        self.assertEqual(format_message(message).splitlines()[-1], b"ENV=A=\xff\xfe")

    def test_largest_message(self):
        head = b"SPAWN_FAILED\nSLOT=1\nGENERATION=2\nERRNO=1\nMESSAGE="
        data = head + b"x" * (protocol.MAX_MESSAGE - len(head) - 1) + b"\n"
        self.assertEqual(len(data), protocol.MAX_MESSAGE)
        self.assertEqual(len(parse_message(data).message), protocol.MAX_MESSAGE - len(head) - 1)


class MalformedTest(unittest.TestCase):
    """Each case of section 2, and the clarifications it got for implementers."""

    CASES = {
        "too long": (b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nX="
                     + b"y" * protocol.MAX_MESSAGE + b"\n"),
        "NUL byte": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nENV=A=\0\n",
        "empty": b"",
        "unknown type": b"HELLO\nSLOT=0\n",
        "type in lower case": b"spawn\nSLOT=0\nGENERATION=1\nCGROUP=0\n",
        "type with a space": b"SPAWN \nSLOT=0\nGENERATION=1\nCGROUP=0\n",
        "empty type line": b"\nSLOT=0\nGENERATION=1\nCGROUP=0\n",
        "line without =": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nJUNK\n",
        "blank line": b"SPAWN\nSLOT=0\n\nGENERATION=1\nCGROUP=0\n",
        "CRLF line ends": b"SPAWN\r\nSLOT=0\r\nGENERATION=1\r\nCGROUP=0\r\n",
        "lower-case key": b"SPAWN\nslot=0\nGENERATION=1\nCGROUP=0\n",
        "empty key": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\n=x\n",
        "key with a dash": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nX-Y=1\n",
        "repeated key": b"SPAWN\nSLOT=0\nSLOT=1\nGENERATION=1\nCGROUP=0\n",
        "repeated empty key": b"SPAWN_FAILED\nSLOT=0\nGENERATION=1\nERRNO=1\nMESSAGE=\nMESSAGE=\n",
        "65 ENV lines": (b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\n" + b"ENV=A=1\n" * 65),
        "only a newline": b"\n",
        "a trailing empty line": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\n\n",
        "missing SLOT": b"SPAWN\nGENERATION=1\nCGROUP=0\n",
        "missing GENERATION": b"SPAWN\nSLOT=0\nCGROUP=0\n",
        "missing CGROUP": b"SPAWN\nSLOT=0\nGENERATION=1\n",
        "SLOT above 4095": b"SPAWN\nSLOT=4096\nGENERATION=1\nCGROUP=0\n",
        "negative SLOT": b"SPAWN\nSLOT=-1\nGENERATION=1\nCGROUP=0\n",
        "SLOT with a plus": b"SPAWN\nSLOT=+1\nGENERATION=1\nCGROUP=0\n",
        "SLOT with a space": b"SPAWN\nSLOT= 1\nGENERATION=1\nCGROUP=0\n",
        "SLOT in hex": b"SPAWN\nSLOT=0x1\nGENERATION=1\nCGROUP=0\n",
        "SLOT with underscore": b"SPAWN\nSLOT=1_0\nGENERATION=1\nCGROUP=0\n",
        "empty SLOT": b"SPAWN\nSLOT=\nGENERATION=1\nCGROUP=0\n",
        "GENERATION 0": b"SPAWN\nSLOT=0\nGENERATION=0\nCGROUP=0\n",
        "GENERATION above uint64": b"SPAWN\nSLOT=0\nGENERATION=18446744073709551616\nCGROUP=0\n",
        "GENERATION of 5000 digits": b"SPAWN\nSLOT=0\nGENERATION=" + b"9" * 5000 + b"\nCGROUP=0\n",
        "SLOT in Arabic-Indic digits": "SPAWN\nSLOT=\u0661\nGENERATION=1\nCGROUP=0\n".encode(),
        "CGROUP 2": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=2\n",
        "CGROUP yes": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=yes\n",
        "CGROUP 00 (exactly 0 or 1)": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=00\n",
        "ENV without =": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nENV=NAME\n",
        "ENV with empty name": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nENV==value\n",
        "READY without PROTOCOL": b"READY\nRUNTIME=x\n",
        "READY with PROTOCOL 2": b"READY\nPROTOCOL=2\n",
        "SPAWNED without PID": b"SPAWNED\nSLOT=0\nGENERATION=1\n",
        "SPAWNED with PID 0": b"SPAWNED\nSLOT=0\nGENERATION=1\nPID=0\n",
        "SPAWNED with PID 1 (init)": b"SPAWNED\nSLOT=0\nGENERATION=1\nPID=1\n",
        "SPAWNED with PID above pid_t": b"SPAWNED\nSLOT=0\nGENERATION=1\nPID=2147483648\n",
        "SPAWN_FAILED without ERRNO": b"SPAWN_FAILED\nSLOT=0\nGENERATION=1\n",
        "SPAWN_FAILED with ERRNO 0": b"SPAWN_FAILED\nSLOT=0\nGENERATION=1\nERRNO=0\n",
        "SPAWN_FAILED with ERRNO 4096": b"SPAWN_FAILED\nSLOT=0\nGENERATION=1\nERRNO=4096\n",
        "SPAWN_FAILED with negative ERRNO": b"SPAWN_FAILED\nSLOT=0\nGENERATION=1\nERRNO=-5\n",
        "SPAWN with CGROUP=1 and PLACE=1": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=1\nPLACE=1\n",
        "SPAWN with PLACE 2": b"SPAWN\nSLOT=0\nGENERATION=1\nCGROUP=0\nPLACE=2\n",
        "READY with PLACE yes": b"READY\nPROTOCOL=1\nPLACE=yes\n",
        "PLACE without PID": b"PLACE\nSLOT=0\nGENERATION=1\n",
        "PLACE with PID 1": b"PLACE\nSLOT=0\nGENERATION=1\nPID=1\n",
        "PLACED without GENERATION": b"PLACED\nSLOT=0\n",
        "PLACED with ERRNO 0": b"PLACED\nSLOT=0\nGENERATION=1\nERRNO=0\n",
        "PLACED with ERRNO twice": b"PLACED\nSLOT=0\nGENERATION=1\nERRNO=1\nERRNO=1\n",
    }

    def test_each_case(self):
        for name, data in self.CASES.items():
            with self.subTest(name):
                with self.assertRaises(ProtocolError) as caught:
                    parse_message(data)
                self.assertTrue(str(caught.exception))      # says what was wrong

    def test_errors_name_the_problem(self):
        def error(data):
            with self.assertRaises(ProtocolError) as caught:
                parse_message(data)
            return str(caught.exception)
        self.assertIn("SLOT", error(self.CASES["SLOT above 4095"]))
        self.assertIn("twice", error(self.CASES["repeated key"]))
        self.assertIn("CGROUP", error(self.CASES["missing CGROUP"]))
        self.assertIn("NUL", error(self.CASES["NUL byte"]))
        self.assertIn("unknown message type", error(self.CASES["unknown type"]))
        self.assertIn("65536", error(self.CASES["too long"]))


class FormatTest(unittest.TestCase):
    def test_round_trips(self):
        for message in (Spawn(3, 7, True, (("NOTIFY_SOCKET", "@mw"), ("A", "b=c"), ("E", ""))),
                        Spawn(0, 1, False),
                        Ready(1, "python/3.11.2 gunicorn/20.1.0 sync"), Ready(),
                        Spawned(4095, 2**64 - 1, 12345),
                        SpawnFailed(1, 2, 35, "refusing to fork"), SpawnFailed(1, 2, 1),
                        Ready(runtime="x", place=True), Spawn(3, 7, False, (("A", "b"),), place=True),
                        Place(3, 7, 4100), Placed(3, 7), Placed(4095, 2**64 - 1, 4095)):
            with self.subTest(message=message):
                self.assertEqual(parse_message(format_message(message)), message)

    def test_exact_bytes(self):
        self.assertEqual(format_message(Spawned(2, 9, 4242)),
                         b"SPAWNED\nSLOT=2\nGENERATION=9\nPID=4242\n")
        self.assertEqual(format_message(Ready(runtime="python/3.11.2")),
                         b"READY\nPROTOCOL=1\nRUNTIME=python/3.11.2\n")
        self.assertEqual(format_message(SpawnFailed(0, 1, 35)),
                         b"SPAWN_FAILED\nSLOT=0\nGENERATION=1\nERRNO=35\n")
        self.assertEqual(parse_message(SPAWN), parse_message(format_message(parse_message(SPAWN))))
        self.assertEqual(format_message(Ready(place=True)), b"READY\nPROTOCOL=1\nPLACE=1\n")
        self.assertEqual(format_message(Spawn(1, 2, False, place=True)),
                         b"SPAWN\nSLOT=1\nGENERATION=2\nCGROUP=0\nPLACE=1\n")
        self.assertEqual(format_message(Place(1, 2, 99)), b"PLACE\nSLOT=1\nGENERATION=2\nPID=99\n")
        self.assertEqual(format_message(Placed(1, 2)), b"PLACED\nSLOT=1\nGENERATION=2\n")
        self.assertEqual(format_message(Placed(1, 2, 13)), b"PLACED\nSLOT=1\nGENERATION=2\nERRNO=13\n")

    def test_free_text_is_flattened(self):
        data = format_message(SpawnFailed(0, 1, 5, "line one\nline two\r\n\0end"))
        self.assertEqual(parse_message(data).message, "line one line two end")
        long = parse_message(format_message(SpawnFailed(0, 1, 5, "\u00e9" * 1000))).message
        self.assertLessEqual(len(long.encode()), protocol.MAX_TEXT)      # what memward keeps
        self.assertTrue(long.endswith("\u00e9..."))
        runtime = parse_message(format_message(Ready(runtime="r" * 500))).runtime
        self.assertEqual(len(runtime), protocol.MAX_RUNTIME)

    def test_refuses_what_parse_would_reject(self):
        for message in (Spawned(4096, 1, 2), Spawned(0, 0, 2), Spawned(0, 1, 0), Spawned(0, 1, 1),
                        SpawnFailed(0, 1, 0), SpawnFailed(0, 1, 4096), Ready(protocol=2),
                        Spawn(0, 1, False, (("A\nB", "x"),)), Spawn(0, 1, False, (("A", "x\ny"),)),
                        Spawn(0, 1, False, (("", "x"),)), Spawn(0, 1, False, (("A=B", "x"),)),
                        Spawn(0, 1, False, (("A", "x" * protocol.MAX_MESSAGE),)),
                        Spawn(0, 1, False, (("A", "1"),) * 65),
                        Spawned(True, 1, 1),
                        Spawn(0, 1, True, place=True), Place(0, 1, 1), Placed(0, 1, 4096),
                        Placed(0, 1, -1)):
            with self.subTest(message=message):
                with self.assertRaises(ValueError):
                    format_message(message)


if __name__ == "__main__":
    unittest.main()
