/* A growing, bounded text buffer on the heap: what the endpoint renders into (the
 * exposition, /status), freed after the response, so an idle memward pays nothing for
 * it; what a whole file (read_full_file_at()) and the answer to `memward status` are
 * read into.
 *
 * Appends never fail halfway: once an append would pass limit (or malloc fails) the
 * buffer is marked failed, later appends are no-ops and text_buffer_finish() reports
 * it. So a writer appends without checking each step and looks once, at the end. */
#pragma once

#include <stddef.h>

#include "memward/base/macro.h"

struct text_buffer {
        char *data;                     /* NUL-terminated once anything was appended */
        size_t length;
        size_t allocated;
        size_t limit;                   /* the text and its NUL fit in this many bytes */
        int error;                      /* 0, -ENOMEM or -E2BIG */
};

/* An empty buffer that will hold at most limit - 1 bytes of text; allocates nothing yet. */
void text_buffer_init(struct text_buffer *b, size_t limit);
/* Frees the text; b is empty (limit 0) afterwards. */
void text_buffer_done(struct text_buffer *b);

void text_buffer_append(struct text_buffer *b, const char *s, size_t n);
void text_buffer_printf(struct text_buffer *b, const char *format, ...) _printf_(2, 3);
/* Marks b failed with error (a negative errno) when something the text needs could not
 * be had (malloc of a helper array); the first error stays. */
void text_buffer_fail(struct text_buffer *b, int error);
/* s as a JSON string literal (utf8_json_string()): valid JSON whatever bytes s holds. */
void text_buffer_json_string(struct text_buffer *b, const char *s);

/* Hands the text (NUL-terminated, "" when nothing was appended) over: 0 with *ret_data
 * (the caller's to free) and *ret_length set, or the error, -E2BIG or -ENOMEM (-EINVAL
 * for a format vsnprintf() refused). b is empty afterwards either way. */
int text_buffer_finish(struct text_buffer *b, char **ret_data, size_t *ret_length);
