/* A worker's baseline: what it holds once it has loaded and warmed up, the yardstick of
 * the growth rule (memory.growth_max). Pure: fed one sample at a time, with the time
 * passed in. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memward/base/units.h"

struct baseline {
        bool known;
        uint64_t value;                 /* the minimum over the first whole window after warmup */
        usec_t started;                 /* first sample after warmup; 0 = none yet */
        uint64_t running_min;           /* minimum since started */
};

/* Takes one sample of the worker's metric. Samples before spawned_at + warmup are
 * ignored: an interpreter that has not imported the app yet must not make a worker that
 * simply finished loading look like it grew. The baseline is known once the samples
 * after warmup span window (memory.retained_window); it is their minimum, a floor like
 * the one it is compared with, and it never changes after that. */
void baseline_add(struct baseline *b, usec_t now, usec_t spawned_at, uint64_t sample, usec_t warmup, usec_t window);
