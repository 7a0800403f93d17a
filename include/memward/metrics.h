/* What memward shows about itself: the Prometheus exposition (/metrics), the
 * readiness probe (/healthz) and the JSON status (/status, `memward status`).
 *
 * The renderers are pure: they read a struct supervisor as the last sample left it
 * (never a cgroup file, so a scrape cannot block supervision) and write into a
 * growing, bounded heap buffer that is freed after the response — no static
 * buffers, so an idle memward pays nothing for the endpoint. Tests build a struct
 * supervisor by hand and compare the text. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memward/http.h"
#include "memward/policy.h"
#include "memward/units.h"

struct supervisor;
struct worker;

/* ---- counters the supervisor keeps for us ----------------------------------------- */

/* How a worker process ended (memward_worker_exits_total{how}). */
enum worker_exit_how {
        WORKER_EXIT_EXIT,       /* exit(): any code */
        WORKER_EXIT_SIGNAL,     /* killed by a signal (our stop signal and SIGKILL included) */
        WORKER_EXIT_OOM,        /* its cgroup (or the kernel) OOM-killed it */
        _WORKER_EXIT_MAX,
};

const char *worker_exit_how_to_string(enum worker_exit_how h);

/* One recycle, for the "last 20 recycles" of /status. Fixed size: the ring costs the
 * same whatever happens. */
struct recycle_record {
        usec_t at;                      /* CLOCK_REALTIME */
        unsigned slot;
        pid_t pid;
        unsigned long long generation;
        enum recycle_reason reason;
        uint64_t requests;
        usec_t age;
        uint64_t anon;
        uint64_t retained;              /* floor at the time, 0 when none yet */
};

#define RECYCLE_HISTORY_MAX 20U

struct recycle_history {
        struct recycle_record records[RECYCLE_HISTORY_MAX];
        uint64_t total;                 /* records ever pushed; the newest is at (total - 1) % MAX */
};

void recycle_history_push(struct recycle_history *h, const struct recycle_record *r);

/* Called by the supervisor where it logs event=recycle: remembers the reason as the
 * slot's last recycle and pushes a record. now is CLOCK_MONOTONIC. */
void metrics_note_recycle(struct supervisor *s, const struct worker *w, enum recycle_reason reason, usec_t now);
/* The i-th newest record (0 = newest), or NULL beyond what is kept. */
const struct recycle_record *recycle_history_get(const struct recycle_history *h, size_t i);

/* ---- a growing, bounded text buffer -------------------------------------------------- */

/* Appends never fail halfway: once an append would pass limit (or malloc fails) the
 * buffer is marked failed, later appends are no-ops and text_buffer_finish() reports it. */
struct text_buffer {
        char *data;
        size_t length;
        size_t allocated;
        size_t limit;
        int error;                      /* 0, -ENOMEM or -E2BIG */
};

void text_buffer_init(struct text_buffer *b, size_t limit);
void text_buffer_done(struct text_buffer *b);
void text_buffer_append(struct text_buffer *b, const char *s, size_t n);
void text_buffer_printf(struct text_buffer *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* utf8_json_string() into b. */
void text_buffer_json_string(struct text_buffer *b, const char *s);
/* Hands the text (NUL-terminated) over: 0 with *ret_data and *ret_length set, or the error. */
int text_buffer_finish(struct text_buffer *b, char **ret_data, size_t *ret_length);

/* Upper bound of one rendering: 1024 workers need about 1.5 MiB of exposition. */
#define METRICS_RENDER_MAX (8U * 1024U * 1024U)

/* ---- the process itself ---------------------------------------------------------- */

struct process_self {
        uint64_t resident;              /* bytes, /proc/self/statm */
        double cpu_seconds;             /* utime + stime */
        double start_time;              /* Unix time, seconds */
};

/* Parses /proc/PID/stat text: utime + stime (ticks) and starttime (ticks since boot). */
int proc_stat_times_parse(const char *text, size_t length, uint64_t *ret_cpu_ticks, uint64_t *ret_start_ticks);
/* "btime N" of /proc/stat. */
int proc_stat_btime_parse(const char *text, size_t length, uint64_t *ret_btime);

/* Reads the numbers above for this process (proc_root: "/proc"). */
int process_self_read(const char *proc_root, struct process_self *ret);

/* ---- renderers (pure) ------------------------------------------------------------ */

/* The Prometheus text exposition format 0.0.4. now is CLOCK_MONOTONIC, realtime its
 * CLOCK_REALTIME twin (to turn spawn times into Unix time). self may be NULL. */
void metrics_render_prometheus(const struct supervisor *s, const struct process_self *self, usec_t now,
                               usec_t realtime, struct text_buffer *b);

/* The JSON document of /status: the supervisor, every worker, the last recycles. */
void metrics_render_status(const struct supervisor *s, usec_t now, usec_t realtime, struct text_buffer *b);

/* Readiness: true when at least the target number of slots has a ready worker and no
 * shutdown is under way; reason (always) says "3/4 workers ready" or why not. */
bool metrics_healthy(const struct supervisor *s, char *reason, size_t size);

/* ---- the endpoint ---------------------------------------------------------------- */

/* The http_handler_t behind the endpoint; userdata is the struct supervisor. */
int metrics_handle_request(void *userdata, const char *method, const char *path, struct http_reply *ret);

/* Starts the endpoint of s->config->metrics on s->loop into s->http; 0 without doing
 * anything when metrics.listen is empty. Errors as http_server_new(). */
int metrics_start(struct supervisor *s);
