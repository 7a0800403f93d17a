#!/bin/bash
# test_memward_smoke.sh — build/memward (built on the host) supervises two
# example Python workers on a real cgroup-v2 kernel: they answer HTTP over
# loopback, and SIGTERM stops everything cleanly (exit 0, no process left).
# Runs inside the VM only: tests/vm/run tests/vm/test_memward_smoke.sh
# MEMWARD overrides the binary (vm.mk passes $(BUILD)/memward).
set -euo pipefail

PY=/usr/bin/python3
MEMWARD=${MEMWARD:-build/memward}
PORT=8000
WORKER=examples/python/worker.py
LOG=/tmp/memward-smoke.log
READY_WAIT=60           # TCG is slow: python startup alone takes about a second
STOP_WAIT=30

MW_PID=
fail() {
    echo "FAIL: $*" >&2
    if [[ -s $LOG ]]; then
        echo "--- memward output (last 40 lines) ---" >&2
        tail -n 40 "$LOG" >&2
    fi
    exit 1
}
ok() { echo "ok: $*"; }

# worker_pids [PARENT] — pids of processes running the example worker
# (children of PARENT when given); zombies have no command line to match.
# Builtins only: a fork per process is slow under TCG, and procps may be absent.
worker_pids() {
    local d args stat rest
    for d in /proc/[0-9]*; do
        mapfile -d '' args 2>/dev/null <"$d/cmdline" || continue
        [[ " ${args[*]} " == *"$WORKER "* ]] || continue
        read -r stat 2>/dev/null <"$d/stat" || continue
        rest=${stat##*) }               # "STATE PPID ..." after "pid (comm) "
        [[ -z ${1:-} || ${rest#* } == "$1 "* ]] && echo "${d#/proc/}"
    done
    return 0
}

cleanup() {
    if [[ -n $MW_PID ]]; then
        kill -KILL "$MW_PID" 2>/dev/null || true
        wait "$MW_PID" 2>/dev/null || true
    fi
    worker_pids | xargs -r kill -KILL 2>/dev/null || true
}
trap cleanup EXIT

# http MODE N — one interpreter for many requests: python starts slowly under TCG.
#   http wait SECS   poll / until it answers 200 (prints the body) or SECS pass
#   http get N       N sequential GETs of /, each must answer 200
# Prints the reason and fails otherwise.
http() {
    "$PY" - "$PORT" "$@" <<'PYEOF'
import sys, time, urllib.request
port, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
url = "http://127.0.0.1:%s/" % port

def get(timeout):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode(errors="replace").strip()

if mode == "wait":
    deadline, last = time.monotonic() + n, "nothing"
    while True:
        try:
            status, body = get(2)
            if status == 200:
                print(body)
                sys.exit(0)
            last = "status %d" % status
        except Exception as e:
            last = str(e)
        if time.monotonic() > deadline:
            print("no HTTP 200 from %s within %ds (last: %s)" % (url, n, last))
            sys.exit(1)
        time.sleep(0.3)
else:
    pids = set()
    for i in range(1, n + 1):
        try:
            status, body = get(10)
        except Exception as e:
            print("request %d of %d: %s" % (i, n, e))
            sys.exit(1)
        if status != 200 or "pid=" not in body:
            print("request %d of %d: status %d, body %r" % (i, n, status, body))
            sys.exit(1)
        pids.add(body.split("pid=")[1].split()[0])
    print("%d requests answered 200 by worker pid(s) %s" % (n, " ".join(sorted(pids))))
PYEOF
}

[[ ${MEMWARD_VM:-} == 1 ]] || fail "run this test through tests/vm/run"
[[ -x $MEMWARD ]] || fail "$MEMWARD is missing or not executable: run 'make' on the host first"
[[ -f $WORKER ]] || fail "$WORKER is missing"

"$MEMWARD" -w 2 --listen "tcp://127.0.0.1:$PORT" -- "$PY" "$WORKER" >"$LOG" 2>&1 &
MW_PID=$!
ok "memward started, pid $MW_PID"

# Wait for the first 200 (memward binds, spawns, the workers import and
# notify), and check memward is still there doing it.
t0=$SECONDS
reply=$(http wait "$READY_WAIT") || fail "$reply"
kill -0 "$MW_PID" 2>/dev/null || fail "memward exited while its workers came up"
ok "serving after $((SECONDS - t0))s: $reply"

# Both workers run as memward's children; allow a moment for the second one.
n=0
for _ in $(seq 40); do
    n=$(worker_pids "$MW_PID" | wc -l)
    [[ $n -ge 2 ]] && break
    sleep 0.25
done
[[ $n -eq 2 ]] ||
    fail "expected 2 worker processes under memward (pid $MW_PID), found $n: $(worker_pids "$MW_PID" | tr '\n' ' ')"
ok "2 workers under memward: $(worker_pids "$MW_PID" | tr '\n' ' ')"

reply=$(http get 20) || fail "$reply"
ok "$reply"

t0=$SECONDS
kill -TERM "$MW_PID"
rc=
for _ in $(seq $((STOP_WAIT * 10))); do
    if ! kill -0 "$MW_PID" 2>/dev/null; then
        wait "$MW_PID" && rc=0 || rc=$?
        break
    fi
    sleep 0.1
done
[[ -n $rc ]] || fail "memward still running ${STOP_WAIT}s after SIGTERM"
MW_PID=
[[ $rc -eq 0 ]] || fail "memward exited with status $rc after SIGTERM, expected 0"
ok "memward exited 0 $((SECONDS - t0))s after SIGTERM"

left=$(worker_pids | tr '\n' ' ')
[[ -z $left ]] || fail "worker processes left after shutdown: $left"
ok "no worker process left"
echo "PASS: memward serves HTTP with 2 workers and stops cleanly on SIGTERM"
