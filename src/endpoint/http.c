/* See http.h.
 *
 * How libmicrohttpd runs inside our loop: with MHD_USE_EPOLL and no polling thread, MHD
 * keeps its own epoll fd with every connection in it. That one fd is level-triggered
 * readable while any of them has an event, so it is all our loop watches of MHD; on
 * readiness we call MHD_run(), which does one non-blocking pass. MHD also has work that
 * no fd announces (idle timeouts, connections whose buffers it has not drained yet):
 * MHD_get_timeout() says when, and a timerfd of ours calls MHD_run() then. Every
 * handler re-arms that timer after its passes.
 *
 * We accept connections ourselves and hand them over with MHD_add_connection()
 * (MHD_USE_NO_LISTEN_SOCKET). Left to itself, MHD stops accepting once max_connections
 * are open, and whoever holds them — idle TCP connections, clients that trickle their
 * request head — starves /healthz until they let go: a probe behind 17 idle connections
 * failed 23 times out of 25. So at capacity a new connection takes the slot of the one
 * that has waited longest for its request head (we shut that socket down; MHD sees the
 * hang-up, closes it and frees it on its next pass, which we run at once), or, if every
 * connection has a complete request, of one whose response has been stuck for
 * HTTP_STALL_USEC (a client that does not read). Only when every connection is a request
 * in progress do new ones wait in the backlog; ours are answered at once, so that is
 * short. A probe that sends its request as it connects is read in the pass after we
 * accept it and is never the connection waiting longest, so however many idle or slow
 * clients are connected it is answered — unless max_connections new connections arrive
 * in the moment between its connect and its first bytes.
 *
 * MHD's connection timeout is an idle timeout: a client that sends one byte of its
 * request head just before each timeout would keep its slot for hours. So a request head
 * must also be complete within the timeout of the moment the connection opened or its
 * previous response was sent; we shut down the socket of one that is not, and MHD closes
 * it on its next pass. Below capacity this is what bounds a slow client; at capacity the
 * eviction above comes first. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/config/config.h"
#include "memward/endpoint/http.h"
#include "memward/linux/listen.h"

/* Connections the kernel completes before we accept them. We drain it at up to
 * HTTP_ACCEPT_BATCH per turn of the loop; a burst larger than that waits here, in kernel
 * memory rather than ours. When it is full the kernel drops new SYNs, and a probe's
 * retransmitted SYN comes a second later — past a 1 s probe timeout — so it is sized
 * for bursts of thousands of connects (the kernel caps it at net.core.somaxconn). */
#define HTTP_BACKLOG 1024

/* Connections accepted per turn of the loop: a flood of connects cannot keep the loop
 * from signals, notify datagrams, the watchdog and reaping workers. */
#define HTTP_ACCEPT_BATCH 32U

/* A connection whose response has not gone out this long after its request head was
 * complete has a client that does not read it: ours are rendered at once and are tens
 * of KiB, which a reading client takes in milliseconds. At capacity it may be given up
 * for a new connection. While every slot holds such a response a new connection waits
 * in the backlog up to this long, so it is well below a 1 s probe timeout. */
#define HTTP_STALL_USEC (250 * USEC_PER_MSEC)

/* How long accepting pauses after EMFILE/ENFILE/ENOBUFS/ENOMEM: no event tells when
 * an fd or kernel memory frees up, and the listening socket stays readable meanwhile. */
#define HTTP_ACCEPT_RETRY_USEC (100 * USEC_PER_MSEC)

/* One open connection, for its head deadline and for eviction at capacity. */
struct http_connection {
        struct http_connection *next, *prev;
        int fd;                                 /* -1 once we shut it down */
        bool waiting;                           /* for a complete request head */
        usec_t since;                           /* waiting since / request head complete since */
        uint64_t pass;                          /* h->passes when it was added */
};

struct http_server {
        struct MHD_Daemon *daemon;
        struct event_loop *loop;
        struct event_source listen_source;      /* our listening socket, ours to close */
        struct event_source io_source;          /* MHD's epoll fd */
        struct event_source timer_source;       /* timerfd for MHD_get_timeout() */
        http_handler_t handler;
        void *userdata;
        struct http_connection *connections;    /* open ones */
        unsigned limit;                         /* max_connections, MHD's limit too */
        unsigned closing;                       /* shut down by us, not yet released by MHD */
        uint64_t passes;                        /* MHD_run() calls so far */
        bool accept_paused;                     /* listen_source is not watched */
        bool resume_on_room;                    /* ... until a slot or a victim is there */
        usec_t accept_resume_at;                /* ... or until then */
        usec_t head_timeout;
        struct unix_socket_file unix_file;      /* removed at exit */
        char address[LISTEN_ADDRESS_MAX];
};

/* Routes libmicrohttpd's messages (malformed requests, the connection limit) to our debug
 * level: a hostile client must not be able to fill the log. */
static void on_mhd_log(void *userdata, const char *format, va_list ap) {
        char text[256], quoted[LOG_QUOTE_MAX];
        (void) userdata;

        if (log_get_max_level() < LOG_DEBUG)
                return;
        vsnprintf(text, sizeof text, format, ap);
        text[strcspn(text, "\n")] = '\0';
        log_debug("http_message", "msg=%s", log_quote(quoted, sizeof quoted, text));
}

static enum MHD_Result queue_reply(struct MHD_Connection *connection, struct http_reply *reply) {
        struct MHD_Response *response;

        if (reply->body)
                /* MUST_FREE: MHD free()s the body once sent, also when the client is gone. */
                response = MHD_create_response_from_buffer(reply->length, TAKE_PTR(reply->body), MHD_RESPMEM_MUST_FREE);
        else
                response = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
        if (!response) {
                free(reply->body);
                return MHD_NO;
        }
        if (reply->content_type)
                (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
        if (reply->allow)
                (void) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, reply->allow);
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");

        enum MHD_Result r = MHD_queue_response(connection, reply->status, response);
        MHD_destroy_response(response);
        return r;
}

static bool announces_body(struct MHD_Connection *connection) {
        const char *length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        return (length && !streq(length, "0")) ||
               MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* Our record of the connection (on_connection() made it), or NULL. */
static struct http_connection *connection_record(struct MHD_Connection *connection) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        return info ? info->socket_context : NULL;
}

/* MHD calls this once the request head is complete, then again with each piece of a
 * body, then once more with *upload_data_size == 0 when the request is complete; it
 * accepts a response only on the first and the last call. Our endpoints take no body:
 * a request without one is answered on the last call (so keep-alive works); a request
 * that announces one is answered at once, which makes MHD close the connection instead
 * of reading whatever the client keeps sending. */
static enum MHD_Result on_request(void *userdata, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **request_state) {
        static int head_seen; /* a marker: any non-NULL pointer */
        struct http_server *h = userdata;
        struct http_reply reply = {};
        bool with_body = false;
        (void) version;
        (void) upload_data;

        if (!*request_state) {
                struct http_connection *c = connection_record(connection);
                if (c) {
                        c->waiting = false;
                        c->since = now_monotonic();
                }
                *request_state = &head_seen;
                with_body = announces_body(connection);
                if (!with_body)
                        return MHD_YES;
        } else if (*upload_data_size > 0)
                return MHD_NO; /* a body nobody announced: not HTTP we speak */

        int r = h->handler(h->userdata, method, url, &reply);
        if (r < 0) {
                log_debug_errno(r, "http_handler_failed", "method=%.16s", method);
                free(reply.body);
                reply = (struct http_reply) {
                        .status = MHD_HTTP_INTERNAL_SERVER_ERROR,
                        .content_type = "text/plain; charset=utf-8",
                };
        } else if (with_body && reply.status < 300) {
                /* A body we do not want, on a request that would otherwise succeed. */
                free(reply.body);
                reply = (struct http_reply) {
                        .status = MHD_HTTP_CONTENT_TOO_LARGE,
                        .content_type = "text/plain; charset=utf-8",
                };
        }
        return queue_reply(connection, &reply);
}

static void on_connection(void *userdata, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        struct http_server *h = userdata;
        struct http_connection *c = *socket_context;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *info =
                        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
                c = calloc(1, sizeof *c);
                if (!c || !info) {
                        /* Without a record the connection has only MHD's idle timeout. */
                        free(c);
                        return;
                }
                *c = (struct http_connection) {
                        .fd = info->connect_fd,
                        .waiting = true,
                        .since = now_monotonic(),
                        .pass = h->passes,
                        .next = h->connections,
                };
                if (h->connections)
                        h->connections->prev = c;
                h->connections = c;
                *socket_context = c;
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
                if (c->fd < 0 && h->closing > 0)
                        h->closing--;
                if (c->prev)
                        c->prev->next = c->next;
                else
                        h->connections = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                free(c);
                *socket_context = NULL;
        }
}

/* A response went out: on a kept-alive connection the next request head starts now. */
static void on_request_completed(void *userdata, struct MHD_Connection *connection, void **request_state,
                                 enum MHD_RequestTerminationCode code) {
        struct http_connection *c = connection_record(connection);
        (void) userdata;
        (void) request_state;
        (void) code;

        if (c) {
                c->waiting = true;
                c->since = now_monotonic();
        }
}

/* Shuts the connection's socket down: MHD sees the hang-up on its next pass, closes the
 * fd (which stays MHD's: we never close it) and frees the connection. */
static void http_connection_shutdown(struct http_server *h, struct http_connection *c) {
        (void) shutdown(c->fd, SHUT_RDWR);
        c->fd = -1; /* once */
        h->closing++;
}

/* Shuts down the connections whose request head is overdue; returns when the next one
 * falls due. */
static usec_t http_enforce_head_deadline(struct http_server *h, usec_t now) {
        usec_t next = USEC_INFINITY;

        for (struct http_connection *c = h->connections; c; c = c->next) {
                if (!c->waiting || c->fd < 0)
                        continue;
                usec_t due = c->since + h->head_timeout;
                if (now >= due) {
                        log_debug("http_head_timeout", "fd=%d msg=\"request head not complete in time\"", c->fd);
                        http_connection_shutdown(h, c);
                        continue;
                }
                if (due < next)
                        next = due;
        }
        return next;
}

static unsigned connections(struct http_server *h) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        return info ? info->num_connections : 0;
}

/* One MHD pass. It also releases the connections closed during it (MHD frees them at
 * the end of the pass). */
static void http_pass(struct http_server *h) {
        (void) MHD_run(h->daemon);
        h->passes++;
}

/* A pass from the loop. The last connection gone takes the rendered response (tens of
 * KiB) and its memory pool with it. glibc keeps freed memory at the top of the heap
 * resident up to its trim threshold (128 KiB); memward's footprint matters more than the
 * microseconds this takes once per scrape, so give it back now. */
static void http_run(struct http_server *h) {
        unsigned before = connections(h);

        http_pass(h);
        if (before > 0 && connections(h) == 0)
                (void) malloc_trim(0);
}

/* The connection to give up for a new one at capacity: the one that has waited longest
 * for its request head, else the one whose response has been stuck longest past
 * HTTP_STALL_USEC; NULL when there is none. A connection MHD has not had a pass to read
 * since we handed it over is never chosen (a probe's request may be in its socket
 * already): *ret_unread tells whether such a connection would otherwise have been, and
 * *ret_next (if not NULL) when the next stuck response becomes one. */
static struct http_connection *http_pick_victim(struct http_server *h, usec_t now, bool *ret_unread,
                                                usec_t *ret_next) {
        struct http_connection *victim = NULL;
        bool unread = false;
        usec_t next = USEC_INFINITY;

        for (struct http_connection *c = h->connections; c; c = c->next) {
                if (c->fd < 0)
                        continue;
                if (!c->waiting && now < c->since + HTTP_STALL_USEC) {
                        if (c->since + HTTP_STALL_USEC < next)
                                next = c->since + HTTP_STALL_USEC;
                        continue;
                }
                if (c->pass >= h->passes) {
                        unread = true;
                        continue;
                }
                /* Waiting for a head beats a stuck response; then the oldest. */
                if (!victim || (c->waiting && !victim->waiting) ||
                    (c->waiting == victim->waiting && c->since < victim->since))
                        victim = c;
        }
        *ret_unread = unread;
        if (ret_next)
                *ret_next = next;
        return victim;
}

enum room { ROOM, ROOM_LATER, ROOM_NONE };

/* Makes room for one more connection: ROOM when there is a free slot now, ROOM_LATER when
 * nobody is waiting to be accepted or MHD has not released a connection yet (stop
 * accepting for this turn), ROOM_NONE when every connection is a request in progress. */
static enum room http_make_room(struct http_server *h) {
        bool unread;

        if (connections(h) < h->limit)
                return ROOM;
        if (h->closing > 0) {
                /* Shut down already (a head deadline, an eviction): release it first. */
                http_pass(h);
                if (connections(h) < h->limit)
                        return ROOM;
        }
        /* Never give up a connection for one that is not there. */
        struct pollfd pending = { .fd = h->listen_source.fd, .events = POLLIN };
        if (poll(&pending, 1, 0) <= 0)
                return ROOM_LATER;
        struct http_connection *victim = http_pick_victim(h, now_monotonic(), &unread, NULL);
        if (!victim && unread) {
                /* Only connections MHD has not read yet (this turn's): let it read them. */
                http_pass(h);
                if (connections(h) < h->limit)
                        return ROOM;
                victim = http_pick_victim(h, now_monotonic(), &unread, NULL);
        }
        if (!victim)
                return ROOM_NONE;
        log_debug("http_evict", "fd=%d waiting=%s msg=\"at max_connections: giving its slot to a new "
                  "connection\"", victim->fd, victim->waiting ? "head" : "response");
        http_connection_shutdown(h, victim);
        http_pass(h);
        return connections(h) < h->limit ? ROOM : ROOM_LATER;
}

static void http_pause_accept(struct http_server *h, bool resume_on_room, usec_t until) {
        if (!h->accept_paused && event_loop_modify(h->loop, &h->listen_source, 0) < 0)
                return; /* keep accepting: better than never again */
        h->accept_paused = true;
        h->resume_on_room = resume_on_room;
        h->accept_resume_at = until;
}

/* Accepts up to HTTP_ACCEPT_BATCH connections and hands them to MHD, making room for
 * each. MHD reads them on its next pass, from the loop's next turn (its epoll fd is
 * ready: a new connection is writable), not in this one: a request is answered only
 * after whatever else was ready in this turn, such as a SIGTERM that turns /healthz
 * to 503. */
static void http_accept(struct http_server *h) {
        for (unsigned i = 0; i < HTTP_ACCEPT_BATCH; i++) {
                enum room room = http_make_room(h);
                if (room == ROOM_LATER)
                        break; /* a client still waiting keeps the socket readable: next turn */
                if (room == ROOM_NONE) {
                        usec_t next;
                        bool unread;
                        (void) http_pick_victim(h, now_monotonic(), &unread, &next);
                        http_pause_accept(h, true, next);
                        break;
                }

                struct sockaddr_storage peer;
                socklen_t length = sizeof peer;
                int fd = accept4(h->listen_source.fd, (struct sockaddr *) &peer, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                log_debug_errno(-errno, "http_accept_failed", "retry_ms=%llu",
                                                (unsigned long long) (HTTP_ACCEPT_RETRY_USEC / USEC_PER_MSEC));
                                http_pause_accept(h, false, now_monotonic() + HTTP_ACCEPT_RETRY_USEC);
                                break;
                        }
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        continue; /* ECONNABORTED and friends: that client is gone */
                }
                /* MHD owns fd from here on, and closes it also when this fails. */
                if (MHD_add_connection(h->daemon, fd, (struct sockaddr *) &peer, length) != MHD_YES)
                        log_debug_errno(negative_errno(), "http_add_connection_failed", "fd=%d", fd);
        }
}

static int http_rearm(struct http_server *h) {
        MHD_UNSIGNED_LONG_LONG ms;
        usec_t now = now_monotonic();
        usec_t when = http_enforce_head_deadline(h, now);

        if (h->accept_paused) {
                bool unread, resume = now >= h->accept_resume_at;
                if (!resume && h->resume_on_room)
                        resume = connections(h) - h->closing < h->limit ||
                                 http_pick_victim(h, now, &unread, NULL) || unread;
                if (resume && event_loop_modify(h->loop, &h->listen_source, EPOLLIN) >= 0)
                        h->accept_paused = false;
                else if (h->accept_resume_at < when)
                        when = h->accept_resume_at;
        }
        if (MHD_get_timeout(h->daemon, &ms) == MHD_YES) {
                /* Nothing MHD waits for is further away than its connection timeout (<= 1 h). */
                if (ms > 24ULL * 3600 * 1000)
                        ms = 24ULL * 3600 * 1000;
                usec_t mhd = now + (usec_t) ms * USEC_PER_MSEC;
                if (mhd < when)
                        when = mhd;
        }
        return timerfd_arm_at(h->timer_source.fd, when);
}

static int on_http_listen(struct event_source *src, uint32_t revents) {
        struct http_server *h = src->userdata;
        (void) revents;

        http_accept(h);
        return http_rearm(h);
}

static int on_http_io(struct event_source *src, uint32_t revents) {
        struct http_server *h = src->userdata;
        (void) revents;

        http_run(h);
        return http_rearm(h);
}

static int on_http_timer(struct event_source *src, uint32_t revents) {
        struct http_server *h = src->userdata;
        uint64_t expirations;
        (void) revents;

        (void) !read(src->fd, &expirations, sizeof expirations);
        http_run(h);
        return http_rearm(h);
}

static void format_address(int fd, const struct listen_address *configured, char *buf, size_t size) {
        struct listen_address bound = {};
        char text[LISTEN_ADDRESS_MAX];

        bound.length = sizeof bound.sockaddr;
        if (configured->sockaddr.sa.sa_family == AF_UNIX ||
            getsockname(fd, &bound.sockaddr.sa, &bound.length) < 0)
                bound = *configured;
        listen_address_to_string(&bound, text, sizeof text);
        snprintf(buf, size, "%s", startswith_lit(text, "tcp://") ? text + strlen("tcp://") : text);
}

int http_server_new(struct event_loop *loop, const struct http_options *o, http_handler_t handler, void *userdata,
                    struct http_server **ret) {
        struct listen_address a;
        int r;

        if (!o->address || !o->address[0])
                return -EINVAL;
        r = listen_address_parse_host_port(o->address, &a);
        if (r < 0)
                return r;

        struct http_server *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        *h = (struct http_server) {
                .loop = loop,
                .handler = handler,
                .userdata = userdata,
                .listen_source.fd = -1,
                .io_source.fd = -1,
                .timer_source.fd = -1,
                .limit = o->max_connections ?: METRICS_MAX_CONNECTIONS_DEFAULT,
                .head_timeout = o->timeout ?: METRICS_TIMEOUT_DEFAULT,
        };

        /* Non-blocking: we accept from our loop and must never block in it. */
        int fd;
        r = listen_address_open(&a, HTTP_BACKLOG, SOCK_NONBLOCK, o->access, &fd, &h->unix_file);
        if (r < 0) {
                free(h);
                return r;
        }
        format_address(fd, &a, h->address, sizeof h->address);
        h->listen_source = (struct event_source) {
                .fd = fd,
                .events = EPOLLIN,
                .handler = on_http_listen,
                .userdata = h,
                .name = "http_listen",
        };

        /* MHD's limit is ours: the slot of a connection we give up is free only once MHD
         * has released it, which http_make_room() waits for. */
        h->daemon = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, h,
                MHD_OPTION_CONNECTION_LIMIT, h->limit,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) ((h->head_timeout + USEC_PER_SEC - 1) / USEC_PER_SEC),
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HTTP_CONNECTION_MEMORY,
                /* Reject what a real HTTP client never sends (bare LF, spaces before ':'). */
                MHD_OPTION_STRICT_FOR_CLIENT, (int) 1,
                MHD_OPTION_END);
        if (!h->daemon) {
                r = -EIO;
                goto fail;
        }

        const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0) {
                r = -EIO;
                goto fail;
        }
        h->io_source = (struct event_source) {
                .fd = info->epoll_fd,
                .events = EPOLLIN,
                .handler = on_http_io,
                .userdata = h,
                .name = "http",
        };
        h->timer_source = (struct event_source) {
                .fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC),
                .events = EPOLLIN,
                .handler = on_http_timer,
                .userdata = h,
                .name = "http_timer",
        };
        if (h->timer_source.fd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = event_loop_add(loop, &h->io_source);
        if (r < 0) {
                h->io_source.fd = -1;
                goto fail;
        }
        r = event_loop_add(loop, &h->timer_source);
        if (r < 0) {
                h->timer_source.fd = safe_close(h->timer_source.fd);
                goto fail;
        }
        r = event_loop_add(loop, &h->listen_source);
        if (r < 0)
                goto fail;
        r = http_rearm(h);
        if (r < 0)
                goto fail;

        *ret = h;
        return 0;
fail:
        http_server_free(h);
        return r;
}

struct http_server *http_server_free(struct http_server *h) {
        if (!h)
                return NULL;
        if (h->io_source.fd >= 0)
                (void) event_loop_remove(h->loop, &h->io_source);
        if (h->timer_source.fd >= 0) {
                (void) event_loop_remove(h->loop, &h->timer_source);
                safe_close(h->timer_source.fd);
        }
        if (h->listen_source.fd >= 0) {
                (void) event_loop_remove(h->loop, &h->listen_source);
                safe_close(h->listen_source.fd);
        }
        /* Closes every connection, including their fds. */
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        unix_socket_file_remove(&h->unix_file);
        free(h);
        return NULL;
}

const char *http_server_address(const struct http_server *h) {
        return h->address;
}
