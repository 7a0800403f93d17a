/* A small HTTP server for memward's own endpoints (/metrics, /healthz, /status).
 *
 * libmicrohttpd does the HTTP, driven from memward's epoll loop: the daemon runs
 * with MHD_USE_EPOLL and no threads of its own (a forking supervisor must not have
 * threads that could hold a lock at fork), its epoll fd is one event source of
 * ours, and a timerfd of ours honours MHD_get_timeout(). Everything a client can
 * make us hold is bounded: connections (max_connections), per-connection memory
 * (request line and headers, HTTP_CONNECTION_MEMORY), idle time (timeout).
 *
 * This module knows nothing about the supervisor: requests go to a handler that
 * fills an http_reply. It does not log above debug. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "memward/base/units.h"
#include "memward/linux/address.h"
#include "memward/linux/event_loop.h"
#include "memward/linux/listen.h"

/* Memory libmicrohttpd may use per connection for the request line, headers and
 * response headers. A request that does not fit gets 414/431 and is closed. */
#define HTTP_CONNECTION_MEMORY (16U * 1024U)

/* What a handler answers. body is malloc()ed and handed over to the server (freed after
 * sending, also on error); NULL means an empty body. content_type and allow point to
 * static strings. */
struct http_reply {
        unsigned status;
        const char *content_type;
        const char *allow;      /* "Allow:" for 405 */
        char *body;
        size_t length;
};

/* Called for every complete request head; method and path (without query) are NUL-
 * terminated. Returns 0 with ret filled, or a negative errno (the client gets a 500). */
typedef int (*http_handler_t)(void *userdata, const char *method, const char *path, struct http_reply *ret);

struct http_options {
        const char *address;            /* see listen_address_parse_host_port() */
        unsigned max_connections;       /* 0 = HTTP_MAX_CONNECTIONS_DEFAULT */
        usec_t timeout;                 /* idle timeout per connection, 0 = HTTP_TIMEOUT_DEFAULT */
        const struct unix_socket_access *access; /* of a unix: socket file; NULL = the default */
};

struct http_server;

/* Opens the listening socket with listen_address_open() (creating it ourselves, also for
 * unix: paths, whose stale socket file is replaced) and registers the daemon with loop.
 * Returns 0, or a negative errno: -EINVAL for an unusable address, -EEXIST when a file
 * that is not a socket sits at the unix path, the bind()/listen() error, -ENOMEM, or -EIO
 * when libmicrohttpd refused to start. */
int http_server_new(struct event_loop *loop, const struct http_options *o, http_handler_t handler, void *userdata,
                    struct http_server **ret);

/* Closes every connection and the socket (unlinking a unix socket file we created). */
struct http_server *http_server_free(struct http_server *h);

/* The address actually bound, in config form ("127.0.0.1:9181", "[::1]:9181",
 * "unix:/run/m.sock"): read back from the socket, so it is what clients must use. */
const char *http_server_address(const struct http_server *h);
