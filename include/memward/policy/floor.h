/* The floor of a worker's memory: the minimum over a trailing time window.
 *
 * A spike during a request never lifts the floor; only memory the worker keeps
 * for a whole window does. That is "retained memory", the thing blind
 * max_requests restarts guess at.
 *
 * The window is split into FLOOR_BUCKETS buckets of window/FLOOR_BUCKETS each,
 * and each bucket keeps the minimum of its samples. Adding a sample is O(1),
 * the floor is O(FLOOR_BUCKETS), and the record has a fixed size whatever the
 * window and sample rate — the trade-off is that the window's oldest edge is
 * accurate to one bucket (1/16 of the window). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memward/base/units.h"

#define FLOOR_BUCKETS 16

struct floor_window {
        usec_t window;
        usec_t bucket_width;
        usec_t first_sample;            /* 0 = no sample yet */
        uint64_t bucket_min[FLOOR_BUCKETS];
        uint64_t bucket_index[FLOOR_BUCKETS];  /* absolute bucket number each slot holds, UINT64_MAX = empty */
};

void floor_window_init(struct floor_window *f, usec_t window);

/* Adds a sample taken at now (monotonic, non-decreasing across calls). */
void floor_window_add(struct floor_window *f, usec_t now, uint64_t value);

/* The minimum over samples in (now − window, now]. Returns false while the samples
 * seen span less than a whole window, or none lies in it: no floor yet. */
bool floor_window_get(const struct floor_window *f, usec_t now, uint64_t *ret);

/* The floor over the last K request-end ("boundary") readings. A sync worker's
 * memory right after a request ended is what it keeps; K = 1 judges each request
 * on its own, a larger K tolerates a few requests that end mid-garbage-collection. */
#define BOUNDARY_READINGS_MAX 64

struct boundary_floor {
        uint64_t values[BOUNDARY_READINGS_MAX];
        unsigned n;             /* readings stored, at most BOUNDARY_READINGS_MAX */
        unsigned next;          /* ring position of the next reading */
};

void boundary_floor_add(struct boundary_floor *b, uint64_t value);

/* The minimum of the last k readings. False while fewer than k were taken (or k is 0
 * or larger than BOUNDARY_READINGS_MAX). */
bool boundary_floor_get(const struct boundary_floor *b, unsigned k, uint64_t *ret);
