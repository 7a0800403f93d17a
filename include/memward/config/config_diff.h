/* Which settings a reload changed, for the log line that says so. */
#pragma once

#include <stddef.h>

#include "memward/config/config.h"

/* Writes the keys whose effective values differ between old and new into buf, as a
 * comma-separated list in the order of `--check-config` ("workers.count,memory.retained_max");
 * "" when nothing changed. Compares the effective configurations, defaults filled in, so
 * a key added to the file with its default value is no change. Sequences and nested
 * mappings count as one key ("listen", "workers.env", "workers.command").
 * Returns the number of keys, -ENOBUFS when they do not fit in buf (which then holds
 * as many whole keys as fit, followed by ",..."), or -ENOMEM. */
int config_changed_keys(const struct memward_config *old, const struct memward_config *new, char *buf,
                        size_t size);
