// Command goworker is a memward worker written in Go, standard library only.
//
// It speaks the two protocols memward gives every worker:
//
//   - socket activation: the listening socket is inherited at fd 3 ($LISTEN_FDS,
//     $LISTEN_PID must be our own pid), wrapped with net.FileListener;
//   - sd_notify over the AF_UNIX datagram socket in $NOTIFY_SOCKET: READY=1 once
//     we serve, X_REQUESTS=<n> (cumulative) and X_INFLIGHT=<m> after requests,
//     WATCHDOG=1 at half of $WATCHDOG_USEC when set, STOPPING=1 on the way out.
//
// On SIGTERM (or SIGINT) it stops accepting, finishes the requests in flight
// (http.Server.Shutdown) and exits 0. The listening socket is shared with memward
// and the other workers, so connections still queued in its backlog are served by
// them rather than dropped. Closing our listener closes our fd only.
//
// GET / answers "worker=<id> pid=<pid> generation=<g> requests=<n> path=<path>",
// with the pid also in an X-Worker-Pid header.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

const listenFdsStart = 3

// listener returns the first socket memward passed us, like sd_listen_fds(1).
func listener() (net.Listener, error) {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil, errors.New("LISTEN_PID is not our pid: run me under memward")
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, errors.New("no LISTEN_FDS: run me under memward")
	}
	for _, key := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(key)
	}
	f := os.NewFile(listenFdsStart, "listener")
	defer f.Close() // FileListener works on a dup; closing ours closes no shared socket
	return net.FileListener(f)
}

// notifier sends sd_notify datagrams. X_REQUESTS is cumulative, so the counters are
// sent by one goroutine that always reports the latest values: a busy memward never
// slows a request down, and a burst of requests costs one datagram, not one each.
type notifier struct {
	conn     *net.UnixConn // nil when there is no NOTIFY_SOCKET
	requests atomic.Uint64
	inflight atomic.Int64
	kick     chan struct{}
}

func newNotifier() *notifier {
	n := &notifier{kick: make(chan struct{}, 1)}
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" || (addr[0] != '/' && addr[0] != '@') {
		return n
	}
	// A leading '@' names an abstract socket; Go turns it into the leading NUL byte.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Printf("sd_notify: %v", err)
		return n
	}
	n.conn = conn
	go n.loop()
	return n
}

func (n *notifier) send(msg string) {
	if n.conn == nil {
		return
	}
	// Blocks while memward's queue is full (net.unix.max_dgram_qlen, often 10), but
	// not for ever: requests never wait on this, only the sender goroutine and start-up.
	n.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := n.conn.Write([]byte(msg)); err != nil {
		log.Printf("sd_notify(%q): %v", msg, err)
	}
}

// requestDone counts a finished request and wakes the sender without blocking.
func (n *notifier) requestDone() {
	n.requests.Add(1)
	n.inflight.Add(-1)
	select {
	case n.kick <- struct{}{}:
	default: // a report is already pending; it will carry this request too
	}
}

func (n *notifier) loop() {
	for range n.kick {
		n.send(fmt.Sprintf("X_REQUESTS=%d\nX_INFLIGHT=%d", n.requests.Load(), n.inflight.Load()))
	}
}

// watchdog pings at half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) suggests.
func (n *notifier) watchdog(ctx context.Context) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 || (os.Getenv("WATCHDOG_PID") != "" && os.Getenv("WATCHDOG_PID") != strconv.Itoa(os.Getpid())) {
		return
	}
	t := time.NewTicker(time.Duration(usec) * time.Microsecond / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			n.send("WATCHDOG=1")
		case <-ctx.Done():
			return
		}
	}
}

func main() {
	log.SetPrefix(fmt.Sprintf("goworker[%d]: ", os.Getpid()))
	log.SetFlags(0)
	ln, err := listener()
	if err != nil {
		log.Print(err)
		os.Exit(2)
	}
	notify := newNotifier()
	worker, generation := os.Getenv("MEMWARD_WORKER_ID"), os.Getenv("MEMWARD_WORKER_GENERATION")

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Worker-Pid", strconv.Itoa(os.Getpid()))
		fmt.Fprintf(w, "worker=%s pid=%d generation=%s requests=%d path=%s\n",
			worker, os.Getpid(), generation, notify.requests.Load(), r.URL.Path)
	})
	// The counting middleware: X_REQUESTS after each response.
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		notify.inflight.Add(1)
		defer notify.requestDone()
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: counted, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go notify.watchdog(ctx)
	// The socket has been listening since memward opened it; connections that come
	// before Serve's first accept() wait in the backlog.
	notify.send("READY=1\nSTATUS=serving")

	select {
	case err := <-served:
		log.Printf("serve: %v", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	notify.send("STOPPING=1")
	// Shutdown closes the listener, closes idle keep-alive connections (and new
	// ones that stay silent for 5 s) and waits for active requests to finish.
	// memward's graceful_timeout bounds the whole thing with a SIGKILL.
	if err := srv.Shutdown(context.Background()); err != nil {
		log.Printf("shutdown: %v", err)
		os.Exit(1)
	}
}
