/* The listening sockets handed to every worker at fd 3… (systemd's socket-activation
 * protocol). Opened once by memward, or inherited from systemd and passed through
 * unchanged, so a worker recycle never closes a socket and never drops a queued
 * connection. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <sys/un.h>

#include "memward/linux/address.h"

/* The socket file we bound at a unix path. Kept to remove that file at close and no
 * other: by then the path may hold another memward's socket (one started after ours was
 * deleted by hand, say), which must keep working. The inode number alone does not tell
 * the two apart, as ext4 hands a freed number out again at once; its change time does. */
struct unix_socket_file {
        char path[sizeof(((struct sockaddr_un *) NULL)->sun_path)]; /* "" when there is none */
        dev_t dev;
        ino_t ino;
        struct timespec ctime;
};

/* Unlinks f->path if the file there is still the socket we bound, and clears f. */
void unix_socket_file_remove(struct unix_socket_file *f);

/* Who may connect to a unix socket file memward creates, as systemd's SocketMode=,
 * SocketUser= and SocketGroup=: connect() needs write permission on the file. The
 * mode does not depend on memward's umask; 0666 is systemd's default too. */
struct unix_socket_access {
        mode_t mode;    /* permission bits, at most 0777 */
        uid_t uid;      /* owner; (uid_t) -1 = memward's */
        gid_t gid;      /* group; (gid_t) -1 = memward's */
};
#define UNIX_SOCKET_MODE_DEFAULT 0666
#define UNIX_SOCKET_ACCESS_DEFAULT                                                                    \
        ((struct unix_socket_access) { .mode = UNIX_SOCKET_MODE_DEFAULT, .uid = (uid_t) -1, .gid = (gid_t) -1 })

/* One listen: entry of the config, as listen_set_open() opens it. */
struct listen_config {
        char *address;  /* as written (unix paths made absolute) */
        char *name;     /* LISTEN_FDNAMES entry; NULL = "unknown" */
        int backlog;
        struct listen_options options;
        struct unix_socket_access access;       /* unix: paths only */
        char *owner;    /* access.uid as written; NULL = unset */
        char *group;    /* access.gid as written; NULL = unset */
};

struct listen_socket {
        int fd;
        char name[64];                  /* LISTEN_FDNAMES entry */
        struct unix_socket_file file;   /* removed at exit */
};

struct listen_set {
        struct listen_socket *sockets;
        size_t n;
        bool inherited;         /* from systemd socket activation */
};

/* Creates a SOCK_STREAM socket for address, binds it and listens with backlog (<= 0 means
 * SOMAXCONN). A socket file at a unix path gets access (NULL: UNIX_SOCKET_ACCESS_DEFAULT)
 * before listen(), so nobody can connect while it has other permissions. The one place that does this, for the workers' listen: sockets and for the
 * metrics endpoint, so both treat a unix path, SO_REUSEADDR and IPv6 alike.
 * flags are extra socket() type flags (SOCK_NONBLOCK); SOCK_CLOEXEC is always set, because
 * a socket is handed to workers deliberately (listen_set) or not at all.
 * A socket file left at a unix path by an earlier run is replaced, but only when it is
 * stale (connect() is refused): a socket something still listens on is left alone and
 * reported as -EADDRINUSE, so a second memward started by mistake on the same path fails
 * instead of stealing the path from the running one. Any other file there is left alone
 * and reported as -EEXIST, clearer than the EADDRINUSE bind() would give. The caller logs,
 * naming the path (listen_address_unix_path()), and removes *ret_file (if non-NULL) with
 * unix_socket_file_remove() at close. Returns 0 with *ret_fd set, or a negative errno from
 * socket()/setsockopt()/bind()/fchownat()/listen(). */
int listen_address_open(const struct listen_address *address, int backlog, int flags,
                        const struct unix_socket_access *access, int *ret_fd, struct unix_socket_file *ret_file);

/* Turns on what options asks for on a listening socket: TCP_NODELAY, SO_KEEPALIVE and
 * TCP_DEFER_ACCEPT where set. Never turns one off, so an inherited socket keeps what its
 * .socket unit chose. A socket that is not TCP (unix:) is left as it is. Returns 1 when
 * the socket is TCP and every option asked for was set, 0 when it is not TCP, or a
 * negative errno from getsockname()/setsockopt(). */
int listen_socket_set_options(int fd, const struct listen_options *options);

/* Takes over sockets passed by systemd (sd_listen_fds_with_names), unsetting
 * LISTEN_* in our environment. Returns the number taken (0 when none). */
int listen_set_inherit(struct listen_set *set);

/* Opens, binds and listens on every address of the config (listen_address_open(),
 * blocking: workers accept() as they like), each with its options
 * (listen_socket_set_options()). Returns 0 or a negative errno (-EEXIST when
 * a file that is not a socket sits at a unix path, -EADDRINUSE when something listens
 * there); on failure *ret_failed (if non-NULL) points at the entry that failed. */
int listen_set_open(struct listen_set *set, const struct listen_config *cfg, size_t n,
                    const struct listen_config **ret_failed);

/* Closes every socket and removes the unix socket files we created that are still ours. */
void listen_set_close(struct listen_set *set);

/* Builds the LISTEN_FDNAMES value ("http:admin"). */
int listen_set_names(const struct listen_set *set, char *buf, size_t size);
