"""A forked worker is judged by its own memory, not by the pages it shares with its
template (docs/fork-server.md §6).

The test template preloads 48 MiB (touched anonymous memory) before it forks; memory
{metric: anon, retained_max: 24MiB, retained_requests: 1}. Counted the exec way, every
forked worker would hold more than 48 MiB and be recycled at its first request; judged
by its own memory (its leaf in cgroup mode, its USS in procfs mode, at the sample tick
and at request end alike) it holds a few MiB:
  * a steady load over several windows recycles nothing;
  * a worker that then keeps 40 MiB (/alloc?mib=40) is recycled for retained memory,
    and the other is not;
  * no request fails.

memory.group_high counts the template's pages, which no worker's figure does: the same
template (about 55 MiB anonymous, its preload and the interpreter) and 2 workers (about
3 MiB of their own) under group_high 72MiB are within the budget; once one worker keeps
32 MiB more, the group is over it only with the template counted (the workers alone
hold about 35 MiB), and that worker is recycled for group_high (once its floor over the
window shows it), with the total, the workers' and the template's parts in the log line."""

import time

import lib
from lib import check


def retained(t):
    port = t.port()
    cfg = lib.config(port, count=2, command=lib.test_worker("template.py"),
                     workers={"mode": "template", "env": {"TEST_TEMPLATE_PRELOAD_MIB": "48"}},
                     memory={"metric": "anon", "sample_interval": "250ms", "retained_max": "24MiB",
                             "retained_window": "2s", "retained_requests": 1})
    mw = t.memward(cfg)
    mw.wait_event("ready", count=2, timeout=20)
    workers = mw.current_workers()

    load = t.load(port, threads=2, rate=40)
    time.sleep(5)
    check(not mw.events("recycle"), "recycled for the template's pages: %r" % [e.text for e in mw.events("recycle")])

    status, headers, body = lib.http_get(port, "/alloc?mib=40", timeout=30)
    check(status == 200, "/alloc: %d %r" % (status, body))
    victim = lib.worker_pid_of(headers, body)
    rec = mw.wait_event("recycle", reason="retained", timeout=20)[0]
    check(rec.int("pid") == victim, "recycled %s, not the worker that kept 40 MiB (%d)" % (rec.text, victim))
    floor = rec.int("floor")
    check(24 << 20 < floor < 48 << 20, "the floor that decided counts the template's pages: %s" % rec.text)
    time.sleep(1)
    load.stop().check_no_failures()
    others = [e for e in mw.events("recycle") if e.int("pid") != victim]
    check(not others, "another worker recycled: %r" % [e.text for e in others])
    check(mw.stop() == 0, "memward exit code")
    print("%s; %s; workers %r" % (rec.text.split("event=")[1], load.summary(), workers))


def group_high(t):
    port = t.port()
    cfg = lib.config(port, count=2, command=lib.test_worker("template.py"),
                     workers={"mode": "template", "env": {"TEST_TEMPLATE_PRELOAD_MIB": "48"}},
                     memory={"metric": "anon", "sample_interval": "250ms", "retained_window": "2s",
                             "group_high": "72MiB"},
                     # The victim is the largest floor over retained_window: a worker whose
                     # allocation is younger than the window is not chosen before it is.
                     pressure={"min_retained": "16MiB"})
    mw = t.memward(cfg, name="group_high")
    mw.wait_event("ready", count=2, timeout=20)
    time.sleep(3)
    check(not mw.events("group_high"), "over group_high before any allocation: %r"
          % [e.text for e in mw.events("group_high")])

    status, headers, body = lib.http_get(port, "/alloc?mib=32", timeout=30)
    check(status == 200, "/alloc: %d %r" % (status, body))
    victim = lib.worker_pid_of(headers, body)
    line = mw.wait_event("group_high", timeout=20)[0]
    total, workers, template = line.int("total"), line.int("workers"), line.int("template")
    check(total == workers + template and total > 72 << 20, "the figures do not add up: %s" % line.text)
    check(template > 48 << 20, "the template's share is missing: %s" % line.text)
    check(workers < 72 << 20, "the workers alone are over the budget, nothing tested: %s" % line.text)
    rec = mw.wait_event("recycle", reason="group_high", timeout=10)[0]
    check(rec.int("pid") == victim, "recycled %s, not the worker that kept 32 MiB (%d)" % (rec.text, victim))
    check(rec.int("template") == template, "the recycle line's template= is not the one that decided: %s"
          % rec.text)
    check(mw.stop() == 0, "memward exit code")
    print("%s; victim %d" % (line.text.split("event=")[1], victim))


def test(t):
    retained(t)
    group_high(t)


if __name__ == "__main__":
    lib.main(test)
