/* See listen.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "memward/address.h"
#include "memward/listen.h"
#include "memward/macro.h"

static int listen_set_append(struct listen_set *set, int fd, const char *name, const char *unix_path) {
        struct listen_socket *s = realloc(set->sockets, (set->n + 1) * sizeof *s);
        if (!s)
                return -ENOMEM;
        set->sockets = s;
        s = &set->sockets[set->n++];
        *s = (struct listen_socket) { .fd = fd };
        snprintf(s->name, sizeof s->name, "%s", name && *name ? name : "unknown");
        if (unix_path)
                snprintf(s->unix_path, sizeof s->unix_path, "%s", unix_path);
        return 0;
}

int listen_set_inherit(struct listen_set *set) {
        _cleanup_strv_free_ char **names = NULL;

        int n = sd_listen_fds_with_names(1, &names);
        if (n <= 0)
                return n;

        for (int i = 0; i < n; i++) {
                int r = listen_set_append(set, SD_LISTEN_FDS_START + i, names ? names[i] : NULL, NULL);
                if (r < 0)
                        return r;
        }
        set->inherited = true;
        return n;
}

int listen_address_open(const struct listen_address *address, int backlog, int flags, int *ret_fd) {
        assert(address);
        assert(ret_fd);

        const char *path = listen_address_unix_path(address);
        int family = address->sockaddr.sa.sa_family, one = 1;
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        if (fd < 0)
                return negative_errno();

        if (path) {
                /* A socket file left by an earlier run would make bind() fail with
                 * EADDRINUSE. Only ever remove a socket, never a regular file a typo
                 * points at; that one is the user's to move. */
                if (lstat(path, &st) >= 0) {
                        if (!S_ISSOCK(st.st_mode))
                                return -EEXIST;
                        (void) unlink(path);
                }
        } else if (family != AF_UNIX) {
                /* Restart without waiting out TIME_WAIT of the last run's connections. */
                if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                        return negative_errno();
                /* No IPV6_V6ONLY either way: "[::]:8000" follows the kernel's
                 * net.ipv6.bindv6only, dual-stack by default, as systemd's
                 * BindIPv6Only=default, gunicorn, uvicorn and Go's net.Listen all do. A
                 * memward in front of one of those should not change what "[::]" means,
                 * and the sysctl stays the one switch for IPv6-only hosts. */
        }

        if (bind(fd, &address->sockaddr.sa, address->length) < 0)
                return negative_errno();
        if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
                int r = negative_errno();
                if (path)
                        (void) unlink(path);
                return r;
        }

        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int open_one(const struct listen_config *c, int *ret_fd, const char **ret_unix_path) {
        struct listen_address a;
        int r;

        r = listen_address_parse(c->address, &a);
        if (r < 0)
                return r;
        r = listen_address_open(&a, c->backlog, 0, ret_fd);
        if (r < 0)
                return r;
        /* The config's own string outlives the set; a's buffer does not. */
        *ret_unix_path = listen_address_unix_path(&a) ? c->address + strlen("unix:") : NULL;
        return 0;
}

int listen_set_open(struct listen_set *set, const struct listen_config *cfg, size_t n,
                    const struct listen_config **ret_failed) {
        for (size_t i = 0; i < n; i++) {
                const char *unix_path = NULL;
                int fd, r;

                r = open_one(&cfg[i], &fd, &unix_path);
                if (r >= 0) {
                        r = listen_set_append(set, fd, cfg[i].name, unix_path);
                        if (r < 0)
                                safe_close(fd);
                }
                if (r < 0) {
                        if (ret_failed)
                                *ret_failed = &cfg[i];
                        return r;
                }
        }
        return 0;
}

void listen_set_close(struct listen_set *set) {
        for (size_t i = 0; i < set->n; i++) {
                safe_close(set->sockets[i].fd);
                if (set->sockets[i].unix_path[0])
                        (void) unlink(set->sockets[i].unix_path);
        }
        free(set->sockets);
        *set = (struct listen_set) {};
}

int listen_set_names(const struct listen_set *set, char *buf, size_t size) {
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < set->n; i++) {
                int n = snprintf(buf + used, size - used, "%s%s", i ? ":" : "", set->sockets[i].name);
                if (n < 0 || (size_t) n >= size - used)
                        return -ENOBUFS;
                used += (size_t) n;
        }
        return 0;
}
