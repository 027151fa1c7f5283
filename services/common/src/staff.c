/* staff.c -- a staff record's list fields (staff.h). */
#include "maillage/staff.h"

#include <stdio.h>
#include <string.h>

#include "maillage/french.h"

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

/* Whether `code` is a department an item can be in: that of a commune of
 * the table (an item's department is its commune's). */
static int s_department_known(const mg_communes_t *communes, const char *code) {
    if (!communes) return mg_fr_department(code) != NULL;
    for (size_t i = 0; i < mg_communes_count(communes); i++)
        if (strcmp(mg_communes_at(communes, i)->department, code) == 0) return 1;
    return 0;
}

int mg_staff_scope_unknown(const char *key, const char *value, const mg_taxonomy_t *tax,
                           const mg_communes_t *communes, char *bad, size_t badlen) {
    int categories = strcmp(key, "categories") == 0;
    if ((!categories && strcmp(key, "departments") != 0) || (categories && !tax)) return 0;
    size_t len;
    for (const char *t, *p = value ? value : ""; (t = mg_staff_list_next(&p, &len));) {
        char item[128];
        snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), t);
        int known = len < sizeof item &&
                    (categories ? mg_taxonomy_label(tax, item) != NULL : s_department_known(communes, item));
        if (!known) {
            snprintf(bad, badlen, "%s", item);
            return 1;
        }
    }
    return 0;
}

const char mg_staff_mark_read_script[] =
    "if redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "  redis.call('HSET', KEYS[2], 'read', '1')\n"
    "  return 1\n"
    "end\n"
    "return 0\n";
