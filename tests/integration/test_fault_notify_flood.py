"""A notify flood does not hold up supervision, leak fds or grow memory.

Three workers (workers/notify_flooder.py): slot 0's helper, a worker descendant,
floods memward's NOTIFY_SOCKET for FLOOD_SECONDS at up to FLOOD_RATE datagrams/s
with non-blocking sends, cycling through valid X_REQUESTS/WATCHDOG/STATUS lines,
bad UTF-8, datagrams above memward's 4 KiB limit, malformed ones (no '=', 2^64,
300 digits, embedded NUL) and datagrams carrying 1, 2, 3 and 20 fds (SCM_RIGHTS).
At the same time this test's own helper, outside memward's tree, floods the same
socket at FOREIGN_RATE. Slots 1 and 2 are example workers serving HTTP on the shared
socket, with recycle {max_requests: LIMIT}, under a paced load. Checked:
  * every max_requests recycle that became due during the flood (the LIMIT-th
    response of a worker, or earlier when memward starts the replacement ahead of
    the limit: expected_in=) is logged less than RECYCLE_LATE_MAX later, and its
    replacement becomes ready;
  * the HTTP load sees no failure and no gap longer than SERVE_GAP_MAX;
  * memward_notify_rejected_total{why} moves by exactly what got through of each kind
    (foreign for the outsider's, malformed, oversized, fds);
  * memward's open fds are the same before and after (passed fds are closed) and its
    RssAnon is within RSS_SLACK_KIB (not checked under ASan);
  * /status still renders valid JSON after a STATUS= of bad UTF-8.
Prints the send rates achieved: the kernel queues only net.unix.max_dgram_qlen
datagrams, so what gets through is what memward drains."""

import json
import os
import subprocess
import threading
import time

import lib
import metrics_helpers as mh
from lib import check

COUNT = 3
LIMIT = 25
FLOOD_SECONDS = 5.0
FLOOD_RATE = 100000
FOREIGN_RATE = 20000
LOAD_RATE = 40                  # requests/s over both HTTP workers
RECYCLE_LATE_MAX = 1.0
SERVE_GAP_MAX = 1.0
RSS_SLACK_KIB = 64
FLOODER = os.path.join(lib.WORKERS_DIR, "notify_flooder.py")
REJECTED = ("malformed", "oversized", "foreign", "fds")


class Client(threading.Thread):
    """Sequential GETs at LOAD_RATE; remembers when each worker answered its n-th request.
    While `paused` is set it sends nothing (and does not catch up afterwards)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.answered = {}              # pid -> [times]
        self.times = []
        self.errors = []

    def run(self):
        t0 = time.monotonic()
        n = 0
        while not self.stop.is_set():
            if self.paused.is_set():
                time.sleep(0.05)
                t0, n = time.monotonic(), 0
                continue
            delay = t0 + n / LOAD_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n += 1
            try:
                status, headers, body = lib.http_get(self.port, "/", timeout=10)
                check(status == 200, "HTTP %d" % status)
            except Exception as e:      # every failure counts
                self.errors.append("%.3f %r" % (time.monotonic(), e))
                continue
            now = time.time()           # wall clock: compared with memward's time=
            self.times.append(now)
            self.answered.setdefault(lib.worker_pid_of(headers, body), []).append(now)


def rejected(mport):
    _, samples = mh.scrape(mport)
    return {l["why"]: v for l, v in mh.values(samples, "memward_notify_rejected_total")}


def stable_fds(pid):
    """memward's open fds once a just-closed metrics connection is gone too."""
    last = mh.open_fds(pid)
    for _ in range(20):
        time.sleep(0.2)
        now = mh.open_fds(pid)
        if now == last:
            return now
        last = now
    return last


def settle(mw, mport):
    """Waits until no recycle is in flight and the rejection counters stop moving."""
    deadline = time.monotonic() + 20
    last = None
    while True:
        now = rejected(mport)
        ready = len(mw.events("ready"))
        spawns = len(mw.events("spawn"))
        exits = len(mw.events("exit"))
        if now == last and ready == spawns and spawns - exits == COUNT:
            return now
        check(time.monotonic() < deadline, "memward did not settle (ready %d, spawns %d, exits %d)"
              % (ready, spawns, exits))
        last = now
        time.sleep(0.5)


def test(t):
    port, mport = t.port(), t.port()
    cfg = mh.config(port, "127.0.0.1:%d" % mport, count=COUNT, command=[lib.PYTHON, FLOODER],
                    recycle={"max_requests": LIMIT, "max_concurrent": 2})
    env = {"FLOOD_DIR": t.dir, "FLOOD_SECONDS": str(FLOOD_SECONDS), "FLOOD_RATE": str(FLOOD_RATE)}
    mw = t.memward(cfg, env=env)
    mw.wait_event("ready", count=COUNT, timeout=20)
    addr = lib.worker_notify_socket(mw.current_workers()["0"]).replace("\0", "@", 1)   # argv holds no NUL

    # Warm-up: a recycle of each HTTP slot, the endpoints rendered, so the baseline
    # below is memward's steady state. The load pauses for the baseline, as it stops
    # before the one after the flood: while it runs, some slot may always be mid-recycle
    # on a loaded machine (a replacement starting, an old worker stopping, their fds
    # open), and settle() would wait for a state the load keeps leaving.
    client = Client(port)
    client.start()
    mw.wait_event("recycle", count=2, timeout=30, reason="max_requests")
    client.paused.set()
    for path in ("/metrics", "/status", "/healthz"):
        mh.get(mport, path)
    before_rejected = settle(mw, mport)
    fds_before = stable_fds(mw.pid)
    rss_before = mh.proc_status(mw.pid)["RssAnon"]
    resumed = time.monotonic()
    client.paused.clear()
    # memward learns a worker's request rate from its X_REQUESTS, and the pause reads as
    # one long slow interval: a replacement would then start late, both HTTP slots could
    # be down at once during the flood. Two recycles at the resumed pace first.
    mw.wait_event("recycle", count=2, since=resumed, timeout=30, reason="max_requests")

    foreign_out = t.path("foreign.json")
    since = time.monotonic()
    t_start, cpu_start = time.time(), lib.cpu_seconds(mw.pid)
    t.write("start", "")
    foreign = subprocess.Popen([lib.PYTHON, FLOODER, "--foreign", addr, str(FLOOD_SECONDS), str(FOREIGN_RATE),
                                foreign_out], env=dict(os.environ, **{lib.TAG_VAR: t.tag}))
    check(foreign.wait(FLOOD_SECONDS + 30) == 0, "the foreign flooder failed")
    deadline = time.monotonic() + 30
    while not os.path.exists(t.path("worker.json")):
        check(time.monotonic() < deadline, "the worker's flood helper wrote no result")
        time.sleep(0.1)
    t_end, cpu_end = time.time(), lib.cpu_seconds(mw.pid)
    # One LIMIT more for the recycles due at the very end of the flood.
    time.sleep(LIMIT / LOAD_RATE * 2)
    client.stop.set()
    client.join(15)
    check(not client.is_alive(), "the HTTP client did not finish")
    with open(t.path("worker.json")) as f:
        wflood = json.load(f)
    with open(foreign_out) as f:
        fflood = json.load(f)
    after_rejected = settle(mw, mport)

    check(mw.running(), "memward died during the flood")
    check(wflood["sent"]["accepted"] > 0 and fflood["sent_total"] > 0, "nothing got through: %r %r"
          % (wflood, fflood))
    check(not client.errors, "failed requests: %r" % client.errors[:5])
    during = [x for x in client.times if t_start <= x <= t_end]
    gaps = [b - a for a, b in zip([t_start] + during, during + [t_end])]
    check(during and max(gaps) < SERVE_GAP_MAX, "HTTP served %d requests during the flood, longest gap %.2fs"
          % (len(during), max(gaps)))
    check(not mw.events("ready_timeout"), "a replacement never became ready: %r" % mw.events("ready_timeout"))

    # Each recycle that fell due during the flood: from the worker's LIMIT-th response
    # to memward's recycle line, by its time= (not when we read it). One decided ahead
    # of the limit is due when it is logged, or at the LIMIT-th response if that came first.
    late, at = [], []
    for line in mw.events("recycle", since=since, reason="max_requests"):
        answered = client.answered.get(int(line.get("pid")), [])
        if line.get("expected_in"):
            if not t_start <= line.at <= t_end:
                continue
            due = min(line.at, answered[LIMIT - 1]) if len(answered) >= LIMIT else line.at
        else:
            if len(answered) < LIMIT or not t_start <= answered[LIMIT - 1] <= t_end:
                continue
            due = answered[LIMIT - 1]
        late.append(line.at - due)
        at.append(line.int("requests"))
    check(late, "no max_requests recycle fell due during the flood (%d requests served)" % len(during))
    check(max(late) < RECYCLE_LATE_MAX, "a recycle landed %.3fs after it was due (all: %r)"
          % (max(late), [round(x, 3) for x in late]))

    # Every datagram that got through was counted under its reason.
    want = {why: after_rejected.get(why, 0) - before_rejected.get(why, 0) for why in REJECTED}
    expect = {why: wflood["sent"].get(why, 0) for why in REJECTED}
    for why, n in fflood["sent"].items():
        expect[why if why in ("oversized", "fds") else "foreign"] += n
    check(want == expect, "memward_notify_rejected_total moved by %r, expected %r" % (want, expect))

    status, _, body = mh.get(mport, "/status")
    check(status == 200, "/status answered %d" % status)
    json.loads(body)

    fds_after = stable_fds(mw.pid)
    rss_after = mh.proc_status(mw.pid)["RssAnon"]
    summary = ("worker helper: %d attempts/s, %d sent/s (%d sent, %d queue full); foreign: %d attempts/s, "
               "%d sent/s (%d sent); memward CPU %d%% of one core; recycles during the flood: %d, landed %s ms after due at requests=%r; %d requests served "
               "during the flood, longest gap %d ms; fds %d -> %d; RssAnon %d -> %d KiB; rejected %r"
               % (wflood["attempt_rate"], wflood["send_rate"], wflood["sent_total"], wflood["queue_full"],
                  fflood["attempt_rate"], fflood["send_rate"], fflood["sent_total"],
                  100 * (cpu_end - cpu_start) / (t_end - t_start), len(late),
                  [max(0, round(x * 1000)) for x in late], at, len(during), max(gaps) * 1000, fds_before, fds_after,
                  rss_before, rss_after, want))
    check(fds_after == fds_before, "fds %d before, %d after: %s" % (fds_before, fds_after, summary))
    if mh.is_sanitized(mw.pid):
        summary = "ASan build, memory bound not checked: " + summary
    else:
        check(abs(rss_after - rss_before) <= RSS_SLACK_KIB, "RssAnon moved by more than %d KiB: %s"
              % (RSS_SLACK_KIB, summary))
    check(mw.stop() == 0, "memward did not exit 0")
    print(summary)


if __name__ == "__main__":
    lib.main(test)
