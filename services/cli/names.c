/* names.c -- what staff call the things events refer to by id: the title of
 * a need, an offer or a cooperation proposal, the name of a structure, for
 * the French text of `tail` and `journal` (text.c).
 *
 * Cheapest source first: what earlier events of the same run stated
 * (cli_names_remember), then the notifier's copies in Redis, one HGET each
 * (mg:notifier:need:<id> title, mg:notifier:offer:<id> title,
 * mg:notifier:coop:<id> title, mg:notifier:structure:<sid> name; see
 * docs/redis-keys.md). Answers are cached, misses too, so an id costs at
 * most one round trip per run. The cache is emptied when it reaches
 * S_MAX_NAMES entries: a long journal costs lookups again, never unbounded
 * memory. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/mem.h"

#define S_MAX_NAMES 65536

/* Where each kind of name is kept: the key prefix and the hash field. */
static const struct {
    const char *prefix, *field;
} s_sources[] = {
    [CLI_NAME_NEED] = {"mg:notifier:need:", "title"},
    [CLI_NAME_OFFER] = {"mg:notifier:offer:", "title"},
    [CLI_NAME_PROPOSAL] = {"mg:notifier:coop:", "title"},
    [CLI_NAME_STRUCTURE] = {"mg:notifier:structure:", "name"},
};

/* An entry of the cache, by its Redis key (which says the kind and the id). */
typedef struct {
    cli_map_entry_t entry;
    char *name; /* NULL: looked up, unknown */
} s_name_t;

struct cli_names {
    cli_map_t map;
};

cli_names_t *cli_names_new(void)
{
    return mg_calloc(1, sizeof(cli_names_t));
}

static void s_name_drop(cli_map_entry_t *e)
{
    free(((s_name_t *)e)->name);
}

void cli_names_destroy(cli_names_t **self_p)
{
    if (!*self_p) return;
    cli_map_clear(&(*self_p)->map, s_name_drop);
    free(*self_p);
    *self_p = NULL;
}

/* Set the name of `key` (NULL or empty: unknown). Returns its entry. */
static s_name_t *s_put(cli_names_t *self, const char *key, const char *name)
{
    if (self->map.count == S_MAX_NAMES && !cli_map_get(&self->map, key))
        cli_map_clear(&self->map, s_name_drop);
    s_name_t *n = (s_name_t *)cli_map_put(&self->map, key, sizeof(s_name_t));
    free(n->name);
    n->name = name && *name ? mg_strdup(name) : NULL;
    return n;
}

/* The cache key of (kind, id) into `key`; -1 if it does not fit. */
static int s_key(cli_name_kind_t kind, const char *id, char *key, size_t len)
{
    int n = snprintf(key, len, "%s%s", s_sources[kind].prefix, id);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static void s_remember(cli_names_t *self, cli_name_kind_t kind, const char *id, const char *name)
{
    char key[160];
    if (id && *id && name && *name && s_key(kind, id, key, sizeof key) == 0) s_put(self, key, name);
}

void cli_names_remember(cli_names_t *self, const mg_envelope_t *env)
{
    const Maillage__V1__Structure *st = NULL;
    const Maillage__V1__Need *nd = NULL;
    const Maillage__V1__Offer *of = NULL;
    if (!self) return;
    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED: st = env->member_joined->structure; break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED: st = env->member_updated->structure; break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED: nd = env->need_reported->need; break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED: nd = env->need_updated->need; break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED: of = env->offer_published->offer; break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED: of = env->offer_updated->offer; break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED:
        s_remember(self, CLI_NAME_PROPOSAL, env->cooperation_proposed->proposal_id,
                   env->cooperation_proposed->title);
        break;
    default: break;
    }
    if (st) s_remember(self, CLI_NAME_STRUCTURE, st->structure_id, st->name);
    if (nd) s_remember(self, CLI_NAME_NEED, nd->need_id, nd->title);
    if (of) s_remember(self, CLI_NAME_OFFER, of->offer_id, of->title);
}

const char *cli_names_get(cli_names_t *self, redisContext *redis, cli_name_kind_t kind, const char *id)
{
    char key[160];
    if (!self || !id || !*id || s_key(kind, id, key, sizeof key) != 0) return NULL;
    s_name_t *entry = (s_name_t *)cli_map_get(&self->map, key);
    if (!entry && redis) {
        /* An error (no such permission, a lost connection) is a miss: the
         * line then shows the id, as before the notifier knew the name. */
        redisReply *r = redisCommand(redis, "HGET %s %s", key, s_sources[kind].field);
        entry = s_put(self, key, r && r->type == REDIS_REPLY_STRING ? r->str : NULL);
        if (r) freeReplyObject(r);
    }
    return entry ? entry->name : NULL;
}
