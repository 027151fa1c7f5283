/* map.c -- the CLI's string-keyed hash map (cli.h): chained buckets, FNV-1a,
 * the bucket array allocated on the first use. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/mem.h"

#define S_BUCKETS 65536

static size_t s_bucket(const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *s = key; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % S_BUCKETS;
}

/* Where `key`'s entry is linked, or would be. */
static cli_map_entry_t **s_slot(cli_map_t *m, const char *key)
{
    if (!m->buckets) m->buckets = mg_calloc(S_BUCKETS, sizeof *m->buckets);
    cli_map_entry_t **p = &m->buckets[s_bucket(key)];
    while (*p && strcmp((*p)->key, key) != 0) p = &(*p)->next;
    return p;
}

cli_map_entry_t *cli_map_get(cli_map_t *m, const char *key)
{
    return *s_slot(m, key);
}

cli_map_entry_t *cli_map_put(cli_map_t *m, const char *key, size_t size)
{
    cli_map_entry_t **p = s_slot(m, key);
    if (!*p) {
        *p = mg_calloc(1, size);
        (*p)->key = mg_strdup(key);
        m->count++;
    }
    return *p;
}

static void s_free(cli_map_entry_t *e, void (*drop)(cli_map_entry_t *))
{
    if (drop) drop(e);
    free(e->key);
    free(e);
}

void cli_map_remove(cli_map_t *m, const char *key, void (*drop)(cli_map_entry_t *))
{
    cli_map_entry_t **p = s_slot(m, key), *e = *p;
    if (!e) return;
    *p = e->next;
    s_free(e, drop);
    m->count--;
}

void cli_map_clear(cli_map_t *m, void (*drop)(cli_map_entry_t *))
{
    if (!m->buckets) return;
    for (size_t b = 0; b < S_BUCKETS; b++) {
        while (m->buckets[b]) {
            cli_map_entry_t *e = m->buckets[b];
            m->buckets[b] = e->next;
            s_free(e, drop);
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->count = 0;
}

cli_map_entry_t *cli_map_next(const cli_map_t *m, const cli_map_entry_t *e)
{
    if (!m->buckets) return NULL;
    if (e && e->next) return e->next;
    for (size_t b = e ? s_bucket(e->key) + 1 : 0; b < S_BUCKETS; b++)
        if (m->buckets[b]) return m->buckets[b];
    return NULL;
}
