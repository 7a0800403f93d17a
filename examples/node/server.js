#!/usr/bin/env node
/*
 * A memward worker in Node.js (18 or later), core modules only: no npm packages.
 *
 * It speaks the two protocols memward gives every worker:
 *
 *   - socket activation: the listening socket is inherited at fd 3 ($LISTEN_FDS,
 *     $LISTEN_PID must be our own pid) and served with server.listen({fd: 3});
 *   - sd_notify: READY=1 once listening, X_REQUESTS=<n> (cumulative) and
 *     X_INFLIGHT=<m> as requests finish, WATCHDOG=1 at half of $WATCHDOG_USEC when
 *     set, STOPPING=1 on the way out.
 *
 * Node cannot send an AF_UNIX datagram by itself: `dgram` is UDP only and `net`
 * unix sockets are streams. So the Notifier below runs systemd-notify(1) (package
 * systemd). That is a process per message, so it never runs more than one at a
 * time and sends the request counters at most every 100 ms: X_REQUESTS is
 * cumulative, so a coalesced report loses nothing, and a worker may overshoot
 * recycle.max_requests by the requests of one interval. memward accepts the
 * datagram because it comes from a descendant of the worker; systemd-notify also
 * waits (sd_notify_barrier) until memward has read it, so it is still alive when
 * memward checks who sent it.
 *
 * On SIGTERM (or SIGINT) it stops accepting, lets requests in flight finish, closes
 * keep-alive connections as they go idle and exits 0. The listening socket is shared
 * with memward and the other workers, so connections still queued in its backlog
 * are served by them rather than dropped.
 *
 * GET / answers "worker=<id> pid=<pid> generation=<g> requests=<n> path=<path>",
 * with the pid also in an X-Worker-Pid header.
 */
'use strict';

const http = require('http');
const { execFile } = require('child_process');

const LISTEN_FDS_START = 3;
const REPORT_INTERVAL_MS = 100;

function log(msg) {
  process.stderr.write(`node-worker[${process.pid}]: ${msg}\n`);
}

/* The first socket memward passed us, like sd_listen_fds(1); null if none. */
function listenFd() {
  if (process.env.LISTEN_PID !== String(process.pid)) return null;
  if (!(parseInt(process.env.LISTEN_FDS || '0', 10) >= 1)) return null;
  for (const key of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete process.env[key];
  return LISTEN_FDS_START;
}

class Notifier {
  constructor() {
    this.enabled = /^[/@]/.test(process.env.NOTIFY_SOCKET || '');
    this.pending = [];          /* lines that must be delivered: READY=1, STOPPING=1, ... */
    this.requests = 0;          /* finished requests, cumulative */
    this.inflight = 0;
    this.reported = 0;          /* the X_REQUESTS value last sent */
    this.running = false;       /* a systemd-notify is running */
    this.lastRun = 0;
    this.timer = null;
  }

  send(...lines) {
    for (const line of lines) if (!this.pending.includes(line)) this.pending.push(line);
    this.pump();
  }

  requestStarted() {
    this.inflight++;
  }

  requestDone() {
    this.requests++;
    this.inflight--;
    this.pump();
  }

  pump() {
    if (!this.enabled || this.running || this.timer) return;
    const counters = this.requests !== this.reported;
    if (this.pending.length === 0 && !counters) return;
    const wait = this.lastRun + REPORT_INTERVAL_MS - Date.now();
    if (this.pending.length === 0 && wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
      this.timer.unref();
      return;
    }
    const lines = this.pending.splice(0);
    if (counters) {
      lines.push(`X_REQUESTS=${this.requests}`, `X_INFLIGHT=${this.inflight}`);
      this.reported = this.requests;
    }
    this.running = true;
    this.lastRun = Date.now();
    /* No shell, so systemd-notify's parent is this process: as root it sends with
     * our pid, otherwise with its own (a descendant of ours, which memward accepts). */
    execFile('systemd-notify', lines, { timeout: 10000 }, (err, _stdout, stderr) => {
      this.running = false;
      if (err && err.code === 'ENOENT') {
        log('systemd-notify not found (apt-get install systemd): no notifications');
        this.enabled = false;
        return;
      }
      if (err) log(`systemd-notify ${lines.join(' ')}: ${(stderr || '').trim() || err.message}`);
      this.pump();
    });
  }
}

function main() {
  const fd = listenFd();
  if (fd === null) {
    log('no listening socket: run me under memward (LISTEN_FDS/LISTEN_PID)');
    process.exit(2);
  }
  const notifier = new Notifier();
  const worker = process.env.MEMWARD_WORKER_ID || '-';
  const generation = process.env.MEMWARD_WORKER_GENERATION || '-';
  const connections = new Set();
  let stopping = false;

  const server = http.createServer((req, res) => {
    const socket = req.socket;
    socket.activeRequests++;
    notifier.requestStarted();
    res.on('close', () => {     /* finished, or the client went away */
      socket.activeRequests--;
      socket.servedRequests++;
      notifier.requestDone();
      if (stopping && socket.activeRequests === 0) socket.end();
    });
    if (stopping) {
      socket.setTimeout(0);     /* see stop() */
      res.setHeader('Connection', 'close');
    }
    const body = `worker=${worker} pid=${process.pid} generation=${generation} ` +
                 `requests=${notifier.requests} path=${req.url}\n`;
    res.writeHead(200, {
      'Content-Type': 'text/plain',
      'Content-Length': Buffer.byteLength(body),
      'X-Worker-Pid': String(process.pid),
    });
    res.end(body);
  });

  server.on('connection', (socket) => {
    socket.activeRequests = 0;
    socket.servedRequests = 0;
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
  });

  function stop(signal) {
    if (stopping) return;
    stopping = true;
    log(`${signal}: finishing ${notifier.inflight} request(s), then exiting`);
    notifier.send('STOPPING=1');
    /* Stop accepting (this closes our fd only) and exit once every connection is
     * gone. Node 19+ also closes idle keep-alive connections here, Node 18 does not:
     * the loop below does it for both. */
    server.close(() => {
      process.exitCode = 0;
    });
    for (const socket of connections) {
      if (socket.activeRequests > 0) continue;         /* closed after its response */
      if (socket.servedRequests > 0) {
        socket.end();                                   /* idle keep-alive connection */
      } else {
        /* Accepted, request not read yet: give it time to arrive (Go's net/http waits 5 s too). */
        socket.setTimeout(5000, () => socket.destroy());
      }
    }
  }
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  /* Node calls listen(2) again on the inherited socket, with its own backlog (511 by
   * default), which would shrink the one memward set (listen[].backlog): pass the same
   * value, from BACKLOG (examples/node/memward.yaml sets it to its backlog, 1024). */
  const backlog = parseInt(process.env.BACKLOG || '1024', 10);
  /* As an argument: for an fd, Node ignores the options object's backlog. */
  server.listen({ fd }, backlog, () => {
    notifier.send('READY=1', 'STATUS=serving');
  });

  const watchdogUsec = parseInt(process.env.WATCHDOG_USEC || '0', 10);
  const watchdogPid = process.env.WATCHDOG_PID;
  if (watchdogUsec > 0 && (!watchdogPid || watchdogPid === String(process.pid))) {
    setInterval(() => notifier.send('WATCHDOG=1'), Math.max(1, watchdogUsec / 2000)).unref();
  }
}

main();
