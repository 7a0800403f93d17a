"""The man pages document what the program really has, and they are lint-clean.

  * Every config key the parser knows has its own entry in memward.yaml(5), and every
    entry there names a key that exists. The keys come from the parser itself, not from
    a list kept here: `memward --check-config` prints every key with its value, so the
    test walks the YAML it prints for tests/fixtures/config/full.yaml (which sets every
    section, so optional keys such as listen[].name are printed too) and for the
    defaults. A mapping that the defaults print as {} (workers.env) holds the user's own
    names, not keys: it is one key. List items are written KEY[].SUBKEY.
  * The example configuration in memward.yaml(5) passes --check-config.
  * Every long option in `memward --help` (and in `memward status --help`, once the
    subcommand exists) appears in memward(8), and so does every metric family that
    src/endpoint/exposition.c renders.
  * `mandoc -T lint -W style` and `groff -ww -z -man` print nothing for either page.

Needs python3-yaml, mandoc and groff (packaging/install-deps test); skips when they are
missing and cannot be installed.
"""

import os
import re
import shutil
import subprocess

import lib
from lib import check, fail

DOCS = os.path.join(lib.REPO, "docs")
PAGE8 = os.path.join(DOCS, "memward.8")
PAGE5 = os.path.join(DOCS, "memward.yaml.5")
FULL = os.path.join(lib.REPO, "tests", "fixtures", "config", "full.yaml")
METRICS_C = os.path.join(lib.REPO, "src", "endpoint", "exposition.c")
SECTIONS = ("workers", "listen", "recycle", "log", "memory", "pressure", "metrics")


def ensure_tools():
    """Imports yaml and finds mandoc/groff, installing them once if missing."""
    def missing():
        out = []
        try:
            import yaml  # noqa: F401
        except ImportError:
            out.append("python3-yaml")
        for tool in ("mandoc", "groff"):
            if not shutil.which(tool):
                out.append(tool)
        return out

    if missing():
        subprocess.run([os.path.join(lib.REPO, "packaging", "install-deps"), "test"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
    still = missing()
    if still:
        lib.skip("%s not installed and packaging/install-deps test could not install them"
                 % ", ".join(still))
    import yaml
    return yaml


def roff_text(path):
    """The page's source with fonts, zero-width escapes and \\- turned into plain text."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", text)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\%", "")
    text = text.replace("\\(dq", '"').replace("\\e", "\\")
    return text


def tp_tags(path):
    """The tag line of every .TP entry, as plain words (macro and quotes removed)."""
    lines = roff_text(path).splitlines()
    tags = []
    for i, line in enumerate(lines[:-1]):
        if line.strip() != ".TP":
            continue
        tag = lines[i + 1]
        tag = re.sub(r"^\.(B|I|BR|BI|IR|RB|IB|RI)\s+", "", tag)
        tags.append(tag.replace('"', "").strip())
    return tags


def parser_keys(t, yaml):
    """Every key the parser knows, as dotted paths, from what --check-config prints."""
    rc, out, err, _ = t.run(["--check-config", "--", "/bin/true"])
    check(rc == 0, "--check-config with defaults: exit %s\n%s" % (rc, err))
    defaults = yaml.safe_load(out)
    rc, out, err, _ = t.run(["--check-config", "-c", FULL])
    check(rc == 0, "--check-config -c %s: exit %s\n%s" % (FULL, rc, err))
    full = yaml.safe_load(out)
    with open(FULL, encoding="utf-8") as f:
        given = yaml.safe_load(f)

    freeform = set()

    def find_freeform(node, path):
        if isinstance(node, dict):
            if not node and path:
                freeform.add(path)
            for k, v in node.items():
                find_freeform(v, "%s.%s" % (path, k) if path else str(k))

    find_freeform(defaults, "")

    keys = set()

    def walk(node, path):
        if isinstance(node, dict) and path not in freeform:
            for k, v in node.items():
                walk(v, "%s.%s" % (path, k) if path else str(k))
        elif isinstance(node, list) and all(isinstance(i, dict) for i in node):
            # listen: entries; an empty list (listen: [] among the defaults) adds nothing.
            for item in node:
                walk(item, path + "[]")
        else:
            keys.add(path)

    for doc in (defaults, full, given):
        walk(doc, "")
    check(len(keys) > 30, "suspiciously few keys from --check-config: %s" % sorted(keys))
    return keys


def check_keys(t, yaml):
    keys = parser_keys(t, yaml)
    tags = set(tp_tags(PAGE5))
    missing = sorted(k for k in keys if k not in tags)
    stale = sorted(tag for tag in tags
                   if re.match(r"^(%s)[.\[]" % "|".join(SECTIONS), tag) and tag not in keys)
    problems = []
    if missing:
        problems.append("keys the parser knows but memward.yaml(5) has no .TP entry for:\n  "
                        + "\n  ".join(missing))
    if stale:
        problems.append("entries in memward.yaml(5) for keys the parser does not know:\n  "
                        + "\n  ".join(stale))
    if problems:
        fail("\n".join(problems))
    print("memward.yaml(5) documents all %d keys" % len(keys))


def check_example(t):
    """The EXAMPLES block of memward.yaml(5) is a valid configuration."""
    text = roff_text(PAGE5)
    m = re.search(r"^\.SH EXAMPLES\n.*?^\.EX\n(.*?)^\.EE", text, re.M | re.S)
    check(m, "memward.yaml(5) has no .EX block under EXAMPLES")
    path = t.write("example.yaml", m.group(1))
    rc, _, err, _ = t.run(["--check-config", "-c", path])
    check(rc == 0, "the example in memward.yaml(5) does not pass --check-config:\n%s\n%s"
          % (m.group(1), err))


def long_options(text):
    return sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text)))


def check_options(t):
    page = roff_text(PAGE8)
    rc, out, err, _ = t.run(["--help"])
    check(rc == 0, "--help: exit %s\n%s" % (rc, err))
    options = long_options(out)
    check("--config" in options and "--check-config" in options,
          "no long options found in --help:\n%s" % out)
    if re.search(r"^\s*memward status\b|\bstatus\b.*--url", out, re.M):
        # The subcommand exists: its own options must be documented too.
        rc, sout, serr, _ = t.run(["status", "--help"], timeout=5.0)
        if rc == 0:
            options += long_options(sout)
    missing = [o for o in sorted(set(options))
               if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), page)]
    check(not missing, "long options of memward --help missing from memward(8): %s" % missing)
    print("memward(8) documents %d long options" % len(set(options)))


def check_metrics():
    if not os.path.exists(METRICS_C):
        return
    with open(METRICS_C, encoding="utf-8") as f:
        names = set(re.findall(r'family\(\s*b\s*,\s*"([a-z_]+)"', f.read()))
    check(names, "no metric families found in %s" % METRICS_C)
    page = roff_text(PAGE8)
    missing = sorted(n for n in names if not re.search(r"(?<![\w])%s(?![\w])" % n, page))
    check(not missing, "metrics rendered by src/endpoint/exposition.c but missing from memward(8): %s"
          % missing)
    print("memward(8) documents %d metric families" % len(names))


def check_lint():
    problems = []
    for page in (PAGE8, PAGE5):
        for argv in (["mandoc", "-T", "lint", "-W", "style", page],
                     ["groff", "-ww", "-z", "-man", page]):
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            output = (p.stdout + p.stderr).strip()
            if p.returncode != 0 or output:
                problems.append("%s: exit %d\n%s" % (" ".join(argv), p.returncode, output))
    check(not problems, "\n".join(problems))


def test(t):
    yaml = ensure_tools()
    for page in (PAGE8, PAGE5):
        check(os.path.exists(page), "%s does not exist" % page)
    # Every check runs, so one run names every problem.
    problems = []
    for name, run in (("config keys", lambda: check_keys(t, yaml)),
                      ("example", lambda: check_example(t)),
                      ("options", lambda: check_options(t)),
                      ("metrics", check_metrics),
                      ("lint", check_lint)):
        try:
            run()
        except lib.Failure as e:
            problems.append("%s: %s" % (name, e))
    if problems:
        fail("\n\n".join(problems))


if __name__ == "__main__":
    lib.main(test)
