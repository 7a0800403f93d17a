"""packaging/grafana/memward.json only asks for metrics memward really exports.

Every PromQL expression in the dashboard — panel targets, annotations, template
variable queries — is collected; the metric names in them must all appear as # TYPE
families in the /metrics of a running memward (the pressure families are accepted
without a scrape only where this kernel has no PSI at all: memward exports them
wherever it can read a pressure file). Every expression must also be valid PromQL
(`promtool check rules` on a rules file made of them, Grafana's $variables filled in).
And the dashboard has what issue 5 asks for: per-worker memory with recycle
annotations, recycles by reason, PSI."""

import json
import os
import re
import subprocess

import lib
import metrics_helpers as mh
from lib import check

DASHBOARD = os.path.join(lib.REPO, "packaging", "grafana", "memward.json")

# PromQL words that look like identifiers but are not metric names.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan", "atan2"}


def expressions(dashboard):
    """(where, expr) for every query in the dashboard."""
    out = []

    def walk_panels(panels):
        for p in panels:
            for tgt in p.get("targets", []):
                if tgt.get("expr"):
                    out.append(("panel %r" % p.get("title"), tgt["expr"]))
            walk_panels(p.get("panels", []))
    walk_panels(dashboard.get("panels", []))
    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append(("annotation %r" % a.get("name"), a["expr"]))
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            out.append(("variable %r" % v.get("name"), q))
    return out


def grafana_to_promql(expr):
    """Fills Grafana's variables with values Prometheus accepts."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)
    expr = re.sub(r"\$\{?(\w+)(:\w+)?\}?", ".*", expr)
    return expr


def metric_names(expr):
    """The metric names an expression reads."""
    m = re.match(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", expr)
    if m:                                           # Grafana's variable helper
        expr = m.group(1)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)   # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)          # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)         # ranges, subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        word, call = m.group(1), m.group(2)
        if call or word in KEYWORDS:
            continue                                # a function or aggregation, or a keyword
        names.add(word)
    return names


def test(t):
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    exprs = expressions(dashboard)
    check(len(exprs) >= 10, "only %d expressions found in %s" % (len(exprs), DASHBOARD))

    # What a running memward exports.
    port, mport = t.port(), t.port()
    mw = t.memward(mh.config(port, "127.0.0.1:%d" % mport, count=2))
    mw.wait_event("ready", count=2, timeout=15)
    exported, _ = mh.scrape(mport)
    check(mw.stop() == 0, "memward did not exit 0")
    allowed = set(exported)
    no_psi = not os.path.exists("/proc/pressure/memory")
    if no_psi and not set(mh.PSI_FAMILIES) & allowed:
        allowed |= set(mh.PSI_FAMILIES)

    used = {}
    for where, expr in exprs:
        names = metric_names(expr)
        check(names, "%s: no metric name found in %r" % (where, expr))
        for n in names:
            used.setdefault(n, []).append(where)
    unknown = {n: w for n, w in used.items() if n not in allowed}
    check(not unknown, "the dashboard uses metrics memward does not export: %r\nexported: %s"
          % (unknown, sorted(exported)))

    # Valid PromQL, every one of them.
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (where, expr) in enumerate(exprs):
        if expr.startswith("label_values("):
            continue
        rules.append("      - record: dashboard:expr_%d" % i)
        rules.append("        expr: %s" % json.dumps(grafana_to_promql(expr)))
    path = t.write("rules.yml", "\n".join(rules) + "\n")
    p = subprocess.run([mh.PROMTOOL, "check", "rules", path], capture_output=True, timeout=30)
    check(p.returncode == 0, "promtool check rules:\n%s" % (p.stdout + p.stderr).decode("utf-8", "replace"))

    # What issue 5 asks the dashboard to show.
    panel_exprs = " ".join(e for w, e in exprs if w.startswith("panel"))
    annotation_exprs = " ".join(e for w, e in exprs if w.startswith("annotation"))
    check('memward_worker_memory_bytes' in panel_exprs and "slot" in panel_exprs, "no per-worker memory panel")
    check("memward_recycles_total" in annotation_exprs, "no recycle annotations")
    check(re.search(r"sum by \(reason\) \(increase\(memward_recycles_total", panel_exprs), "no recycles-by-reason panel")
    check("memward_pressure_avg10" in panel_exprs, "no PSI panel")
    print("%d expressions, %d metric names, all exported%s: %s" % (
        len(exprs), len(used), " (PSI names accepted: no PSI here)" if no_psi else "", ", ".join(sorted(used))))


if __name__ == "__main__":
    lib.main(test)
