"""What a reload did, where people alert: /metrics, /status and `memward status`.

  * Before any reload: memward_config_last_reload_successful 1, the success time is
    start-up, /status has no last_attempt.
  * A broken file: every error with its location first, then one reload_failed line
    with reason=config and no errno (not error="Invalid argument"); the gauge drops to
    0, the failure counter counts it, /status says last_successful false with
    last_error "config", `memward status` prints FAILED.
  * A good file that changes workers.count and recycle.max_requests: event=reload_applied
    names exactly those keys; the gauge is back at 1 and the success time moved on."""

import json
import re
import signal
import time

import lib
from lib import check
import metrics_helpers as mh


def gauge(mport, name, **labels):
    _, samples = mh.scrape(mport)
    found = mh.values(samples, name, **labels)
    check(len(found) == 1, "%s%r: %r" % (name, labels, found))
    return found[0][1]


def status(mport):
    code, _, body = mh.get(mport, "/status")
    check(code == 200, "/status answered %d" % code)
    return json.loads(body)


def test(t):
    port, mport = t.port(), t.port()
    good = lib.yaml_dump(mh.config(port, "127.0.0.1:%d" % mport, count=2))
    check("  count: 2\n" in good, "config layout changed: %s" % good)
    mw = t.memward(good, name="memward", config_name="memward.yaml")
    path = t.path("memward.yaml")
    mw.wait_event("ready", count=2)

    check(gauge(mport, "memward_config_last_reload_successful") == 1, "not successful before any reload")
    started = gauge(mport, "memward_config_last_reload_success_timestamp_seconds")
    check(abs(started - time.time()) < 120, "success time %r is not start-up" % started)
    check(status(mport)["reload"]["last_attempt"] is None, "a reload attempt before any SIGHUP")

    # A broken file.
    t.write("memward.yaml", good.replace("  count: 2\n", "  count: four\n"))
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    failed = mw.wait_event("reload_failed", since=since, timeout=10)[0]
    check(failed.get("reason") == "config", "reload_failed without reason=config: %s" % failed.text)
    check("error=" not in failed.text, "reload_failed repeats an errno: %s" % failed.text)
    errors = [l for l in mw.lines() if l.t >= since and re.search(re.escape(path) + r":\d+:\d+", l.text)]
    check(errors and errors[0].t <= failed.t, "the located errors do not come before reload_failed")
    check(gauge(mport, "memward_config_last_reload_successful") == 0, "the gauge did not drop to 0")
    check(gauge(mport, "memward_config_reloads_total", result="failure") == 1, "the failure was not counted")
    check(gauge(mport, "memward_config_last_reload_success_timestamp_seconds") == started,
          "a failed reload moved the success time")
    doc = status(mport)["reload"]
    check(doc["last_successful"] is False and doc["last_error"] == "config" and doc["last_attempt"],
          "/status reload: %r" % doc)
    rc, out, err, _ = t.run(["status", "--url", "http://127.0.0.1:%d" % mport])
    check(rc == 0, "memward status exited %d: %s" % (rc, err))
    check(re.search(r"last reload: FAILED at \S+ \(config\)", out), "memward status does not say FAILED:\n" + out)

    # A good file with two changes.
    time.sleep(1.1)  # the success time has a resolution of ms; make it move visibly
    changed = good.replace("  count: 2\n", "  count: 3\n")
    check("max_requests:" in changed or "recycle:" not in changed, "config layout changed: %s" % changed)
    changed = changed.replace("recycle:\n", "recycle:\n  max_requests: 5000\n", 1) if "recycle:\n" in changed \
        else changed + "recycle:\n  max_requests: 5000\n"
    t.write("memward.yaml", changed)
    since = time.monotonic()
    mw.signal(signal.SIGHUP)
    applied = mw.wait_event("reload_applied", since=since, timeout=10)[0]
    check(applied.get("changed") == "workers.count,recycle.max_requests",
          "reload_applied changed=%r: %s" % (applied.get("changed"), applied.text))
    check(gauge(mport, "memward_config_last_reload_successful") == 1, "the gauge did not come back to 1")
    check(gauge(mport, "memward_config_last_reload_success_timestamp_seconds") > started,
          "the success time did not move")
    check(gauge(mport, "memward_config_reloads_total", result="success") == 1, "the success was not counted")
    doc = status(mport)["reload"]
    check(doc["last_successful"] is True and doc["last_error"] is None, "/status reload: %r" % doc)
    rc, out, err, _ = t.run(["status", "--url", "http://127.0.0.1:%d" % mport])
    check(re.search(r"last reload: applied at ", out), "memward status does not say applied:\n" + out)

    rc = mw.stop()
    check(rc == 0, "memward exited %s after SIGTERM" % rc)


if __name__ == "__main__":
    lib.main(test)
