/* The listening sockets handed to every worker at fd 3… (systemd's socket-activation
 * protocol). Opened once by memward, or inherited from systemd and passed through
 * unchanged, so a worker recycle never closes a socket and never drops a queued
 * connection. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "memward/config.h"

struct listen_socket {
        int fd;
        char name[64];          /* LISTEN_FDNAMES entry */
        char unix_path[108];    /* non-empty when we created a unix socket file, to unlink at exit */
};

struct listen_set {
        struct listen_socket *sockets;
        size_t n;
        bool inherited;         /* from systemd socket activation */
};

/* Takes over sockets passed by systemd (sd_listen_fds_with_names), unsetting
 * LISTEN_* in our environment. Returns the number taken (0 when none). */
int listen_set_inherit(struct listen_set *set);

/* Opens, binds and listens on every address of the config. Returns 0 or a negative
 * errno; on failure *ret_failed (if non-NULL) points at the entry that failed. */
int listen_set_open(struct listen_set *set, const struct listen_config *cfg, size_t n,
                    const struct listen_config **ret_failed);

/* Closes every socket and unlinks the unix socket files we created. */
void listen_set_close(struct listen_set *set);

/* Builds the LISTEN_FDNAMES value ("http:admin"). */
int listen_set_names(const struct listen_set *set, char *buf, size_t size);
