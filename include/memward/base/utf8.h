/* UTF-8 for the text memward writes out (YAML dumps, JSON status): strings from
 * outside (worker STATUS= text, config values) may hold anything. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decodes one character of the NUL-terminated string s into ret (may be NULL).
 * Returns its length (1..4), or 0 when s does not start with a valid, shortest-form,
 * non-surrogate sequence. A NUL byte ends any sequence, so it never reads past it. */
size_t utf8_decode(const unsigned char *s, uint32_t *ret);

/* Writes code point cp (at most 0x10FFFF) as UTF-8 into out, which has room for 4
 * bytes, without a NUL. Returns the length written, 1..4. The caller keeps surrogates
 * and NUL out where they do not belong (json_parse() writes U+FFFD for them). */
size_t utf8_encode(uint32_t cp, char *out);

/* The length of s[0..length) cut to at most max bytes without ending inside a UTF-8
 * sequence: a text cut to fit a buffer loses whole characters, never leaves half of one
 * (invalid UTF-8 to whatever reads it later). Bytes that are not UTF-8 in the first place
 * are cut anywhere. Reads only s[0..length). */
size_t utf8_truncate(const char *s, size_t length, size_t max);

/* Writes s as a JSON string literal, quotes included, in pieces through out(): '"', '\\'
 * and control characters escaped, and each byte that does not start a valid sequence as
 * U+FFFD, so the result is valid JSON and valid UTF-8 whatever s holds (STATUS= text is
 * the worker's, and nothing promises UTF-8). NULL is written as "". */
void utf8_json_string(const char *s, void (*out)(void *userdata, const char *p, size_t n), void *userdata);
