/* The configuration: a strict YAML schema loaded with libyaml's document API.
 *
 * Every error is reported at the line:column of the offending node, all of them,
 * and the load then fails with -EINVAL. The module never logs; callers print the
 * collected diagnostics. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "memward/base/log.h"
#include "memward/base/units.h"
#include "memward/linux/address.h"
#include "memward/linux/listen.h"
#include "memward/linux/psi.h"
#include "memward/linux/spawn.h"

#define CONFIG_WORKERS_MAX 1024U
/* workers.start_limit_burst: memward keeps the times of this many failed starts. */
#define CONFIG_START_LIMIT_BURST_MAX 1000U
#define CONFIG_LISTEN_MAX 16U
#define CONFIG_RETAINED_REQUESTS_MAX 64U
#define CONFIG_FILE_SIZE_MAX (1024U * 1024U)

enum ready_mode {
        READY_NOTIFY,    /* READY=1 over NOTIFY_SOCKET */
        READY_IMMEDIATE, /* ready as soon as exec succeeded */
        READY_DELAY,     /* ready after workers.ready_delay */
};

/* How workers are started (docs/fork-server.md). */
enum workers_mode {
        WORKERS_EXEC,           /* each worker execs workers.command */
        WORKERS_TEMPLATE,       /* workers.command is a template that forks them */
};

enum memory_metric {
        MEMORY_METRIC_ANON,
        MEMORY_METRIC_CURRENT,
        MEMORY_METRIC_RSS,
        MEMORY_METRIC_PSS,
};

/* A size that may also be given as a percentage of the group's memory limit. */
struct size_or_percent {
        uint64_t bytes;   /* used when percent == 0 */
        double percent;   /* 0 < percent <= 100 */
};

/* Resolves v against base, the group's memory limit in bytes (0 = unknown): a size as
 * is, a percentage of base, 0 when v is unset. Returns 0 with *ret set, or -ENODATA when
 * v is a percentage and base is unknown: resolving that to 0 would silently turn the
 * setting off, which is the opposite of what someone who wrote "worker_max: 50%" wants. */
int size_or_percent_resolve(const struct size_or_percent *v, uint64_t base, uint64_t *ret);

/* Defaults and bounds of metrics.max_connections and metrics.timeout. */
#define METRICS_MAX_CONNECTIONS_DEFAULT 16U
#define METRICS_MAX_CONNECTIONS_MAX 1024U
#define METRICS_TIMEOUT_DEFAULT (10 * USEC_PER_SEC)
#define METRICS_TIMEOUT_MIN USEC_PER_SEC
#define METRICS_TIMEOUT_MAX (3600 * USEC_PER_SEC)

struct memward_config {
        char *path;     /* absolute path of the loaded file, NULL when none */

        struct {
                unsigned count;
                enum workers_mode mode;
                char **command;         /* NULL-terminated argv; NULL if unset */
                char *directory;        /* absolute; NULL = memward's cwd at start-up */
                char **env;             /* NULL-terminated "KEY=VALUE" list; never NULL */
                enum ready_mode ready;
                usec_t ready_delay;     /* READY_DELAY only */
                usec_t ready_timeout;
                int stop_signal;
                usec_t graceful_timeout;
                usec_t watchdog;        /* 0 = off */
                usec_t fork_timeout;    /* template mode: the answer to a SPAWN */
                usec_t backoff_initial;
                usec_t backoff_max;
                unsigned start_limit_burst;     /* 0 = off (policy_start_limit()) */
                usec_t start_limit_interval;
                char *user;             /* workers.user as written; NULL = memward's own */
                char *group;            /* workers.group as written; NULL = the user's primary group */
                struct spawn_credentials credentials; /* both resolved at load; nothing set when neither is */
                int umask;              /* 0..0777; -1 = inherit memward's */
        } workers;

        struct listen_config *listen;
        size_t n_listen;

        struct {
                uint64_t max_requests;          /* 0 = off */
                uint64_t max_requests_jitter;
                usec_t max_lifetime;            /* 0 = off */
                usec_t max_lifetime_jitter;
                unsigned max_concurrent;
                bool memory_stop_first;         /* memory recycles: stop the old worker first */
        } recycle;

        struct {
                enum memory_metric metric;
                usec_t sample_interval;
                struct size_or_percent worker_high;     /* 0 = unset */
                struct size_or_percent worker_max;      /* 0 = unset */
                uint64_t retained_max;                  /* 0 = off */
                usec_t retained_window;
                double growth_max;                      /* 0 = off, else > 1.0 */
                usec_t warmup;
                struct size_or_percent group_high;      /* 0 = off */
                bool runtime_hints;
                unsigned retained_requests;             /* K: floor over the last K request-end readings, 0 = off */
                usec_t boundary_min_interval;           /* at most one request-end reading per worker per this */
        } memory;

        struct {
                bool enabled;                   /* trigger != "" */
                enum psi_kind kind;
                usec_t stall;
                usec_t window;
                usec_t cooldown;
                uint64_t min_retained;
        } pressure;

        struct {
                int level;                      /* syslog level */
                enum log_format format;
        } log;

        struct {
                char *listen;                   /* listen_address_parse_host_port() form; NULL = off */
                unsigned max_connections;       /* concurrent HTTP connections */
                usec_t timeout;                 /* idle time before a connection is closed */
                struct unix_socket_access access; /* of a unix: socket file */
                char *owner;                    /* access.uid as written; NULL = unset */
                char *group;                    /* access.gid as written; NULL = unset */
        } metrics;
};

struct config_diagnostic {
        unsigned line;          /* 1-based; 0 when the error has no position */
        unsigned column;        /* 1-based */
        char *message;          /* "workers.count: expected an integer >= 1, got \"four\"" */
};

struct config_diagnostics {
        char *file;             /* as given by the caller */
        char *source;           /* the file's text, to quote the offending line */
        struct config_diagnostic *items;
        size_t n_items;
        char **warnings;        /* positioned warnings, already formatted "FILE:L:C: ..." */
        size_t n_warnings;
};

/* A config with every default filled in and no command. Defaults: workers.count 2,
 * mode exec, fork_timeout 10s, ready notify, ready_timeout 60s, stop_signal SIGTERM, graceful_timeout 30s, watchdog 0
 * (off), restart_backoff 100ms..30s; no listen entries (backlog 1024 per entry);
 * recycle: everything off, max_concurrent 1; log info/logfmt; memory: metric anon,
 * sample_interval 1s, retained_window 60s, warmup 30s, the rest 0/off; pressure: off,
 * cooldown 30s, min_retained 0; metrics: off (listen ""), max_connections 16, timeout 10s;
 * workers.user/group unset (memward's own ids), workers.umask -1 (inherited); unix socket
 * files mode 0666, owner and group memward's.
 * workers.user, workers.group and the owner/group of unix sockets are resolved when the
 * file is loaded (getpwnam_r, getgrnam_r, getgrouplist: names or numbers), so a name the
 * system does not know is an error at its line:column, and a reload picks up changed
 * group memberships. Whether memward may switch to them is not checked here: a
 * --check-config may run as another user than the service. */
int config_new_default(struct memward_config **ret);
void config_free(struct memward_config *c);
static inline void config_freep(struct memward_config **c) {
        config_free(*c);
}
#define _cleanup_config_free_ _cleanup_(config_freep)

/* Loads path on top of the defaults. diag is reset first (config_diagnostics_clear) and
 * may be NULL when the caller does not want the messages. Relative paths inside it (workers.directory,
 * unix socket paths) are resolved against base_dir (memward's cwd at start-up).
 * Returns 0, -EINVAL with diag filled when the file has errors, or another negative
 * errno when it cannot be read (diag then holds one item without position). */
int config_load_file(const char *path, const char *base_dir,
                     struct memward_config **ret, struct config_diagnostics *diag);

/* Same, from a buffer; name is used in messages. For tests and fuzzing. */
int config_load_string(const char *text, size_t length, const char *name, const char *base_dir,
                       struct memward_config **ret, struct config_diagnostics *diag);

/* Command-line overrides. config_set_command() replaces workers.command with a copy of
 * the NULL-terminated argv (at least one word, else -EINVAL). config_add_listen() appends
 * an entry as --listen does (unix: relative paths made absolute against base_dir, or the
 * cwd when NULL; no name; default backlog) and returns 0, the listen_address_parse()
 * error, -EEXIST for an address already listed, -E2BIG beyond CONFIG_LISTEN_MAX, -ENOMEM.
 * config_clear_listen() drops the file's entries so that --listen replaces them. */
int config_set_command(struct memward_config *c, char *const *argv);
int config_add_listen(struct memward_config *c, const char *address, const char *base_dir);
void config_clear_listen(struct memward_config *c);

/* Checks rules that span keys or that command-line overrides can break
 * (a command is present, ...). Appends to diag; returns 0 or -EINVAL. */
int config_validate(const struct memward_config *c, struct config_diagnostics *diag);

/* Prints "FILE:LINE:COL: message", the offending line and a caret under the column,
 * for every diagnostic. */
void config_diagnostics_print(const struct config_diagnostics *diag, FILE *f);
/* Diagnostic i as one line, "FILE:LINE:COL: message" (no caret): what a log event
 * carries. Returns the length it needed, like snprintf. */
int config_diagnostic_format(const struct config_diagnostics *diag, size_t i, char *buf, size_t size);
void config_diagnostics_clear(struct config_diagnostics *diag);

/* Writes the effective configuration as YAML that config_load_string accepts again. */
int config_dump(const struct memward_config *c, FILE *f);

const char *memory_metric_to_string(enum memory_metric m);
const char *ready_mode_to_string(enum ready_mode m);
/* "exec", "template"; NULL out of range. */
const char *workers_mode_to_string(enum workers_mode m);
