"""With log.format: json every line memward writes is one JSON object, also when a value
is a path the user chose with a space and a double quote in it: the config file named
by -c (event=reload on SIGHUP) and a unix: metrics socket (event=metrics_listen). Each
such field carries the whole path, not the part before the first space or quote."""

import json
import os
import signal

import lib
import metrics_helpers as mh
from lib import check


def parse_json_lines(text, where):
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError as e:
            lib.fail("a %s line is not JSON (%s): %r" % (where, e, line))
        check(isinstance(events[-1], dict), "a %s line is not a JSON object: %r" % (where, line))
    return events


def test(t):
    odd = t.path('conf dir "prod" x=1')
    os.mkdir(odd)
    cfg_path = os.path.join(odd, 'memward "a b".yaml')
    sock = os.path.join(odd, 'metrics "m".sock')
    cfg = mh.config(t.port(), "unix:" + sock, count=1, log={"format": "json"})
    with open(cfg_path, "w") as f:
        f.write(lib.yaml_dump(cfg))

    mw = t.memward(args=["-c", cfg_path], name="json")

    def events(name):
        def pred(lines):
            hits = []
            for line in lines:
                try:
                    e = json.loads(line.text)
                except ValueError:
                    continue
                if isinstance(e, dict) and e.get("event") == name:
                    hits.append(e)
            return hits
        return pred

    mw.wait_for(events("ready"), 15, "a JSON event=ready line")
    mw.signal(signal.SIGHUP)
    reloads = mw.wait_for(events("reload"), 15, "a JSON event=reload line")
    check(mw.stop() == 0, "memward did not exit 0")

    stderr_events = parse_json_lines(mw.text(), "stderr")
    parse_json_lines(mw.stdout(), "stdout")
    check(reloads[0].get("file") == cfg_path, "reload file=%r, want %r" % (reloads[0].get("file"), cfg_path))
    listen = [e for e in stderr_events if e.get("event") == "metrics_listen"]
    check(len(listen) == 1 and listen[0].get("address") == "unix:" + sock,
          "metrics_listen %r, want address=%r" % (listen, "unix:" + sock))
    print("%d JSON lines; reload file=%s" % (len(stderr_events), reloads[0]["file"]))


if __name__ == "__main__":
    lib.main(test)
