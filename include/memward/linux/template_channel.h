/* The control channel between memward and a fork-server template (docs/fork-server.md,
 * protocol version 1): the messages of §2 and the SOCK_SEQPACKET socketpair they travel on.
 *
 * The parsers and formatters are pure, separate from the socket, so they can be tested
 * and fuzzed without I/O; both directions are here, so that tests and a template written
 * in C can speak the protocol with the same code memward uses. Everything a template
 * sends is bounded: a packet larger than TEMPLATE_MESSAGE_MAX is refused whole, free text
 * is cut to a fixed buffer, and the parsed message is a fixed-size struct. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TEMPLATE_PROTOCOL_VERSION 1U
#define TEMPLATE_MESSAGE_MAX 65536U     /* bytes in one packet, §2 */
#define TEMPLATE_SLOT_MAX 4095U         /* SLOT is 0 … 4095 */
#define TEMPLATE_ERRNO_MAX 4095         /* ERRNO is 1 … 4095, what the kernel's errnos fit in */
#define TEMPLATE_RUNTIME_MAX 128U       /* READY's RUNTIME, NUL included */
#define TEMPLATE_TEXT_MAX 256U          /* SPAWN_FAILED's MESSAGE, NUL included */
/* ENV lines of one SPAWN that template_spawn_parse() keeps, and template_spawn_format()
 * writes. memward sends four or five today (docs/fork-server.md §2); this is room for the
 * variables later versions add, not a limit of the protocol. */
#define TEMPLATE_SPAWN_ENV_MAX 64U
#define TEMPLATE_PARSE_ERROR_MAX 128U

/* The messages a template sends to memward. */
enum template_message_type {
        TEMPLATE_READY,
        TEMPLATE_SPAWNED,
        TEMPLATE_SPAWN_FAILED,
        TEMPLATE_PLACE,                 /* §3: put PID (the intermediate) into the SPAWN's leaf */
        _TEMPLATE_MESSAGE_TYPE_MAX,
};

/* "READY", "SPAWNED", "SPAWN_FAILED", "PLACE"; "unknown" out of range. */
const char *template_message_type_to_string(enum template_message_type t);

/* One template → memward message. Fields that its type does not carry are 0 or "". */
struct template_message {
        enum template_message_type type;
        char runtime[TEMPLATE_RUNTIME_MAX];     /* READY: RUNTIME, cut between characters; "" when absent */
        bool place;                             /* READY: PLACE=1, the template takes SPAWN with PLACE=1 */
        unsigned slot;                          /* SPAWNED, SPAWN_FAILED, PLACE: 0 … TEMPLATE_SLOT_MAX */
        uint64_t generation;                    /* SPAWNED, SPAWN_FAILED, PLACE: ≥ 1 */
        pid_t pid;                              /* SPAWNED, PLACE: > 1 */
        int error;                              /* SPAWN_FAILED: ERRNO, a positive errno, 1 … TEMPLATE_ERRNO_MAX */
        char message[TEMPLATE_TEXT_MAX];        /* SPAWN_FAILED: MESSAGE, cut between characters; "" when absent */
};

/* One ENV line of a SPAWN, "NAME=VALUE" (NAME not empty): it points into the buffer that
 * was parsed, is not NUL-terminated, and lives as long as that buffer. */
struct template_env {
        const char *entry;
        size_t length;
};

/* Who puts a forked worker into its cgroup leaf (§2 SPAWN's CGROUP and PLACE, §3). */
enum template_placement {
        TEMPLATE_PLACEMENT_NONE,        /* CGROUP=0: no leaf (procfs mode) */
        TEMPLATE_PLACEMENT_TEMPLATE,    /* CGROUP=1: the leaf's directory fd is attached, the
                                         * intermediate joins it itself */
        TEMPLATE_PLACEMENT_MEMWARD,     /* CGROUP=0 PLACE=1: the template sends PLACE with the
                                         * intermediate's pid, memward moves it, answers PLACED */
};

/* One memward → template SPAWN. */
struct template_spawn {
        unsigned slot;                          /* 0 … TEMPLATE_SLOT_MAX */
        uint64_t generation;                    /* ≥ 1 */
        bool cgroup;                            /* CGROUP=1: a leaf's directory fd is attached */
        bool place;                             /* PLACE=1: memward places the intermediate (never
                                                 * with CGROUP=1) */
        size_t n_env;
        struct template_env env[TEMPLATE_SPAWN_ENV_MAX]; /* in the order of the message */
};

/* One memward → template PLACED: the answer to a PLACE. */
struct template_placed {
        unsigned slot;                          /* 0 … TEMPLATE_SLOT_MAX */
        uint64_t generation;                    /* ≥ 1 */
        int error;                              /* ERRNO, 1 … TEMPLATE_ERRNO_MAX: memward could not move
                                                 * the process; 0 (no ERRNO line): it is in the leaf */
};

/* Why a message did not parse, for the log line of the protocol error. */
struct template_parse_error {
        const char *what;                       /* static token: "oversized", "nul_byte", "unknown_type",
                                                 * "no_equals", "bad_key", "repeated_key", "bad_value",
                                                 * "missing_key", "unsupported_protocol", "too_many_env",
                                                 * "conflicting_keys" */
        char text[TEMPLATE_PARSE_ERROR_MAX];    /* e.g. "line 3: SLOT repeated"; quotes the sender's bytes,
                                                 * cut between characters: log_quote() it */
};

/* Parses one template → memward message (READY, SPAWNED, SPAWN_FAILED, PLACE) of length bytes;
 * buf need not be NUL-terminated. The grammar is §2's: the first line is the type, every
 * further line KEY=VALUE with KEY [A-Z0-9_]+; a last line without '\n' is taken as if it
 * had one, an empty line is a line without '='. Keys this version does not define for the
 * type are ignored, however often they appear (a later version may add a key that
 * repeats); a defined key may appear once. Numbers are ASCII decimal digits, no sign,
 * no spaces (leading zeros are read as the same number).
 *
 * Returns 0 and fills *ret, or (*ret untouched):
 *   -EMSGSIZE          length > TEMPLATE_MESSAGE_MAX;
 *   -EPROTONOSUPPORT   a READY whose first PROTOCOL line holds a decimal other than 1,
 *                      whatever its other lines hold: another version's grammar is not
 *                      ours to judge, and "speaks protocol 2" is what the log must say
 *                      (size and NUL bytes are judged first: they are the framing);
 *   -EBADMSG           anything else malformed: a NUL byte, an unknown type (SPAWN too: it
 *                      is memward's), a line without '=', a bad key, a defined key twice, a
 *                      required key missing, a value out of range (SLOT 0…4095, GENERATION
 *                      1…2^64-1, PID 2…INT32_MAX, ERRNO 1…4095, PROTOCOL not a decimal,
 *                      PLACE neither 0 nor 1).
 * When error is not NULL it is filled on failure, and left untouched on success. */
int template_message_parse(const char *buf, size_t length, struct template_message *ret,
                           struct template_parse_error *error);

/* Parses one memward → template SPAWN, with the grammar and errors of
 * template_message_parse() (every other type is an unknown type here; no
 * -EPROTONOSUPPORT). CGROUP and PLACE are "0" or "1", not both "1" (-EBADMSG,
 * "conflicting_keys"); each ENV value must be NAME=VALUE with a NAME that is not empty.
 * ret->env points into buf. Besides those errnos, -E2BIG when the
 * message holds more than TEMPLATE_SPAWN_ENV_MAX ENV lines (not malformed: more than this
 * parser keeps; a template answers SPAWN_FAILED ERRNO=E2BIG). Whether an fd came with it
 * is the socket's business, not the text's. */
int template_spawn_parse(const char *buf, size_t length, struct template_spawn *ret,
                         struct template_parse_error *error);

/* Parses one memward → template PLACED (every other type is an unknown type here), with
 * the grammar and errors of template_message_parse(): SLOT and GENERATION required,
 * ERRNO 1…4095 when present. */
int template_placed_parse(const char *buf, size_t length, struct template_placed *ret,
                          struct template_parse_error *error);

/* Formats a SPAWN into buf:
 *   SPAWN\nSLOT=<slot>\nGENERATION=<generation>\nCGROUP=<0|1>\n[PLACE=1\n]ENV=<entry>\n…
 * CGROUP=1 for TEMPLATE_PLACEMENT_TEMPLATE, PLACE=1 for TEMPLATE_PLACEMENT_MEMWARD.
 * env is a NULL-terminated list of "NAME=VALUE" strings (NULL: none), written in order.
 * Returns 0 and the length (no NUL is written after it) in *ret_length, or, with buf's
 * contents untouched and *ret_length too:
 *   -EINVAL    slot > TEMPLATE_SLOT_MAX, generation 0, a placement out of the enum, an entry with '\n' or without
 *              a '=' after a non-empty NAME (a C string cannot hold a NUL: it ends there);
 *   -E2BIG     more than TEMPLATE_SPAWN_ENV_MAX entries;
 *   -EMSGSIZE  the message would be longer than TEMPLATE_MESSAGE_MAX, which no peer accepts;
 *   -ENOBUFS   it does not fit in size bytes. */
int template_spawn_format(unsigned slot, uint64_t generation, enum template_placement placement, char *const *env,
                          char *buf, size_t size, size_t *ret_length);

/* Formats a PLACED: SLOT, GENERATION, and ERRNO when p->error is not 0. Returns 0 and
 * *ret_length, or, with buf and *ret_length untouched: -EINVAL (a field out of the
 * parser's range), -ENOBUFS when it does not fit in size bytes. */
int template_placed_format(const struct template_placed *p, char *buf, size_t size, size_t *ret_length);

/* Formats a template → memward message, the other direction: what a template written in
 * C sends, and what tests feed the parser. READY gets PROTOCOL=1, RUNTIME= when runtime
 * is not empty and PLACE=1 when place; SPAWNED and PLACE SLOT, GENERATION, PID;
 * SPAWN_FAILED SLOT, GENERATION, ERRNO and MESSAGE= when message is not empty. Returns 0 and *ret_length, or, with buf and
 * *ret_length untouched: -EINVAL (a field out of the parser's range, a text with '\n' or
 * not NUL-terminated within its array), -ENOBUFS when it does not fit in size bytes.
 * template_message_parse() of the result gives m back. */
int template_message_format(const struct template_message *m, char *buf, size_t size, size_t *ret_length);

/* One packet as template_channel_receive() found it. 64 KiB: not for the stack. */
struct template_packet {
        char data[TEMPLATE_MESSAGE_MAX];
        size_t length;
        bool truncated;         /* was longer than TEMPLATE_MESSAGE_MAX; data holds its start */
        unsigned n_fds;         /* SCM_RIGHTS fds that came with it, already closed */
        bool has_credentials;   /* SCM_CREDENTIALS came with it (SO_PASSCRED is set) */
        pid_t pid;              /* the sender's, when has_credentials; else 0 */
        uid_t uid;
        gid_t gid;
};

/* Creates the control channel: socketpair(AF_UNIX, SOCK_SEQPACKET), both ends
 * close-on-exec (spawn's dup2 to fd 3+N clears it on the template's copy). ret_fds[0] is
 * memward's end: non-blocking, so no template can stall the event loop, and with
 * SO_PASSCRED, so that every packet names its sender. ret_fds[1] is the template's end,
 * blocking, as a template's simple read loop expects. Both written only on success.
 *
 * The credentials are for the log: they tell a template's own packet from one its
 * intermediate process sent (§3 step 3: SPAWNED comes from the intermediate, whose pid is
 * then the only witness that the worker's parent is the template's child). Nothing in this
 * module judges them. Returns 0 or a negative errno. */
int template_channel_open(int ret_fds[2]);

/* Sends one message of length bytes as one packet, with fd attached (SCM_RIGHTS) unless
 * it is negative, without blocking and without SIGPIPE. memward attaches a cgroup leaf's
 * directory fd exactly when the SPAWN says CGROUP=1; this function does not read the text.
 * Returns 0; -EMSGSIZE for length > TEMPLATE_MESSAGE_MAX (nothing sent); -EAGAIN when the
 * socket buffer is full (nothing sent: a packet goes whole or not at all; with one SPAWN
 * at a time this means the template is not reading); -EPIPE when the peer closed its end;
 * another negative errno. */
int template_channel_send(int fd, const char *buf, size_t length, int fd_to_pass);

/* Ends what the template can still send on fd (shutdown SHUT_RD): packets queued already
 * stay readable, then template_channel_receive() returns -ECONNRESET; a send of the
 * template after this fails with EPIPE. memward's sends still go out. Returns 0 or a
 * negative errno. */
int template_channel_stop_receiving(int fd);

/* Receives one packet without blocking into *ret. Returns 0; -EAGAIN when none is queued;
 * -ECONNRESET when the template closed its end (or exited): a read that returns nothing and
 * a peer that has hung up (an empty packet from a live peer is returned as a packet of
 * length 0, which no parser accepts); another negative errno. On 0, a packet longer than
 * TEMPLATE_MESSAGE_MAX is ret->truncated (refuse it whole), and any fds that came with it
 * have been closed and counted in ret->n_fds (a template never sends fds; closing them keeps
 * a buggy one from making memward run out), one more when the kernel dropped some that did
 * not fit (MSG_CTRUNC). *ret is untouched on failure. */
int template_channel_receive(int fd, struct template_packet *ret);
