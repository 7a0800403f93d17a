/* The JSON document of /status, which `memward status` prints as a table (or passes
 * on with --json): the supervisor, every worker with its memory, the last recycles and
 * the recycle counters.
 *
 * Pure, like the exposition: it reads a struct supervisor as the last sample left it
 * and writes into a text buffer. Strings from outside (a worker's STATUS= text) are
 * escaped so that the document is valid JSON and valid UTF-8 whatever they hold. */
#pragma once

#include "memward/base/text_buffer.h"
#include "memward/base/units.h"

struct supervisor;

/* now is CLOCK_MONOTONIC, realtime its CLOCK_REALTIME twin. The document ends in a
 * newline. A buffer too small is marked failed (text_buffer.h). */
void status_json_render(const struct supervisor *s, usec_t now, usec_t realtime, struct text_buffer *b);
