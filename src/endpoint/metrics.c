/* See metrics.h.
 *
 * Everything here reads the supervisor as the last event left it and changes nothing;
 * the only I/O is proc_self_read() (our own /proc/self, never a cgroup file) and
 * metrics_start(). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "memward/base/log.h"
#include "memward/base/macro.h"
#include "memward/base/text_buffer.h"
#include "memward/endpoint/exposition.h"
#include "memward/endpoint/http.h"
#include "memward/endpoint/metrics.h"
#include "memward/endpoint/status_json.h"
#include "memward/linux/proc.h"
#include "memward/supervisor/supervisor.h"

/* ---- /healthz ---------------------------------------------------------------------- */

bool metrics_healthy(const struct supervisor *s, char *reason, size_t size) {
        unsigned ready = supervisor_ready_workers(s), replacing = supervisor_slots_replacing(s);

        if (s->shutting_down) {
                snprintf(reason, size, "shutting down, %u/%u workers ready", ready, s->target);
                return false;
        }
        if (replacing > 0)
                snprintf(reason, size, "%u/%u workers ready, %u being replaced", ready, s->target, replacing);
        else
                snprintf(reason, size, "%u/%u workers ready", ready, s->target);
        return ready + replacing >= s->target;
}

/* ---- the endpoint ------------------------------------------------------------------ */

#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"
#define CONTENT_TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_JSON "application/json"

static int reply_text(struct http_reply *ret, unsigned status, const char *content_type, const char *format, ...)
        _printf_(4, 5);
static int reply_text(struct http_reply *ret, unsigned status, const char *content_type, const char *format, ...) {
        va_list ap;
        char *body;
        int n;

        va_start(ap, format);
        n = vasprintf(&body, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        *ret = (struct http_reply) {
                .status = status,
                .content_type = content_type,
                .body = body,
                .length = (size_t) n,
        };
        return 0;
}

static int reply_buffer(struct http_reply *ret, struct text_buffer *b, const char *content_type) {
        char *data;
        size_t length;

        int r = text_buffer_finish(b, &data, &length);
        if (r < 0)
                return r;
        *ret = (struct http_reply) {
                .status = 200,
                .content_type = content_type,
                .body = data,
                .length = length,
        };
        return 0;
}

int metrics_handle_request(void *userdata, const char *method, const char *path, struct http_reply *ret) {
        const struct supervisor *s = userdata;
        struct text_buffer b;
        char reason[96];
        enum { METRICS, HEALTHZ, STATUS } what;

        if (streq(path, "/metrics"))
                what = METRICS;
        else if (streq(path, "/healthz"))
                what = HEALTHZ;
        else if (streq(path, "/status"))
                what = STATUS;
        else
                return reply_text(ret, 404, CONTENT_TYPE_TEXT, "not found: try /metrics, /healthz or /status\n");

        if (!streq(method, "GET") && !streq(method, "HEAD")) {
                int r = reply_text(ret, 405, CONTENT_TYPE_TEXT, "method not allowed: use GET\n");
                ret->allow = "GET, HEAD";
                return r;
        }

        usec_t now = now_monotonic(), realtime = now_realtime();
        switch (what) {
        case HEALTHZ: {
                bool ok = metrics_healthy(s, reason, sizeof reason);
                return reply_text(ret, ok ? 200 : 503, CONTENT_TYPE_TEXT, "%s: %s\n", ok ? "ok" : "unavailable",
                                  reason);
        }
        case METRICS: {
                struct proc_self self;
                bool has_self = proc_self_read("/proc", &self) >= 0;
                text_buffer_init(&b, METRICS_RENDER_MAX);
                exposition_render(s, has_self ? &self : NULL, now, realtime, &b);
                return reply_buffer(ret, &b, CONTENT_TYPE_PROMETHEUS);
        }
        case STATUS:
                text_buffer_init(&b, METRICS_RENDER_MAX);
                status_json_render(s, now, realtime, &b);
                return reply_buffer(ret, &b, CONTENT_TYPE_JSON);
        }
        return -EINVAL;
}

int metrics_start(const struct supervisor *s, struct http_server **ret) {
        const struct memward_config *c = s->config;

        *ret = NULL;
        if (!c->metrics.listen || !c->metrics.listen[0])
                return 0;
        struct http_options o = {
                .address = c->metrics.listen,
                .max_connections = c->metrics.max_connections,
                .timeout = c->metrics.timeout,
                .access = &c->metrics.access,
        };
        /* The handler reads s and changes nothing: the cast only fits http's void *. */
        return http_server_new(s->loop, &o, metrics_handle_request, (void *) s, ret);
}
