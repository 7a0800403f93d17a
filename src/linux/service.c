/* See service.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "memward/base/log.h"
#include "memward/linux/service.h"

void service_init(struct service *s, usec_t now) {
        uint64_t usec = 0;

        *s = (struct service) {};
        s->enabled = getenv("NOTIFY_SOCKET") != NULL;
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
                s->watchdog_usec = usec;
                s->next_watchdog = now;
        }
}

/* sd_notify() (libsystemd 252) sends on a blocking socket, without MSG_DONTWAIT, like
 * sd_journal_sendv() did for our log lines; unlike journald, the reader here is the
 * service manager itself. systemd reads NOTIFY_SOCKET ahead of everything else in its
 * loop, so its queue fills only when PID 1 is stuck, and then no watchdog would
 * restart us anyway. Kept, as one datagram every WatchdogSec/2 and on state changes. */
static void service_notify(struct service *s, const char *text) {
        if (!s->enabled)
                return;
        int r = sd_notify(0, text);
        if (r < 0) {
                char quoted[LOG_QUOTE_MAX];
                log_debug_errno(r, "sd_notify_failed", "message=%s", log_quote(quoted, sizeof quoted, text));
        }
}

void service_ready(struct service *s) {
        service_notify(s, "READY=1");
}

void service_reloading(struct service *s) {
        service_notify(s, "RELOADING=1");
}

void service_stopping(struct service *s) {
        service_notify(s, "STOPPING=1");
}

void service_status(struct service *s, const char *status) {
        char buf[sizeof s->last_status + 8];

        if (!s->enabled || strcmp(status, s->last_status) == 0)
                return;
        snprintf(s->last_status, sizeof s->last_status, "%s", status);
        snprintf(buf, sizeof buf, "STATUS=%s", s->last_status);
        service_notify(s, buf);
}

usec_t service_watchdog(struct service *s, usec_t now) {
        if (s->watchdog_usec == 0)
                return USEC_INFINITY;
        if (now >= s->next_watchdog) {
                service_notify(s, "WATCHDOG=1");
                /* Half the interval, as sd_watchdog_enabled(3) recommends. */
                s->next_watchdog = now + s->watchdog_usec / 2;
        }
        return s->next_watchdog;
}
