/* memward's own side of the sd_notify protocol, for running as a Type=notify unit.
 * Every call is a no-op when NOTIFY_SOCKET was not set for us. */
#pragma once

#include <stdbool.h>

#include "memward/base/units.h"

struct service {
        bool enabled;           /* NOTIFY_SOCKET was set */
        usec_t watchdog_usec;   /* WatchdogSec=, 0 = off */
        usec_t next_watchdog;   /* when to ping next */
        char last_status[256];
};

/* Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID (sd_watchdog_enabled). */
void service_init(struct service *s, usec_t now);

void service_ready(struct service *s);
void service_reloading(struct service *s);
void service_stopping(struct service *s);
/* Sends STATUS= only when the text changed, so a busy loop does not flood systemd. */
void service_status(struct service *s, const char *status);

/* Pings WATCHDOG=1 when due; returns the next time it must be called. */
usec_t service_watchdog(struct service *s, usec_t now);
