/* `memward status`: fetches /status from a running memward and prints it as a table,
 * like `supervisorctl status`.
 *
 * It is a client of our own endpoint and nothing more: a blocking HTTP/1.0 GET over a
 * plain socket (libmicrohttpd is a server library; no new dependency for a client),
 * and a small JSON parser that is enough for the document status_json_render()
 * writes — and rejects, rather than guesses at, anything else. The parser and the table
 * are pure so they can be tested without a server. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum json_type {
        JSON_NULL,
        JSON_BOOL,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
};

struct json_value {
        enum json_type type;
        char *key;                      /* member name when inside an object */
        bool boolean;
        double number;
        char *string;                   /* decoded, NUL-terminated (JSON_STRING) */
        struct json_value *items;       /* JSON_ARRAY elements, JSON_OBJECT members */
        size_t n_items;
};

/* Nesting deeper than this is rejected (-ELOOP), as is trailing garbage (-EBADMSG). */
#define JSON_DEPTH_MAX 16

/* Parses one JSON document. Returns 0, -EBADMSG on a syntax error, -ELOOP, -ENOMEM. */
int json_parse(const char *text, size_t length, struct json_value **ret);
void json_free(struct json_value *v);

/* Member of an object (NULL when absent or v is not an object). */
const struct json_value *json_get(const struct json_value *v, const char *key);
/* Typed accessors; the default when absent or of another type. */
const char *json_get_string(const struct json_value *v, const char *key, const char *def);
double json_get_number(const struct json_value *v, const char *key, double def);

/* Splits a status URL: "http://HOST[:PORT][/PREFIX]" (HOST may be [V6]), "HOST:PORT",
 * "unix:/path" (also "unix:@abstract"). The request path is PREFIX + "/status" unless
 * PREFIX already ends in "/status". Returns 0 or -EINVAL. */
struct status_url {
        char host[256];                 /* "" for unix sockets */
        char port[8];
        char unix_path[108];
        char path[512];
};
int status_url_parse(const char *url, struct status_url *ret);

/* Prints the /status document as a summary line and an aligned table. Returns 0, or
 * -EBADMSG when the document does not have the expected shape. */
int status_print_table(const struct json_value *doc, FILE *f);

/* "45s", "12m03s", "3h04m", "2d05h". */
const char *status_format_age(char *buf, size_t size, double seconds);
/* "812B", "640KiB", "45.2MiB", "1.50GiB" (three significant digits); "-" for a negative value. */
const char *status_format_bytes(char *buf, size_t size, double bytes);

/* The subcommand: argv[0] is "status". Returns the exit code: 0, 1 when memward cannot
 * be reached or answers wrongly, 2 on bad usage. */
int status_main(int argc, char *argv[]);
