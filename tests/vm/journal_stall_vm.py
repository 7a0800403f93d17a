#!/usr/bin/python3
"""A stopped journald does not stall memward: the steps behind
tests/vm/test_systemd_journal_stall.sh.

    /usr/bin/python3 tests/vm/journal_stall_vm.py

Runs only in a VM booted with `tests/vm/run --init systemd`. memward.service is
installed as tests/vm/systemd_vm.py installs it (the shipped unit, WatchdogSec=3 in a
drop-in), with 2 workers and a metrics endpoint. Then systemd-journald gets SIGSTOP
for 60 s while the test keeps memward logging (SIGUSR2 every 20 ms: a status table
of 3 lines each, far more than journald's socket queues) and:

  * reads PID 1's WatchdogTimestampMonotonic every round (0.5 s plus what the round
    costs): the last WATCHDOG=1 systemd received is never WatchdogSec old, which is
    systemd's own condition; it never restarts memward (same MainPID, NRestarts=0,
    no "Watchdog timeout");
  * asks /healthz every round: every answer 200 within 1 s (503 while the killed
    worker's replacement starts);
  * asks a worker every round: every request served;
  * SIGKILLs a worker 20 s in: memward starts a replacement that serves during the
    stall;
  * memward_log_dropped_total{sink="journal"} is above 0: the queue did fill, so the
    old blocking sd_journal_sendv() would have waited here.
After SIGCONT, the next line memward logs is preceded by an entry
MEMWARD_EVENT=log_lines_dropped with MEMWARD_SINK=journal and the count.

Prints "ok: ..." per step; on the first broken expectation "FAIL: ..." on stderr, the
unit's status and journal, exit 1.
"""

import os
import re
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import systemd_vm as sv  # noqa: E402
from systemd_vm import check, fail, lib, ok, run, show, wait  # noqa: E402

UNIT = sv.UNIT
PORT = sv.PORT
METRICS_PORT = 9181
WORKERS = 2
STALL_SEC = 60
KILL_AT_SEC = 20
HEALTHZ_MAX_SEC = 1.0           # a Kubernetes probe's default timeout


def install():
    sv.install()                # the units, WatchdogSec=3, daemon-reload
    cfg = {
        "workers": {
            "count": WORKERS,
            "command": [sv.PY, sv.WORKER],
            "directory": sv.REPO,
            "env": {"PYTHONDONTWRITEBYTECODE": "1"},
            "ready_timeout": "60s",
            "graceful_timeout": "10s",
        },
        "listen": [{"address": "tcp://127.0.0.1:%d" % PORT, "name": "http"}],
        "metrics": {"listen": "127.0.0.1:%d" % METRICS_PORT},
    }
    with open("/etc/memward/memward.yaml", "w") as f:
        f.write(lib.yaml_dump(cfg))


def dropped(sink):
    try:
        status, _, body = lib.http_get(METRICS_PORT, "/metrics", timeout=5)
    except OSError as e:
        fail("/metrics: %r" % e)
    check(status == 200, "/metrics: HTTP %d" % status)
    m = re.search(r'^memward_log_dropped_total\{sink="%s"\} (\d+)$' % sink, body, re.M)
    check(m, "no memward_log_dropped_total{sink=%r} in /metrics" % sink)
    return int(m.group(1))


def worker_pids(main):
    leaves = sv.worker_leaves(sv.unit_cgroup(UNIT))
    return {pid for pids in leaves.values() for pid in pids
            if lib.proc_stat(pid) and lib.proc_stat(pid)[1] == main}


class Usr2(threading.Thread):
    """SIGUSR2 to memward every 20 ms: 3 status lines each, whatever the probes cost
    (a `systemctl show` takes a good part of a second under TCG)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.sent, self.halt = pid, 0, threading.Event()

    def run(self):
        while not self.halt.wait(0.02):
            try:
                os.kill(self.pid, signal.SIGUSR2)
            except ProcessLookupError:      # gone: the checks after the stall say why
                return
            self.sent += 1


def stall(main, journald):
    """The 60 s with journald stopped; returns what was measured."""
    m = {"healthz": [], "served": 0, "stamps": [], "killed": None, "respawned_at": None, "errors": []}
    usr2 = Usr2(main)
    t0 = time.monotonic()
    os.kill(journald, signal.SIGSTOP)
    usr2.start()
    try:
        while time.monotonic() - t0 < STALL_SEC:
            time.sleep(0.5)
            at = time.monotonic() - t0

            t = time.monotonic()
            try:
                status, _, body = lib.http_get(METRICS_PORT, "/healthz", timeout=5)
            except OSError as e:
                status, body = None, repr(e)
            took = time.monotonic() - t
            m["healthz"].append((at, status, took, body.strip()))

            try:
                wstatus, _, _ = lib.http_get(PORT, "/", timeout=5)
                if wstatus == 200:
                    m["served"] += 1
                else:
                    m["errors"].append("%.1fs: worker answered HTTP %d" % (at, wstatus))
            except OSError as e:
                m["errors"].append("%.1fs: request to a worker: %r" % (at, e))

            # systemd's own condition: its last WATCHDOG=1 no older than WatchdogSec. Both
            # are CLOCK_MONOTONIC; taken before asking, so the age is not understated.
            asked = time.monotonic()
            p = show(UNIT, "WatchdogTimestampMonotonic", "NRestarts", "MainPID")
            age = asked - int(p["WatchdogTimestampMonotonic"]) / 1e6
            m["stamps"].append((at, age, p["NRestarts"], int(p["MainPID"])))

            if m["killed"] is None and at >= KILL_AT_SEC:
                pids = worker_pids(main)
                if not pids:
                    m["errors"].append("%.1fs: memward %d has no worker to kill" % (at, main))
                    continue
                os.kill(min(pids), signal.SIGKILL)
                m["killed"] = (at, min(pids))
            elif m["killed"] and m["respawned_at"] is None:
                pids = worker_pids(main)
                if len(pids) == WORKERS and m["killed"][1] not in pids and status == 200:
                    m["respawned_at"] = (at, sorted(pids))
    finally:
        usr2.halt.set()
        usr2.join()
        os.kill(journald, signal.SIGCONT)
    m["usr2"] = usr2.sent
    return m


def main():
    check(os.environ.get("MEMWARD_VM") == "1" and os.path.exists("/run/systemd/system"),
          "run this through tests/vm/run --init systemd")
    check(os.access(sv.MEMWARD, os.X_OK), "%s is missing: run 'make' on the host first" % sv.MEMWARD)
    install()
    run("systemctl", "start", UNIT)
    p = show(UNIT, "MainPID", "NRestarts", "WatchdogUSec")
    main_pid = int(p["MainPID"])
    check(p["WatchdogUSec"] == "%ds" % sv.WATCHDOG_SEC, "WatchdogUSec=%s" % p["WatchdogUSec"])
    wait(lambda: len(worker_pids(main_pid)) == WORKERS, 30, "%d workers" % WORKERS)
    lib.wait_http(PORT, timeout=30)
    check(dropped("journal") == 0, "lines dropped before the stall")
    journald = int(show("systemd-journald.service", "MainPID")["MainPID"])
    check(journald > 0, "no systemd-journald running")
    with open("/proc/sys/net/unix/max_dgram_qlen") as f:
        qlen = f.read().strip()
    ok("memward %d serving with %d workers, WatchdogSec=%d; journald %d, net.unix.max_dgram_qlen=%s"
       % (main_pid, WORKERS, sv.WATCHDOG_SEC, journald, qlen))

    before = time.monotonic()
    m = stall(main_pid, journald)
    sv.current_unit = UNIT

    restarts = {(s[2], s[3]) for s in m["stamps"]}
    check(restarts == {("0", main_pid)}, "NRestarts/MainPID during the stall: %s" % sorted(restarts))
    ages = [s[1] for s in m["stamps"]]
    check(max(ages) < sv.WATCHDOG_SEC, "systemd's last WATCHDOG=1 was %.2fs old (WatchdogSec=%d); samples "
          "(at, age): %s" % (max(ages), sv.WATCHDOG_SEC, [s[:2] for s in m["stamps"]]))
    bad = [h for h in m["healthz"] if h[1] != 200 or h[2] >= HEALTHZ_MAX_SEC]
    # The replacement of the killed worker is on its way: /healthz says 503 then, by design.
    bad = [h for h in bad if not (h[1] == 503 and m["killed"] and h[0] >= m["killed"][0]
                                  and (m["respawned_at"] is None or h[0] <= m["respawned_at"][0])
                                  and h[2] < HEALTHZ_MAX_SEC)]
    check(not bad, "/healthz during the stall (at, status, seconds, body): %s" % bad[:10])
    check(not m["errors"], "requests to the workers during the stall: %s" % m["errors"][:10])
    check(m["killed"] and m["respawned_at"], "the worker killed at %s was not replaced during the stall"
          % (m["killed"],))
    m["dropped"] = dropped("journal")
    check(m["dropped"] > 0, "no journal entry was dropped in %ds of %d SIGUSR2: journald's queue never filled, "
          "so this run proves nothing" % (STALL_SEC, m["usr2"]))
    lat = sorted(h[2] for h in m["healthz"])
    ok("journald stopped %ds: %d looks at systemd's last WATCHDOG=1, at most %.2fs old (WatchdogSec=%d); "
       "/healthz %d answers, median %.0f ms, max %.0f ms; %d requests served; worker %d killed at %.0fs, "
       "replaced by %s at %.0fs; %d SIGUSR2, %d journal entries dropped"
       % (STALL_SEC, len(ages), max(ages), sv.WATCHDOG_SEC, len(lat), lat[len(lat) // 2] * 1000,
          lat[-1] * 1000, m["served"], m["killed"][1], m["killed"][0], m["respawned_at"][1],
          m["respawned_at"][0], m["usr2"], m["dropped"]))

    # journald catches up; the next line memward logs carries the count.
    def told():
        os.kill(main_pid, signal.SIGUSR2)
        return sv.memward_events(UNIT, "log_lines_dropped", after=before)
    notes = wait(told, 60, "a log_lines_dropped entry after SIGCONT", interval=1.0)
    check(all(n.get("MEMWARD_SINK") == "journal" and n.get("PRIORITY") == "4" for n in notes),
          "log_lines_dropped entries: %s" % notes)
    counts = [int(n["MEMWARD_COUNT"]) for n in notes]
    total = dropped("journal")
    check(counts[0] > 0 and sum(counts) <= total, "log_lines_dropped counts %s, metric %d" % (counts, total))
    msgs = [e.get("MESSAGE", "") for e in sv.journal("UNIT=" + UNIT, after=before)]
    check(not [x for x in msgs if "atchdog" in x], "systemd about the watchdog: %s" % msgs)
    p = show(UNIT, "MainPID", "NRestarts", "ActiveState")
    check(p == {"MainPID": str(main_pid), "NRestarts": "0", "ActiveState": "active"}, "after the stall: %s" % p)
    ok("after SIGCONT: \"%s\" (PRIORITY=4, MEMWARD_SINK=journal); memward_log_dropped_total{sink=\"journal\"} %d; "
       "still MainPID %d, NRestarts=0" % (notes[0]["MESSAGE"], total, main_pid))
    sv.check_stop(UNIT, main_pid)
    print("PASS: a journald stopped for %ds never stalled memward (%.0fs)" % (STALL_SEC, time.monotonic() - sv.T0))


if __name__ == "__main__":
    main()
