/* See listen.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "memward/base/macro.h"
#include "memward/linux/address.h"
#include "memward/linux/listen.h"

static int listen_set_append(struct listen_set *set, int fd, const char *name, const struct unix_socket_file *file) {
        struct listen_socket *s = realloc(set->sockets, (set->n + 1) * sizeof *s);
        if (!s)
                return -ENOMEM;
        set->sockets = s;
        s = &set->sockets[set->n++];
        *s = (struct listen_socket) { .fd = fd };
        snprintf(s->name, sizeof s->name, "%s", name && *name ? name : "unknown");
        if (file)
                s->file = *file;
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

/* A socket file at path blocks bind(). Removes it only when it is stale: connect() to a
 * socket nobody listens on any more is refused. One something still listens on belongs
 * to a running program (another memward on the same path, by mistake), and deleting it
 * would cut that program off from its clients for good. Non-blocking, so a listener with
 * a full backlog answers EAGAIN (in use) instead of holding us up. Only ever a socket,
 * never a regular file a typo points at: that one is the user's to move. */
static int unix_path_remove_stale(const struct listen_address *address, const char *path) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (lstat(path, &st) < 0)
                return 0; /* nothing there, or nothing we can see: bind() says what is wrong */
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, &address->sockaddr.sa, address->length) >= 0)
                return -EADDRINUSE;
        if (errno == ENOENT)
                return 0; /* gone meanwhile */
        /* Anything else (EAGAIN, EPROTOTYPE from a datagram socket, EACCES) cannot prove the
         * owner gone. */
        if (errno != ECONNREFUSED)
                return -EADDRINUSE;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

void unix_socket_file_remove(struct unix_socket_file *f) {
        struct stat st;

        if (f->path[0] && lstat(f->path, &st) >= 0 && S_ISSOCK(st.st_mode) && st.st_dev == f->dev &&
            st.st_ino == f->ino && st.st_ctim.tv_sec == f->ctime.tv_sec && st.st_ctim.tv_nsec == f->ctime.tv_nsec)
                (void) unlink(f->path);
        *f = (struct unix_socket_file) {};
}

/* Records the socket file bind() just made at path, and gives it its owner and group.
 * Through an O_PATH fd of what is at the path, never the path again: a symlink someone
 * swapped in meanwhile (the directory may be writable by others) is not followed, and
 * what we chown is a socket or nothing. fchown() on the socket fd would change the
 * socket's own inode, not the file. Before listen(), like the mode: until then connect()
 * is refused, so there is no moment at which the file is reachable with other
 * permissions. */
static int unix_file_take(const char *path, const struct unix_socket_access *access, struct unix_socket_file *ret) {
        _cleanup_close_ int fd = -1;
        struct unix_socket_file file = {};
        struct stat st;
        int r;

        fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = negative_errno();
                (void) unlink(path);
                return r;
        }
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST; /* not the file we made: not ours to remove either */
        snprintf(file.path, sizeof file.path, "%s", path);
        file.dev = st.st_dev;
        file.ino = st.st_ino;
        file.ctime = st.st_ctim;

        if (access->uid != (uid_t) -1 || access->gid != (gid_t) -1) {
                if (fchownat(fd, "", access->uid, access->gid, AT_EMPTY_PATH) < 0 || fstat(fd, &st) < 0) {
                        r = negative_errno();
                        unix_socket_file_remove(&file);
                        return r;
                }
                file.ctime = st.st_ctim; /* the change time moved with the owner */
        }
        *ret = file;
        return 0;
}

int listen_address_open(const struct listen_address *address, int backlog, int flags,
                        const struct unix_socket_access *access, int *ret_fd, struct unix_socket_file *ret_file) {
        assert(address);
        assert(ret_fd);

        const struct unix_socket_access default_access = UNIX_SOCKET_ACCESS_DEFAULT;
        const char *path = listen_address_unix_path(address);
        int family = address->sockaddr.sa.sa_family, one = 1, r;
        struct unix_socket_file file = {};
        _cleanup_close_ int fd = -1;

        if (!access)
                access = &default_access;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        if (fd < 0)
                return negative_errno();

        if (path) {
                r = unix_path_remove_stale(address, path);
                if (r < 0)
                        return r;
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

        /* bind() creates a unix socket file as 0777 & ~umask: with the umask set around
         * bind() alone (as systemd's socket units do), the file is born with its mode,
         * whatever umask memward was started with, and no chmod() of the path follows
         * (which would act on whatever is at the path by then). memward has one thread,
         * so no other file is created under the borrowed umask. A default ACL on the
         * directory takes the umask's place, as it does for systemd. */
        mode_t saved_umask = path ? umask(~access->mode & 0777) : 0;
        r = bind(fd, &address->sockaddr.sa, address->length) < 0 ? negative_errno() : 0;
        if (path)
                (void) umask(saved_umask);
        if (r < 0)
                return r;
        if (path) {
                r = unix_file_take(path, access, &file);
                if (r < 0)
                        return r;
        }
        if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
                r = negative_errno();
                unix_socket_file_remove(&file);
                return r;
        }

        *ret_fd = TAKE_FD(fd);
        if (ret_file)
                *ret_file = file;
        return 0;
}

int listen_socket_set_options(int fd, const struct listen_options *options) {
        struct sockaddr_storage ss;
        socklen_t length = sizeof ss;
        int one = 1;

        assert(options);

        if (getsockname(fd, (struct sockaddr *) &ss, &length) < 0)
                return negative_errno();
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
                return 0;

        if (options->nodelay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
                return negative_errno();
        if (options->keepalive && setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0)
                return negative_errno();
        if (options->defer_accept > 0) {
                int seconds = (int) ((options->defer_accept + USEC_PER_SEC - 1) / USEC_PER_SEC);
                if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) < 0)
                        return negative_errno();
        }
        return 1;
}

static int open_one(const struct listen_config *c, int *ret_fd, struct unix_socket_file *ret_file) {
        struct listen_address a;
        _cleanup_close_ int fd = -1;
        struct unix_socket_file file = {};
        int r;

        r = listen_address_parse(c->address, &a);
        if (r < 0)
                return r;
        r = listen_address_open(&a, c->backlog, 0, &c->access, &fd, &file);
        if (r < 0)
                return r;
        r = listen_socket_set_options(fd, &c->options);
        if (r < 0) {
                unix_socket_file_remove(&file);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        *ret_file = file;
        return 0;
}

int listen_set_open(struct listen_set *set, const struct listen_config *cfg, size_t n,
                    const struct listen_config **ret_failed) {
        for (size_t i = 0; i < n; i++) {
                struct unix_socket_file file = {};
                int fd, r;

                r = open_one(&cfg[i], &fd, &file);
                if (r >= 0) {
                        r = listen_set_append(set, fd, cfg[i].name, &file);
                        if (r < 0) {
                                safe_close(fd);
                                unix_socket_file_remove(&file);
                        }
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
                unix_socket_file_remove(&set->sockets[i].file);
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
