/* See utf8.h. */
#include <stdio.h>

#include "memward/base/utf8.h"

size_t utf8_decode(const unsigned char *s, uint32_t *ret) {
        uint32_t cp;
        size_t n;

        if (s[0] < 0x80) {
                if (ret)
                        *ret = s[0];
                return 1;
        }
        if ((s[0] & 0xE0) == 0xC0)
                n = 2, cp = s[0] & 0x1F;
        else if ((s[0] & 0xF0) == 0xE0)
                n = 3, cp = s[0] & 0x0F;
        else if ((s[0] & 0xF8) == 0xF0)
                n = 4, cp = s[0] & 0x07;
        else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        if (ret)
                *ret = cp;
        return n;
}

size_t utf8_encode(uint32_t cp, char *out) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xC0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xE0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

size_t utf8_truncate(const char *s, size_t length, size_t max) {
        const unsigned char *u = (const unsigned char *) s;

        if (length <= max)
                return length;
        /* u[max] is the first byte left out. When it continues a sequence, the lead byte of
         * that sequence goes too; a sequence is at most 4 bytes long. */
        for (size_t back = 0; back < 4 && back <= max; back++) {
                unsigned char c = u[max - back];
                if ((c & 0xC0) != 0x80)
                        return back > 0 && c >= 0xC0 ? max - back : max;
        }
        return max;
}

void utf8_json_string(const char *s, void (*out)(void *userdata, const char *p, size_t n), void *userdata) {
        const unsigned char *p = (const unsigned char *) (s ?: "");

        out(userdata, "\"", 1);
        while (*p) {
                const unsigned char *run = p;
                size_t n;

                /* Copy plain runs in one go. */
                while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
                        p++;
                if (p > run)
                        out(userdata, (const char *) run, (size_t) (p - run));
                if (!*p)
                        break;
                if (*p == '"' || *p == '\\') {
                        char esc[2] = { '\\', (char) *p };
                        out(userdata, esc, 2);
                        p++;
                } else if (*p == '\n') {
                        out(userdata, "\\n", 2);
                        p++;
                } else if (*p < 0x20) {
                        char esc[7];
                        snprintf(esc, sizeof esc, "\\u%04x", *p);
                        out(userdata, esc, 6);
                        p++;
                } else if ((n = utf8_decode(p, NULL)) > 0) {
                        out(userdata, (const char *) p, n);
                        p += n;
                } else {
                        out(userdata, "\\ufffd", 6);
                        p++;
                }
        }
        out(userdata, "\"", 1);
}
