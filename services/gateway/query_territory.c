/* query_territory.c -- the territory at a glance:
 *
 *   GET /v1/figures?department=   open needs and offers, matches proposed and
 *                                 accepted, unmet needs: totals, by
 *                                 department, category and EPCI
 *   GET /v1/map?category=         the same per commune, with coordinates
 *   GET /v1/collective-needs?category=&department=&cursor=&limit=
 *
 * Figures come from the matcher's mg:figures hash (field
 * <measure>|<cat>|<com> -> count, measures on/oo/mp/ma/un, see
 * docs/redis-keys.md): departments and EPCIs are found through the commune
 * table. One HGETALL serves every request for two seconds, and requests that
 * arrive while it is in flight wait for it instead of sending their own, so a
 * storm of page refreshes costs one read. Collective needs are the hashes
 * listed in mg:collectives (their `pb` is the latest
 * CollectiveNeedDetected), read with SSCAN, then the names of their
 * structures (mg:structure:<sid> `pb`, each structure once a page) and
 * their needs' titles and states (the notifier's mg:notifier:need:<nid>,
 * each need once a page: `needs`, in the signal's order). A group
 * of an EPCI across two departments is in both (`otherDepartments`), as
 * the offers its territory places there are. */
#include <stdlib.h>
#include <string.h>

#include "maillage/clock.h"
#include "maillage/french.h"
#include "maillage/json.h"
#include "maillage/mem.h"
#include "maillage/v1/events.pb-c.h"
#include "query.h"

enum { S_ON, S_OO, S_MP, S_MA, S_UN, S_MEASURES };
static const char *const s_measure_code[S_MEASURES] = {"on", "oo", "mp", "ma", "un"};
static const char *const s_measure_name[S_MEASURES] = {"openNeeds", "openOffers", "matchesProposed",
                                                       "matchesAccepted", "unmetNeeds"};

/* How long one read of mg:figures answers every request. */
#define S_CACHE_US (2 * 1000 * 1000)

typedef struct {
    int measure;
    char cat[40];
    char com[24]; /* a commune, or an offer's first territory entry (dep:<d>, epci:<siren>) */
    long long count;
} s_cell_t;

typedef struct s_fetch s_fetch_t;

typedef struct {
    s_cell_t *cells; /* sorted by commune */
    size_t count;
    int valid;
    int64_t read_us;  /* monotonic time of the read */
    int64_t read_ms;  /* wall-clock time of the read (generatedAt) */
    s_fetch_t *fetch; /* the read in flight, if any */
} s_cache_t;

enum { S_FIGURES, S_MAP };

typedef struct {
    gw_request_t *r;
    int what;
    char param[64]; /* department (figures) or category (map), "" for all */
} s_waiter_t;

/* A read in flight and the requests waiting for it. It outlives the cache
 * if the gateway is freed first (cache == NULL then). */
struct s_fetch {
    s_cache_t *cache;
    s_waiter_t *waiters;
    size_t count, cap;
};

static void s_cache_destroy(void *arg) {
    s_cache_t *c = arg;
    if (!c) return;
    if (c->fetch) c->fetch->cache = NULL;
    free(c->cells);
    free(c);
}

static s_cache_t *s_cache(mg_gateway_t *gw) {
    s_cache_t *c = gq_territory(gw);
    if (!c) {
        c = mg_calloc(1, sizeof(*c));
        gq_set_territory(gw, c, s_cache_destroy);
    }
    return c;
}

static int s_cmp_cell(const void *a, const void *b) {
    return strcmp(((const s_cell_t *)a)->com, ((const s_cell_t *)b)->com);
}

/* ---- building answers from the cells --------------------------------------------------- */

typedef struct {
    const char *code;
    const char *name;
    const char *department;
    long long v[S_MEASURES];
} s_row_t;

static s_row_t *s_row(s_row_t **rows, size_t *n, size_t *cap, const char *code) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*rows)[i].code, code) == 0) return &(*rows)[i];
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *rows = mg_realloc(*rows, *cap * sizeof(s_row_t));
    }
    s_row_t *row = &(*rows)[(*n)++];
    memset(row, 0, sizeof(*row));
    row->code = code;
    return row;
}

static void s_add_measures(json_t *o, const long long *v) {
    for (int m = 0; m < S_MEASURES; m++)
        json_object_set_new(o, s_measure_name[m], json_integer(v[m]));
}

static int s_cmp_row(const void *a, const void *b) {
    return strcmp(((const s_row_t *)a)->code, ((const s_row_t *)b)->code);
}

/* Where a cell counts: its commune's department and EPCI, or, for an offer
 * placed by its territory only, its first entry's (a department alone, or
 * an EPCI and its department). Borrowed; NULL when unknown. */
static void s_cell_place(mg_gateway_t *gw, const char *code, const char **dep, const char **epci,
                         const char **epci_name) {
    *dep = mg_communes_territory_department(gw_communes(gw), code);
    *epci = *epci_name = NULL;
    if (strncmp(code, "epci:", 5) == 0) {
        *epci_name = gq_epci_name(gw, code + 5, NULL);
        if (*epci_name) *epci = code + 5;
    } else if (strncmp(code, "dep:", 4) != 0) {
        const mg_commune_t *com = mg_communes_find(gw_communes(gw), code);
        if (com && com->epci[0]) {
            *epci = com->epci;
            *epci_name = com->epci_name;
        }
    }
}

static json_t *s_figures_json(mg_gateway_t *gw, const s_cache_t *c, const char *department) {
    const mg_taxonomy_t *tax = gw_taxonomy(gw);
    long long totals[S_MEASURES] = {0};
    s_row_t *deps = NULL, *cats = NULL, *epcis = NULL;
    size_t ndep = 0, capdep = 0, ncat = 0, capcat = 0, nepci = 0, capepci = 0;
    /* Every department and category is listed, at 0 when empty (charts keep
     * their axes); EPCIs only when they count something. */
    const char *const *codes;
    size_t n = gq_departments(gw, &codes);
    for (size_t i = 0; i < n; i++)
        if (!department || strcmp(codes[i], department) == 0) s_row(&deps, &ndep, &capdep, codes[i]);
    for (size_t i = 0; i < mg_taxonomy_count(tax); i++)
        s_row(&cats, &ncat, &capcat, mg_taxonomy_code(tax, i));
    for (size_t i = 0; i < c->count; i++) {
        const s_cell_t *cell = &c->cells[i];
        const char *dep, *epci, *epci_name;
        s_cell_place(gw, cell->com, &dep, &epci, &epci_name);
        if (department && (!dep || strcmp(dep, department) != 0)) continue;
        totals[cell->measure] += cell->count;
        s_row(&cats, &ncat, &capcat, cell->cat)->v[cell->measure] += cell->count;
        if (!dep) continue;
        s_row(&deps, &ndep, &capdep, dep)->v[cell->measure] += cell->count;
        if (epci) {
            s_row_t *e = s_row(&epcis, &nepci, &capepci, epci);
            e->v[cell->measure] += cell->count;
            if (!e->name) {
                e->name = epci_name;
                gq_epci_name(gw, epci, &e->department);
            }
        }
    }
    char when[32];
    gq_rfc3339(c->read_ms, when);
    json_t *out = json_pack("{s:s}", "generatedAt", when);
    if (department) json_object_set_new(out, "department", json_string(department));
    json_t *t = json_object();
    s_add_measures(t, totals);
    json_object_set_new(out, "totals", t);
    json_t *list = json_array();
    for (size_t i = 0; i < ndep; i++) {
        const char *name = mg_fr_department(deps[i].code);
        json_t *o = json_pack("{s:s, s:s}", "code", deps[i].code, "name", name ? name : deps[i].code);
        s_add_measures(o, deps[i].v);
        json_array_append_new(list, o);
    }
    json_object_set_new(out, "byDepartment", list);
    list = json_array();
    for (size_t i = 0; i < ncat; i++) {
        const char *label = mg_taxonomy_label(tax, cats[i].code);
        json_t *o = json_pack("{s:s, s:s}", "code", cats[i].code, "label", label ? label : cats[i].code);
        s_add_measures(o, cats[i].v);
        json_array_append_new(list, o);
    }
    json_object_set_new(out, "byCategory", list);
    if (nepci) qsort(epcis, nepci, sizeof(s_row_t), s_cmp_row);
    list = json_array();
    for (size_t i = 0; i < nepci; i++) {
        json_t *o =
            json_pack("{s:s, s:s}", "code", epcis[i].code, "name", epcis[i].name ? epcis[i].name : "");
        gq_set_str(o, "department", epcis[i].department);
        s_add_measures(o, epcis[i].v);
        json_array_append_new(list, o);
    }
    json_object_set_new(out, "byEpci", list);
    free(deps);
    free(cats);
    free(epcis);
    return out;
}

static json_t *s_map_json(mg_gateway_t *gw, const s_cache_t *c, const char *category) {
    const mg_communes_t *communes = gw_communes(gw);
    json_t *list = json_array();
    /* Cells are sorted by commune: one run per commune. */
    for (size_t i = 0; i < c->count;) {
        size_t j = i;
        long long v[S_MEASURES] = {0};
        long long any = 0;
        for (; j < c->count && strcmp(c->cells[j].com, c->cells[i].com) == 0; j++) {
            if (category && strcmp(c->cells[j].cat, category) != 0) continue;
            v[c->cells[j].measure] += c->cells[j].count;
            any += c->cells[j].count;
        }
        const mg_commune_t *com = mg_communes_find(communes, c->cells[i].com);
        i = j;
        if (!any || !com) continue;
        json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f}", "code", com->code, "name", com->name, "department",
                              com->department, "lat", com->latitude, "lon", com->longitude);
        json_object_set_new(o, "openNeeds", json_integer(v[S_ON]));
        json_object_set_new(o, "openOffers", json_integer(v[S_OO]));
        json_object_set_new(o, "matches", json_integer(v[S_MP]));
        json_object_set_new(o, "matchesAccepted", json_integer(v[S_MA]));
        json_object_set_new(o, "unmetNeeds", json_integer(v[S_UN]));
        json_array_append_new(list, o);
    }
    char when[32];
    gq_rfc3339(c->read_ms, when);
    json_t *out = json_pack("{s:s, s:o}", "generatedAt", when, "communes", list);
    if (category) json_object_set_new(out, "category", json_string(category));
    return out;
}

static void s_answer(const s_cache_t *c, gw_request_t *r, int what, const char *param) {
    const char *p = param && *param ? param : NULL;
    json_t *body = what == S_FIGURES ? s_figures_json(r->gw, c, p) : s_map_json(r->gw, c, p);
    gw_header(r, "Cache-Control", "private, max-age=2");
    gw_reply_json(r, 200, body);
}

/* ---- the read ------------------------------------------------------------------------------ */

static void s_on_figures(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_fetch_t *f = privdata;
    (void)redis;
    s_cache_t *c = f->cache;
    int ok = reply && reply->type == REDIS_REPLY_ARRAY;
    if (c) {
        c->fetch = NULL;
        if (ok) {
            free(c->cells);
            c->cells = mg_calloc(reply->elements / 2 + 1, sizeof(s_cell_t));
            c->count = 0;
            for (size_t i = 0; i + 1 < reply->elements; i += 2) {
                const char *field = gq_str(reply->element[i]), *value = gq_str(reply->element[i + 1]);
                if (!field || !value) continue;
                const char *bar1 = strchr(field, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
                if (!bar2 || bar1 - field != 2 || (size_t)(bar2 - bar1 - 1) >= sizeof(c->cells[0].cat) ||
                    strlen(bar2 + 1) >= sizeof(c->cells[0].com))
                    continue;
                int measure = -1;
                for (int m = 0; m < S_MEASURES; m++)
                    if (strncmp(field, s_measure_code[m], 2) == 0) measure = m;
                long long count = strtoll(value, NULL, 10);
                if (measure < 0 || count <= 0) continue;
                s_cell_t *cell = &c->cells[c->count++];
                cell->measure = measure;
                memcpy(cell->cat, bar1 + 1, (size_t)(bar2 - bar1 - 1));
                cell->cat[bar2 - bar1 - 1] = '\0';
                snprintf(cell->com, sizeof(cell->com), "%s", bar2 + 1);
                cell->count = count;
            }
            if (c->count) qsort(c->cells, c->count, sizeof(s_cell_t), s_cmp_cell);
            c->valid = 1;
            c->read_us = mg_clock_monotonic_us();
            c->read_ms = mg_clock_now_ms();
        }
    }
    for (size_t i = 0; i < f->count; i++) {
        s_waiter_t *w = &f->waiters[i];
        if (c && ok)
            s_answer(c, w->r, w->what, w->param);
        else
            gw_reply_unavailable(w->r, "figures");
    }
    free(f->waiters);
    free(f);
}

static void s_fetch_wait(s_fetch_t *f, gw_request_t *r, int what, const char *param) {
    if (f->count == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        f->waiters = mg_realloc(f->waiters, f->cap * sizeof(s_waiter_t));
    }
    s_waiter_t *w = &f->waiters[f->count++];
    w->r = r;
    w->what = what;
    snprintf(w->param, sizeof(w->param), "%s", param ? param : "");
}

static void s_figures_or_map(gw_request_t *r, int what, const char *param) {
    s_cache_t *c = s_cache(r->gw);
    if (c->valid && mg_clock_monotonic_us() - c->read_us < S_CACHE_US) {
        s_answer(c, r, what, param);
        return;
    }
    if (c->fetch) {
        s_fetch_wait(c->fetch, r, what, param);
        return;
    }
    s_fetch_t *f = mg_calloc(1, sizeof(*f));
    f->cache = c;
    s_fetch_wait(f, r, what, param);
    if (mg_redis_command(gw_redis(r->gw), s_on_figures, f, "HGETALL mg:figures") != 0) {
        free(f->waiters);
        free(f);
        gw_reply_unavailable(r, "figures");
        return;
    }
    c->fetch = f;
}

static void s_figures(gw_request_t *r) {
    const char *department;
    if (gq_param_department(r, &department) != 0) return;
    s_figures_or_map(r, S_FIGURES, department);
}

static void s_map(gw_request_t *r) {
    const char *category;
    if (gq_param_category(r, &category) != 0) return;
    s_figures_or_map(r, S_MAP, category);
}

/* ---- collective needs ----------------------------------------------------------------------- */

typedef struct {
    gw_request_t *r;
    const char *category, *department;
    long limit;
    char cursor[24];
    int rounds;
    char **keys;
    size_t count, cap;
    json_t *items;     /* the page's collective needs, while their structures' names are read */
    const char **sids; /* their structures, sorted, once each; borrowed from `items` */
    size_t n_sids;
    const char **nids; /* their needs, sorted, once each; borrowed from `items` */
    size_t n_nids;
} s_coll_t;

static void s_coll_free(void *arg) {
    s_coll_t *q = arg;
    for (size_t i = 0; i < q->count; i++)
        free(q->keys[i]);
    free(q->keys);
    free(q->sids);
    free(q->nids);
    json_decref(q->items);
    free(q);
}

/* The department of a group ("<epci>" or "near:<com>", after
 * "mg:collective:<cat>:" in its key): its commune's, or its EPCI's (the
 * department of its first commune; gq_epci_other_departments() the others). */
static const char *s_coll_department(mg_gateway_t *gw, const char *group) {
    if (strncmp(group, "near:", 5) == 0) {
        const mg_commune_t *c = mg_communes_find(gw_communes(gw), group + 5);
        return c ? c->department : NULL;
    }
    const char *dep = NULL;
    gq_epci_name(gw, group, &dep);
    return dep;
}

static int s_cmp_updated(const void *a, const void *b) {
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "updatedAt"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "updatedAt"));
    return strcmp(y ? y : "", x ? x : "");
}

static void s_coll_reply(s_coll_t *q) {
    json_t *body = json_pack("{s:O}", "items", q->items);
    json_object_set_new(body, "nextCursor",
                        strcmp(q->cursor, "0") == 0 ? json_null() : json_string(q->cursor));
    gw_reply_json(q->r, 200, body);
}

static int s_cmp_sid(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Each id of `ids` once, sorted (looked up by bsearch); returns the count. */
static size_t s_sort_unique(const char **ids, size_t n) {
    if (n) qsort(ids, n, sizeof(char *), s_cmp_sid);
    size_t unique = 0;
    for (size_t i = 0; i < n; i++)
        if (unique == 0 || strcmp(ids[unique - 1], ids[i]) != 0) ids[unique++] = ids[i];
    return unique;
}

/* Append the strings of `array` (a JSON array) to the growing `ids`. */
static void s_collect_ids(json_t *array, const char ***ids, size_t *n, size_t *cap) {
    size_t j;
    json_t *id;
    json_array_foreach(array, j, id) {
        if (!json_string_value(id)) continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 16;
            *ids = mg_realloc(*ids, *cap * sizeof(char *));
        }
        (*ids)[(*n)++] = json_string_value(id);
    }
}

/* The need `nid` of a collective need as staff read it, from the
 * notifier's record (`hmget`: title, sid, state; absent when the notifier
 * has not seen it): {id, title?, structureId?, open}. */
static json_t *s_coll_need(const char *nid, const redisReply *hmget) {
    json_t *o = json_pack("{s:s}", "id", nid);
    const redisReply *title =
        hmget && hmget->type == REDIS_REPLY_ARRAY && hmget->elements == 3 ? hmget->element[0] : NULL;
    const char *t = gq_str(title), *sid = title ? gq_str(hmget->element[1]) : NULL,
               *st = title ? gq_str(hmget->element[2]) : NULL;
    if (t && *t) gq_set_str(o, "title", t);
    if (sid && *sid) gq_set_str(o, "structureId", sid);
    json_object_set_new(o, "open", json_boolean(!st || strcmp(st, "closed") != 0));
    return o;
}

/* Fill each item's "structureNames" (id -> name, the structures known) and
 * "needs" from `reply`: the `pb` of q->sids, then the notifier's record of
 * q->nids, in order. */
static void s_on_coll_names(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_coll_t *q = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, q->n_sids + q->n_nids)) {
        gw_reply_unavailable(q->r, "collective needs");
        return;
    }
    size_t i, j;
    json_t *item, *id;
    json_array_foreach(q->items, i, item) {
        json_t *names = json_object_get(item, "structureNames");
        json_array_foreach(json_object_get(item, "structureIds"), j, id) {
            const char *sid = json_string_value(id);
            const char **at = sid ? bsearch(&sid, q->sids, q->n_sids, sizeof(char *), s_cmp_sid) : NULL;
            char *name = at ? gq_structure_name(gq_at(reply, (size_t)(at - q->sids))) : NULL;
            if (name) json_object_set_new(names, sid, json_string(name));
            free(name);
        }
        json_t *needs = json_object_get(item, "needs");
        json_array_foreach(json_object_get(item, "needIds"), j, id) {
            const char *nid = json_string_value(id);
            const char **at = nid ? bsearch(&nid, q->nids, q->n_nids, sizeof(char *), s_cmp_sid) : NULL;
            if (at)
                json_array_append_new(needs,
                                      s_coll_need(nid, gq_at(reply, q->n_sids + (size_t)(at - q->nids))));
        }
    }
    s_coll_reply(q);
}

static void s_on_coll_page(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_coll_t *q = privdata;
    (void)redis;
    if (q->count && !gq_exec_ok(reply, q->count)) {
        gw_reply_unavailable(q->r, "collective needs");
        return;
    }
    json_t **found = mg_calloc(q->count + 1, sizeof(json_t *));
    size_t n = 0;
    for (size_t i = 0; i < q->count; i++) {
        const redisReply *h = gq_at(reply, i);
        const redisReply *pb = h && h->type == REDIS_REPLY_ARRAY ? mg_redis_field(h, "pb") : NULL;
        if (!pb) continue;
        Maillage__V1__CollectiveNeedDetected *cn =
            maillage__v1__collective_need_detected__unpack(NULL, pb->len, (const uint8_t *)pb->str);
        if (!cn) continue;
        const char *cat = cn->category ? cn->category : "";
        int keyed = strncmp(q->keys[i], "mg:collective:", 14) == 0 && strlen(q->keys[i]) > 14 + strlen(cat);
        const char *group = keyed ? q->keys[i] + strlen("mg:collective:") + strlen(cat) + 1 : NULL;
        const char *dep = group ? s_coll_department(q->r->gw, group) : NULL;
        json_t *others =
            group && strncmp(group, "near:", 5) != 0 ? gq_epci_other_departments(q->r->gw, group, dep) : NULL;
        if (q->department && !gq_department_in(q->department, dep, others)) {
            json_decref(others);
            maillage__v1__collective_need_detected__free_unpacked(cn, NULL);
            continue;
        }
        json_t *o = json_pack("{s:s}", "id", cn->collective_id ? cn->collective_id : "");
        json_t *fields = mg_json_from_message(&cn->base);
        json_object_update(o, fields);
        json_decref(fields);
        const redisReply *rev = mg_redis_field(h, "rev"), *count = mg_redis_field(h, "n"),
                         *at = mg_redis_field(h, "at");
        json_object_set_new(o, "revision", json_integer(rev ? strtoll(rev->str, NULL, 10) : cn->revision));
        json_object_set_new(
            o, "structures",
            json_integer(count ? strtoll(count->str, NULL, 10) : (json_int_t)cn->n_structure_ids));
        if (at) {
            char when[32];
            gq_rfc3339(strtoll(at->str, NULL, 10), when);
            json_object_set_new(o, "updatedAt", json_string(when));
        }
        const char *label = mg_taxonomy_label(gw_taxonomy(q->r->gw), cat);
        gq_set_str(o, "categoryLabel", label ? label : cat);
        if (dep) {
            gq_set_str(o, "department", dep);
            gq_set_str(o, "departmentName", mg_fr_department(dep));
        }
        if (others) json_object_set_new(o, "otherDepartments", others);
        if (group && strncmp(group, "near:", 5) == 0 && cn->territory_name && *cn->territory_name) {
            /* A group by distance is around its commune, not in it. */
            char de[256], around[300];
            snprintf(around, sizeof(around), "autour %s", mg_fr_de(cn->territory_name, de, sizeof(de)));
            gq_set_str(o, "territoryLabel", around);
        }
        found[n++] = o;
        maillage__v1__collective_need_detected__free_unpacked(cn, NULL);
    }
    /* Newest signal first within the page. */
    if (n > 1) qsort(found, n, sizeof(json_t *), s_cmp_updated);
    q->items = json_array();
    size_t sids_cap = 0, nids_cap = 0;
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(found[i], "structureNames", json_object());
        json_object_set_new(found[i], "needs", json_array());
        json_array_append_new(q->items, found[i]);
        s_collect_ids(json_object_get(found[i], "structureIds"), &q->sids, &q->n_sids, &sids_cap);
        s_collect_ids(json_object_get(found[i], "needIds"), &q->nids, &q->n_nids, &nids_cap);
    }
    free(found);
    q->n_sids = s_sort_unique(q->sids, q->n_sids);
    q->n_nids = s_sort_unique(q->nids, q->n_nids);
    gq_tx_t tx;
    gq_tx_begin(&tx, q->r->gw);
    for (size_t i = 0; i < q->n_sids; i++) {
        char key[200];
        snprintf(key, sizeof(key), "mg:structure:%s", q->sids[i]);
        gq_tx_add(&tx, "HGET", key, "pb", NULL);
    }
    for (size_t i = 0; i < q->n_nids; i++) {
        char key[200];
        snprintf(key, sizeof(key), "mg:notifier:need:%s", q->nids[i]);
        gq_tx_add(&tx, "HMGET", key, "title", "sid", "state", NULL);
    }
    if (!tx.failed && tx.count == 0) {
        s_coll_reply(q);
        return;
    }
    if (gq_tx_exec(&tx, s_on_coll_names, q) != 0) gw_reply_unavailable(q->r, "collective needs");
}

static void s_coll_scan(s_coll_t *q);

static void s_on_coll_scan(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_coll_t *q = privdata;
    (void)redis;
    const redisReply *keys = gq_scan_page(reply, q->cursor, sizeof(q->cursor));
    if (!keys) {
        gw_reply_unavailable(q->r, "collective needs");
        return;
    }
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = gq_str(keys->element[i]);
        if (!k || strncmp(k, "mg:collective:", 14) != 0) continue;
        /* SSCAN may return a member twice (a set being resized): once per page. */
        int seen = 0;
        for (size_t j = 0; j < q->count && !seen; j++) seen = strcmp(q->keys[j], k) == 0;
        if (seen) continue;
        if (q->count == q->cap) {
            q->cap = q->cap ? 2 * q->cap : 32;
            q->keys = mg_realloc(q->keys, q->cap * sizeof(char *));
        }
        q->keys[q->count++] = mg_strdup(k);
    }
    if (q->count >= (size_t)q->limit || strcmp(q->cursor, "0") == 0 || ++q->rounds >= 16) {
        if (q->count == 0) {
            s_on_coll_page(NULL, NULL, q);
            return;
        }
        gq_tx_t tx;
        gq_tx_begin(&tx, q->r->gw);
        for (size_t i = 0; i < q->count; i++)
            gq_tx_add(&tx, "HGETALL", q->keys[i], NULL);
        if (gq_tx_exec(&tx, s_on_coll_page, q) != 0) gw_reply_unavailable(q->r, "collective needs");
        return;
    }
    s_coll_scan(q);
}

static void s_coll_scan(s_coll_t *q) {
    char match[128];
    if (q->category)
        snprintf(match, sizeof(match), "mg:collective:%s:*", q->category);
    else
        snprintf(match, sizeof(match), "mg:collective:*");
    if (mg_redis_command(gw_redis(q->r->gw), s_on_coll_scan, q, "SSCAN mg:collectives %s MATCH %s COUNT %ld",
                         q->cursor, match, q->limit) != 0)
        gw_reply_unavailable(q->r, "collective needs");
}

static void s_collective(gw_request_t *r) {
    long limit;
    const char *category, *department;
    if (gq_param_limit(r, 100, 500, &limit) != 0 || gq_param_category(r, &category) != 0 ||
        gq_param_department(r, &department) != 0)
        return;
    const char *cursor = gw_query(r, "cursor");
    if (cursor && *cursor && !gq_scan_cursor_valid(cursor)) {
        gw_reply_error(r, 400, "invalid_parameter", "cursor", -1, "cursor is not one this list gave");
        return;
    }
    s_coll_t *q = gq_state_new(r, sizeof(*q), s_coll_free);
    q->r = r;
    q->category = category;
    q->department = department;
    q->limit = limit;
    snprintf(q->cursor, sizeof(q->cursor), "%s", cursor && *cursor ? cursor : "0");
    s_coll_scan(q);
}

void gq_territory_register(mg_gateway_t *gw) {
    s_cache(gw);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/figures", GW_STAFF, "department", s_figures);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/map", GW_STAFF, "category", s_map);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/collective-needs", GW_STAFF, "category department cursor limit",
             s_collective);
}
