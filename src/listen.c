/* See listen.h. */
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

static int open_one(const struct listen_config *c, int *ret_fd, bool *ret_created_file) {
        struct listen_address a;
        _cleanup_close_ int fd = -1;
        int one = 1, r;

        r = listen_address_parse(c->address, &a);
        if (r < 0)
                return r;

        fd = socket(a.sockaddr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();

        if (a.sockaddr.sa.sa_family == AF_UNIX) {
                struct stat st;
                /* A socket file left by an earlier run would make bind() fail with EADDRINUSE;
                 * only ever remove sockets, never a regular file a typo points at. */
                if (lstat(a.sockaddr.un.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
                        (void) unlink(a.sockaddr.un.sun_path);
        } else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return negative_errno();

        if (bind(fd, &a.sockaddr.sa, a.length) < 0)
                return negative_errno();
        if (listen(fd, c->backlog > 0 ? c->backlog : SOMAXCONN) < 0)
                return negative_errno();

        *ret_created_file = a.sockaddr.sa.sa_family == AF_UNIX;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int listen_set_open(struct listen_set *set, const struct listen_config *cfg, size_t n,
                    const struct listen_config **ret_failed) {
        for (size_t i = 0; i < n; i++) {
                bool created_file = false;
                int fd, r;

                r = open_one(&cfg[i], &fd, &created_file);
                if (r >= 0) {
                        const char *path = created_file ? cfg[i].address + strlen("unix:") : NULL;
                        r = listen_set_append(set, fd, cfg[i].name, path);
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
