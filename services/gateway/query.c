/* query.c -- the read API's shared parts (query.h) and its reference data:
 * GET /v1/taxonomy and GET /v1/communes.
 *
 * The other read routes live in query_items.c (structures, needs, offers,
 * matches), query_cooperations.c (a cooperation proposal), query_inbox.c (a
 * staff member's inbox and the notification loader the live stream uses
 * too) and query_territory.c (collective needs, figures, map). This file
 * keeps the part's state: the departments and EPCIs derived from the
 * commune table, the /v1/communes body (built once: the table never changes
 * while the gateway runs) and the slot of the figures cache. */
#include "query.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "maillage/clock.h"
#include "maillage/french.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/v1/events.pb-c.h"

typedef struct {
    int built;
    char **departments;
    size_t n_departments;
    char *communes_body; /* the /v1/communes JSON */
    size_t communes_len;
    void *territory;
    void (*territory_destroy)(void *state);
} s_state_t;

static void s_state_destroy(void *arg) {
    s_state_t *st = arg;
    if (!st) return;
    for (size_t i = 0; i < st->n_departments; i++)
        free(st->departments[i]);
    free(st->departments);
    free(st->communes_body);
    if (st->territory && st->territory_destroy) st->territory_destroy(st->territory);
    free(st);
}

static s_state_t *s_state(mg_gateway_t *gw) {
    s_state_t *st = gw_part(gw, GW_PART_QUERY);
    if (!st) {
        st = mg_calloc(1, sizeof(*st));
        gw_part_set(gw, GW_PART_QUERY, st, s_state_destroy);
    }
    return st;
}

void gq_set_territory(mg_gateway_t *gw, void *state, void (*destroy)(void *state)) {
    s_state_t *st = s_state(gw);
    st->territory = state;
    st->territory_destroy = destroy;
}

void *gq_territory(mg_gateway_t *gw) {
    return s_state(gw)->territory;
}

/* ---- MULTI/EXEC batches --------------------------------------------------------- */

void gq_tx_begin(gq_tx_t *tx, mg_gateway_t *gw) {
    tx->redis = gw_redis(gw);
    tx->count = 0;
    tx->failed = !tx->redis;
}

/* A read refused by Redis (a missing ACL permission, memory) answers 503:
 * say why in the log too, at most once every S_ERROR_LOG_US. */
#define S_ERROR_LOG_US (10 * 1000 * 1000)

static void s_log_refused(const char *why) {
    static int64_t last_us = -S_ERROR_LOG_US;
    int64_t now_us = mg_clock_monotonic_us();
    if (now_us - last_us < S_ERROR_LOG_US) return;
    last_us = now_us;
    mg_warn("gateway: a read failed in Redis (answered 503): %s", why);
}

/* MULTI and each command queued: refused at queue time (a command or key
 * the ACL user may not use), EXEC only says EXECABORT; this says why. */
static void s_on_queued(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    (void)privdata;
    if (reply && reply->type == REDIS_REPLY_ERROR) s_log_refused(reply->str);
}

void gq_tx_addv(gq_tx_t *tx, int argc, const char **argv) {
    if (tx->failed) return;
    /* MULTI goes with the first command: an empty batch sends nothing. */
    if (tx->count == 0 && mg_redis_command(tx->redis, s_on_queued, NULL, "MULTI") != 0) {
        tx->failed = 1;
        return;
    }
    size_t *lens = mg_malloc((size_t)argc * sizeof(*lens));
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (mg_redis_command_argv(tx->redis, s_on_queued, NULL, argc, argv, lens) != 0)
        tx->failed = 1;
    else
        tx->count++;
    free(lens);
}

void gq_tx_add(gq_tx_t *tx, const char *word, ...) {
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, word);
    for (const char *w = word; w && argc < 32; w = va_arg(ap, const char *))
        argv[argc++] = w;
    va_end(ap);
    gq_tx_addv(tx, argc, argv);
}

void gq_tx_add_page(gq_tx_t *tx, const char *key, const char *max, long offset, long batch) {
    char from[24], count[24];
    snprintf(from, sizeof(from), "%ld", offset);
    snprintf(count, sizeof(count), "%ld", batch);
    gq_tx_add(tx, "ZREVRANGEBYSCORE", key, max ? max : "+inf", "-inf", "WITHSCORES", "LIMIT", from, count,
              NULL);
}

int gq_tx_exec(gq_tx_t *tx, mg_redis_reply_fn cb, void *privdata) {
    if (tx->failed || tx->count == 0) return -1;
    if (mg_redis_command(tx->redis, cb, privdata, "EXEC") != 0) return -1;
    return 0;
}

int gq_exec_ok(const redisReply *exec, size_t count) {
    if (exec && exec->type == REDIS_REPLY_ARRAY && exec->elements == count) return 1;
    if (exec && exec->type == REDIS_REPLY_ERROR) s_log_refused(exec->str);
    return 0;
}

const redisReply *gq_scan_page(const redisReply *reply, char *cursor, size_t len) {
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_ARRAY)
        return NULL;
    snprintf(cursor, len, "%s", reply->element[0]->str);
    return reply->element[1];
}

const redisReply *gq_at(const redisReply *exec, size_t i) {
    if (!exec || exec->type != REDIS_REPLY_ARRAY || i >= exec->elements) return NULL;
    const redisReply *r = exec->element[i];
    return r && r->type != REDIS_REPLY_ERROR ? r : NULL;
}

const char *gq_str(const redisReply *r) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? r->str : NULL;
}

/* ---- a request's state ----------------------------------------------------------- */

void *gq_state_new(gw_request_t *r, size_t size, void (*state_free)(void *state)) {
    r->state = mg_calloc(1, size);
    r->state_free = state_free;
    return r->state;
}

/* ---- parameters ------------------------------------------------------------------ */

int gq_param_limit(gw_request_t *r, long def, long max, long *out) {
    const char *v = gw_query(r, "limit");
    *out = def;
    if (!v || !*v) return 0;
    /* Digits only: strtol would also take a sign and leading blanks. */
    long n = v[strspn(v, "0123456789")] == '\0' ? strtol(v, NULL, 10) : 0;
    if (n < 1 || n > max) {
        gw_reply_error(r, 400, "invalid_parameter", "limit", -1, "limit must be an integer from 1 to %ld",
                       max);
        return -1;
    }
    *out = n;
    return 0;
}

int gq_param_category(gw_request_t *r, const char **out) {
    const char *v = gw_query(r, "category");
    *out = NULL;
    if (!v || !*v) return 0;
    if (!mg_taxonomy_label(gw_taxonomy(r->gw), v)) {
        gw_reply_error(r, 400, "invalid_parameter", "category", -1,
                       "unknown category (GET /v1/taxonomy lists them)");
        return -1;
    }
    *out = v;
    return 0;
}

int gq_param_department(gw_request_t *r, const char **out) {
    const char *v = gw_query(r, "department");
    *out = NULL;
    if (!v || !*v) return 0;
    if (!gq_department_known(r->gw, v)) {
        gw_reply_error(r, 400, "invalid_parameter", "department", -1,
                       "unknown department (GET /v1/taxonomy lists them)");
        return -1;
    }
    *out = v;
    return 0;
}

int gq_scan_cursor_valid(const char *s) {
    if (!s || !*s || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s)) return 0;
    /* Redis refuses a cursor beyond 2^64 - 1 ("invalid cursor"). */
    return strlen(s) < 20 || strcmp(s, "18446744073709551615") <= 0;
}

int gq_param_bool(gw_request_t *r, const char *name, int *out) {
    const char *v = gw_query(r, name);
    *out = -1;
    if (!v || !*v) return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = 0;
    else {
        gw_reply_error(r, 400, "invalid_parameter", name, -1, "%s must be true or false", name);
        return -1;
    }
    return 0;
}

/* ---- reference data ---------------------------------------------------------------- */

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The departments of the commune table, sorted (once). */
static s_state_t *s_reference(mg_gateway_t *gw) {
    s_state_t *st = s_state(gw);
    if (st->built) return st;
    st->built = 1;
    const mg_communes_t *communes = gw_communes(gw);
    size_t n = communes ? mg_communes_count(communes) : 0;
    size_t cap_dep = 0;
    for (size_t i = 0; i < n; i++) {
        const mg_commune_t *c = mg_communes_at(communes, i);
        int seen = 0;
        for (size_t d = 0; d < st->n_departments && !seen; d++)
            seen = strcmp(st->departments[d], c->department) == 0;
        if (!seen && c->department[0]) {
            if (st->n_departments == cap_dep) {
                cap_dep = cap_dep ? 2 * cap_dep : 8;
                st->departments = mg_realloc(st->departments, cap_dep * sizeof(char *));
            }
            st->departments[st->n_departments++] = mg_strdup(c->department);
        }
    }
    if (st->n_departments) qsort(st->departments, st->n_departments, sizeof(char *), s_cmp_str);
    return st;
}

size_t gq_departments(mg_gateway_t *gw, const char *const **codes) {
    s_state_t *st = s_reference(gw);
    *codes = (const char *const *)st->departments;
    return st->n_departments;
}

int gq_department_known(mg_gateway_t *gw, const char *code) {
    s_state_t *st = s_reference(gw);
    for (size_t i = 0; code && i < st->n_departments; i++)
        if (strcmp(st->departments[i], code) == 0) return 1;
    return 0;
}

int gq_department_in(const char *want, const char *dep, const json_t *others) {
    if (dep && strcmp(dep, want) == 0) return 1;
    for (size_t i = 0; i < json_array_size(others); i++) {
        const char *other = json_string_value(json_array_get(others, i));
        if (other && strcmp(other, want) == 0) return 1;
    }
    return 0;
}

const char *gq_epci_name(mg_gateway_t *gw, const char *siren, const char **department) {
    const mg_epci_t *e = mg_communes_epci(gw_communes(gw), siren);
    if (department) *department = e ? e->department : NULL;
    return e ? e->name : NULL;
}

int gq_epci_in_department(mg_gateway_t *gw, const char *siren, const char *department) {
    return mg_epci_in_department(mg_communes_epci(gw_communes(gw), siren), department);
}

json_t *gq_epci_other_departments(mg_gateway_t *gw, const char *siren, const char *department) {
    if (!department) return NULL;
    const char *const *codes;
    size_t n = gq_departments(gw, &codes);
    json_t *list = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(codes[i], department) == 0 || !gq_epci_in_department(gw, siren, codes[i])) continue;
        if (!list) list = json_array();
        json_array_append_new(list, json_string(codes[i]));
    }
    return list;
}

/* ---- JSON and dates ---------------------------------------------------------------- */

void gq_rfc3339(int64_t ms, char out[32]) {
    time_t t = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        t -= 1;
    }
    struct tm tm;
    /* strftime bounds what a year may print, snprintf cannot tell. */
    char head[32];
    if (!gmtime_r(&t, &tm) || strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm) == 0) head[0] = '\0';
    snprintf(out, 32, "%.19s.%03dZ", head, milli);
}

void gq_day_date(long day, char out[11]) {
    out[0] = '\0';
    if (day < 0 || day > 2932896) return; /* after 9999-12-31: not a date from Maillage */
    time_t t = (time_t)day * 86400;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 11, "%Y-%m-%d", &tm) == 0) out[0] = '\0';
}

void gq_set_str(json_t *obj, const char *key, const char *value) {
    if (value && *value) json_object_set_new(obj, key, json_string(value));
}

void gq_set_entry_place(mg_gateway_t *gw, json_t *obj, const char *entry) {
    const char *department = mg_communes_territory_department(gw_communes(gw), entry);
    if (department && *department) {
        gq_set_str(obj, "department", department);
        gq_set_str(obj, "departmentName", mg_fr_department(department));
    }
}

void gq_set_place(mg_gateway_t *gw, json_t *obj, const char *code, const char *department) {
    if (code && (strncmp(code, "dep:", 4) == 0 || strncmp(code, "epci:", 5) == 0)) {
        gq_set_entry_place(gw, obj, code);
        return;
    }
    const mg_commune_t *c = code && *code ? mg_communes_find(gw_communes(gw), code) : NULL;
    gq_set_str(obj, "commune", code);
    if (c) {
        gq_set_str(obj, "communeName", c->name);
        department = c->department;
    }
    if (department && *department) {
        gq_set_str(obj, "department", department);
        gq_set_str(obj, "departmentName", mg_fr_department(department));
    }
    if (c && c->epci[0]) {
        gq_set_str(obj, "epci", c->epci);
        gq_set_str(obj, "epciName", c->epci_name);
    }
}

void gq_set_territory_names(mg_gateway_t *gw, json_t *obj) {
    json_t *territory = json_object_get(obj, "territory");
    if (!json_array_size(territory)) return;
    json_t *names = json_array();
    size_t i;
    json_t *entry;
    json_array_foreach(territory, i, entry) {
        const char *e = json_string_value(entry) ? json_string_value(entry) : "";
        const char *name = mg_communes_territory_name(gw_communes(gw), e);
        json_array_append_new(names, json_string(name ? name : e));
    }
    json_object_set_new(obj, "territoryNames", names);
}

void gq_set_category(mg_gateway_t *gw, json_t *obj, const char *code) {
    if (!code || !*code) return;
    gq_set_str(obj, "category", code);
    const char *label = mg_taxonomy_label(gw_taxonomy(gw), code);
    gq_set_str(obj, "categoryLabel", label ? label : code);
}

char *gq_structure_name(const redisReply *pb) {
    if (!pb || pb->type != REDIS_REPLY_STRING) return NULL;
    Maillage__V1__Structure *s = maillage__v1__structure__unpack(NULL, pb->len, (const uint8_t *)pb->str);
    if (!s) return NULL;
    char *name = s->name && *s->name ? mg_strdup(s->name) : NULL;
    maillage__v1__structure__free_unpacked(s, NULL);
    return name;
}

const char *gq_status_name(const char *stored) {
    if (stored && strcmp(stored, "cm") == 0) return "contact_made";
    if (stored && strcmp(stored, "nr") == 0) return "not_relevant";
    return "new";
}

/* ---- positions ---------------------------------------------------------------------- */

int gq_pos_parse(const char *text, gq_pos_t *pos) {
    if (!text) return -1;
    const char *dash = strchr(text, '-');
    if (!dash || dash == text || dash - text > 15) return -1;
    int64_t ms = 0;
    for (const char *p = text; p < dash; p++) {
        if (*p < '0' || *p > '9') return -1;
        ms = ms * 10 + (*p - '0');
    }
    if (!mg_id_is_valid(dash + 1)) return -1;
    pos->ms = ms;
    snprintf(pos->nid, sizeof(pos->nid), "%s", dash + 1);
    return 0;
}

/* The sorted set's own order: by score, then by member as bytes. */
int gq_pos_cmp(int64_t ms, const char *nid, const gq_pos_t *pos) {
    if (ms != pos->ms) return ms < pos->ms ? -1 : 1;
    int c = strcmp(nid, pos->nid);
    return c < 0 ? -1 : c > 0;
}

/* ---- GET /v1/taxonomy, GET /v1/communes ------------------------------------------------ */

static void s_taxonomy(gw_request_t *r) {
    const mg_taxonomy_t *tax = gw_taxonomy(r->gw);
    json_t *cats = json_array();
    for (size_t i = 0; i < mg_taxonomy_count(tax); i++) {
        const char *code = mg_taxonomy_code(tax, i);
        json_array_append_new(cats,
                              json_pack("{s:s, s:s}", "code", code, "label", mg_taxonomy_label(tax, code)));
    }
    const char *const *deps;
    size_t n = gq_departments(r->gw, &deps);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *name = mg_fr_department(deps[i]);
        json_array_append_new(out, json_pack("{s:s, s:s}", "code", deps[i], "name", name ? name : deps[i]));
    }
    json_t *nets = json_array();
    for (size_t i = 0; i < mg_taxonomy_network_count(tax); i++) {
        const char *id = mg_taxonomy_network_id(tax, i);
        json_array_append_new(nets,
                              json_pack("{s:s, s:s}", "id", id, "name", mg_taxonomy_network_name(tax, id)));
    }
    gw_header(r, "Cache-Control", "private, max-age=300");
    gw_reply_json(r, 200,
                  json_pack("{s:o, s:o, s:o}", "categories", cats, "departments", out, "networks", nets));
}

static void s_communes(gw_request_t *r) {
    s_state_t *st = s_reference(r->gw);
    if (!st->communes_body) {
        const mg_communes_t *communes = gw_communes(r->gw);
        json_t *list = json_array();
        for (size_t i = 0; communes && i < mg_communes_count(communes); i++) {
            const mg_commune_t *c = mg_communes_at(communes, i);
            json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:f}", "code", c->code, "name", c->name, "department",
                                  c->department, "lat", c->latitude, "lon", c->longitude);
            json_object_set_new(o, "epci", c->epci[0] ? json_string(c->epci) : json_null());
            gq_set_str(o, "epciName", c->epci_name);
            json_array_append_new(list, o);
        }
        json_t *body = json_pack("{s:o}", "communes", list);
        st->communes_body = json_dumps(body, JSON_COMPACT);
        st->communes_len = st->communes_body ? strlen(st->communes_body) : 0;
        json_decref(body);
        if (!st->communes_body) {
            gw_reply_error(r, 500, "internal", NULL, -1, "could not encode the commune table");
            return;
        }
    }
    gw_header(r, "Cache-Control", "private, max-age=86400");
    gw_reply_bytes(r, 200, "application/json", st->communes_body, st->communes_len);
}

void gw_query_register(mg_gateway_t *gw) {
    s_state(gw);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/taxonomy", GW_STAFF, NULL, s_taxonomy);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/communes", GW_STAFF, NULL, s_communes);
    gq_items_register(gw);
    gq_cooperations_register(gw);
    gq_inbox_register(gw);
    gq_territory_register(gw);
}
