/* fuzz_staff_list.c -- libFuzzer target for a staff record's list fields
 * (staff.h), as an operator may type them.
 *
 * Whatever the bytes (up to the first NUL, as Redis hands a field to C):
 * every item is non-empty and holds no separator, the items in order are
 * the value without its separators, and mg_staff_list_has() finds each
 * item and nothing that is only a part of one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/staff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *value = malloc(size + 1), *kept = malloc(size + 1), *joined = malloc(size + 1);
    if (!value || !kept || !joined) abort();
    memcpy(value, data, size);
    value[size] = '\0';
    size_t nk = 0, nj = 0, len;
    for (const char *c = value; *c; c++)
        if (!strchr(", \t", *c)) kept[nk++] = *c;
    for (const char *t, *p = value; (t = mg_staff_list_next(&p, &len));) {
        if (len == 0 || memchr(t, ',', len) || memchr(t, ' ', len) || memchr(t, '\t', len)) abort();
        memcpy(joined + nj, t, len);
        nj += len;
        char *item = strndup(t, len);
        if (!item || !mg_staff_list_has(value, item)) abort();
        if (len > 1) {
            item[len - 1] = '\0'; /* a part of an item is found only if it is an item too */
            int whole = 0;
            size_t l2;
            for (const char *u, *q = value; (u = mg_staff_list_next(&q, &l2));)
                whole |= l2 == len - 1 && memcmp(u, item, l2) == 0;
            if (mg_staff_list_has(value, item) != whole) abort();
        }
        free(item);
    }
    if (nj != nk || memcmp(joined, kept, nk) != 0) abort();
    free(value);
    free(kept);
    free(joined);
    return 0;
}
