/* mem.c -- allocation wrappers that abort on failure.
 *
 * A daemon that cannot allocate cannot keep any of its promises (the journal
 * ack, the dedupe window), so the only honest reaction is to stop loudly and
 * let the supervisor restart it. */
#include "maillage/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Written with write(2) and no allocation, since the heap is what failed. */
static void s_oom(size_t size) {
    char line[96];
    int n = snprintf(line, sizeof line, "maillage: out of memory (%zu bytes), aborting\n", size);
    if (n > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)ignored;
    }
    abort();
}

void *mg_malloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) s_oom(size);
    return p;
}

void *mg_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) s_oom(count * size);
    return p;
}

void *mg_realloc(void *ptr, size_t size) {
    void *p = realloc(ptr, size ? size : 1);
    if (!p) s_oom(size);
    return p;
}

char *mg_strdup(const char *s) {
    size_t n = strlen(s);
    char *p = mg_malloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *mg_strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *p = mg_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *mg_asprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) abort(); /* an invalid format is a programmer error */
    char *p = mg_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
