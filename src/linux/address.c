/* Listen addresses. See address.h for the contract.
 *
 * Parsing is pure on purpose: it runs while loading a config (also on SIGHUP, inside the
 * event loop), so it must never block on DNS. The only name understood is "localhost". */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/linux/address.h"

/* Port: 1..65535, decimal digits only. */
static int parse_port(const char *s, in_port_t *ret) {
        unsigned long n = 0;

        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                if (n <= 65535)
                        n = n * 10 + (unsigned long) (*p - '0');
        }
        if (n < 1 || n > 65535)
                return -ERANGE;

        *ret = htons((in_port_t) n);
        return 0;
}

static int parse_tcp(const char *s, struct listen_address *ret) {
        char host[INET6_ADDRSTRLEN + 1];
        const char *port;
        in_port_t p;
        size_t n;
        int r;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                n = (size_t) (close - s - 1);
                if (n == 0 || n >= sizeof host)
                        return -EINVAL;
                memcpy(host, s + 1, n);
                host[n] = '\0';
                port = close + 2;

                if (inet_pton(AF_INET6, host, &ret->sockaddr.in6.sin6_addr) != 1)
                        return -EINVAL;
                r = parse_port(port, &p);
                if (r < 0)
                        return r;
                ret->sockaddr.in6.sin6_family = AF_INET6;
                ret->sockaddr.in6.sin6_port = p;
                ret->length = sizeof(struct sockaddr_in6);
                return 0;
        }

        port = strchr(s, ':');
        if (!port)
                return -EINVAL; /* no port */
        if (strchr(port + 1, ':'))
                return -EINVAL; /* an IPv6 address needs brackets */
        n = (size_t) (port - s);
        if (n == 0 || n >= sizeof host)
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';
        port++;

        if (streq(host, "localhost"))
                ret->sockaddr.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &ret->sockaddr.in.sin_addr) != 1)
                return -EINVAL;
        r = parse_port(port, &p);
        if (r < 0)
                return r;
        ret->sockaddr.in.sin_family = AF_INET;
        ret->sockaddr.in.sin_port = p;
        ret->length = sizeof(struct sockaddr_in);
        return 0;
}

static int parse_unix(const char *path, struct listen_address *ret) {
        size_t n = strlen(path);

        if (n == 0)
                return -EINVAL;

        ret->sockaddr.un.sun_family = AF_UNIX;

        if (path[0] == '@') {
                /* Abstract namespace: a leading NUL, no terminator, length counts exactly. */
                if (n == 1)
                        return -EINVAL;
                if (n > sizeof ret->sockaddr.un.sun_path)
                        return -ENAMETOOLONG;
                ret->sockaddr.un.sun_path[0] = '\0';
                memcpy(ret->sockaddr.un.sun_path + 1, path + 1, n - 1);
                ret->length = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
                return 0;
        }

        /* A path name must fit with its terminating NUL. */
        if (n >= sizeof ret->sockaddr.un.sun_path)
                return -ENAMETOOLONG;
        memcpy(ret->sockaddr.un.sun_path, path, n + 1);
        ret->length = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

int listen_address_parse(const char *s, struct listen_address *ret) {
        struct listen_address a = {};
        int r;

        assert(s);
        assert(ret);

        if (startswith_lit(s, "tcp://"))
                r = parse_tcp(s + strlen("tcp://"), &a);
        else if (startswith_lit(s, "unix:"))
                r = parse_unix(s + strlen("unix:"), &a);
        else
                r = -EINVAL;
        if (r < 0)
                return r;

        *ret = a;
        return 0;
}

const char *listen_address_unix_path(const struct listen_address *a) {
        assert(a);

        if (a->sockaddr.sa.sa_family != AF_UNIX || a->sockaddr.un.sun_path[0] == '\0')
                return NULL;
        return a->sockaddr.un.sun_path;
}

const char *listen_address_to_string(const struct listen_address *a, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN];

        assert(a);
        assert(buf);

        switch (a->sockaddr.sa.sa_family) {
        case AF_INET:
                if (!inet_ntop(AF_INET, &a->sockaddr.in.sin_addr, host, sizeof host))
                        break;
                snprintf(buf, size, "tcp://%s:%u", host, ntohs(a->sockaddr.in.sin_port));
                return buf;
        case AF_INET6:
                if (!inet_ntop(AF_INET6, &a->sockaddr.in6.sin6_addr, host, sizeof host))
                        break;
                snprintf(buf, size, "tcp://[%s]:%u", host, ntohs(a->sockaddr.in6.sin6_port));
                return buf;
        case AF_UNIX: {
                size_t off = offsetof(struct sockaddr_un, sun_path);
                size_t n = a->length > off ? a->length - off : 0;

                if (n > 0 && a->sockaddr.un.sun_path[0] == '\0')
                        snprintf(buf, size, "unix:@%.*s", (int) (n - 1), a->sockaddr.un.sun_path + 1);
                else
                        snprintf(buf, size, "unix:%.*s", (int) strnlen(a->sockaddr.un.sun_path, n),
                                 a->sockaddr.un.sun_path);
                return buf;
        }
        default:
                break;
        }

        snprintf(buf, size, "unknown");
        return buf;
}

int listen_address_parse_host_port(const char *s, struct listen_address *ret) {
        _cleanup_free_ char *tcp = NULL;

        if (startswith_lit(s, "unix:") || startswith_lit(s, "tcp://"))
                return listen_address_parse(s, ret);
        /* Prometheus' own habit: a bare HOST:PORT means TCP, and ":PORT" every address. */
        if (asprintf(&tcp, "tcp://%s%s", s[0] == ':' ? "0.0.0.0" : "", s) < 0)
                return -ENOMEM;
        return listen_address_parse(tcp, ret);
}

static bool in6_is_any(const struct sockaddr_in6 *a) {
        return IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr);
}

enum listen_conflict listen_address_conflict(const struct listen_address *a, const struct listen_address *b) {
        int fa = a->sockaddr.sa.sa_family, fb = b->sockaddr.sa.sa_family;

        assert(a);
        assert(b);

        if (a->length == b->length && memcmp(&a->sockaddr, &b->sockaddr, a->length) == 0)
                return LISTEN_CONFLICT_SAME;
        if (fa == AF_UNIX || fb == AF_UNIX)
                return LISTEN_CONFLICT_NONE;
        if (fa == AF_INET && fb == AF_INET) {
                if (a->sockaddr.in.sin_port != b->sockaddr.in.sin_port)
                        return LISTEN_CONFLICT_NONE;
                return a->sockaddr.in.sin_addr.s_addr == htonl(INADDR_ANY) ||
                                       b->sockaddr.in.sin_addr.s_addr == htonl(INADDR_ANY)
                               ? LISTEN_CONFLICT_OVERLAP
                               : LISTEN_CONFLICT_NONE;
        }
        if (fa == AF_INET6 && fb == AF_INET6) {
                if (a->sockaddr.in6.sin6_port != b->sockaddr.in6.sin6_port)
                        return LISTEN_CONFLICT_NONE;
                return in6_is_any(&a->sockaddr.in6) || in6_is_any(&b->sockaddr.in6) ? LISTEN_CONFLICT_OVERLAP
                                                                                     : LISTEN_CONFLICT_NONE;
        }
        /* One of each: only "[::]" reaches into IPv4. */
        const struct sockaddr_in6 *v6 = fa == AF_INET6 ? &a->sockaddr.in6 : &b->sockaddr.in6;
        const struct sockaddr_in *v4 = fa == AF_INET ? &a->sockaddr.in : &b->sockaddr.in;
        return v6->sin6_port == v4->sin_port && in6_is_any(v6) ? LISTEN_CONFLICT_OVERLAP : LISTEN_CONFLICT_NONE;
}
