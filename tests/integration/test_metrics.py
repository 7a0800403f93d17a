"""The metrics endpoint on a real memward: /metrics, /status, `memward status`.

3 example workers, recycle {max_requests: 10}, metrics on 127.0.0.1:<free port>:
  * /metrics passes `promtool check metrics` and carries every family issue 5 lists,
    with # HELP and # TYPE; memward_worker_memory_bytes has every slot and kind once
    the first sample is taken; counters carry slot labels, never pids;
  * after 60 requests (and more until three recycles are logged) the recycle and exit
    counters equal what the log says;
  * /status parses as JSON and names exactly the running workers (slot, pid,
    generation, state), with the recent recycles and their reasons;
  * `memward status --url ...` prints a table row per worker and exits 0;
    against a port where nothing listens it prints a clear error and exits 1;
  * unknown paths are 404, other methods 405;
  * a unix: metrics socket works with `memward status -c FILE`, replaces a stale
    socket file, and is removed at exit;
    an IPv6 loopback address works where the machine has one."""

import collections
import json
import os
import socket
import time

import lib
import metrics_helpers as mh
from lib import check

COUNT = 3
LIMIT = 10


def check_exposition(mw, mport):
    status, headers, text = mh.get(mport, "/metrics")
    check(status == 200, "/metrics: HTTP %d" % status)
    check(headers.get("content-type") == "text/plain; version=0.0.4; charset=utf-8",
          "content type %r" % headers.get("content-type"))
    mh.promtool_check(text)
    types, samples = mh.parse_exposition(text)
    for name, kind in mh.REQUIRED_FAMILIES.items():
        check(types.get(name) == kind, "family %s: type %r, want %s" % (name, types.get(name), kind))
        check("# HELP %s " % name in text, "no # HELP for %s" % name)
    if os.path.exists("/proc/pressure/memory"):
        for name, kind in mh.PSI_FAMILIES.items():
            check(types.get(name) == kind, "family %s: type %r, want %s" % (name, types.get(name), kind))
    # Counters are labelled by slot (bounded), never by pid (unbounded over time).
    for name, labels, _ in samples:
        if types.get(name) == "counter":
            check("pid" not in labels, "counter %s has a pid label: %r" % (name, labels))
    return types, samples, text


def settle(mw, timeout=10.0):
    """Waits until every recycle is complete: each recycled worker has exited and each
    spawned one is ready. Then the log, /metrics and /status describe the same state."""
    def done(lines):
        recycled = {l.get("pid") for l in lines if l.event == "recycle"}
        exited = {l.get("pid") for l in lines if l.event == "exit"}
        spawned = {l.get("pid") for l in lines if l.event == "spawn"}
        ready = {l.get("pid") for l in lines if l.event == "ready"}
        return recycled <= exited and spawned <= ready | exited
    mw.wait_for(done, timeout, "every recycle to complete")


def test(t):
    port, mport = t.port(), t.port()
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=COUNT, recycle={"max_requests": LIMIT}))
    mw.wait_event("ready", count=COUNT, timeout=15)
    listen = mw.wait_event("metrics_listen")[0]
    check(listen.get("address") == "127.0.0.1:%d" % mport, "metrics_listen line: %s" % listen.text)

    # Memory of every slot appears with the first sample tick (1 s).
    deadline = time.monotonic() + 5
    while True:
        types, samples, text = check_exposition(mw, mport)
        mem = mh.values(samples, "memward_worker_memory_bytes", kind="anon")
        if {l["slot"] for l, _ in mem} == {str(i) for i in range(COUNT)} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    workers = mw.current_workers()
    for slot, pid in workers.items():
        for kind in ("current", "anon", "file", "kernel", "peak"):
            v = mh.values(samples, "memward_worker_memory_bytes", slot=slot, pid=pid, kind=kind)
            check(len(v) == 1, "memward_worker_memory_bytes{slot=%s,pid=%d,kind=%s}: %r" % (slot, pid, kind, v))
        check(mh.values(samples, "memward_worker_memory_bytes", slot=slot, kind="anon")[0][1] > 0,
              "slot %s: anon memory 0" % slot)
    check(mh.values(samples, "memward_workers", state="ready")[0][1] == COUNT, "memward_workers{ready}")
    version = t.run(["--version"])[1].split()[1]
    check(mh.values(samples, "memward_build_info", version=version) == [({"version": version}, 1.0)],
          "build info: %r" % mh.values(samples, "memward_build_info"))
    mode = mh.values(samples, "memward_mode_info")[0][0]["accounting"]
    accounting = mw.events("accounting")[0].get("mode")
    check(mode == accounting, "memward_mode_info says %s, the log %s" % (mode, accounting))
    check(mh.values(samples, "memward_group_memory_bytes")[0][1] > 0, "group memory 0")
    rss = mh.values(samples, "process_resident_memory_bytes")[0][1]
    check(0 < rss < 64 << 20, "process_resident_memory_bytes %r" % rss)

    # 60 requests: each worker is recycled at 10. Which worker takes a request is the
    # kernel's choice, and one at its limit may take another before its stop arrives:
    # a request more now and then until three recycles are logged.
    load = t.load(port, threads=2, total=6 * LIMIT, rate=100).join(60)
    load.check_no_failures()
    for extra in range(5 * LIMIT):
        if len(mw.events("recycle", reason="max_requests")) >= 3:
            break
        time.sleep(0.2)
        status, _, body = lib.http_get(port, "/")
        check(status == 200, "request %d after the load: HTTP %d %r" % (extra, status, body))
    mw.wait_event("recycle", count=3, timeout=15, reason="max_requests")
    settle(mw)
    time.sleep(0.2)     # the log line of an exit is written right after the reap
    types, samples, text = check_exposition(mw, mport)
    logged = len(mw.events("recycle", reason="max_requests"))
    exported = mh.values(samples, "memward_recycles_total", reason="max_requests")[0][1]
    check(exported == logged, "memward_recycles_total{max_requests} = %r, the log has %d" % (exported, logged))
    exits = len(mw.events("exit"))
    by_how = {l["how"]: v for l, v in mh.values(samples, "memward_worker_exits_total")}
    check(sum(by_how.values()) == exits, "exits %r, the log has %d" % (by_how, exits))
    requests = {l["slot"]: v for l, v in mh.values(samples, "memward_worker_requests_total")}
    check(sorted(requests) == [str(i) for i in range(COUNT)], "requests by slot: %r" % requests)
    gens = {l["slot"]: v for l, v in mh.values(samples, "memward_worker_generation")}
    check(sum(gens.values()) == COUNT + logged, "generations %r after %d recycles" % (gens, logged))

    # /status: exactly the running workers.
    status, headers, body = mh.get(mport, "/status")
    check(status == 200 and headers.get("content-type") == "application/json", "/status: %d %r" % (status, headers))
    doc = json.loads(body)
    workers = mw.current_workers()
    got = {str(w["slot"]): w["pid"] for w in doc["workers"]}
    check(got == workers, "/status workers %r, running %r" % (got, workers))
    spawns = {}
    for line in mw.events("spawn"):
        spawns[int(line.get("pid"))] = int(line.get("generation"))
    for w in doc["workers"]:
        check(w["state"] == "ready" and w["role"] == "active", "worker %r" % w)
        check(w["generation"] == spawns[w["pid"]], "generation of %d: %r vs log %r" % (w["pid"], w["generation"],
                                                                                     spawns[w["pid"]]))
        check(w["memory"]["sampled"] is False or w["memory"]["anon"] > 0, "memory of %r" % w)
        check(w["status"] == "serving", "STATUS= text %r" % w["status"])
        check(w["age_seconds"] >= 0 and w["requests"] >= 0, "numbers of %r" % w)
    check(doc["target"] == COUNT and doc["ready"] == COUNT and doc["healthy"] is True, "summary %r" % doc)
    recycled = {int(l.get("pid")) for l in mw.events("recycle", reason="max_requests")}
    check(len(doc["recycles"]) == logged and {r["pid"] for r in doc["recycles"]} == recycled,
          "recycles %r, the log %r" % (doc["recycles"], recycled))
    # Each record says what its event=recycle line says (at the limit, or ahead of it).
    logged_requests = {int(l.get("pid")): l.int("requests") for l in mw.events("recycle")}
    check(all(r["reason"] == "max_requests" and r["requests"] == logged_requests[r["pid"]]
              for r in doc["recycles"]),
          "recycle records %r, the log %r" % (doc["recycles"], logged_requests))
    check(doc["recycles_total"]["max_requests"] == logged, "recycles_total %r" % doc["recycles_total"])

    # memward status: one row per worker.
    rc, out, err, _ = t.run(["status", "--url", "http://127.0.0.1:%d" % mport])
    check(rc == 0, "memward status exited %d: %s" % (rc, err))
    lines = out.splitlines()
    check(lines[0].startswith("memward %s (pid %d): %d/%d workers ready" % (version, mw.pid, COUNT, COUNT)),
          "summary line %r" % lines[0])
    header = lines[1].split()
    check(header[:8] == ["SLOT", "PID", "GEN", "STATE", "AGE", "REQUESTS", "ANON", "RETAINED"], "header %r" % lines[1])
    rows = {l.split()[0]: l.split() for l in lines[2:2 + COUNT]}
    for slot, pid in workers.items():
        check(slot in rows and rows[slot][1] == str(pid) and rows[slot][3] == "ready",
              "no row for slot %s pid %d in:\n%s" % (slot, pid, out))
    check(any("max_requests" in l for l in lines[2:2 + COUNT]), "no LAST RECYCLE column value:\n%s" % out)
    check("recent recycles" in out, "no recycle history:\n%s" % out)
    rc, out, err, _ = t.run(["status", "--url", "127.0.0.1:%d" % mport, "--json"])
    check(rc == 0 and json.loads(out)["target"] == COUNT, "--json: %d %r" % (rc, out[:200]))

    # Nothing listening: a clear error, exit 1.
    dead = t.port()
    rc, out, err, secs = t.run(["status", "--url", "http://127.0.0.1:%d" % dead])
    check(rc == 1 and "Connection refused" in err and "127.0.0.1:%d" % dead in err,
          "memward status against nothing: rc %d, stderr %r" % (rc, err))
    rc, out, err, _ = t.run(["status", "--url", "gopher://x"])
    check(rc == 2, "bad URL: rc %d" % rc)

    # 404 and 405.
    check(mh.get(mport, "/")[0] == 404 and mh.get(mport, "/metricsx")[0] == 404, "unknown paths are not 404")
    conn = lib.http.client.HTTPConnection("127.0.0.1", mport, timeout=5)
    conn.request("POST", "/metrics", body=b"x=1")
    resp = conn.getresponse()
    check(resp.status == 405 and resp.getheader("Allow") == "GET, HEAD", "POST /metrics: %d" % resp.status)
    conn.close()

    rc = mw.stop()
    check(rc == 0, "memward exited %s" % rc)

    # unix: socket, found through the config file; a stale socket file left by an
    # earlier run (bound, never unlinked) is replaced.
    sock = t.path("metrics.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock)
    stale.close()
    cfg_path = t.write_config(mh.config(t.port(), "unix:" + sock, count=1), "unix.yaml")
    mw2 = t.memward(args=["-c", cfg_path], name="unix")
    mw2.wait_event("ready", timeout=15)
    rc, out, err, _ = t.run(["status", "-c", cfg_path])
    check(rc == 0 and "1/1 workers ready" in out, "status over unix socket: %d %r %r" % (rc, out, err))
    check(mw2.stop() == 0, "memward (unix) did not exit 0")
    check(not os.path.exists(sock), "the metrics socket %s was left behind" % sock)

    # [::1] where there is IPv6 loopback.
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        has_v6 = True
    except OSError:
        has_v6 = False
    if has_v6:
        p6 = t.port()
        mw3 = t.memward(mh.config(t.port(), "[::1]:%d" % p6, count=1), name="v6")
        mw3.wait_event("ready", timeout=15)
        status, _, body = lib.http_get(p6, "/healthz", host="::1")
        check(status == 200 and body == "ok: 1/1 workers ready\n", "/healthz over [::1]: %d %r" % (status, body))
        rc, out, err, _ = t.run(["status", "--url", "http://[::1]:%d" % p6])
        check(rc == 0, "status over [::1]: %d %r" % (rc, err))
        check(mw3.stop() == 0, "memward (v6) did not exit 0")
    print("%d families, %d recycles exported and logged, ipv6 %s" % (len(types), logged, has_v6))


if __name__ == "__main__":
    lib.main(test)
