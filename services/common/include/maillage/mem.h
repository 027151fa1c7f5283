/* mem.h -- allocation that never returns NULL.
 *
 * Running out of memory is not a condition any Maillage daemon can recover
 * from meaningfully, so every allocation goes through these wrappers, which
 * log one line and abort on failure. Any thread. */
#ifndef MAILLAGE_MEM_H
#define MAILLAGE_MEM_H

#include <stddef.h>

/* Like malloc/calloc/realloc/strdup/strndup, but abort on failure.
 * Caller owns the result and frees it with free(). */
void *mg_malloc(size_t size);
void *mg_calloc(size_t count, size_t size);
void *mg_realloc(void *ptr, size_t size);
char *mg_strdup(const char *s);
char *mg_strndup(const char *s, size_t n);

/* printf into a new string. Caller owns the result. */
char *mg_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
