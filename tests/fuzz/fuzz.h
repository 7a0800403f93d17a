/* Shared by every fuzz target and by the replay driver.
 *
 * A target is one LLVMFuzzerTestOneInput() per parser of outside input. It is linked
 * twice: with libFuzzer (`make fuzz`, clang -fsanitize=fuzzer,address,undefined) and with
 * tests/fuzz/replay.c (`make fuzz-replay`, part of `make check`, gcc with ASan/UBSan),
 * which feeds it every file of tests/fuzz/corpus/<target>/ and tests/fuzz/regressions/<target>/.
 *
 * Besides "does not crash", targets check the contracts the headers promise (output
 * parameters written only on success, results NUL-terminated and within bounds, values
 * that format back and parse to the same thing). A broken contract is reported with
 * FUZZ_CHECK, which aborts: libFuzzer then keeps the input as a crash artifact. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr)                                                                               \
        do {                                                                                           \
                if (!(expr)) {                                                                         \
                        fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__, __LINE__, #expr);    \
                        abort();                                                                       \
                }                                                                                      \
        } while (0)

/* The input as a NUL-terminated string, for parsers that take one. Inputs with an
 * embedded NUL are cut there, as a C caller (argv, a YAML scalar) would cut them. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

/* A string field filled by a parser must end within its buffer. */
static inline int fuzz_terminated(const char *buf, size_t size) {
        return memchr(buf, '\0', size) != NULL;
}

/* Byte pattern written into output parameters before a call, to tell "left alone" from
 * "written" after a failure. */
#define FUZZ_POISON 0xA5
