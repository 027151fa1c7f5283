/* query_items.c -- structures, needs, offers and matches, read from the
 * matcher's records (docs/redis-keys.md, "Matcher"):
 *
 *   GET /v1/structures[?cursor=&limit=]   SCAN of mg:structure:* (hashes only)
 *   GET /v1/structures/{sid}              mg:structure:<sid> + mg:contact:<sid>, and its
 *                                         open items: one SSCAN page of
 *                                         mg:structure:<sid>:items, titles from
 *                                         mg:notifier:need:/offer:
 *   GET /v1/needs[?category=&department=&cursor=&limit=], GET /v1/offers[...]
 *                                         ZSCAN of mg:open:<kind>:<cat> (the open ones)
 *   GET /v1/needs/{nid}, GET /v1/offers/{oid}
 *   GET /v1/needs/{nid}/matches, GET /v1/offers/{oid}/matches
 *                                         mg:nm:<nid> / mg:om:<oid> by score
 *   GET /v1/matches/{mid}                 mg:mid:<mid> -> mg:pair:, mg:mexp:, mg:pfb: (the caller's fb:, fc:)
 *
 * A match's "rank" is its current place among its need's open matches
 * (ZREVRANK in mg:nm:<nid>: by score, ties in the sorted set's own order),
 * not the rank its match.found carried: that one is the rank at the
 * proposal, and a better offer coming later sends no revision of it.
 *
 * A need or offer record holds the matching view of the item (title, tags
 * and description folded into keywords); what staff read (title,
 * description, tags, quantity, ...) comes from the journal entry at the
 * record's sequence while the journal still holds it, else the title from
 * the notifier's mg:notifier:need:/offer: hash (description then absent).
 * A closed item's record is a tombstone without its fields: they come from
 * the notifier's hash as well. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/envelope.h"
#include "maillage/french.h"
#include "maillage/json.h"
#include "maillage/mem.h"
#include "query.h"

enum { S_NEED = 0, S_OFFER = 1 };
static const char *const s_kind_name[2] = {"need", "offer"};

/* ---- records ---------------------------------------------------------------------- */

/* mg:need:<nid> / mg:offer:<oid>: seq|open|sid|cat|com|dep|epci|until|at|terr|flags|<pb> */
typedef struct {
    int present;
    long long seq;
    int open;
    char sid[MG_ID_MAX + 1], cat[64], com[8], dep[4], epci[16];
    long until; /* day number, -1 = none */
    long long at;
    char *terr; /* an offer's territory entries, space-separated: dep:<d>, epci:<e>, <commune> */
    uint8_t *pb;
    size_t pb_len;
} s_record_t;

static void s_copy(char *dst, size_t dstlen, const char *src, size_t len) {
    if (len >= dstlen) len = dstlen - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static void s_record_clear(s_record_t *rec) {
    free(rec->terr);
    free(rec->pb);
    memset(rec, 0, sizeof(*rec));
    rec->until = -1;
}

/* Whether an item is in department `dep`: by its own department, or, for
 * an offer, by an entry of the territory it serves (dep:<d>, an EPCI with a
 * commune in <d>, a commune of <d>), as an offer placed by its territory
 * only has no department of its own. */
static int s_record_in_department(mg_gateway_t *gw, const s_record_t *rec, const char *dep) {
    if (strcmp(rec->dep, dep) == 0) return 1;
    for (const char *e = rec->terr; e && *e;) {
        size_t n = strcspn(e, " ");
        char entry[32];
        s_copy(entry, sizeof(entry), e, n);
        e += n + (e[n] == ' ');
        if (strncmp(entry, "dep:", 4) == 0) {
            if (strcmp(entry + 4, dep) == 0) return 1;
        } else if (strncmp(entry, "epci:", 5) == 0) {
            if (gq_epci_in_department(gw, entry + 5, dep)) return 1;
        } else {
            const mg_commune_t *c = mg_communes_find(gw_communes(gw), entry);
            if (c && strcmp(c->department, dep) == 0) return 1;
        }
    }
    return 0;
}

static int s_record_parse(const redisReply *v, s_record_t *rec) {
    s_record_clear(rec);
    if (!v || v->type != REDIS_REPLY_STRING) return -1;
    const char *p = v->str, *end = v->str + v->len;
    const char *f[11];
    size_t len[11];
    for (int i = 0; i < 11; i++) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        if (!bar) return -1;
        f[i] = p;
        len[i] = (size_t)(bar - p);
        p = bar + 1;
    }
    char num[24];
    s_copy(num, sizeof(num), f[0], len[0]);
    rec->seq = strtoll(num, NULL, 10);
    rec->open = len[1] == 1 && f[1][0] == '1';
    s_copy(rec->sid, sizeof(rec->sid), f[2], len[2]);
    s_copy(rec->cat, sizeof(rec->cat), f[3], len[3]);
    s_copy(rec->com, sizeof(rec->com), f[4], len[4]);
    s_copy(rec->dep, sizeof(rec->dep), f[5], len[5]);
    s_copy(rec->epci, sizeof(rec->epci), f[6], len[6]);
    s_copy(num, sizeof(num), f[7], len[7]);
    rec->until = len[7] ? strtol(num, NULL, 10) : -1;
    s_copy(num, sizeof(num), f[8], len[8]);
    rec->at = strtoll(num, NULL, 10);
    rec->terr = mg_strndup(f[9], len[9]);
    rec->pb_len = (size_t)(end - p);
    rec->pb = rec->pb_len ? mg_malloc(rec->pb_len) : NULL;
    if (rec->pb_len) memcpy(rec->pb, p, rec->pb_len);
    rec->present = 1;
    return 0;
}

/* mg:pair:<nid>|<oid>: rev|score|ret|mid|dist|ns|os|cat|dep|at[|pcat|pcom] */
typedef struct {
    int present;
    unsigned rev;
    double score, dist;
    int retired;
    char mid[MG_ID_MAX + 1], ns[MG_ID_MAX + 1], os[MG_ID_MAX + 1], cat[64], dep[4], com[8];
    long long at;
} s_pair_t;

static int s_pair_parse(const char *v, s_pair_t *p) {
    memset(p, 0, sizeof(*p));
    if (!v) return -1;
    const char *f[12];
    size_t len[12];
    size_t n = 0;
    const char *s = v;
    while (n < 12) {
        const char *bar = strchr(s, '|');
        f[n] = s;
        len[n] = bar ? (size_t)(bar - s) : strlen(s);
        n++;
        if (!bar) break;
        s = bar + 1;
    }
    if (n < 10) return -1;
    char num[32];
    s_copy(num, sizeof(num), f[0], len[0]);
    p->rev = (unsigned)strtoul(num, NULL, 10);
    s_copy(num, sizeof(num), f[1], len[1]);
    p->score = strtod(num, NULL);
    p->retired = len[2] == 1 && f[2][0] == '1';
    s_copy(p->mid, sizeof(p->mid), f[3], len[3]);
    s_copy(num, sizeof(num), f[4], len[4]);
    p->dist = strtod(num, NULL);
    s_copy(p->ns, sizeof(p->ns), f[5], len[5]);
    s_copy(p->os, sizeof(p->os), f[6], len[6]);
    s_copy(p->cat, sizeof(p->cat), f[7], len[7]);
    s_copy(p->dep, sizeof(p->dep), f[8], len[8]);
    s_copy(num, sizeof(num), f[9], len[9]);
    p->at = strtoll(num, NULL, 10);
    if (n == 12) s_copy(p->com, sizeof(p->com), f[11], len[11]);
    p->present = 1;
    return 0;
}

static void s_set_time(json_t *obj, const char *key, long long ms) {
    if (ms <= 0) return;
    char when[32];
    gq_rfc3339(ms, when);
    json_object_set_new(obj, key, json_string(when));
}

static void s_set_seq(json_t *obj, const char *key, long long seq) {
    char text[24];
    snprintf(text, sizeof(text), "%lld", seq);
    json_object_set_new(obj, key, json_string(text));
}

/* ---- matches ------------------------------------------------------------------------ */

typedef struct {
    char nid[MG_ID_MAX + 1], oid[MG_ID_MAX + 1];
    s_pair_t pair;
    long long rank;                          /* among the need's open matches, 1 = best; 0 when not open */
    char *status, *comment, *need_title, *offer_title; /* owned; status and comment: the caller's feedback */
} s_match_t;

typedef struct s_matches s_matches_t;
/* Called once with the loaded matches (json per match in `out`, an array
 * the callback steals), or out == NULL when Redis failed. */
typedef void (*s_matches_fn)(s_matches_t *m, json_t *out);

struct s_matches {
    gw_request_t *r;
    s_match_t *items;
    size_t count;
    s_matches_fn done;
    /* the route's own context */
    int kind;
    char id[MG_ID_MAX + 1];
    long limit;
    /* a list's page: after the cursor's (score, id), `batch` entries read
     * from `offset` among those at or below its score */
    int has_cursor;
    double cursor_score;
    char cursor_id[MG_ID_MAX + 1];
    long batch, offset;
    char next[40 + MG_ID_MAX]; /* nextCursor, "" at the end */
};

static void s_matches_free(void *arg) {
    s_matches_t *m = arg;
    for (size_t i = 0; i < m->count; i++) {
        free(m->items[i].status);
        free(m->items[i].comment);
        free(m->items[i].need_title);
        free(m->items[i].offer_title);
    }
    free(m->items);
    free(m);
}

static json_t *s_match_json(mg_gateway_t *gw, const s_match_t *mt, const redisReply *found_pb,
                            const redisReply *ns_pb, const redisReply *os_pb) {
    const s_pair_t *p = &mt->pair;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(p->mid));
    json_object_set_new(o, "needId", json_string(mt->nid));
    json_object_set_new(o, "offerId", json_string(mt->oid));
    json_object_set_new(o, "score", json_real(p->score));
    json_object_set_new(o, "distanceKm", json_real(p->dist));
    gq_set_category(gw, o, p->cat);
    if (p->dep[0]) {
        gq_set_str(o, "department", p->dep);
        gq_set_str(o, "departmentName", mg_fr_department(p->dep));
    }
    if (p->com[0]) {
        const mg_commune_t *c = mg_communes_find(gw_communes(gw), p->com);
        gq_set_str(o, "commune", p->com);
        if (c) gq_set_str(o, "communeName", c->name);
    }
    gq_set_str(o, "needStructureId", p->ns);
    gq_set_str(o, "offerStructureId", p->os);
    char *name = gq_structure_name(ns_pb);
    gq_set_str(o, "needStructureName", name);
    free(name);
    name = gq_structure_name(os_pb);
    gq_set_str(o, "offerStructureName", name);
    free(name);
    gq_set_str(o, "needTitle", mt->need_title);
    gq_set_str(o, "offerTitle", mt->offer_title);
    json_object_set_new(o, "retired", json_boolean(p->retired));
    json_object_set_new(o, "revision", json_integer(p->rev));
    if (mt->rank > 0) json_object_set_new(o, "rank", json_integer(mt->rank));
    s_set_time(o, "proposedAt", p->at);
    json_object_set_new(o, "status", json_string(gq_status_name(mt->status)));
    gq_set_str(o, "comment", mt->comment);
    Maillage__V1__MatchFound *mf = NULL;
    if (found_pb && found_pb->type == REDIS_REPLY_STRING)
        mf = maillage__v1__match_found__unpack(NULL, found_pb->len, (const uint8_t *)found_pb->str);
    json_t *components = json_object();
    if (mf) {
        json_object_set_new(o, "explanation", json_string(mf->explanation ? mf->explanation : ""));
        for (size_t i = 0; i < mf->n_components; i++) {
            const Maillage__V1__ScoreComponent *c = mf->components[i];
            if (!c->name || !*c->name) continue;
            json_t *one = json_pack("{s:f, s:f}", "value", c->value, "weight", c->weight);
            gq_set_str(one, "detail", c->detail);
            json_object_set_new(components, c->name, one);
        }
        json_object_set_new(o, "found", mg_json_from_message(&mf->base));
        maillage__v1__match_found__free_unpacked(mf, NULL);
    } else {
        /* A pair proposed before mg:mexp existed: no explanation kept. */
        json_object_set_new(o, "explanation", json_string(""));
        json_object_set_new(o, "found", json_null());
    }
    json_object_set_new(o, "components", components);
    return o;
}

static void s_on_matches_found(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_matches_t *m = privdata;
    (void)redis;
    size_t live = 0;
    for (size_t i = 0; i < m->count; i++)
        live += m->items[i].pair.present;
    if (!gq_exec_ok(reply, 3 * live)) {
        m->done(m, NULL);
        return;
    }
    json_t *out = json_array();
    size_t k = 0;
    for (size_t i = 0; i < m->count; i++) {
        if (!m->items[i].pair.present) continue;
        json_array_append_new(out, s_match_json(m->r->gw, &m->items[i], gq_at(reply, 3 * k),
                                                gq_at(reply, 3 * k + 1), gq_at(reply, 3 * k + 2)));
        k++;
    }
    m->done(m, out);
}

static char *s_dup_str(const redisReply *r) {
    const char *s = gq_str(r);
    return s && *s ? mg_strdup(s) : NULL;
}

static void s_on_pairs(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_matches_t *m = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, 5 * m->count)) {
        m->done(m, NULL);
        return;
    }
    gq_tx_t tx;
    gq_tx_begin(&tx, m->r->gw);
    for (size_t i = 0; i < m->count; i++) {
        s_match_t *mt = &m->items[i];
        s_pair_parse(gq_str(gq_at(reply, 5 * i)), &mt->pair);
        const redisReply *fb = gq_at(reply, 5 * i + 1); /* [outcome, comment] */
        mt->status = s_dup_str(gq_at(fb, 0));
        mt->comment = s_dup_str(gq_at(fb, 1));
        mt->need_title = s_dup_str(gq_at(reply, 5 * i + 2));
        mt->offer_title = s_dup_str(gq_at(reply, 5 * i + 3));
        const redisReply *rank = gq_at(reply, 5 * i + 4); /* nil when not open */
        mt->rank = rank && rank->type == REDIS_REPLY_INTEGER ? rank->integer + 1 : 0;
        if (!mt->pair.present) continue;
        char key[200];
        snprintf(key, sizeof(key), "mg:mexp:%s", mt->pair.mid);
        gq_tx_add(&tx, "GET", key, NULL);
        snprintf(key, sizeof(key), "mg:structure:%s", mt->pair.ns);
        gq_tx_add(&tx, "HGET", key, "pb", NULL);
        snprintf(key, sizeof(key), "mg:structure:%s", mt->pair.os);
        gq_tx_add(&tx, "HGET", key, "pb", NULL);
    }
    if (!tx.failed && tx.count == 0) {
        m->done(m, json_array());
        return;
    }
    if (gq_tx_exec(&tx, s_on_matches_found, m) != 0) m->done(m, NULL);
}

/* Load m->items (nid, oid set): their pair records, the caller's feedback,
 * titles and current ranks, then explanations and structure names. m->done
 * runs once. */
static void s_matches_load(s_matches_t *m) {
    const char *staff = m->r->who.subject;
    gq_tx_t tx;
    gq_tx_begin(&tx, m->r->gw);
    for (size_t i = 0; i < m->count; i++) {
        const s_match_t *mt = &m->items[i];
        char key[200], field[100];
        snprintf(key, sizeof(key), "mg:pair:%s|%s", mt->nid, mt->oid);
        gq_tx_add(&tx, "GET", key, NULL);
        snprintf(key, sizeof(key), "mg:pfb:%s|%s", mt->nid, mt->oid);
        char comment_field[100];
        snprintf(field, sizeof(field), "fb:%s", staff);
        snprintf(comment_field, sizeof(comment_field), "fc:%s", staff);
        gq_tx_add(&tx, "HMGET", key, field, comment_field, NULL);
        snprintf(key, sizeof(key), "mg:notifier:need:%s", mt->nid);
        gq_tx_add(&tx, "HGET", key, "title", NULL);
        snprintf(key, sizeof(key), "mg:notifier:offer:%s", mt->oid);
        gq_tx_add(&tx, "HGET", key, "title", NULL);
        snprintf(key, sizeof(key), "mg:nm:%s", mt->nid);
        gq_tx_add(&tx, "ZREVRANK", key, mt->oid, NULL);
    }
    if (gq_tx_exec(&tx, s_on_pairs, m) != 0) m->done(m, NULL);
}

/* GET /v1/matches/{mid} */

static void s_match_done(s_matches_t *m, json_t *out) {
    if (!out) {
        gw_reply_unavailable(m->r, "match");
        return;
    }
    if (json_array_size(out) == 0) {
        json_decref(out);
        gw_reply_error(m->r, 404, "not_found", NULL, -1, "no match with this id");
        return;
    }
    json_t *one = json_incref(json_array_get(out, 0));
    json_decref(out);
    gw_reply_json(m->r, 200, one);
}

static void s_on_mid(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_matches_t *m = privdata;
    (void)redis;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        gw_reply_unavailable(m->r, "match");
        return;
    }
    const char *v = gq_str(reply);
    const char *bar = v ? strchr(v, '|') : NULL;
    if (!bar || (size_t)(bar - v) > MG_ID_MAX || strlen(bar + 1) > MG_ID_MAX) {
        gw_reply_error(m->r, 404, "not_found", NULL, -1, "no match with this id");
        return;
    }
    m->items = mg_calloc(1, sizeof(s_match_t));
    m->count = 1;
    s_copy(m->items[0].nid, sizeof(m->items[0].nid), v, (size_t)(bar - v));
    snprintf(m->items[0].oid, sizeof(m->items[0].oid), "%s", bar + 1);
    m->done = s_match_done;
    s_matches_load(m);
}

static void s_match_get(gw_request_t *r) {
    s_matches_t *m = gq_state_new(r, sizeof(*m), s_matches_free);
    m->r = r;
    char key[200];
    snprintf(key, sizeof(key), "mg:mid:%s", r->params[0]);
    if (mg_redis_command(gw_redis(r->gw), s_on_mid, m, "GET %s", key) != 0) gw_reply_unavailable(r, "match");
}

/* GET /v1/needs/{nid}/matches, GET /v1/offers/{oid}/matches
 *
 * Paged like the inbox, by position: a cursor is the last entry's
 * "<score>:<id>" in mg:nm:/mg:om: (score as %.17g, which reads back as the
 * same double), and the next page is what follows it in the sorted set's
 * order (score descending, then id descending), so matches proposed or
 * retired meanwhile never make a page skip or repeat one. */

/* Entries read per page beyond `limit`: one says whether more follow, the
 * others pass over entries of the cursor's score already shown. */
#define S_PAGE_EXTRA 17

/* Parse "<score>:<id>". Returns 0, -1 if malformed. */
static int s_match_cursor_parse(const char *text, double *score, char id[MG_ID_MAX + 1]) {
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : 0;
    /* Digits of a number as %.17g prints it: strtod would also take
     * blanks, "inf", "nan" and hexadecimal. */
    if (n == 0 || n > 32 || strspn(text, "0123456789.eE+-") != n) return -1;
    char num[33], *end;
    memcpy(num, text, n);
    num[n] = '\0';
    *score = strtod(num, &end);
    if (*end || !isfinite(*score) || !mg_id_is_valid(colon + 1)) return -1;
    snprintf(id, MG_ID_MAX + 1, "%s", colon + 1);
    return 0;
}

static void s_list_done(s_matches_t *m, json_t *out) {
    if (!out) {
        gw_reply_unavailable(m->r, "matches");
        return;
    }
    json_t *body = json_pack("{s:o}", "items", out);
    json_object_set_new(body, "nextCursor", m->next[0] ? json_string(m->next) : json_null());
    gw_reply_json(m->r, 200, body);
}

static void s_item_matches_fetch(s_matches_t *m);

static void s_on_item_matches(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_matches_t *m = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, 2)) {
        gw_reply_unavailable(m->r, "matches");
        return;
    }
    const redisReply *exists = gq_at(reply, 0), *list = gq_at(reply, 1);
    if (!exists || exists->type != REDIS_REPLY_INTEGER || exists->integer == 0) {
        gw_reply_error(m->r, 404, "not_found", NULL, -1, "no %s with this id", s_kind_name[m->kind]);
        return;
    }
    size_t fetched = list && list->type == REDIS_REPLY_ARRAY ? list->elements / 2 : 0, skipped = 0;
    int more = 0;
    double last_score = 0;
    free(m->items);
    m->items = mg_calloc(fetched ? fetched : 1, sizeof(s_match_t));
    for (size_t i = 0; i < fetched && !more; i++) {
        const char *other = gq_str(list->element[2 * i]), *score = gq_str(list->element[2 * i + 1]);
        double value = score ? strtod(score, NULL) : 0;
        /* Shown already: the cursor's entry and those of its score before it. */
        if (!other || !score || !mg_id_is_valid(other) ||
            (m->has_cursor && value >= m->cursor_score && strcmp(other, m->cursor_id) >= 0)) {
            skipped++;
            continue;
        }
        if (m->count == (size_t)m->limit) {
            more = 1;
            break;
        }
        s_match_t *mt = &m->items[m->count++];
        snprintf(mt->nid, sizeof(mt->nid), "%s", m->kind == S_NEED ? m->id : other);
        snprintf(mt->oid, sizeof(mt->oid), "%s", m->kind == S_NEED ? other : m->id);
        last_score = value;
    }
    int full = fetched == (size_t)m->batch;
    if (m->count == 0 && full && skipped == fetched) {
        /* A whole batch at the cursor's score: look further. */
        m->offset += m->batch;
        s_item_matches_fetch(m);
        return;
    }
    if ((more || full) && m->count > 0) {
        const s_match_t *last = &m->items[m->count - 1];
        snprintf(m->next, sizeof(m->next), "%.17g:%s", last_score, m->kind == S_NEED ? last->oid : last->nid);
    }
    m->done = s_list_done;
    if (m->count == 0) {
        s_list_done(m, json_array());
        return;
    }
    s_matches_load(m);
}

static void s_item_matches_fetch(s_matches_t *m) {
    char key[200], zkey[200], max[40];
    snprintf(key, sizeof(key), "mg:%s:%s", s_kind_name[m->kind], m->id);
    snprintf(zkey, sizeof(zkey), "mg:%s:%s", m->kind == S_NEED ? "nm" : "om", m->id);
    snprintf(max, sizeof(max), "%.17g", m->cursor_score);
    gq_tx_t tx;
    gq_tx_begin(&tx, m->r->gw);
    gq_tx_add(&tx, "EXISTS", key, NULL);
    gq_tx_add_page(&tx, zkey, m->has_cursor ? max : NULL, m->offset, m->batch);
    if (gq_tx_exec(&tx, s_on_item_matches, m) != 0) gw_reply_unavailable(m->r, "matches");
}

static void s_item_matches(gw_request_t *r, int kind) {
    long limit;
    if (gq_param_limit(r, 50, 200, &limit) != 0) return;
    double cursor_score = 0;
    char cursor_id[MG_ID_MAX + 1] = "";
    const char *cursor = gw_query(r, "cursor");
    int has_cursor = cursor && *cursor;
    if (has_cursor && s_match_cursor_parse(cursor, &cursor_score, cursor_id) != 0) {
        gw_reply_error(r, 400, "invalid_parameter", "cursor", -1, "cursor is not one this list gave");
        return;
    }
    s_matches_t *m = gq_state_new(r, sizeof(*m), s_matches_free);
    m->r = r;
    m->kind = kind;
    m->limit = limit;
    snprintf(m->id, sizeof(m->id), "%s", r->params[0]);
    m->has_cursor = has_cursor;
    m->cursor_score = cursor_score;
    snprintf(m->cursor_id, sizeof(m->cursor_id), "%s", cursor_id);
    m->batch = limit + 1 + S_PAGE_EXTRA;
    s_item_matches_fetch(m);
}

static void s_need_matches(gw_request_t *r) {
    s_item_matches(r, S_NEED);
}
static void s_offer_matches(gw_request_t *r) {
    s_item_matches(r, S_OFFER);
}

/* ---- needs and offers --------------------------------------------------------------- */

typedef struct {
    char id[MG_ID_MAX + 1];
    s_record_t rec;
    /* from mg:notifier:<kind>:<id> */
    char *title, *sid, *cat, *commune, *dep, *source;
    long long matches;
    int keep; /* listed (open, in the department asked) */
} s_item_t;

typedef struct {
    gw_request_t *r;
    int kind;
    int detail; /* one item: 404 when unknown */
    s_item_t *items;
    size_t count, cap;
    /* lists */
    const char *department;
    long limit;
    size_t cat_index, cat_end; /* categories [cat_index, cat_end) still to scan */
    char zcursor[24];          /* ZSCAN cursor within category cat_index */
    int rounds;
    size_t kept;
} s_items_t;

static void s_items_free(void *arg) {
    s_items_t *q = arg;
    for (size_t i = 0; i < q->count; i++) {
        s_item_t *it = &q->items[i];
        s_record_clear(&it->rec);
        free(it->title);
        free(it->sid);
        free(it->cat);
        free(it->commune);
        free(it->dep);
        free(it->source);
    }
    free(q->items);
    free(q);
}

static s_item_t *s_items_add(s_items_t *q, const char *id) {
    if (q->count == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 16;
        q->items = mg_realloc(q->items, q->cap * sizeof(s_item_t));
    }
    s_item_t *it = &q->items[q->count++];
    memset(it, 0, sizeof(*it));
    it->rec.until = -1;
    snprintf(it->id, sizeof(it->id), "%s", id);
    return it;
}

/* The item (Need or Offer) of a journaled envelope, if it is about `id`. */
static const ProtobufCMessage *s_envelope_item(const mg_envelope_t *env, int kind, const char *id) {
    if (!env) return NULL;
    if (kind == S_NEED) {
        const Maillage__V1__Need *n = NULL;
        if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED && env->need_reported)
            n = env->need_reported->need;
        else if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED && env->need_updated)
            n = env->need_updated->need;
        return n && n->need_id && strcmp(n->need_id, id) == 0 ? &n->base : NULL;
    }
    const Maillage__V1__Offer *o = NULL;
    if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED && env->offer_published)
        o = env->offer_published->offer;
    else if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED && env->offer_updated)
        o = env->offer_updated->offer;
    return o && o->offer_id && strcmp(o->offer_id, id) == 0 ? &o->base : NULL;
}

/* Copy the members of `from` (proto3 JSON of the item) into `to`, except the
 * id (the item's "id" says it). */
static void s_merge_item(json_t *to, json_t *from, int kind) {
    const char *key;
    json_t *value;
    json_object_foreach(from, key, value) {
        if (strcmp(key, kind == S_NEED ? "needId" : "offerId") == 0) continue;
        json_object_set(to, key, value);
    }
}

static json_t *s_item_json(mg_gateway_t *gw, int kind, const s_item_t *it, const redisReply *journal,
                           const redisReply *structure_pb) {
    const s_record_t *rec = &it->rec;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(it->id));
    json_object_set_new(o, "open", json_boolean(rec->open));
    /* The matching view first (radius, validity, territory, conditions: the
     * fields it keeps as they are), then the original item over it. */
    if (rec->pb_len) {
        const ProtobufCMessageDescriptor *d =
            kind == S_NEED ? &maillage__v1__need__descriptor : &maillage__v1__offer__descriptor;
        ProtobufCMessage *view = protobuf_c_message_unpack(d, NULL, rec->pb_len, rec->pb);
        if (view) {
            json_t *j = mg_json_from_message(view);
            json_object_del(j, "title");
            json_object_del(j, "description");
            json_object_del(j, "tags");
            s_merge_item(o, j, kind);
            json_decref(j);
            protobuf_c_message_free_unpacked(view, NULL);
        }
    }
    const char *source = it->source;
    mg_envelope_t *env = NULL;
    if (journal && journal->type == REDIS_REPLY_ARRAY && journal->elements == 1) {
        const redisReply *entry = journal->element[0];
        const redisReply *fields =
            entry->type == REDIS_REPLY_ARRAY && entry->elements == 2 ? entry->element[1] : NULL;
        const redisReply *e = fields ? mg_redis_field(fields, "e") : NULL;
        if (e) env = mg_envelope_unpack((const uint8_t *)e->str, e->len);
    }
    const ProtobufCMessage *original = s_envelope_item(env, kind, it->id);
    if (original) {
        json_t *j = mg_json_from_message(original);
        s_merge_item(o, j, kind);
        json_decref(j);
        if (env->source && *env->source) source = env->source;
    } else {
        json_object_del(o, "title");
        gq_set_str(o, "title", it->title);
    }
    const char *sid = rec->sid[0] ? rec->sid : it->sid;
    gq_set_str(o, "structureId", sid);
    char *name = gq_structure_name(structure_pb);
    gq_set_str(o, "structureName", name);
    free(name);
    gq_set_category(gw, o, rec->cat[0] ? rec->cat : it->cat);
    if (rec->open && !rec->com[0] && rec->terr && *rec->terr) { /* an offer placed by its territory only */
        char first[32];
        s_copy(first, sizeof(first), rec->terr, strcspn(rec->terr, " "));
        gq_set_entry_place(gw, o, first);
    } else {
        gq_set_place(gw, o, rec->com[0] ? rec->com : it->commune, rec->dep[0] ? rec->dep : it->dep);
    }
    gq_set_territory_names(gw, o);
    if (rec->until >= 0) {
        char day[11];
        gq_day_date(rec->until, day);
        gq_set_str(o, "validUntil", day);
    }
    s_set_time(o, "receivedAt", rec->at);
    gq_set_str(o, "source", source);
    if (rec->seq > 0) s_set_seq(o, "sequence", rec->seq);
    json_object_set_new(o, "openMatches", json_integer(it->matches));
    /* What the journal no longer holds is said, not guessed. */
    json_object_set_new(o, "complete", json_boolean(original != NULL));
    mg_envelope_free(env);
    return o;
}

static void s_on_items_journal(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_items_t *q = privdata;
    (void)redis;
    if (q->kept && !gq_exec_ok(reply, 2 * q->kept)) {
        gw_reply_unavailable(q->r, "items");
        return;
    }
    json_t *list = json_array();
    size_t k = 0;
    for (size_t i = 0; i < q->count; i++) {
        if (!q->items[i].keep) continue;
        json_array_append_new(
            list, s_item_json(q->r->gw, q->kind, &q->items[i], gq_at(reply, 2 * k), gq_at(reply, 2 * k + 1)));
        k++;
    }
    if (q->detail) {
        json_t *one = json_incref(json_array_get(list, 0));
        json_decref(list);
        gw_reply_json(q->r, 200, one);
        return;
    }
    json_t *body = json_pack("{s:o}", "items", list);
    if (q->cat_index < q->cat_end) {
        char cursor[48];
        snprintf(cursor, sizeof(cursor), "%zu.%s", q->cat_index, q->zcursor);
        json_object_set_new(body, "nextCursor", json_string(cursor));
    } else {
        json_object_set_new(body, "nextCursor", json_null());
    }
    gw_reply_json(q->r, 200, body);
}

static void s_on_items_records(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_items_t *q = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, 3 * q->count)) {
        gw_reply_unavailable(q->r, "items");
        return;
    }
    q->kept = 0;
    for (size_t i = 0; i < q->count; i++) {
        s_item_t *it = &q->items[i];
        s_record_parse(gq_at(reply, 3 * i), &it->rec);
        const redisReply *h = gq_at(reply, 3 * i + 1);
        if (h && h->type == REDIS_REPLY_ARRAY) {
            it->title = s_dup_str(mg_redis_field(h, "title"));
            it->sid = s_dup_str(mg_redis_field(h, "sid"));
            it->cat = s_dup_str(mg_redis_field(h, "cat"));
            it->commune = s_dup_str(mg_redis_field(h, "commune"));
            it->dep = s_dup_str(mg_redis_field(h, "dep"));
            it->source = s_dup_str(mg_redis_field(h, "source"));
        }
        const redisReply *z = gq_at(reply, 3 * i + 2);
        it->matches = z && z->type == REDIS_REPLY_INTEGER ? z->integer : 0;
        if (q->detail)
            it->keep = it->rec.present;
        else
            it->keep = it->rec.present && it->rec.open &&
                       (!q->department || s_record_in_department(q->r->gw, &it->rec, q->department));
        q->kept += (size_t)it->keep;
    }
    if (q->detail && !q->kept) {
        gw_reply_error(q->r, 404, "not_found", NULL, -1, "no %s with this id", s_kind_name[q->kind]);
        return;
    }
    gq_tx_t tx;
    gq_tx_begin(&tx, q->r->gw);
    for (size_t i = 0; i < q->count; i++) {
        const s_item_t *it = &q->items[i];
        if (!it->keep) continue;
        char id[32], key[200];
        /* A sequence of 0 reads nothing ("0-0" is below every entry id). */
        snprintf(id, sizeof(id), "%lld-0", it->rec.seq);
        gq_tx_add(&tx, "XRANGE", "mg:journal", id, id, NULL);
        snprintf(key, sizeof(key), "mg:structure:%s", it->rec.sid[0] ? it->rec.sid : it->sid ? it->sid : "");
        gq_tx_add(&tx, "HGET", key, "pb", NULL);
    }
    if (!tx.failed && tx.count == 0) {
        s_on_items_journal(NULL, NULL, q);
        return;
    }
    if (gq_tx_exec(&tx, s_on_items_journal, q) != 0) gw_reply_unavailable(q->r, "items");
}

/* The records, the notifier's hashes and the open matches of q->items. */
static void s_items_load(s_items_t *q) {
    if (q->count == 0) {
        q->kept = 0;
        s_on_items_journal(NULL, NULL, q);
        return;
    }
    gq_tx_t tx;
    gq_tx_begin(&tx, q->r->gw);
    for (size_t i = 0; i < q->count; i++) {
        char key[200];
        snprintf(key, sizeof(key), "mg:%s:%s", s_kind_name[q->kind], q->items[i].id);
        gq_tx_add(&tx, "GET", key, NULL);
        snprintf(key, sizeof(key), "mg:notifier:%s:%s", s_kind_name[q->kind], q->items[i].id);
        gq_tx_add(&tx, "HGETALL", key, NULL);
        snprintf(key, sizeof(key), "mg:%s:%s", q->kind == S_NEED ? "nm" : "om", q->items[i].id);
        gq_tx_add(&tx, "ZCARD", key, NULL);
    }
    if (gq_tx_exec(&tx, s_on_items_records, q) != 0) gw_reply_unavailable(q->r, "items");
}

static void s_item_get(gw_request_t *r, int kind) {
    s_items_t *q = gq_state_new(r, sizeof(*q), s_items_free);
    q->r = r;
    q->kind = kind;
    q->detail = 1;
    s_items_add(q, r->params[0]);
    s_items_load(q);
}

static void s_need_get(gw_request_t *r) {
    s_item_get(r, S_NEED);
}
static void s_offer_get(gw_request_t *r) {
    s_item_get(r, S_OFFER);
}

/* Lists: ZSCAN the open items of each category in turn (one category when
 * asked), a few calls per request at most, then load what was found. */
enum { S_SCAN_ROUNDS = 16 };

static void s_items_scan(s_items_t *q);

static void s_on_items_scan(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_items_t *q = privdata;
    (void)redis;
    const redisReply *members = gq_scan_page(reply, q->zcursor, sizeof(q->zcursor));
    if (!members) {
        gw_reply_unavailable(q->r, "items");
        return;
    }
    for (size_t i = 0; i + 1 < members->elements; i += 2) {
        const char *id = gq_str(members->element[i]);
        if (!id || !mg_id_is_valid(id)) continue;
        /* ZSCAN may return a member twice while the set is rehashed. */
        int seen = 0;
        for (size_t k = 0; k < q->count && !seen; k++)
            seen = strcmp(q->items[k].id, id) == 0;
        if (!seen) s_items_add(q, id);
    }
    if (strcmp(q->zcursor, "0") == 0) q->cat_index++;
    if (q->count >= (size_t)q->limit || q->cat_index >= q->cat_end || ++q->rounds >= S_SCAN_ROUNDS) {
        s_items_load(q);
        return;
    }
    s_items_scan(q);
}

static void s_items_scan(s_items_t *q) {
    const char *cat = mg_taxonomy_code(gw_taxonomy(q->r->gw), q->cat_index);
    char key[200];
    snprintf(key, sizeof(key), "mg:open:%s:%s", s_kind_name[q->kind], cat);
    /* COUNT is the work per call; the department filter drops some of what
     * it returns, so ask for more then. */
    long want = q->limit - (long)q->count;
    if (mg_redis_command(gw_redis(q->r->gw), s_on_items_scan, q, "ZSCAN %s %s COUNT %ld", key, q->zcursor,
                         q->department ? want * 4 : want) != 0)
        gw_reply_unavailable(q->r, "items");
}

static void s_item_list(gw_request_t *r, int kind) {
    long limit;
    const char *category, *department;
    if (gq_param_limit(r, 50, 200, &limit) != 0 || gq_param_category(r, &category) != 0 ||
        gq_param_department(r, &department) != 0)
        return;
    const mg_taxonomy_t *tax = gw_taxonomy(r->gw);
    size_t ncat = mg_taxonomy_count(tax), first = 0, end = ncat;
    if (category) {
        for (size_t i = 0; i < ncat; i++)
            if (strcmp(mg_taxonomy_code(tax, i), category) == 0) first = i;
        end = first + 1;
    }
    char zcursor[24] = "0";
    const char *cursor = gw_query(r, "cursor");
    if (cursor && *cursor) {
        /* "<category index>.<ZSCAN cursor>", as given in nextCursor */
        char *dot;
        unsigned long idx = strtoul(cursor, &dot, 10);
        int ok = dot != cursor && *dot == '.' && strspn(cursor, "0123456789") == (size_t)(dot - cursor) &&
                 idx >= first && idx < end && gq_scan_cursor_valid(dot + 1);
        if (!ok) {
            gw_reply_error(r, 400, "invalid_parameter", "cursor", -1, "cursor is not one this list gave");
            return;
        }
        first = idx;
        snprintf(zcursor, sizeof(zcursor), "%s", dot + 1);
    }
    s_items_t *q = gq_state_new(r, sizeof(*q), s_items_free);
    q->r = r;
    q->kind = kind;
    q->limit = limit;
    q->department = department;
    q->cat_index = first;
    q->cat_end = end;
    snprintf(q->zcursor, sizeof(q->zcursor), "%s", zcursor);
    if (first >= end) {
        s_items_load(q);
        return;
    }
    s_items_scan(q);
}

static void s_need_list(gw_request_t *r) {
    s_item_list(r, S_NEED);
}
static void s_offer_list(gw_request_t *r) {
    s_item_list(r, S_OFFER);
}

/* ---- structures ---------------------------------------------------------------------- */

typedef struct {
    gw_request_t *r;
    char **keys; /* a list: the keys found; one structure: its items ("n:<nid>", "o:<oid>") */
    size_t count, cap;
    long limit;
    char cursor[24];
    int rounds;
    json_t *one; /* one structure, while its items' titles are read */
} s_structures_t;

static void s_structures_free(void *arg) {
    s_structures_t *q = arg;
    for (size_t i = 0; i < q->count; i++)
        free(q->keys[i]);
    free(q->keys);
    json_decref(q->one);
    free(q);
}

static void s_structures_add(s_structures_t *q, const char *key) {
    if (q->count == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 32;
        q->keys = mg_realloc(q->keys, q->cap * sizeof(char *));
    }
    q->keys[q->count++] = mg_strdup(key);
}

/* The structure's JSON from its hash (NULL if there is none), with its
 * contact when `contact` is given. */
static json_t *s_structure_json(mg_gateway_t *gw, const redisReply *h, const redisReply *contact) {
    const redisReply *pb = h && h->type == REDIS_REPLY_ARRAY ? mg_redis_field(h, "pb") : NULL;
    if (!pb) return NULL;
    Maillage__V1__Structure *s = maillage__v1__structure__unpack(NULL, pb->len, (const uint8_t *)pb->str);
    if (!s) return NULL;
    json_t *o = json_pack("{s:s}", "id", s->structure_id ? s->structure_id : "");
    json_t *fields = mg_json_from_message(&s->base);
    json_object_update(o, fields);
    json_decref(fields);
    /* The record keeps no contact; a contact comes only from mg:contact. */
    json_object_del(o, "contact");
    json_object_set_new(o, "familyLabel", json_string(mg_fr_family(s->family)));
    const mg_commune_t *c = s->commune && *s->commune ? mg_communes_find(gw_communes(gw), s->commune) : NULL;
    if (c) {
        gq_set_str(o, "communeName", c->name);
        gq_set_str(o, "department", c->department);
        gq_set_str(o, "departmentName", mg_fr_department(c->department));
    }
    const redisReply *left = mg_redis_field(h, "left");
    json_object_set_new(o, "left", json_boolean(left && strcmp(left->str, "1") == 0));
    const redisReply *seq = mg_redis_field(h, "seq");
    if (seq) json_object_set_new(o, "sequence", json_string(seq->str));
    maillage__v1__structure__free_unpacked(s, NULL);
    if (contact && contact->type == REDIS_REPLY_STRING) {
        Maillage__V1__Contact *ct =
            maillage__v1__contact__unpack(NULL, contact->len, (const uint8_t *)contact->str);
        if (ct) {
            json_object_set_new(o, "contact", mg_json_from_message(&ct->base));
            maillage__v1__contact__free_unpacked(ct, NULL);
        }
    }
    return o;
}

/* The open items of one structure, q->keys sorted (needs first), with
 * the titles the notifier keeps (`reply`: one HGET per item; NULL for none). */
static void s_on_structure_items(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_structures_t *q = privdata;
    (void)redis;
    if (q->count && !gq_exec_ok(reply, q->count)) {
        gw_reply_unavailable(q->r, "structures");
        return;
    }
    json_t *needs = json_array(), *offers = json_array();
    for (size_t i = 0; i < q->count; i++) {
        json_t *item = json_pack("{s:s}", "id", q->keys[i] + 2);
        gq_set_str(item, "title", gq_str(gq_at(reply, i)));
        json_array_append_new(q->keys[i][0] == 'n' ? needs : offers, item);
    }
    json_object_set_new(q->one, "openNeeds", needs);
    json_object_set_new(q->one, "openOffers", offers);
    json_t *one = q->one;
    q->one = NULL;
    gw_reply_json(q->r, 200, one);
}

static int s_cmp_key(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void s_on_structure(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_structures_t *q = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, 3)) {
        gw_reply_unavailable(q->r, "structures");
        return;
    }
    q->one = s_structure_json(q->r->gw, gq_at(reply, 0), gq_at(reply, 1));
    if (!q->one) {
        gw_reply_error(q->r, 404, "not_found", NULL, -1, "no structure with this id");
        return;
    }
    /* One SSCAN page of its open items: a small set comes whole in it, a
     * large one is cut, and the answer says so. */
    const redisReply *members = gq_scan_page(gq_at(reply, 2), q->cursor, sizeof(q->cursor));
    for (size_t i = 0; members && i < members->elements; i++) {
        const char *m = gq_str(members->element[i]);
        if (m && (m[0] == 'n' || m[0] == 'o') && m[1] == ':' && mg_id_is_valid(m + 2)) s_structures_add(q, m);
    }
    if (members && strcmp(q->cursor, "0") != 0)
        json_object_set_new(q->one, "openItemsTruncated", json_true());
    if (q->count) qsort(q->keys, q->count, sizeof(char *), s_cmp_key);
    gq_tx_t tx;
    gq_tx_begin(&tx, q->r->gw);
    for (size_t i = 0; i < q->count; i++) {
        char key[200];
        snprintf(key, sizeof(key), "mg:notifier:%s:%s", q->keys[i][0] == 'n' ? "need" : "offer",
                 q->keys[i] + 2);
        gq_tx_add(&tx, "HGET", key, "title", NULL);
    }
    if (!tx.failed && tx.count == 0) {
        s_on_structure_items(NULL, NULL, q);
        return;
    }
    if (gq_tx_exec(&tx, s_on_structure_items, q) != 0) gw_reply_unavailable(q->r, "structures");
}

static void s_structure_get(gw_request_t *r) {
    s_structures_t *q = gq_state_new(r, sizeof(*q), s_structures_free);
    q->r = r;
    char key[200];
    gq_tx_t tx;
    gq_tx_begin(&tx, r->gw);
    snprintf(key, sizeof(key), "mg:structure:%s", r->params[0]);
    gq_tx_add(&tx, "HGETALL", key, NULL);
    snprintf(key, sizeof(key), "mg:contact:%s", r->params[0]);
    gq_tx_add(&tx, "GET", key, NULL);
    snprintf(key, sizeof(key), "mg:structure:%s:items", r->params[0]);
    gq_tx_add(&tx, "SSCAN", key, "0", "COUNT", "100", NULL);
    if (gq_tx_exec(&tx, s_on_structure, q) != 0) gw_reply_unavailable(q->r, "structures");
}

static void s_on_structures_page(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_structures_t *q = privdata;
    (void)redis;
    if (q->count && !gq_exec_ok(reply, q->count)) {
        gw_reply_unavailable(q->r, "structures");
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < q->count; i++) {
        json_t *o = s_structure_json(q->r->gw, gq_at(reply, i), NULL);
        if (o) json_array_append_new(list, o);
    }
    json_t *body = json_pack("{s:o}", "items", list);
    json_object_set_new(body, "nextCursor",
                        strcmp(q->cursor, "0") == 0 ? json_null() : json_string(q->cursor));
    gw_reply_json(q->r, 200, body);
}

static void s_structures_scan(s_structures_t *q);

static void s_on_structures_scan(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_structures_t *q = privdata;
    (void)redis;
    const redisReply *keys = gq_scan_page(reply, q->cursor, sizeof(q->cursor));
    if (!keys) {
        gw_reply_unavailable(q->r, "structures");
        return;
    }
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = gq_str(keys->element[i]);
        int seen = 0; /* SCAN may return a key twice while the keyspace is rehashed */
        for (size_t j = 0; k && j < q->count && !seen; j++)
            seen = strcmp(q->keys[j], k) == 0;
        if (!k || seen) continue;
        s_structures_add(q, k);
    }
    if (q->count >= (size_t)q->limit || strcmp(q->cursor, "0") == 0 || ++q->rounds >= S_SCAN_ROUNDS) {
        if (q->count == 0) {
            s_on_structures_page(NULL, NULL, q);
            return;
        }
        gq_tx_t tx;
        gq_tx_begin(&tx, q->r->gw);
        for (size_t i = 0; i < q->count; i++)
            gq_tx_add(&tx, "HGETALL", q->keys[i], NULL);
        if (gq_tx_exec(&tx, s_on_structures_page, q) != 0) gw_reply_unavailable(q->r, "structures");
        return;
    }
    s_structures_scan(q);
}

static void s_structures_scan(s_structures_t *q) {
    /* TYPE hash: the structures, not their mg:structure:<sid>:items sets.
     * COUNT grows when rounds come back empty (the keyspace holds far more
     * than structures), within a bound per request. */
    long c = q->limit << (q->rounds < 6 ? q->rounds : 6);
    long count = c < 10 ? 10 : c > 2000 ? 2000 : c;
    if (mg_redis_command(gw_redis(q->r->gw), s_on_structures_scan, q,
                         "SCAN %s MATCH mg:structure:* TYPE hash COUNT %ld", q->cursor, count) != 0)
        gw_reply_unavailable(q->r, "structures");
}

static void s_structure_list(gw_request_t *r) {
    long limit;
    if (gq_param_limit(r, 50, 200, &limit) != 0) return;
    const char *cursor = gw_query(r, "cursor");
    if (cursor && *cursor && !gq_scan_cursor_valid(cursor)) {
        gw_reply_error(r, 400, "invalid_parameter", "cursor", -1, "cursor is not one this list gave");
        return;
    }
    s_structures_t *q = gq_state_new(r, sizeof(*q), s_structures_free);
    q->r = r;
    q->limit = limit;
    snprintf(q->cursor, sizeof(q->cursor), "%s", cursor && *cursor ? cursor : "0");
    s_structures_scan(q);
}

void gq_items_register(mg_gateway_t *gw) {
    gw_route(gw, EVHTTP_REQ_GET, "/v1/structures", GW_STAFF, "cursor limit", s_structure_list);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/structures/{id}", GW_STAFF, NULL, s_structure_get);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/needs", GW_STAFF, "category department cursor limit", s_need_list);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/needs/{id}", GW_STAFF, NULL, s_need_get);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/needs/{id}/matches", GW_STAFF, "cursor limit", s_need_matches);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/offers", GW_STAFF, "category department cursor limit", s_offer_list);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/offers/{id}", GW_STAFF, NULL, s_offer_get);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/offers/{id}/matches", GW_STAFF, "cursor limit", s_offer_matches);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/matches/{id}", GW_STAFF, NULL, s_match_get);
}
