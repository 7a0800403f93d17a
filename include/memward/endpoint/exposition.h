/* The Prometheus text exposition of /metrics (format 0.0.4): memward's workers, their
 * memory, recycles, exits, pressure and the group, and memward's own process.
 *
 * Pure: it reads a struct supervisor as the last sample left it (never a cgroup file,
 * so a scrape cannot block supervision) and writes into a text buffer. Tests build a
 * struct supervisor by hand and compare the text; tests/integration/test_manpages
 * checks that memward(8) documents every family rendered here. */
#pragma once

#include "memward/base/text_buffer.h"
#include "memward/base/units.h"

struct proc_self;
struct supervisor;

/* now is CLOCK_MONOTONIC, realtime its CLOCK_REALTIME twin (to turn spawn times into
 * Unix time). self (memward's own process, proc_self_read()) may be NULL: the process_*
 * families are then left out. A buffer too small is marked failed (text_buffer.h). */
void exposition_render(const struct supervisor *s, const struct proc_self *self, usec_t now, usec_t realtime,
                       struct text_buffer *b);
