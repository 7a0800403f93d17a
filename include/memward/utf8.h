/* UTF-8 for the text memward writes out (YAML dumps, JSON status): strings from
 * outside (worker STATUS= text, config values) may hold anything. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decodes one character of the NUL-terminated string s into ret (may be NULL).
 * Returns its length (1..4), or 0 when s does not start with a valid, shortest-form,
 * non-surrogate sequence. A NUL byte ends any sequence, so it never reads past it. */
size_t utf8_decode(const unsigned char *s, uint32_t *ret);
