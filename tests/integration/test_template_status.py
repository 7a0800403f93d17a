"""What memward shows in template mode: the template as a row of its own.

  * /status: "mode": "template", a "template" object with the template's pid,
    generation, phase, runtime and memory (sampled: rss and pss in procfs mode), and
    each worker's template_generation;
  * a forked worker's anon is less than the template's: its own memory (USS in procfs
    mode), not the pages it shares with the template;
  * /metrics: memward_template_info{generation,phase}, memward_template_memory_bytes
    {kind}, memward_template_restarts_total{reason}, which counts a template killed
    from outside as reason="exited";
  * `memward status` prints a template line with its pid and generation."""

import json
import os
import re
import signal

import lib
from lib import check


def metrics(port):
    status, _, body = lib.http_get(port, "/metrics")
    check(status == 200, "/metrics: %d" % status)
    return body


def status(port):
    code, _, body = lib.http_get(port, "/status")
    check(code == 200, "/status: %d" % code)
    return json.loads(body)


def test(t):
    port, mport = t.port(), t.port()
    cfg = lib.config(port, count=2, command=lib.test_worker("template.py"),
                     workers={"mode": "template"},
                     memory={"sample_interval": "200ms"},
                     metrics={"listen": "127.0.0.1:%d" % mport})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=2, timeout=20)
    tpid = int(mw.events("template_ready")[0].get("pid"))

    doc = mw.wait_for(lambda _: (lambda d: d if d["template"]["memory"]["sampled"] else None)(status(mport)),
                      timeout=10, what="a sampled template")
    check(doc["mode"] == "template", "mode: %r" % doc.get("mode"))
    tpl = doc["template"]
    check(tpl["pid"] == tpid and tpl["generation"] == 1 and tpl["phase"] == "ready", "template: %r" % tpl)
    check(tpl["runtime"].startswith("test-template/1"), "runtime: %r" % tpl["runtime"])
    check(tpl["memory"]["rss"] > 1024 * 1024 and tpl["memory"]["pss"] > 0, "memory: %r" % tpl["memory"])
    check(all(w["template_generation"] == 1 for w in doc["workers"]), "workers: %r" % doc["workers"])
    # A forked worker's anon is its own (its leaf's charge, or its USS in procfs mode),
    # not the template's pages it still shares.
    doc = mw.wait_for(lambda _: (lambda d: d if all(w["memory"]["sampled"] for w in d["workers"]) else None)(
        status(mport)), timeout=10, what="sampled workers")
    for w in doc["workers"]:
        check(w["memory"]["anon"] < doc["template"]["memory"]["anon"],
              "worker %d anon %d counts the template's %d" % (w["slot"], w["memory"]["anon"],
                                                              doc["template"]["memory"]["anon"]))

    text = metrics(mport)
    check('memward_template_info{generation="1",phase="ready"} 1' in text, "template_info missing")
    check(re.search(r'memward_template_memory_bytes\{kind="rss"\} [1-9]', text), "template memory missing")
    check('memward_template_restarts_total{reason="exited"} 0' in text, "restarts missing")

    rc, out, err, _ = t.run(["status", "--url", "http://127.0.0.1:%d" % mport])
    check(rc == 0 and re.search(r"^template: pid %d, generation 1, ready" % tpid, out, re.M),
          "memward status: rc %d\n%s%s" % (rc, out, err))

    os.kill(tpid, signal.SIGKILL)
    mw.wait_event("template_ready", generation=2, timeout=20)
    text = metrics(mport)
    check('memward_template_restarts_total{reason="exited"} 1' in text, "the restart was not counted")
    check('memward_template_info{generation="2",phase="ready"} 1' in text, "generation 2 not shown")
    check(mw.stop() == 0, "memward exit code")


if __name__ == "__main__":
    lib.main(test)
