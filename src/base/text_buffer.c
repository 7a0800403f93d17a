/* See text_buffer.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/base/text_buffer.h"
#include "memward/base/utf8.h"

#define TEXT_BUFFER_INITIAL 4096U

void text_buffer_init(struct text_buffer *b, size_t limit) {
        *b = (struct text_buffer) { .limit = limit };
}

void text_buffer_done(struct text_buffer *b) {
        free(b->data);
        *b = (struct text_buffer) {};
}

/* Room for n more bytes and the terminating NUL. */
static bool text_buffer_reserve(struct text_buffer *b, size_t n) {
        if (b->error)
                return false;
        if (n >= b->limit || b->length + n + 1 > b->limit) {
                b->error = -E2BIG;
                return false;
        }
        size_t need = b->length + n + 1;
        if (need <= b->allocated)
                return true;
        size_t a = b->allocated ?: TEXT_BUFFER_INITIAL;
        while (a < need)
                a *= 2;
        if (a > b->limit)
                a = b->limit;
        char *p = realloc(b->data, a);
        if (!p) {
                b->error = -ENOMEM;
                return false;
        }
        b->data = p;
        b->allocated = a;
        return true;
}

void text_buffer_append(struct text_buffer *b, const char *s, size_t n) {
        if (!text_buffer_reserve(b, n))
                return;
        memcpy(b->data + b->length, s, n);
        b->length += n;
        b->data[b->length] = '\0';
}

void text_buffer_printf(struct text_buffer *b, const char *format, ...) {
        va_list ap;
        int n;

        if (b->error)
                return;
        /* Try the room there is first: nearly every line fits without a second pass. */
        size_t room = b->allocated > b->length ? b->allocated - b->length : 0;
        va_start(ap, format);
        n = vsnprintf(room ? b->data + b->length : NULL, room, format, ap);
        va_end(ap);
        if (n < 0) {
                b->error = -EINVAL;
                return;
        }
        if ((size_t) n < room) {
                b->length += (size_t) n;
                return;
        }
        if (!text_buffer_reserve(b, (size_t) n))
                return;
        va_start(ap, format);
        (void) vsnprintf(b->data + b->length, (size_t) n + 1, format, ap);
        va_end(ap);
        b->length += (size_t) n;
}

void text_buffer_fail(struct text_buffer *b, int error) {
        if (!b->error)
                b->error = error;
}

static void text_buffer_write(void *userdata, const char *s, size_t n) {
        text_buffer_append(userdata, s, n);
}

void text_buffer_json_string(struct text_buffer *b, const char *s) {
        utf8_json_string(s, text_buffer_write, b);
}

int text_buffer_finish(struct text_buffer *b, char **ret_data, size_t *ret_length) {
        if (!b->error && !b->data)
                text_buffer_append(b, "", 0);
        if (b->error) {
                int r = b->error;
                text_buffer_done(b);
                return r;
        }
        *ret_data = TAKE_PTR(b->data);
        *ret_length = b->length;
        *b = (struct text_buffer) {};
        return 0;
}
