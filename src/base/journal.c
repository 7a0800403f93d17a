/* See journal.h. */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "memward/base/journal.h"
#include "memward/base/macro.h"

static bool field_name_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > JOURNAL_FIELD_NAME_MAX || !(name[0] >= 'A' && name[0] <= 'Z'))
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

int journal_entry_add(struct journal_entry *e, const char *name, const void *value, size_t value_len) {
        size_t name_len = strlen(name), room = e->size - e->length;
        char *p = e->buf + e->length;

        if (!field_name_valid(name))
                return -EINVAL;
        /* The value's length is the caller's and may be anything: compared with the room
         * first, so that the sum below cannot wrap round to something small. The name is
         * at most JOURNAL_FIELD_NAME_MAX, the rest a few bytes. */
        if (value_len > room)
                return -ENOBUFS;
        bool binary = memchr(value, '\n', value_len) != NULL;
        /* NAME=value\n, or NAME\n + le64 + value + \n */
        size_t need = name_len + 1 + (binary ? sizeof(uint64_t) : 0) + 1;
        if (need > room - value_len)
                return -ENOBUFS;
        need += value_len;

        memcpy(p, name, name_len);
        p += name_len;
        if (binary) {
                uint64_t le = htole64((uint64_t) value_len);
                *p++ = '\n';
                memcpy(p, &le, sizeof le);
                p += sizeof le;
        } else
                *p++ = '=';
        memcpy(p, value, value_len);
        p += value_len;
        *p = '\n';
        e->length += need;
        return 0;
}

int journal_entry_add_string(struct journal_entry *e, const char *name, const char *value) {
        return journal_entry_add(e, name, value, strlen(value));
}

/* libsystemd's figure: a send buffer this big holds a few thousand of our entries
 * while journald is briefly busy. The kernel caps SO_SNDBUF at net.core.wmem_max;
 * SO_SNDBUFFORCE (root) goes past that cap. */
#define JOURNAL_SNDBUF (8 * 1024 * 1024)

/* Opened once and kept: one socket() per line would cost more than the send. */
static int journal_fd = -1;

static int journal_socket(void) {
        if (journal_fd >= 0)
                return journal_fd;

        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int size = JOURNAL_SNDBUF;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        journal_fd = fd;
        return fd;
}

int journal_send(const struct journal_entry *e) {
        static const struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET_PATH };
        int fd = journal_socket();

        if (fd < 0)
                return fd;
        /* MSG_DONTWAIT as well as SOCK_NONBLOCK: the flag holds whatever happens to the
         * fd's flags. An AF_UNIX datagram goes whole or not at all. */
        if (sendto(fd, e->buf, e->length, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *) &sa,
                   offsetof(struct sockaddr_un, sun_path) + sizeof JOURNAL_SOCKET_PATH) < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        return 0;
}
