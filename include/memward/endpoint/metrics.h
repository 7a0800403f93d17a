/* memward's own HTTP endpoint: the Prometheus exposition (/metrics, exposition.h), the
 * readiness probe (/healthz, here) and the JSON status (/status, status_json.h).
 *
 * The endpoint reads a const struct supervisor and changes nothing in it. What it
 * renders goes into a growing, bounded heap buffer that is freed after the response —
 * no static buffers, so an idle memward pays nothing for the endpoint. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "memward/endpoint/http.h"

struct supervisor;

/* Upper bound of one rendering: 1024 workers need about 1.5 MiB of exposition. */
#define METRICS_RENDER_MAX (8U * 1024U * 1024U)

/* Readiness: true when at least the target number of slots has a ready worker and no
 * shutdown is under way; reason (always) says "3/4 workers ready" or why not. */
bool metrics_healthy(const struct supervisor *s, char *reason, size_t size);

/* The http_handler_t behind the endpoint: GET or HEAD of /metrics, /healthz, /status;
 * 404 for any other path, 405 for any other method. userdata is the const struct
 * supervisor. */
int metrics_handle_request(void *userdata, const char *method, const char *path, struct http_reply *ret);

/* Starts the endpoint of s->config->metrics on s->loop into *ret, which the caller frees
 * with http_server_free() before s; *ret is NULL when metrics.listen is empty. Errors as
 * http_server_new(). Reads nothing itself: the supervisor has read the group's usage
 * and pressure once before its first sample tick (supervisor_new()). */
int metrics_start(const struct supervisor *s, struct http_server **ret);
