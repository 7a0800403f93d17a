/* See http.h.
 *
 * How libmicrohttpd runs inside our loop: with MHD_USE_EPOLL and no polling thread, MHD
 * keeps its own epoll fd with the listening socket and every connection in it. That one
 * fd is level-triggered readable while any of them has an event, so it is all our loop
 * watches; on readiness we call MHD_run(), which does one non-blocking pass. MHD also
 * has work that no fd announces (idle timeouts, connections whose buffers it has not
 * drained yet): MHD_get_timeout() says when, and a timerfd of ours calls MHD_run() then.
 * Both handlers re-arm that timer after every pass.
 *
 * MHD's connection timeout is an idle timeout: a client that sends one byte of its
 * request head just before each timeout keeps its slot for hours, and max_connections
 * such clients starve /metrics and /healthz (a liveness probe then restarts the pod).
 * So a request head must also be complete within the timeout of the moment the
 * connection opened or its previous response was sent; we shut down the socket of one
 * that is not, and MHD closes it on its next pass. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
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

/* Connections the kernel completes before we accept them. When max_connections are
 * busy MHD stops accepting, and a flood then waits here — bounded, and in kernel
 * memory rather than ours — until its clients give up. */
#define HTTP_BACKLOG 64

/* One open connection, for the deadline of its request head. */
struct http_connection {
        struct http_connection *next, *prev;
        int fd;
        bool waiting;                           /* for a complete request head */
        usec_t waiting_since;
};

struct http_server {
        struct MHD_Daemon *daemon;
        struct event_loop *loop;
        struct event_source io_source;          /* MHD's epoll fd */
        struct event_source timer_source;       /* timerfd for MHD_get_timeout() */
        http_handler_t handler;
        void *userdata;
        bool run_again;                         /* the last passes kept releasing connections */
        struct http_connection *connections;    /* open ones, for the head deadline */
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
                if (c)
                        c->waiting = false;
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
                        .waiting_since = now_monotonic(),
                        .next = h->connections,
                };
                if (h->connections)
                        h->connections->prev = c;
                h->connections = c;
                *socket_context = c;
        } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c) {
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
                c->waiting_since = now_monotonic();
        }
}

/* Shuts down the connections whose request head is overdue; returns when the next one
 * falls due. */
static usec_t http_enforce_head_deadline(struct http_server *h, usec_t now) {
        usec_t next = USEC_INFINITY;

        for (struct http_connection *c = h->connections; c; c = c->next) {
                if (!c->waiting || c->fd < 0)
                        continue;
                usec_t due = c->waiting_since + h->head_timeout;
                if (now >= due) {
                        log_debug("http_head_timeout", "fd=%d msg=\"request head not complete in time\"", c->fd);
                        (void) shutdown(c->fd, SHUT_RDWR);
                        c->fd = -1; /* once; MHD closes it on its next pass */
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

/* One MHD pass, and another while the pass released connections. MHD takes the listening
 * socket out of its epoll set while max_connections are open and puts it back only at
 * the start of a pass, but releases closed connections at the end of one: after a pass
 * that freed a slot no fd may be ready and MHD_get_timeout() may say "no timeout", so
 * without a pass of our own new clients would wait in the backlog forever. Bounded: if
 * passes keep releasing connections, the timer runs the next one at once. */
static void http_run(struct http_server *h) {
        unsigned after = 0;
        bool released = false;

        h->run_again = true;
        for (unsigned i = 0; i < 4; i++) {
                unsigned before = connections(h);
                (void) MHD_run(h->daemon);
                after = connections(h);
                if (after >= before) {
                        h->run_again = false;
                        break;
                }
                released = true;
        }
        /* The last connection is gone, and with it the rendered response (tens of KiB) and
         * the connection's memory pool. glibc keeps freed memory at the top of the heap
         * resident up to its trim threshold (128 KiB); memward's footprint matters more
         * than the microseconds this takes once per scrape, so give it back now. */
        if (released && after == 0)
                (void) malloc_trim(0);
}

static int http_rearm(struct http_server *h) {
        MHD_UNSIGNED_LONG_LONG ms;
        usec_t now = now_monotonic();
        usec_t when = http_enforce_head_deadline(h, now);

        if (h->run_again)
                when = now;
        else if (MHD_get_timeout(h->daemon, &ms) == MHD_YES) {
                /* Nothing MHD waits for is further away than its connection timeout (<= 1 h). */
                if (ms > 24ULL * 3600 * 1000)
                        ms = 24ULL * 3600 * 1000;
                usec_t mhd = now + (usec_t) ms * USEC_PER_MSEC;
                if (mhd < when)
                        when = mhd;
        }
        return timerfd_arm_at(h->timer_source.fd, when);
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
                .io_source.fd = -1,
                .timer_source.fd = -1,
                .head_timeout = o->timeout ?: METRICS_TIMEOUT_DEFAULT,
        };

        /* Non-blocking: MHD accepts from its own epoll pass and must never block in it. */
        int fd;
        r = listen_address_open(&a, HTTP_BACKLOG, SOCK_NONBLOCK, o->access, &fd, &h->unix_file);
        if (r < 0) {
                free(h);
                return r;
        }
        format_address(fd, &a, h->address, sizeof h->address);

        unsigned limit = o->max_connections ?: METRICS_MAX_CONNECTIONS_DEFAULT;
        usec_t timeout = o->timeout ?: METRICS_TIMEOUT_DEFAULT;
        h->daemon = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, h,
                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
                MHD_OPTION_CONNECTION_LIMIT, limit,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) ((timeout + USEC_PER_SEC - 1) / USEC_PER_SEC),
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) HTTP_CONNECTION_MEMORY,
                /* Reject what a real HTTP client never sends (bare LF, spaces before ':'). */
                MHD_OPTION_STRICT_FOR_CLIENT, (int) 1,
                MHD_OPTION_END);
        if (!h->daemon) {
                /* Whether MHD closed a socket it was given on failure is not documented. */
                if (fcntl(fd, F_GETFD) >= 0)
                        (void) close(fd);
                r = -EIO;
                goto fail;
        }
        /* From here on MHD_stop_daemon() closes the listening socket. */

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
        if (h->daemon)
                MHD_stop_daemon(h->daemon);
        unix_socket_file_remove(&h->unix_file);
        free(h);
        return NULL;
}

const char *http_server_address(const struct http_server *h) {
        return h->address;
}
