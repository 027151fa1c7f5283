/* staff.c -- a staff record's list fields (staff.h). */
#include "maillage/staff.h"

#include <string.h>

static const char s_separators[] = ", \t";

const char *mg_staff_list_next(const char **cursor, size_t *len) {
    const char *p = *cursor + strspn(*cursor, s_separators);
    size_t n = strcspn(p, s_separators);
    *cursor = p + n;
    *len = n;
    return n ? p : NULL;
}

int mg_staff_list_has(const char *list, const char *item) {
    size_t want = strlen(item), len;
    for (const char *t, *p = list ? list : ""; (t = mg_staff_list_next(&p, &len));)
        if (len == want && memcmp(t, item, len) == 0) return 1;
    return 0;
}

const char mg_staff_mark_read_script[] =
    "if redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  redis.call('HSET', KEYS[2], 'read', '1')\n"
    "  return 1\n"
    "end\n"
    "return 0\n";
