/* query_inbox.c -- a staff member's web inbox, and the loader of
 * notifications that the live stream (stream.c) shares:
 *
 *   GET  /v1/staff/{id}/inbox?limit=&cursor=&department=&category=&status=&kind=&unread=
 *   POST /v1/staff/{id}/inbox/{nid}/read
 *
 * The inbox is the notifier's sorted set mg:inbox:<staff> (member = the
 * notification id, score = its creation time in ms, or just above the
 * newest entry when that one is not older) and the records
 * mg:notif:<nid> (docs/redis-keys.md, "Notifier"). Newest first; a position
 * "<ms>-<nid>" orders entries exactly as the sorted set does (score, then
 * member), so a cursor is a position and never skips or repeats an entry,
 * whatever arrives meanwhile.
 *
 * A notification record does not say its category or department; the
 * loader finds them from its item: a match's pair record (with the staff
 * member's feedback, "status"), an unanswered need's or a cooperation's
 * notifier hash, a member's commune, or a collective need's id. A
 * cooperation concerns other departments too (its addressee's, its
 * territory's: the notifier sends it to their staff as well), listed in
 * "otherDepartments", and ?department= finds it under each. Filters need
 * them, so they apply after loading: a filtered page examines a bounded
 * number of entries and may hold fewer than `limit` items, with a nextCursor
 * to go on. */
#include <stdlib.h>
#include <string.h>

#include "maillage/french.h"
#include "maillage/mem.h"
#include "maillage/staff.h"
#include "query.h"

/* ---- the loader -------------------------------------------------------------------- */

enum { S_LOOK_NONE, S_LOOK_MID, S_LOOK_NEED, S_LOOK_COOP, S_LOOK_MEMBER };

typedef struct {
    int present;
    int look;     /* round-2 lookup */
    int matched;  /* round 3: a match whose pair is known */
    json_t *json; /* being built */
    char nid[MG_ID_MAX + 1], oid[MG_ID_MAX + 1];
} s_work_t;

typedef struct {
    mg_gateway_t *gw;
    char staff[MG_ID_MAX + 1];
    gq_entry_t *entries;
    size_t count;
    s_work_t *work;
    size_t round2, round3; /* commands in those rounds */
    gq_notifs_fn cb;
    void *arg;
} s_load_t;

static void s_load_finish(s_load_t *l, int ok) {
    for (size_t i = 0; i < l->count; i++) {
        if (ok)
            l->entries[i].json = l->work[i].json;
        else
            json_decref(l->work[i].json);
    }
    gq_notifs_fn cb = l->cb;
    void *arg = l->arg;
    gq_entry_t *entries = l->entries;
    size_t count = l->count;
    free(l->work);
    free(l);
    cb(arg, entries, count, ok);
}

/* Send the next round, or finish when it is empty or could not be queued. */
static void s_load_send(s_load_t *l, gq_tx_t *tx, mg_redis_reply_fn cb) {
    if (!tx->failed && tx->count == 0)
        s_load_finish(l, 1);
    else if (gq_tx_exec(tx, cb, l) != 0)
        s_load_finish(l, 0);
}

/* Set category/department (and commune) unless already set. */
static void s_set_scope(mg_gateway_t *gw, json_t *o, const char *cat, const char *dep, const char *com) {
    if (cat && *cat && !json_object_get(o, "category")) gq_set_category(gw, o, cat);
    if (com && *com && !json_object_get(o, "commune")) {
        const mg_commune_t *c = mg_communes_find(gw_communes(gw), com);
        gq_set_str(o, "commune", com);
        if (c) {
            gq_set_str(o, "communeName", c->name);
            if (!dep || !*dep) dep = c->department;
        }
    }
    if (dep && *dep && !json_object_get(o, "department")) {
        gq_set_str(o, "department", dep);
        gq_set_str(o, "departmentName", mg_fr_department(dep));
    }
}

/* "otherDepartments": the departments of `also` (a cooperation's
 * addressee's and its territory's, space-separated, as the notifier keeps
 * them) other than the entry's own. The notifier sends the entry to the
 * staff following any of them, so ?department= finds it under each. */
static void s_set_other_departments(mg_gateway_t *gw, json_t *o, const char *also) {
    const char *own = json_string_value(json_object_get(o, "department"));
    json_t *list = json_array();
    for (const char *p = also; p && *p;) {
        size_t n = strcspn(p, " ");
        char dep[4];
        if (n > 0 && n < sizeof(dep)) {
            memcpy(dep, p, n);
            dep[n] = '\0';
            int seen = own && strcmp(own, dep) == 0;
            for (size_t i = 0; i < json_array_size(list) && !seen; i++)
                seen = strcmp(json_string_value(json_array_get(list, i)), dep) == 0;
            if (!seen && gq_department_known(gw, dep)) json_array_append_new(list, json_string(dep));
        }
        p += n + (p[n] == ' ');
    }
    if (json_array_size(list))
        json_object_set_new(o, "otherDepartments", list);
    else
        json_decref(list);
}

static const char *s_field(const redisReply *h, const char *name) {
    const redisReply *v = mg_redis_field(h, name);
    return v ? v->str : NULL;
}

static void s_on_round3(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_load_t *l = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, l->round3)) {
        s_load_finish(l, 0);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < l->count; i++) {
        s_work_t *w = &l->work[i];
        if (!w->matched) continue;
        const char *pair = gq_str(gq_at(reply, k));
        const char *fb = gq_str(gq_at(reply, k + 1));
        const char *need_com = gq_str(gq_at(reply, k + 2));
        k += 3;
        json_object_set_new(w->json, "needId", json_string(w->nid));
        json_object_set_new(w->json, "offerId", json_string(w->oid));
        json_object_set_new(w->json, "status", json_string(gq_status_name(fb)));
        if (!pair) continue;
        /* rev|score|ret|mid|dist|ns|os|cat|dep|at[|pcat|pcom] */
        char f[12][72];
        size_t n = 0;
        for (const char *s = pair; n < 12; n++) {
            const char *bar = strchr(s, '|');
            size_t len = bar ? (size_t)(bar - s) : strlen(s);
            if (len >= sizeof(f[n])) len = sizeof(f[n]) - 1;
            memcpy(f[n], s, len);
            f[n][len] = '\0';
            if (!bar) {
                n++;
                break;
            }
            s = bar + 1;
        }
        if (n < 10) continue;
        json_object_set_new(w->json, "retired", json_boolean(strcmp(f[2], "1") == 0));
        s_set_scope(l->gw, w->json, f[7], f[8], n == 12 && f[11][0] ? f[11] : need_com);
    }
    s_load_finish(l, 1);
}

static void s_on_round2(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_load_t *l = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, l->round2)) {
        s_load_finish(l, 0);
        return;
    }
    gq_tx_t tx;
    gq_tx_begin(&tx, l->gw);
    l->round3 = 0;
    size_t k = 0;
    for (size_t i = 0; i < l->count; i++) {
        s_work_t *w = &l->work[i];
        if (w->look == S_LOOK_NONE) continue;
        const redisReply *v = gq_at(reply, k++);
        if (w->look == S_LOOK_MID) {
            const char *pair = gq_str(v);
            const char *bar = pair ? strchr(pair, '|') : NULL;
            if (!bar || (size_t)(bar - pair) > MG_ID_MAX || strlen(bar + 1) > MG_ID_MAX) continue;
            memcpy(w->nid, pair, (size_t)(bar - pair));
            w->nid[bar - pair] = '\0';
            snprintf(w->oid, sizeof(w->oid), "%s", bar + 1);
            w->matched = 1;
            char key[200], field[100];
            snprintf(key, sizeof(key), "mg:pair:%s|%s", w->nid, w->oid);
            gq_tx_add(&tx, "GET", key, NULL);
            snprintf(key, sizeof(key), "mg:pfb:%s|%s", w->nid, w->oid);
            snprintf(field, sizeof(field), "fb:%s", l->staff);
            gq_tx_add(&tx, "HGET", key, field, NULL);
            snprintf(key, sizeof(key), "mg:notifier:need:%s", w->nid);
            gq_tx_add(&tx, "HGET", key, "commune", NULL);
            l->round3 += 3;
        } else if (v && v->type == REDIS_REPLY_ARRAY) {
            /* HMGET cat dep commune also */
            const char *f[4] = {NULL, NULL, NULL, NULL};
            for (size_t j = 0; j < 4 && j < v->elements; j++)
                f[j] = gq_str(v->element[j]);
            s_set_scope(l->gw, w->json, f[0], f[1], f[2]);
            s_set_other_departments(l->gw, w->json, f[3]);
        }
    }
    s_load_send(l, &tx, s_on_round3);
}

/* The id after `prefix` in an item ("match:<mid>"), up to the next ':' when
 * `colon_ends` ("member:<sid>:<network>"). An id may itself hold ':' (a
 * network's "urscop:42"): the notification's `link` ends with the id of
 * the view it opens ("...#structure/urscop:42"), so when the item goes on
 * with that and a ':', the id ends there. */
static int s_item_id(const char *item, const char *prefix, int colon_ends, const char *link,
                     char out[MG_ID_MAX + 1]) {
    size_t plen = strlen(prefix);
    if (strncmp(item, prefix, plen) != 0) return -1;
    const char *s = item + plen;
    size_t len = colon_ends ? strcspn(s, ":") : strlen(s);
    const char *named = link ? strrchr(link, '/') : NULL;
    size_t nlen = named ? strlen(named + 1) : 0;
    if (colon_ends && nlen > len && strncmp(s, named + 1, nlen) == 0 && s[nlen] == ':') len = nlen;
    if (len == 0 || len > MG_ID_MAX) return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return mg_id_is_valid(out) ? 0 : -1;
}

/* A collective need's scope from its id "cn.<cat>.<epci>" or
 * "cn.<cat>.near.<com>" (item "cn:<id>:<revision>"). */
static void s_collective_scope(s_load_t *l, json_t *o, const char *item) {
    char id[MG_ID_MAX + 1];
    if (s_item_id(item, "cn:", 1, NULL, id) != 0 || strncmp(id, "cn.", 3) != 0) return;
    char *cat = id + 3, *dot = strchr(cat, '.');
    if (!dot) return;
    *dot = '\0';
    const char *group = dot + 1, *dep = NULL, *com = NULL;
    if (strncmp(group, "near.", 5) == 0)
        com = group + 5;
    else
        gq_epci_name(l->gw, group, &dep);
    s_set_scope(l->gw, o, cat, dep, com);
    /* A group of an EPCI across two departments reaches the staff of both. */
    json_t *others = com ? NULL : gq_epci_other_departments(l->gw, group, dep);
    if (others) json_object_set_new(o, "otherDepartments", others);
}

static void s_on_round1(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_load_t *l = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, l->count)) {
        s_load_finish(l, 0);
        return;
    }
    gq_tx_t tx;
    gq_tx_begin(&tx, l->gw);
    l->round2 = 0;
    for (size_t i = 0; i < l->count; i++) {
        const gq_entry_t *e = &l->entries[i];
        s_work_t *w = &l->work[i];
        const redisReply *h = gq_at(reply, i);
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) continue; /* expired record */
        w->present = 1;
        json_t *o = json_object();
        w->json = o;
        char pos[100], when[32];
        snprintf(pos, sizeof(pos), "%lld-%s", (long long)e->ms, e->nid);
        json_object_set_new(o, "id", json_string(e->nid));
        json_object_set_new(o, "position", json_string(pos));
        const char *kind = s_field(h, "kind"), *item = s_field(h, "item"), *link = s_field(h, "link");
        gq_set_str(o, "kind", kind);
        json_object_set_new(o, "title", json_string(s_field(h, "title") ? s_field(h, "title") : ""));
        json_object_set_new(o, "summary", json_string(s_field(h, "summary") ? s_field(h, "summary") : ""));
        json_object_set_new(o, "text", json_string(s_field(h, "text") ? s_field(h, "text") : ""));
        json_object_set_new(o, "link", json_string(link ? link : ""));
        const char *score = s_field(h, "score");
        if (score && *score) json_object_set_new(o, "score", json_real(strtod(score, NULL)));
        const char *created = s_field(h, "created_at");
        gq_rfc3339(created && *created ? strtoll(created, NULL, 10) : e->ms, when);
        json_object_set_new(o, "createdAt", json_string(when));
        const char *read = s_field(h, "read");
        json_object_set_new(o, "read", json_boolean(read && strcmp(read, "1") == 0));
        gq_set_str(o, "item", item);
        /* Fields a notifier may store with the record win over the lookups. */
        s_set_scope(l->gw, o, s_field(h, "cat"), s_field(h, "dep"), s_field(h, "com"));
        if (!item) continue;
        char id[MG_ID_MAX + 1], key[200];
        if (s_item_id(item, "match:", 0, NULL, id) == 0) {
            json_object_set_new(o, "matchId", json_string(id));
            snprintf(key, sizeof(key), "mg:mid:%s", id);
            gq_tx_add(&tx, "GET", key, NULL);
            w->look = S_LOOK_MID;
        } else if (s_item_id(item, "unanswered:", 0, NULL, id) == 0) {
            json_object_set_new(o, "needId", json_string(id));
            snprintf(key, sizeof(key), "mg:notifier:need:%s", id);
            gq_tx_add(&tx, "HMGET", key, "cat", "dep", "commune", "also", NULL);
            w->look = S_LOOK_NEED;
        } else if (s_item_id(item, "coop:", 0, NULL, id) == 0 ||
                   s_item_id(item, "coopans:", 1, link, id) == 0) {
            snprintf(key, sizeof(key), "mg:notifier:coop:%s", id);
            gq_tx_add(&tx, "HMGET", key, "cat", "dep", "commune", "also", NULL);
            w->look = S_LOOK_COOP;
        } else if (s_item_id(item, "member:", 1, link, id) == 0) {
            json_object_set_new(o, "structureId", json_string(id));
            snprintf(key, sizeof(key), "mg:notifier:structure:%s", id);
            gq_tx_add(&tx, "HMGET", key, "cat", "dep", "commune", "also", NULL);
            w->look = S_LOOK_MEMBER;
        } else if (strncmp(item, "cn:", 3) == 0) {
            s_collective_scope(l, o, item);
        }
        if (w->look != S_LOOK_NONE) l->round2++;
    }
    s_load_send(l, &tx, s_on_round2);
}

int gq_notifs_load(mg_gateway_t *gw, const char *staff, gq_entry_t *entries, size_t count, gq_notifs_fn cb,
                   void *arg) {
    if (count == 0) return -1;
    s_load_t *l = mg_calloc(1, sizeof(*l));
    l->gw = gw;
    snprintf(l->staff, sizeof(l->staff), "%s", staff);
    l->entries = entries;
    l->count = count;
    l->work = mg_calloc(count, sizeof(s_work_t));
    l->cb = cb;
    l->arg = arg;
    for (size_t i = 0; i < count; i++)
        entries[i].json = NULL;
    gq_tx_t tx;
    gq_tx_begin(&tx, gw);
    for (size_t i = 0; i < count; i++) {
        char key[200];
        snprintf(key, sizeof(key), "mg:notif:%s", entries[i].nid);
        gq_tx_add(&tx, "HGETALL", key, NULL);
    }
    if (gq_tx_exec(&tx, s_on_round1, l) != 0) {
        free(l->work);
        free(l);
        return -1;
    }
    return 0;
}

/* ---- GET /v1/staff/{id}/inbox ----------------------------------------------------------- */

typedef struct {
    gw_request_t *r;
    char staff[MG_ID_MAX + 1];
    long limit;
    int has_cursor;
    gq_pos_t cursor;
    long batch, offset;
    const char *department, *category, *status, *kind;
    int unread;
    long long total;
    gq_entry_t *entries;
    size_t count;
    int full; /* the last fetch was a whole batch: more may follow */
} s_inbox_t;

static void s_inbox_free(void *arg) {
    s_inbox_t *q = arg;
    for (size_t i = 0; i < q->count; i++)
        json_decref(q->entries[i].json);
    free(q->entries);
    free(q);
}

static int s_str_is(json_t *o, const char *key, const char *want) {
    const char *v = json_string_value(json_object_get(o, key));
    return v && strcmp(v, want) == 0;
}

static int s_inbox_keep(const s_inbox_t *q, json_t *o) {
    if (!o) return 0;
    if (q->kind && !s_str_is(o, "kind", q->kind)) return 0;
    if (q->category && !s_str_is(o, "category", q->category)) return 0;
    if (q->department && !gq_department_in(q->department, json_string_value(json_object_get(o, "department")),
                                           json_object_get(o, "otherDepartments")))
        return 0;
    if (q->status && !s_str_is(o, "status", q->status)) return 0;
    /* "new" is what staff still have to act on: not a retired match (it has
     * no feedback, and no feedback to give). */
    if (q->status && strcmp(q->status, "new") == 0 && json_is_true(json_object_get(o, "retired"))) return 0;
    if (q->unread == 1 && json_is_true(json_object_get(o, "read"))) return 0;
    if (q->unread == 0 && !json_is_true(json_object_get(o, "read"))) return 0;
    return 1;
}

static void s_on_inbox_loaded(void *arg, gq_entry_t *entries, size_t count, int ok) {
    s_inbox_t *q = arg;
    (void)entries;
    (void)count;
    if (!ok) {
        gw_reply_unavailable(q->r, "inbox");
        return;
    }
    json_t *items = json_array();
    size_t examined = 0;
    for (size_t i = 0; i < q->count && json_array_size(items) < (size_t)q->limit; i++) {
        examined = i + 1;
        if (s_inbox_keep(q, q->entries[i].json)) json_array_append(items, q->entries[i].json);
    }
    /* More may follow the last entry examined: entries not examined yet, or
     * a fetch that filled its batch. */
    int more = examined < q->count || q->full;
    json_t *body = json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)q->total);
    if (more && examined > 0) {
        char pos[100];
        const gq_entry_t *last = &q->entries[examined - 1];
        snprintf(pos, sizeof(pos), "%lld-%s", (long long)last->ms, last->nid);
        json_object_set_new(body, "nextCursor", json_string(pos));
    } else {
        json_object_set_new(body, "nextCursor", json_null());
    }
    gw_reply_json(q->r, 200, body);
}

static void s_inbox_fetch(s_inbox_t *q);

static void s_on_inbox_page(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_inbox_t *q = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, 2)) {
        gw_reply_unavailable(q->r, "inbox");
        return;
    }
    const redisReply *total = gq_at(reply, 0), *list = gq_at(reply, 1);
    if (!list || list->type != REDIS_REPLY_ARRAY) {
        gw_reply_unavailable(q->r, "inbox");
        return;
    }
    q->total = total && total->type == REDIS_REPLY_INTEGER ? total->integer : 0;
    size_t fetched = list->elements / 2, skipped = 0;
    q->entries = mg_calloc(fetched ? fetched : 1, sizeof(gq_entry_t));
    for (size_t i = 0; i < fetched; i++) {
        const char *nid = gq_str(list->element[2 * i]), *score = gq_str(list->element[2 * i + 1]);
        if (!nid || !score || !mg_id_is_valid(nid)) {
            skipped++;
            continue;
        }
        int64_t ms = (int64_t)strtoll(score, NULL, 10);
        /* Already shown: the cursor's entry and those beside it at the same
         * millisecond that come before it (newest first). */
        if (q->has_cursor && gq_pos_cmp(ms, nid, &q->cursor) >= 0) {
            skipped++;
            continue;
        }
        gq_entry_t *e = &q->entries[q->count++];
        snprintf(e->nid, sizeof(e->nid), "%s", nid);
        e->ms = ms;
    }
    q->full = fetched == (size_t)q->batch;
    if (q->count == 0 && q->full && skipped == fetched) {
        /* A whole batch of entries at the cursor's millisecond: look further. */
        free(q->entries);
        q->entries = NULL;
        q->offset += q->batch;
        s_inbox_fetch(q);
        return;
    }
    if (q->count == 0) {
        s_on_inbox_loaded(q, NULL, 0, 1);
        return;
    }
    if (gq_notifs_load(q->r->gw, q->staff, q->entries, q->count, s_on_inbox_loaded, q) != 0)
        gw_reply_unavailable(q->r, "inbox");
}

static void s_inbox_fetch(s_inbox_t *q) {
    char key[200], max[32];
    snprintf(key, sizeof(key), "mg:inbox:%s", q->staff);
    snprintf(max, sizeof(max), "%lld", (long long)q->cursor.ms);
    gq_tx_t tx;
    gq_tx_begin(&tx, q->r->gw);
    gq_tx_add(&tx, "ZCARD", key, NULL);
    gq_tx_add_page(&tx, key, q->has_cursor ? max : NULL, q->offset, q->batch);
    if (gq_tx_exec(&tx, s_on_inbox_page, q) != 0) gw_reply_unavailable(q->r, "inbox");
}

/* {id} of an inbox route: "me" or the caller's own id. Answers 403 and
 * returns NULL for anyone else's. */
static const char *s_inbox_owner(gw_request_t *r) {
    const char *id = r->params[0];
    if (strcmp(id, "me") == 0 || strcmp(id, r->who.subject) == 0) return r->who.subject;
    gw_reply_error(r, 403, "forbidden", NULL, -1, "this inbox belongs to another staff member");
    return NULL;
}

static const char *const s_kinds[] = {"match",
                                      "collective_need",
                                      "cooperation_proposed",
                                      "cooperation_answered",
                                      "member_joined",
                                      "unanswered_need",
                                      "digest",
                                      NULL};
static const char *const s_statuses[] = {"new", "contact_made", "not_relevant", NULL};

static int s_param_enum(gw_request_t *r, const char *name, const char *const *values, const char **out) {
    const char *v = gw_query(r, name);
    *out = NULL;
    if (!v || !*v) return 0;
    for (size_t i = 0; values[i]; i++)
        if (strcmp(values[i], v) == 0) {
            *out = values[i];
            return 0;
        }
    gw_reply_error(r, 400, "invalid_parameter", name, -1, "unknown %s", name);
    return -1;
}

static void s_inbox(gw_request_t *r) {
    const char *staff = s_inbox_owner(r);
    if (!staff) return;
    long limit;
    const char *category, *department, *status, *kind;
    int unread;
    if (gq_param_limit(r, 50, 200, &limit) != 0 || gq_param_category(r, &category) != 0 ||
        gq_param_department(r, &department) != 0 || s_param_enum(r, "status", s_statuses, &status) != 0 ||
        s_param_enum(r, "kind", s_kinds, &kind) != 0 || gq_param_bool(r, "unread", &unread) != 0)
        return;
    gq_pos_t cursor;
    const char *c = gw_query(r, "cursor");
    int has_cursor = c && *c;
    if (has_cursor && gq_pos_parse(c, &cursor) != 0) {
        gw_reply_error(r, 400, "invalid_parameter", "cursor", -1, "cursor is not one this list gave");
        return;
    }
    s_inbox_t *q = gq_state_new(r, sizeof(*q), s_inbox_free);
    q->r = r;
    snprintf(q->staff, sizeof(q->staff), "%s", staff);
    q->limit = limit;
    q->has_cursor = has_cursor;
    if (has_cursor) q->cursor = cursor;
    q->category = category;
    q->department = department;
    q->status = status;
    q->kind = kind;
    q->unread = unread;
    int filtered = category || department || status || kind || unread >= 0;
    /* Without filters, more than a page says whether another follows (a
     * few more: entries at the cursor's millisecond come back and are passed
     * over); with filters, a bounded number of entries is examined. */
    q->batch = filtered ? (limit * 4 < 100 ? 100 : limit * 4 > 500 ? 500 : limit * 4) : limit + 17;
    s_inbox_fetch(q);
}

/* ---- POST /v1/staff/{id}/inbox/{nid}/read --------------------------------------------------- */

static void s_on_read(mg_redis_t *redis, redisReply *reply, void *privdata) {
    gw_request_t *r = privdata;
    (void)redis;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        gw_reply_unavailable(r, "inbox");
        return;
    }
    if (reply->integer != 1) {
        gw_reply_error(r, 404, "not_found", NULL, -1, "no such notification in this inbox");
        return;
    }
    gw_reply_bytes(r, 204, NULL, NULL, 0);
}

static void s_mark_read(gw_request_t *r) {
    const char *staff = s_inbox_owner(r);
    if (!staff) return;
    char inbox[200], notif[200];
    snprintf(inbox, sizeof(inbox), "mg:inbox:%s", staff);
    snprintf(notif, sizeof(notif), "mg:notif:%s", r->params[1]);
    if (mg_redis_command(gw_redis(r->gw), s_on_read, r, "EVAL %s 2 %s %s %s", mg_staff_mark_read_script,
                         inbox, notif, r->params[1]) != 0)
        gw_reply_unavailable(r, "inbox");
}

void gq_inbox_register(mg_gateway_t *gw) {
    gw_route(gw, EVHTTP_REQ_GET, "/v1/staff/{id}/inbox", GW_STAFF,
             "category department status kind unread cursor limit", s_inbox);
    gw_route(gw, EVHTTP_REQ_POST, "/v1/staff/{id}/inbox/{nid}/read", GW_STAFF, NULL, s_mark_read);
}
