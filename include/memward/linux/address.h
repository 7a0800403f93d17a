/* Listen addresses as written in the config and on the command line:
 *   tcp://0.0.0.0:8000   tcp://[::]:8000   tcp://localhost:8000 (resolved numerically only)
 *   unix:/run/app.sock   unix:relative.sock (made absolute by the caller) */
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdbool.h>

#include "memward/base/units.h"

struct listen_address {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_un un;
        } sockaddr;
        socklen_t length;
};

/* Parses s into ret. Pure: no name resolution, no I/O ("localhost" is mapped to 127.0.0.1).
 * Returns 0, or -EINVAL (bad syntax, unknown scheme), -ERANGE (port out of 1..65535),
 * -ENAMETOOLONG (unix path does not fit sun_path). */
int listen_address_parse(const char *s, struct listen_address *ret);

/* Parses an address as Prometheus users write them: "HOST:PORT" (IPv4 or "localhost"),
 * "[V6]:PORT", ":PORT" (every IPv4 address, 0.0.0.0, as Prometheus' own ":9090" is
 * meant), "unix:/path", "unix:@abstract"; "tcp://" in front is accepted too. Pure,
 * no DNS. For metrics.listen. Returns 0 or what listen_address_parse() returns (-EINVAL,
 * -ERANGE, -ENAMETOOLONG), or -ENOMEM. */
int listen_address_parse_host_port(const char *s, struct listen_address *ret);

/* Whether two listen addresses can be bound side by side. Linux refuses (EADDRINUSE) a
 * TCP port bound twice where one of the two is a wildcard of the family (0.0.0.0:P with
 * 127.0.0.1:P), and "[::]:P" takes IPv4 too (dual-stack, net.ipv6.bindv6only=0, the
 * default), so it collides with any IPv4 address on P. Pure: judged for the default
 * sysctl, which is what a config meant for many hosts must assume. */
enum listen_conflict {
        LISTEN_CONFLICT_NONE,
        LISTEN_CONFLICT_SAME,           /* the same address */
        LISTEN_CONFLICT_OVERLAP,        /* the same port, one of them a wildcard */
};
enum listen_conflict listen_address_conflict(const struct listen_address *a, const struct listen_address *b);

/* The file-system path of a unix socket address, or NULL for TCP and abstract names
 * (which leave no file behind to replace or unlink). */
const char *listen_address_unix_path(const struct listen_address *a);

/* Formats an address back into its config form. buf should hold LISTEN_ADDRESS_MAX bytes. */
#define LISTEN_ADDRESS_MAX 128
const char *listen_address_to_string(const struct listen_address *a, char *buf, size_t size);

/* The TCP options of a listening socket. Linux copies them from the listener to every
 * connection accept() returns, so they reach the workers' connections whatever the
 * worker's language does: uvicorn wraps fd 3 with socket.fromfd(fd, AF_UNIX, ...), so
 * asyncio never sets TCP_NODELAY itself, and a keep-alive response written in two
 * pieces then waits out the client's delayed ACK (~40 ms) under Nagle's algorithm.
 * Named as systemd's .socket options NoDelay=, KeepAlive= and DeferAcceptSec=. */
struct listen_options {
        bool nodelay;           /* TCP_NODELAY (gunicorn sets it on its listeners too) */
        bool keepalive;         /* SO_KEEPALIVE: the kernel probes idle connections */
        usec_t defer_accept;    /* TCP_DEFER_ACCEPT, rounded up to seconds; 0 = off */
};

/* What a web server's listener should carry: TCP_NODELAY on, the rest as the kernel has it. */
#define LISTEN_OPTIONS_DEFAULT ((struct listen_options) { .nodelay = true })
#define LISTEN_DEFER_ACCEPT_MAX (3600 * USEC_PER_SEC)
