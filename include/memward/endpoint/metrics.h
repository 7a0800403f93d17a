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

#include "memward/base/text_buffer.h"
#include "memward/base/units.h"
#include "memward/endpoint/http.h"
#include "memward/policy/policy.h"
#include "memward/supervisor/history.h"

struct proc_self;
struct supervisor;
struct worker;

/* Upper bound of one rendering: 1024 workers need about 1.5 MiB of exposition. */
#define METRICS_RENDER_MAX (8U * 1024U * 1024U)

/* ---- renderers (pure) ------------------------------------------------------------ */

/* The Prometheus text exposition format 0.0.4. now is CLOCK_MONOTONIC, realtime its
 * CLOCK_REALTIME twin (to turn spawn times into Unix time). self may be NULL. */
void metrics_render_prometheus(const struct supervisor *s, const struct proc_self *self, usec_t now,
                               usec_t realtime, struct text_buffer *b);

/* The JSON document of /status: the supervisor, every worker, the last recycles. */
void metrics_render_status(const struct supervisor *s, usec_t now, usec_t realtime, struct text_buffer *b);

/* Readiness: true when at least the target number of slots has a ready worker and no
 * shutdown is under way; reason (always) says "3/4 workers ready" or why not. */
bool metrics_healthy(const struct supervisor *s, char *reason, size_t size);

/* ---- the endpoint ---------------------------------------------------------------- */

/* The http_handler_t behind the endpoint; userdata is the const struct supervisor. */
int metrics_handle_request(void *userdata, const char *method, const char *path, struct http_reply *ret);

/* Starts the endpoint of s->config->metrics on s->loop into *ret, which the caller frees
 * with http_server_free() before s; *ret is NULL when metrics.listen is empty. Errors as
 * http_server_new(). Reads nothing itself: the supervisor has read the group's usage
 * and pressure once before its first sample tick (supervisor_new()). */
int metrics_start(const struct supervisor *s, struct http_server **ret);
