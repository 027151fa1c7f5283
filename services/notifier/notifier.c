/* notifier.c -- route, render, create once, deliver with retries.
 *
 * One event at a time (the subscriber delivers the next one only after
 * mg_subscriber_done()):
 *
 *   1. what the messages will name is read (one "get" script call: the
 *      structures, needs and offers the notifier recorded from earlier
 *      events), or recorded (member.*, need.*, offer.*, cooperation.proposed);
 *   2. the item is routed to every staff member whose scope covers it
 *      (department, category, network, minimum score), or to the default
 *      recipient, and rendered from the French templates for each of them;
 *   3. one "create" script call creates each (item, staff, channel)
 *      notification that does not exist yet: inbox entries are written there
 *      and then (exactly once), e-mails and webhooks are queued (or put
 *      aside for the digest); the delivery is done.
 *
 * A timer works the queue: "claim" takes the due notifications (and pushes
 * them a lease into the future, so a crashed sender's are retried after it)
 * when something was queued or is due, and returns the next due time,
 * outbound.h sends them, "result" records delivered / retry at (backoff with
 * jitter) / failed. Staff are read again from Redis every staff_refresh_ms,
 * so `maillage staff` changes apply without a restart. */
#include "notifier.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/communes.h"
#include "maillage/daemon.h"
#include "maillage/envelope.h"
#include "maillage/french.h"
#include "maillage/json.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/metrics.h"
#include "maillage/notifier_config.h"
#include "maillage/outbound.h"
#include "maillage/redis.h"
#include "maillage/script.h"
#include "maillage/staff.h"
#include "maillage/subscriber.h"
#include "maillage/taxonomy.h"
#include "maillage/template.h"

#define S_METRICS_INTERVAL_S 10
/* A clean stop waits this long at least, and longer than the send timeout
 * (and the mail watchdog's cut): a send cut short by the exit could have
 * reached its receiver, and the lease would send it again. */
#define S_SHUTDOWN_GRACE_MS 5000
#define S_SHUTDOWN_AFTER_TIMEOUT_MS 2000
/* The queue's timer ticks every S_WORKER_INTERVAL_MS without asking Redis:
 * "claim" goes when this notifier queued something (s_kick_worker()), when
 * the earliest due time the last claim saw has come (by the service clock,
 * which a test clock moves), or S_CLAIM_POLL_MS after the last claim (what
 * another notifier, or a restored Redis, queued). */
#define S_WORKER_INTERVAL_MS 20
#define S_CLAIM_POLL_MS      1000
#define S_DIGEST_INTERVAL_MS 500
/* One notifier sends at a time (mg:notifier:active, "active" in the
 * script): it renews its place every S_ACTIVE_RENEW_MS, and another one
 * takes it S_ACTIVE_TTL_MS after the last renewal (at once if the holder was
 * a process of this machine that has ended). Two sending at once each
 * claimed the mails the other had waiting for a mail worker. */
#define S_ACTIVE_RENEW_MS    2000
#define S_ACTIVE_TTL_MS      10000
#define S_MAX_VARS 32
#define S_MAX_NETS 16
#define S_MAX_DEPS           16 /* other departments an item concerns */
#define S_COLLECTIVE_ROWS    50 /* structures of a collective need whose names are read */
#define S_MS_PER_DAY 86400000LL
#define S_MS_PER_HOUR 3600000LL

/* ---- ids -------------------------------------------------------------------------- */

void mg_notifier_notification_id(const char *item, const char *staff, const char *channel,
                                 char out[MG_NOTIFICATION_ID_LEN + 1]) {
    const char *parts[3] = {item, staff, channel};
    out[0] = 'n';
    out[1] = '-';
    mg_hash_hex(parts, 3, out + 2);
}

/* Scores go to the script with 4 decimals, as records have always held them
 * (one outside 0..1, which the broker refuses, as 0). */
static void s_args_score(mg_args_t *a, double v) {
    char buf[40];
    snprintf(buf, sizeof(buf), "%.4f", isfinite(v) && v >= 0 && v <= 1 ? v : 0.0);
    mg_args_str(a, buf);
}

/* ---- staff ------------------------------------------------------------------------- */

enum { S_CH_INBOX, S_CH_EMAIL, S_CH_WEBHOOK, S_CHANNELS };
static const char *const s_channel_names[S_CHANNELS] = {"inbox", "email", "webhook"};

typedef struct {
    char **v;
    size_t n;
} s_list_t;

typedef struct {
    char *id, *name, *email, *webhook;
    s_list_t deps, cats, nets;
    double min_score;
    int inbox, email_on, webhook_on, digest;
    int digest_hour, quiet_start, quiet_end;
    /* By channel: the local date ("YYYY-MM-DD") whose digest slot the
     * script said taken, so that it is not asked again that day (kept
     * across reloads of the staff list). */
    char digest_taken[S_CHANNELS][11];
} s_staff_t;

/* A staff list field ("14,50", "inbox, email"), item by item (staff.h). */
static void s_list_parse(s_list_t *l, const char *s) {
    l->v = NULL;
    l->n = 0;
    size_t len;
    for (const char *t, *p = s ? s : ""; (t = mg_staff_list_next(&p, &len));) {
        l->v = mg_realloc(l->v, (l->n + 1) * sizeof(*l->v));
        l->v[l->n++] = mg_strndup(t, len);
    }
}

static void s_list_clear(s_list_t *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int s_list_has(const s_list_t *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return 1;
    return 0;
}

static void s_staff_clear(s_staff_t *s) {
    free(s->id);
    free(s->name);
    free(s->email);
    free(s->webhook);
    s_list_clear(&s->deps);
    s_list_clear(&s->cats);
    s_list_clear(&s->nets);
    memset(s, 0, sizeof(*s));
}

/* Fill `s` from (field -> value) lookups; `get` returns NULL when absent. */
static void s_staff_fill(s_staff_t *s, const char *id, const char *(*get)(const void *src, const char *field),
                         const void *src) {
    memset(s, 0, sizeof(*s));
    const char *v;
    s->id = mg_strdup(id);
    s->name = mg_strdup((v = get(src, "name")) && *v ? v : id);
    s->email = mg_strdup((v = get(src, "email")) ? v : "");
    s->webhook = mg_strdup((v = get(src, "webhook")) ? v : "");
    s_list_parse(&s->deps, get(src, "departments"));
    s_list_parse(&s->cats, get(src, "categories"));
    s_list_parse(&s->nets, get(src, "networks"));
    s->min_score = (v = get(src, "min_score")) ? strtod(v, NULL) : 0.0;
    const char *channels = (v = get(src, "channels")) ? v : "inbox";
    s->inbox = mg_staff_list_has(channels, "inbox");
    s->email_on = mg_staff_list_has(channels, "email") && *s->email;
    s->webhook_on = mg_staff_list_has(channels, "webhook") && *s->webhook;
    s->digest = (v = get(src, "mode")) && strcmp(v, "digest") == 0;
    s->digest_hour = (v = get(src, "digest_hour")) ? atoi(v) : 8;
    s->quiet_start = (v = get(src, "quiet_start")) ? atoi(v) : 0;
    s->quiet_end = (v = get(src, "quiet_end")) ? atoi(v) : 0;
}

static const char *s_get_reply(const void *src, const char *field) {
    const redisReply *v = mg_redis_field(src, field);
    return v ? v->str : NULL;
}

/* ---- department and label names, in French ------------------------------------------ */

static void s_department_label(const char *code, char *out, size_t outlen, int article) {
    const char *known = article ? mg_fr_department_with_article(code) : mg_fr_department(code);
    /* The name alone: the templates put it in parentheses ("(Locaux,
     * Calvados)"), where "Calvados (14)" nested a second pair. */
    if (known)
        snprintf(out, outlen, "%s", known);
    else if (!*code) snprintf(out, outlen, "%s", article ? "un département inconnu" : "département inconnu");
    else snprintf(out, outlen, "%s%s", article ? "le département " : "département ", code);
}

/* ---- the notifier ------------------------------------------------------------------- */

typedef struct {
    mg_metric_t *events, *created[S_CHANNELS], *existing, *delivered[S_CHANNELS], *retried[S_CHANNELS],
        *failed[S_CHANNELS], *in_flight, *unanswered, *digests, *failures;
} s_metrics_t;

struct mg_notifier {
    struct event_base *base;
    const mg_config_t *cfg;
    void *zmq_context;
    mg_redis_t *redis;
    mg_subscriber_t *subscriber;
    mg_outbound_t *outbound;
    mg_communes_t *communes;
    mg_taxonomy_t *taxonomy;
    mg_template_file_t templates[MG_NOTIFIER_KINDS];
    s_staff_t *staff;
    size_t n_staff;
    s_staff_t *config_staff; /* the [staff.*] sections, upserted at each connection */
    size_t n_config_staff;
    mg_script_t *script; /* the notifier's Lua script (notifier_script.c) */
    const char *staff_url, *default_staff, *smtp_url, *smtp_user, *mail_from, *chat_format;
    char *smtp_password;
    int smtp_starttls;
    long long unanswered_days, max_attempts, retry_for_ms, retry_base_ms, retry_max_ms, send_timeout_ms,
        max_in_flight, retention_ms, inbox_max;
    struct event *worker_timer, *staff_timer, *digest_timer, *unanswered_timer, *metrics_timer, *stop_timer;
    int redis_up, staff_loaded, stopping, flushed, claiming, unanswered_running, staff_loading;
    int kicked;            /* claim at the next chance (s_kick_worker()) */
    int active;            /* holds mg:notifier:active: sends */
    int had_place;         /* held it at the last reply that said who (a lost connection does not forget) */
    int placed;            /* an "active" reply since the connection: config staff synced, staff read */
    const char *active_id; /* mg_process_id(): mg:notifier:active's value when this one holds it */
    char holder_said[192]; /* the other holder last logged */
    struct event *active_timer;
    int64_t next_due;      /* service ms: the queue's earliest due time at the last claim */
    int64_t claimed_at_us; /* monotonic: when the last claim was sent */
    size_t in_flight;
    struct s_send *sending; /* the in_flight sends, whose ids go with each claim */
    size_t recording; /* s_record() calls Redis has not answered yet */
    int digest_flush; /* members in immediate mode may have digest items waiting */
    int loopback_links_said;  /* s_say_loopback_links() warned */
    uint64_t staff_signature; /* of the staff list last read, to log its changes */
    int digest_moves; /* a channel was turned off: its digest items may wait (s_digest_moves()) */
    int digest_drops; /* the staff list changed: a member removed may have digest items waiting */
    /* An event delivered before the staff list was first read (the first
     * read failed): held, and with it every later one, until the list is
     * read, so that it is routed to the staff it concerns, not to the
     * default recipient. */
    struct s_job *held;
    s_metrics_t metrics;
};

/* ---- the script --------------------------------------------------------------------- */

/* Start the arguments of a script call: the operation first. */
static void s_call_begin(mg_args_t *a, const char *op) {
    mg_args_init(a);
    mg_args_str(a, op);
}

/* Run the script with `a` (taken: left empty). 0 if `cb` will be called
 * (NULL reply if the connection is lost), -1 if Redis is down. */
static int s_call(mg_notifier_t *n, mg_args_t *a, mg_redis_reply_fn cb, void *privdata) {
    return mg_script_call(n->script, a, cb, privdata);
}

static const char *s_rstr(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? r->str : "";
}

/* ---- items: what a notification is about -------------------------------------------- */

typedef struct {
    const char *name;
    char *value;
} s_var_t;

typedef struct {
    mg_notifier_kind_t kind;
    char id[256];   /* the item part of the idempotency key: "match:<mid>" */
    char link[512]; /* staff page link */
    char dep[4];    /* its department, shown ("" unknown); routing */
    char also[S_MAX_DEPS][4]; /* routing: other departments it concerns */
    size_t n_also;
    char cat[40];   /* routing: category code ("" none) */
    char *nets[S_MAX_NETS];
    size_t n_nets;
    double score;  /* routing: -1 when the kind has no score */
    char *summary; /* one line for digests */
    char need_done[MG_ID_MAX + 1];
    char collective[MG_ID_MAX + 1]; /* a collective need's id, with its revision */
    unsigned revision;
    s_var_t vars[S_MAX_VARS];
    size_t n_vars;
} s_item_t;

static void s_item_var(s_item_t *it, const char *name, const char *value) {
    if (it->n_vars == S_MAX_VARS) return;
    it->vars[it->n_vars].name = name;
    it->vars[it->n_vars].value = mg_strdup(value ? value : "");
    it->n_vars++;
}

static void s_item_varf(s_item_t *it, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_item_varf(s_item_t *it, const char *name, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    s_item_var(it, name, buf);
}

static const char *s_item_get(const s_item_t *it, const char *name) {
    for (size_t i = 0; i < it->n_vars; i++)
        if (strcmp(it->vars[i].name, name) == 0) return it->vars[i].value;
    return "";
}

static void s_item_net(s_item_t *it, const char *net) {
    if (!net || !*net || it->n_nets == S_MAX_NETS) return;
    for (size_t i = 0; i < it->n_nets; i++)
        if (strcmp(it->nets[i], net) == 0) return;
    it->nets[it->n_nets++] = mg_strdup(net);
}

/* `list` as one comma-separated list into `out` (cut at outlen): the
 * spelling of networks in the notifier's records. */
static void s_join_csv(char *out, size_t outlen, char *const *list, size_t n) {
    out[0] = '\0';
    for (size_t i = 0, len = 0; i < n && len < outlen; i++)
        len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? "," : "", list[i]);
}

/* Networks from a comma-separated list (a structure record's). */
static void s_item_nets_csv(s_item_t *it, const char *csv) {
    s_list_t l;
    s_list_parse(&l, csv);
    for (size_t i = 0; i < l.n; i++) s_item_net(it, l.v[i]);
    s_list_clear(&l);
}

static void s_item_clear(s_item_t *it) {
    for (size_t i = 0; i < it->n_vars; i++) free(it->vars[i].value);
    for (size_t i = 0; i < it->n_nets; i++) free(it->nets[i]);
    free(it->summary);
    memset(it, 0, sizeof(*it));
}

static void s_item_init(mg_notifier_t *n, s_item_t *it, mg_notifier_kind_t kind, const char *id,
                        const char *link_path) {
    memset(it, 0, sizeof(*it));
    it->kind = kind;
    it->score = -1;
    snprintf(it->id, sizeof(it->id), "%s", id);
    snprintf(it->link, sizeof(it->link), "%s#%s", n->staff_url, link_path);
}

static void s_item_category(mg_notifier_t *n, s_item_t *it, const char *code) {
    snprintf(it->cat, sizeof(it->cat), "%s", code ? code : "");
    const char *label = code && *code ? mg_taxonomy_label(n->taxonomy, code) : NULL;
    s_item_var(it, "category", label ? label : code && *code ? code : "non précisée");
}

static void s_item_department(s_item_t *it, const char *dep) {
    snprintf(it->dep, sizeof(it->dep), "%s", dep ? dep : "");
    char label[64];
    s_department_label(it->dep, label, sizeof(label), 0);
    s_item_var(it, "department", label);
}

/* Another department the item concerns (a cooperation's addressee, its
 * territory): staff following it receive the item too. */
static void s_item_also(s_item_t *it, const char *dep) {
    if (!dep || !*dep || strcmp(dep, it->dep) == 0) return;
    for (size_t i = 0; i < it->n_also; i++)
        if (strcmp(it->also[i], dep) == 0) return;
    if (it->n_also == S_MAX_DEPS) {
        mg_warn("notifier: %s concerns more than %d departments; department %s not routed", it->id,
                S_MAX_DEPS + 1, dep);
        return;
    }
    snprintf(it->also[it->n_also++], sizeof(it->also[0]), "%s", dep);
}

static const char *s_commune_department(const mg_notifier_t *n, const char *code) {
    const mg_commune_t *c = code && *code ? mg_communes_find(n->communes, code) : NULL;
    return c ? c->department : "";
}

/* What territory entry `t` stands for: the EPCI of "epci:<siren>", the
 * commune of a commune code; NULL for another kind (a department, "dep:14")
 * or an unknown entry. */
static const mg_epci_t *s_territory_epci(const mg_notifier_t *n, const char *t) {
    return t && strncmp(t, "epci:", 5) == 0 ? mg_communes_epci(n->communes, t + 5) : NULL;
}

static const mg_commune_t *s_territory_commune(const mg_notifier_t *n, const char *t) {
    return t && *t && strncmp(t, "dep:", 4) != 0 && strncmp(t, "epci:", 5) != 0
               ? mg_communes_find(n->communes, t)
               : NULL;
}

/* Where an item is, by name: its commune's, or, for an offer placed by its
 * territory only (its first entry stored as its place), the department's or
 * the EPCI's ("Calvados", "CU Caen la Mer"). */
static const char *s_commune_name(const mg_notifier_t *n, const char *code) {
    const char *name = mg_communes_territory_name(n->communes, code);
    return name ? name : code && *code ? code : "commune inconnue";
}

/* A territory entry as staff read it, after "de": "du Calvados" for "dep:14",
 * "de la CU Caen la Mer" for "epci:<siren>", "d'Honfleur" for a commune
 * code; the entry itself when unknown. */
static void s_territory_de(const mg_notifier_t *n, const char *t, char *out, size_t outlen) {
    const mg_epci_t *e = s_territory_epci(n, t);
    const mg_commune_t *c = s_territory_commune(n, t);
    const char *name = NULL;
    char epci[256];
    if (strncmp(t, "dep:", 4) == 0)
        name = mg_fr_department_with_article(t + 4);
    else if (e)
        name = *e->name ? mg_fr_epci(e->name, epci, sizeof(epci)) : NULL;
    else if (c)
        name = c->name;
    mg_fr_de(name && *name ? name : t, out, outlen);
}

/* The department of a territory entry: "dep:14", "epci:<siren>" (its first
 * commune's) or a commune code. */
static void s_territory_department(const mg_notifier_t *n, const char *t, char out[4]) {
    out[0] = '\0';
    if (!t) return;
    const mg_epci_t *e = s_territory_epci(n, t);
    const mg_commune_t *c = s_territory_commune(n, t);
    snprintf(out, 4, "%s", strncmp(t, "dep:", 4) == 0 ? t + 4 : e ? e->department : c ? c->department : "");
}

/* Every department of territory entry `t`, but the item's own, as its other
 * departments: an EPCI may lie across two (the CC du Pays de
 * Honfleur-Beuzeville, in the Calvados and the Eure), and the staff of
 * either follow what concerns it. */
static void s_item_also_territory(const mg_notifier_t *n, s_item_t *it, const char *t) {
    if (strncmp(t, "epci:", 5) != 0) {
        char d[4];
        s_territory_department(n, t, d);
        s_item_also(it, d);
        return;
    }
    const mg_epci_t *epci = s_territory_epci(n, t);
    char departments[sizeof epci->departments], *save = NULL;
    snprintf(departments, sizeof departments, "%s", epci ? epci->departments : "");
    for (char *d = strtok_r(departments, " ", &save); d; d = strtok_r(NULL, " ", &save))
        s_item_also(it, d);
}

/* ---- routing --------------------------------------------------------------------------- */

/* The item's department that `s` follows: its own first, then the others
 * it concerns; NULL if none (or `s` follows every department: its own). */
static const char *s_followed_department(const s_staff_t *s, const s_item_t *it) {
    if (!s->deps.n || s_list_has(&s->deps, it->dep)) return it->dep;
    for (size_t i = 0; i < it->n_also; i++)
        if (s_list_has(&s->deps, it->also[i])) return it->also[i];
    return NULL;
}

/* Whether the item is in `s`'s scope (departments, categories, networks),
 * whatever its score. */
static int s_in_scope(const s_staff_t *s, const s_item_t *it) {
    if (!s_followed_department(s, it)) return 0;
    if (s->cats.n && *it->cat && !s_list_has(&s->cats, it->cat)) return 0;
    if (s->nets.n && it->n_nets) {
        int any = 0;
        for (size_t i = 0; i < it->n_nets && !any; i++) any = s_list_has(&s->nets, it->nets[i]);
        if (!any) return 0;
    }
    return 1;
}

static int s_below_threshold(const s_staff_t *s, const s_item_t *it) {
    return it->score >= 0 && it->score + 1e-9 < s->min_score;
}

static int s_covers(const s_staff_t *s, const s_item_t *it) {
    return s_in_scope(s, it) && !s_below_threshold(s, it);
}

/* Append "a, b et c" style parts. */
static void s_join_fr(char *out, size_t outlen, char parts[][192], size_t n) {
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < n && len < outlen; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " et " : ", ";
        len += (size_t)snprintf(out + len, outlen - len, "%s%s", sep, parts[i]);
    }
}

static int s_cmp_part(const void *a, const void *b) {
    return strcmp(a, b);
}

/* Network `net` of the item with its article ("le réseau URSCOP
 * Normandie", "la Fédération…"), named as the message names it: the
 * network a member joined as its "network" says, any other by [networks]. */
static void s_network_said(const mg_notifier_t *n, const s_item_t *it, const char *net, char *out,
                           size_t outlen) {
    const char *named = strcmp(s_item_get(it, "network_id"), net) == 0
                            ? s_item_get(it, "network")
                            : mg_taxonomy_network_name(n->taxonomy, net);
    mg_fr_network(named ? named : net, out, outlen);
}

/* Whether a staff member follows the item's department and category but
 * none of its networks: the network scope alone kept them out. */
static int s_kept_out_by_networks(const mg_notifier_t *n, const s_item_t *it) {
    for (size_t i = 0; i < n->n_staff; i++) {
        const s_staff_t *f = &n->staff[i];
        if (f->nets.n && it->n_nets && s_followed_department(f, it) &&
            (!f->cats.n || !*it->cat || s_list_has(&f->cats, it->cat)))
            return 1;
    }
    return 0;
}

/* The sentence that says why `s` receives `it`. */
static void s_why(mg_notifier_t *n, const s_staff_t *s, const s_item_t *it, int as_default, char *out,
                  size_t outlen) {
    char parts[4][192];
    size_t k = 0;
    char dep[96], score[16], threshold[16];
    const char *followed = s_followed_department(s, it);
    s_department_label(followed ? followed : it->dep, dep, sizeof(dep), 1);
    const char *cat_label = *it->cat ? mg_taxonomy_label(n->taxonomy, it->cat) : NULL;
    if (!cat_label) cat_label = it->cat;
    if (as_default) {
        /* Followed, but below every follower's threshold: say so ("sous
         * les seuils d'Éric Morel (50 %) et de Yann Duval (40 %)"). */
        size_t followers = 0;
        const s_staff_t *own = NULL; /* the recipient itself among them */
        const s_staff_t *named[4];
        double thresholds[5];
        for (size_t i = 0; i < n->n_staff; i++) {
            const s_staff_t *f = &n->staff[i];
            if (!s_in_scope(f, it)) continue;
            followers++;
            if (f == s)
                own = f;
            else if (k < 4)
                named[k++] = f;
        }
        /* As many decimals as the score needs not to read as a threshold
         * it is below ("49,5 %" under "50 %"). */
        for (size_t i = 0; i < k; i++)
            thresholds[i] = named[i]->min_score;
        if (own) thresholds[k] = own->min_score;
        int decimals = mg_fr_percent_decimals(it->score, thresholds, k + (own != NULL));
        for (size_t i = 0; i < k; i++) {
            char who[160];
            snprintf(who, sizeof(who), "%s (%s)", *named[i]->name ? named[i]->name : named[i]->id,
                     mg_fr_percent_with(named[i]->min_score, decimals, threshold, sizeof(threshold)));
            mg_fr_de_person(who, parts[i], sizeof(parts[0]));
        }
        if (followers) {
            char names[800];
            qsort(parts, k, sizeof(parts[0]), s_cmp_part); /* a stable sentence, whatever the staff's order */
            s_join_fr(names, sizeof(names), parts, k);
            double lowest = thresholds[0];
            for (size_t i = 1; i < k + (own != NULL); i++)
                if (thresholds[i] < lowest) lowest = thresholds[i];
            mg_fr_percent_under(it->score, decimals, lowest, score, sizeof(score));
            /* followers: the recipient too, when it follows; named: up to
             * four others ("..., entre autres" for more). */
            size_t others = followers - (own != NULL);
            const char *more = others > k ? ", entre autres" : "";
            if (own) mg_fr_percent_with(own->min_score, decimals, threshold, sizeof(threshold));
            if (k == 0)
                snprintf(
                    out, outlen,
                    "Vous recevez ce message en tant que destinataire par défaut : le score de cette mise "
                    "en relation (%s) est sous votre seuil (%s).",
                    score, threshold);
            else if (own)
                snprintf(
                    out, outlen,
                    "Vous recevez ce message en tant que destinataire par défaut : le score de cette mise "
                    "en relation (%s) est sous votre seuil (%s) et sous %s %s%s.",
                    score, threshold, others > 1 ? "ceux" : "celui", names, more);
            else
                snprintf(
                    out, outlen,
                    "Vous recevez ce message en tant que destinataire par défaut : le score de cette mise "
                    "en relation (%s) est sous %s %s%s.",
                    score, others > 1 ? "les seuils" : "le seuil", names, more);
            return;
        }
        char *deps = parts[k];
        size_t len = (size_t)snprintf(deps, sizeof(parts[0]), "%s", *it->dep ? dep : "");
        for (size_t i = 0; i < it->n_also && len < sizeof(parts[0]); i++) {
            char also[96];
            s_department_label(it->also[i], also, sizeof(also), 1);
            len += (size_t)snprintf(deps + len, sizeof(parts[0]) - len, "%s%s", len ? " ou " : "", also);
        }
        if (*deps) k++;
        if (*it->cat) snprintf(parts[k++], sizeof(parts[0]), "la catégorie %s", cat_label);
        if (s_kept_out_by_networks(n, it)) { /* "le réseau A ou la Fédération B" */
            size_t at = 0;
            for (size_t i = 0; i < it->n_nets && i < 3 && at < sizeof(parts[0]); i++) {
                char said[192];
                s_network_said(n, it, it->nets[i], said, sizeof(said));
                at += (size_t)snprintf(parts[k] + at, sizeof(parts[0]) - at, "%s%s", i ? " ou " : "", said);
            }
            k++;
        }
        char scope[600];
        s_join_fr(scope, sizeof(scope), parts, k);
        snprintf(
            out, outlen,
            "Vous recevez ce message en tant que destinataire par défaut : aucun·e chargé·e de mission ne "
            "suit %s%s.",
            k > 1 ? "à la fois " : "", k ? scope : "ce sujet"); /* both, not either */
        return;
    }
    if (s->deps.n) snprintf(parts[k++], sizeof(parts[0]), "%s", dep);
    else snprintf(parts[k++], sizeof(parts[0]), "tous les départements");
    if (s->cats.n && *it->cat) snprintf(parts[k++], sizeof(parts[0]), "la catégorie %s", cat_label);
    else if (!s->cats.n) snprintf(parts[k++], sizeof(parts[0]), "toutes les catégories");
    if (s->nets.n) {
        for (size_t i = 0; i < it->n_nets; i++) {
            if (s_list_has(&s->nets, it->nets[i])) {
                s_network_said(n, it, it->nets[i], parts[k++], sizeof(parts[0]));
                break;
            }
        }
    }
    char scope[800];
    s_join_fr(scope, sizeof(scope), parts, k);
    if (it->score >= 0 && s->min_score > 0)
        snprintf(out, outlen,
                 "Vous recevez ce message car vous suivez %s, et le score de cette mise en relation (%s) "
                 "atteint votre seuil de %s.",
                 scope, mg_fr_percent(it->score, score, sizeof(score)),
                 mg_fr_percent(s->min_score, threshold, sizeof(threshold)));
    else snprintf(out, outlen, "Vous recevez ce message car vous suivez %s.", scope);
}

/* Local hour (Europe/Paris) and the start of the local day, in Unix ms. */
static int s_paris_hour(int64_t now, int64_t *day_start_utc) {
    int64_t off = (int64_t)mg_clock_paris_offset_s(now) * 1000;
    int64_t local = now + off;
    int64_t day = local >= 0 ? local / S_MS_PER_DAY : (local - S_MS_PER_DAY + 1) / S_MS_PER_DAY;
    if (day_start_utc) *day_start_utc = day * S_MS_PER_DAY - off;
    return (int)((local - day * S_MS_PER_DAY) / S_MS_PER_HOUR);
}

/* When a message to `s` meant for time `t` may go: `t`, or the end of the
 * quiet hours `t` falls in (a first attempt as well as a retry). Every
 * message keeps them but the daily digest, which goes at the member's own
 * hour (s_keeps_quiet_hours()). */
static int64_t s_due(const s_staff_t *s, int64_t t) {
    if (s->quiet_start == s->quiet_end) return t;
    int64_t day_start;
    int h = s_paris_hour(t, &day_start);
    int quiet = s->quiet_start < s->quiet_end ? (h >= s->quiet_start && h < s->quiet_end)
                                              : (h >= s->quiet_start || h < s->quiet_end);
    if (!quiet) return t;
    int64_t end = day_start + s->quiet_end * S_MS_PER_HOUR;
    if (end <= t) end += S_MS_PER_DAY;
    /* The end is a local hour: at the offset of that moment, which differs
     * from t's by an hour across a summer-time switch (unless that hour does
     * not exist that night: 2 h in spring, then the end stays). */
    int64_t due = end + ((int64_t)mg_clock_paris_offset_s(t) - mg_clock_paris_offset_s(end)) * 1000;
    return mg_clock_paris_offset_s(due) == mg_clock_paris_offset_s(end) ? due : end;
}

/* Whether a notification record waits for the end of its recipient's quiet
 * hours: all but the daily digest ("digest:<date>"). A flushed digest
 * ("digest:<date>:<ms>": what waited when the member left digest mode) is
 * sent as soon as may be, like an immediate message, so it waits too. */
static int s_keeps_quiet_hours(const char *kind, const char *item) {
    if (!kind || strcmp(kind, "digest") != 0) return 1;
    return item && strncmp(item, "digest:", 7) == 0 && strchr(item + 7, ':') != NULL;
}

static const s_staff_t *s_find_staff(const mg_notifier_t *n, const char *id) {
    for (size_t i = 0; id && i < n->n_staff; i++)
        if (strcmp(n->staff[i].id, id) == 0) return &n->staff[i];
    return NULL;
}

/* ---- rendering and creating ------------------------------------------------------------ */

typedef struct s_job {
    mg_notifier_t *n;
    mg_delivery_t *delivery;
    const mg_envelope_t *env;
    s_item_t item;
    int *channels; /* channel of each notification in the create call (owned) */
    size_t n_notifs, channels_cap;
    int counted; /* the unanswered-need timer's, not a delivery's */
} s_job_t;

static void s_job_finish(s_job_t *job, const char *reason) {
    mg_notifier_t *n = job->n;
    if (reason) {
        mg_metrics_inc(n->metrics.failures);
        mg_warn("notifier: %s not handled: %s (will retry)", job->item.id[0] ? job->item.id : "event", reason);
    }
    if (job->delivery && n->subscriber) mg_subscriber_done(n->subscriber, job->delivery, reason);
    if (job->counted) n->unanswered_running--;
    s_item_clear(&job->item);
    free(job->channels);
    free(job);
}

static void s_kick_worker(mg_notifier_t *n);
static void s_hold(mg_notifier_t *n, const char *nid, int64_t due);

static void s_on_created(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    mg_notifier_t *n = job->n;
    (void)redis;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        s_job_finish(job, !reply ? "Redis connection lost" : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                                              : "unexpected reply");
        return;
    }
    int queued = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        long long k = reply->element[i]->integer;
        if (k < 1 || (size_t)k > job->n_notifs) continue;
        int ch = job->channels[k - 1];
        mg_metrics_inc(n->metrics.created[ch]);
        if (ch == S_CH_INBOX) mg_metrics_inc(n->metrics.delivered[ch]);
        else queued = 1;
    }
    mg_metrics_add(n->metrics.existing, job->n_notifs - reply->elements);
    if (job->item.kind == MG_NOTIFIER_KIND_UNANSWERED && reply->elements)
        mg_metrics_inc(n->metrics.unanswered);
    if (queued) s_kick_worker(n);
    s_job_finish(job, NULL);
}

/* How the text of a part is written: as it is (an e-mail's text, the
 * inbox), or for a webhook's chat. */
typedef enum { S_PLAIN, S_MARKDOWN, S_SLACK } s_chat_t;

/* The chat a webhook at `url` posts to, as [notifier] chat_format says. */
static s_chat_t s_chat_of(const mg_notifier_t *n, const char *url) {
    if (strcmp(n->chat_format, "auto") == 0) return mg_outbound_webhook_is_slack(url) ? S_SLACK : S_MARKDOWN;
    return strcmp(n->chat_format, "slack") == 0 ? S_SLACK : S_MARKDOWN;
}

/* A part rendered: its values HTML-escaped in an HTML part, else escaped
 * for `chat`'s markup, else as they are. */
static char *s_render(mg_notifier_t *n, mg_notifier_kind_t kind, mg_template_part_t part,
                      const mg_template_var_t *vars, size_t nv, s_chat_t chat) {
    const char *tpl = n->templates[kind].part[part];
    mg_template_escape_t escape = part == MG_TEMPLATE_HTML || part == MG_TEMPLATE_ITEM_HTML
                                      ? MG_TEMPLATE_ESCAPE_HTML
                                  : chat == S_SLACK    ? MG_TEMPLATE_ESCAPE_SLACK
                                  : chat == S_MARKDOWN ? MG_TEMPLATE_ESCAPE_CHAT
                                                       : MG_TEMPLATE_ESCAPE_NONE;
    return mg_template_render(tpl ? tpl : "", vars, nv, escape);
}

/* A rendered part, or NULL when empty: a template without [html] renders
 * it empty, and a mail with an empty HTML part shows a blank message. */
static const char *s_part_or_null(const char *part) {
    return part && *part ? part : NULL;
}

/* A webhook's body: {"text": the subject as a heading (Slack's mrkdwn has
 * none: bold), then the text; "idempotency_key"}. */
static char *s_webhook_json(s_chat_t chat, const char *subject, const char *text, const char *key) {
    char *body = mg_asprintf(chat == S_SLACK ? "*%s*\n\n%s" : "#### %s\n\n%s", subject, text);
    /* Lossy: a byte cut out of a character is a U+FFFD, not a lost message. */
    json_t *o = json_pack("{s:o, s:o}", "text", mg_json_string_lossy(body, strlen(body)), "idempotency_key",
                          mg_json_string_lossy(key, strlen(key)));
    char *s = json_dumps(o, JSON_COMPACT); /* NULL only out of memory */
    json_decref(o);
    free(body);
    return s ? s : mg_strdup("{}");
}

/* The template values of one message, as a JSON object (name -> value):
 * kept with a webhook's notification, whose body is rendered when it is
 * sent, for the chat its URL posts to then. */
static char *s_vars_json(const mg_template_var_t *vars, size_t nv) {
    json_t *o = json_object();
    for (size_t i = 0; i < nv; i++)
        json_object_set_new(o, vars[i].name, mg_json_string_lossy(vars[i].value, strlen(vars[i].value)));
    char *s = json_dumps(o, JSON_COMPACT); /* NULL only out of memory */
    json_decref(o);
    return s ? s : mg_strdup("{}");
}

/* A webhook's body from the values kept with its notification (`vars`,
 * from s_vars_json()) and its kind's templates, for `chat`; NULL when
 * they cannot be read. */
static char *s_webhook_from_vars(mg_notifier_t *n, const char *kind, const char *vars, s_chat_t chat,
                                 const char *key) {
    int k = 0;
    while (k < MG_NOTIFIER_KINDS && strcmp(mg_notifier_kind_files[k], kind ? kind : "") != 0)
        k++;
    json_t *o = vars ? json_loads(vars, 0, NULL) : NULL;
    if (k == MG_NOTIFIER_KINDS || !json_is_object(o) || json_object_size(o) > S_MAX_VARS + 3) {
        json_decref(o);
        return NULL;
    }
    mg_template_var_t tv[S_MAX_VARS + 3];
    size_t nv = 0;
    const char *name;
    json_t *value;
    json_object_foreach(o, name, value) {
        if (json_is_string(value)) tv[nv++] = (mg_template_var_t){name, json_string_value(value)};
    }
    char *subject = s_render(n, (mg_notifier_kind_t)k, MG_TEMPLATE_SUBJECT, tv, nv, chat);
    char *text = s_render(n, (mg_notifier_kind_t)k, MG_TEMPLATE_TEXT, tv, nv, chat);
    char *json = s_webhook_json(chat, subject, text, key);
    free(subject);
    free(text);
    json_decref(o);
    return json;
}

/* Add one notification of `job` for (staff, channel) to the create call. */
static void s_add_notification(s_job_t *job, mg_args_t *a, const char *staff_id, int ch, const char *route,
                               int64_t due, const char *const *pairs, size_t n_pairs) {
    char nid[MG_NOTIFICATION_ID_LEN + 1], key[400];
    snprintf(key, sizeof(key), "%s|%s|%s", job->item.id, staff_id, s_channel_names[ch]);
    mg_notifier_notification_id(job->item.id, staff_id, s_channel_names[ch], nid);
    mg_args_str(a, nid);
    mg_args_str(a, staff_id);
    mg_args_str(a, s_channel_names[ch]);
    mg_args_str(a, route);
    mg_args_int(a, due);
    s_args_score(a, job->item.score >= 0 ? job->item.score : 0);
    mg_args_int(a, (long long)(n_pairs / 2 + 5));
    mg_args_str(a, "key");
    mg_args_str(a, key);
    mg_args_str(a, "kind");
    mg_args_str(a, mg_notifier_kind_files[job->item.kind]);
    mg_args_str(a, "item");
    mg_args_str(a, job->item.id);
    mg_args_str(a, "link");
    mg_args_str(a, job->item.link);
    mg_args_str(a, "summary");
    mg_args_str(a, job->item.summary ? job->item.summary : "");
    for (size_t i = 0; i < n_pairs; i++)
        mg_args_str(a, pairs[i]);
    if (job->n_notifs == job->channels_cap) {
        job->channels_cap = job->channels_cap ? 2 * job->channels_cap : 16;
        job->channels = mg_realloc(job->channels, job->channels_cap * sizeof(*job->channels));
    }
    job->channels[job->n_notifs++] = ch;
}

/* Route the job's item, render for each recipient, and create. */
static void s_route_and_create(s_job_t *job) {
    mg_notifier_t *n = job->n;
    s_item_t *it = &job->item;
    /* Every staff member whose scope covers the item, however many: nobody
     * may be dropped silently. (+1 for the default recipient.) */
    const s_staff_t **targets = mg_calloc(n->n_staff + 1, sizeof(*targets));
    size_t nt = 0;
    for (size_t i = 0; i < n->n_staff; i++)
        if (s_covers(&n->staff[i], it)) targets[nt++] = &n->staff[i];
    int as_default = nt == 0;
    s_staff_t fallback;
    memset(&fallback, 0, sizeof(fallback));
    if (as_default) {
        for (size_t i = 0; i < n->n_staff; i++)
            if (strcmp(n->staff[i].id, n->default_staff) == 0) targets[nt++] = &n->staff[i];
        if (nt == 0) {
            /* Not declared: its inbox still gets it (never into silence),
             * greeting a shared inbox ("Bonjour l'équipe,"). */
            fallback.id = (char *)n->default_staff;
            fallback.name = (char *)"l'équipe";
            fallback.inbox = 1;
            targets[nt++] = &fallback;
        }
    }
    int64_t now = mg_clock_service_now_ms();
    mg_args_t a;
    s_call_begin(&a, "create");
    mg_args_int(&a, now);
    mg_args_int(&a, n->retention_ms);
    mg_args_int(&a, n->inbox_max);
    mg_args_str(&a, it->need_done);
    mg_args_str(&a, it->collective);
    mg_args_int(&a, it->revision);
    mg_args_t body = {0};
    mg_template_var_t vars[S_MAX_VARS + 3];
    for (size_t t = 0; t < nt; t++) {
        const s_staff_t *s = targets[t];
        char why[1024];
        s_why(n, s, it, as_default, why, sizeof(why));
        size_t nv = 0;
        vars[nv++] = (mg_template_var_t){"staff_name", s->name};
        vars[nv++] = (mg_template_var_t){"why", why};
        vars[nv++] = (mg_template_var_t){"link", it->link};
        for (size_t i = 0; i < it->n_vars; i++) vars[nv++] = (mg_template_var_t){it->vars[i].name, it->vars[i].value};
        char *subject = s_render(n, it->kind, MG_TEMPLATE_SUBJECT, vars, nv, S_PLAIN);
        char *text = s_render(n, it->kind, MG_TEMPLATE_TEXT, vars, nv, S_PLAIN);
        /* Whether the inbox has it: if not, it goes there should the
         * member's other channels be turned off while it waits for a
         * digest (digest_move). */
        const char *in_inbox = s->inbox || (!s->email_on && !s->webhook_on) ? "1" : "0";
        if (*in_inbox == '1') {
            const char *pairs[] = {"title", subject, "text", text, "staff_name", s->name};
            s_add_notification(job, &body, s->id, S_CH_INBOX, "inbox", now, pairs, 6);
        }
        const char *route = s->digest ? "digest" : "queue";
        int64_t due = s->digest ? 0 : s_due(s, now);
        if (s->email_on) {
            char *html = s_render(n, it->kind, MG_TEMPLATE_HTML, vars, nv, S_PLAIN);
            const char *pairs[] = {"title", subject, "to",         s->email, "text",     text,
                                   "html",  html,    "staff_name", s->name,  "in_inbox", in_inbox};
            s_add_notification(job, &body, s->id, S_CH_EMAIL, route, due, pairs, 12);
            free(html);
        }
        if (s->webhook_on) {
            /* Its values, not its body: the body is written when it is sent,
             * for the chat the member's URL posts to then (Slack's or
             * Markdown). The text too: this copy goes to the inbox if it
             * waits for a digest when the member keeps only the inbox
             * (digest_move). */
            char *values = s_vars_json(vars, nv);
            const char *pairs[] = {"title", subject, "url",        s->webhook, "vars",     values,
                                   "text",  text,    "staff_name", s->name,    "in_inbox", in_inbox};
            s_add_notification(job, &body, s->id, S_CH_WEBHOOK, route, due, pairs, 12);
            free(values);
        }
        free(subject);
        free(text);
    }
    free(targets);
    mg_args_int(&a, (long long)job->n_notifs);
    mg_args_move(&a, &body);
    mg_args_clear(&body);
    if (s_call(n, &a, s_on_created, job) != 0) s_job_finish(job, "Redis unavailable");
}

/* ---- events ---------------------------------------------------------------------------- */

/* Write the record `key` the messages name later; a `report` only creates
 * it (notifier_script.c, "put"). */
static void s_put(mg_notifier_t *n, const char *key, int report, const char *const *pairs, size_t n_pairs) {
    mg_args_t a;
    s_call_begin(&a, "put");
    mg_args_str(&a, key);
    mg_args_str(&a, report ? "1" : "0");
    for (size_t i = 0; i < n_pairs; i++)
        mg_args_str(&a, pairs[i]);
    s_call(n, &a, NULL, NULL);
}

static void s_on_simple(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    (void)redis;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        s_job_finish(job, reply ? reply->str : "Redis connection lost");
        return;
    }
    s_job_finish(job, NULL);
}

/* What a structure did with a proposal, as a sentence says it: "a accepté
 * la proposition de coopération", "souhaite discuter de la proposition de
 * coopération"... (the template adds "faite par ..."). */
static const char *s_answered(Maillage__V1__CooperationAnswer answer) {
    switch (answer) {
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_ACCEPTED:
        return "a accepté la proposition de coopération";
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_DECLINED:
        return "a décliné la proposition de coopération";
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_UNDER_DISCUSSION:
        return "souhaite discuter de la proposition de coopération";
    default:
        return "a répondu à la proposition de coopération";
    }
}

/* The network a member.joined names, else the network that sent it. */
static const char *s_member_network(const mg_envelope_t *env) {
    const char *network = env->member_joined->network;
    return network && *network ? network : env->source;
}

/* One HMGET result row's i-th value. */
static const char *s_row(const redisReply *reply, size_t row, size_t i) {
    if (!reply || reply->type != REDIS_REPLY_ARRAY || row >= reply->elements) return "";
    const redisReply *r = reply->element[row];
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) return "";
    return s_rstr(r->element[i]);
}

static void s_on_match_context(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    mg_notifier_t *n = job->n;
    (void)redis;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        s_job_finish(job, reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "Redis connection lost");
        return;
    }
    const Maillage__V1__MatchFound *mf = job->env->match_found;
    s_item_t *it = &job->item;
    /* rows: need (title, commune), offer (title, commune), need structure
     * (name, networks), offer structure (name, networks) */
    const char *need_title = s_row(reply, 0, 0), *offer_title = s_row(reply, 1, 0);
    const char *need_sname = s_row(reply, 2, 0), *offer_sname = s_row(reply, 3, 0);
    s_item_var(it, "need_title", *need_title ? need_title : mf->need_id);
    s_item_var(it, "offer_title", *offer_title ? offer_title : mf->offer_id);
    s_item_var(it, "need_structure", *need_sname ? need_sname : mf->need_structure_id);
    s_item_var(it, "offer_structure", *offer_sname ? offer_sname : mf->offer_structure_id);
    const char *need_commune = s_row(reply, 0, 1), *offer_commune = s_row(reply, 1, 1);
    s_item_var(it, "need_commune", s_commune_name(n, need_commune));
    s_item_var(it, "offer_commune", s_commune_name(n, offer_commune));
    /* "à 4 km" or "dans la même commune", as the explanation says it; an
     * offer placed by its territory only is at no distance. */
    char text[32];
    s_item_var(it, "distance_km", mg_fr_number(mf->distance_km, 1, text, sizeof(text)));
    if (mf->distance_km < 0)
        s_item_var(it, "distance", "sur le territoire desservi");
    else
        s_item_var(it, "distance",
                   mg_fr_distance(mf->distance_km, *need_commune && strcmp(need_commune, offer_commune) == 0,
                                  text, sizeof(text)));
    s_item_nets_csv(it, s_row(reply, 2, 1));
    s_item_nets_csv(it, s_row(reply, 3, 1));
    s_item_net(it, job->env->source);
    /* Who with whom, at a glance (the title names the need alone). */
    it->summary = mg_asprintf("%s (%s, %s) ↔ %s (%s, %s) : %s", s_item_get(it, "need_title"),
                              s_item_get(it, "need_structure"), s_item_get(it, "need_commune"),
                              s_item_get(it, "offer_title"), s_item_get(it, "offer_structure"),
                              s_item_get(it, "offer_commune"), mf->explanation ? mf->explanation : "");
    s_route_and_create(job);
}

static void s_on_names_context(mg_redis_t *redis, redisReply *reply, void *privdata);

static void s_get_begin(mg_args_t *a) {
    s_call_begin(a, "get");
}

/* One row of the "get" call: `prefix``id`'s `fields`, after a separator
 * (the script opens a row at each one), so that rows never run together
 * whatever came before. */
static void s_get_key(mg_args_t *a, const char *prefix, const char *id, const char *const *fields,
                      size_t nf) {
    mg_args_str(a, "|");
    char key[256];
    snprintf(key, sizeof(key), "%s%s", prefix, id ? id : "");
    mg_args_str(a, key);
    for (size_t i = 0; i < nf; i++)
        mg_args_str(a, fields[i]);
}

static const char *const s_structure_fields[] = {"name", "networks", "commune"};

static void s_handle(mg_notifier_t *n, s_job_t *job) {
    const mg_envelope_t *env = job->env;
    s_item_t *it = &job->item;
    char id[200], path[200];
    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT: {
        char key[128];
        snprintf(key, sizeof(key), "mg:notifier:structure:%s", env->member_left->structure_id);
        mg_args_t left;
        s_call_begin(&left, "structure_left");
        mg_args_str(&left, key);
        if (s_call(n, &left, s_on_simple, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED:
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED: {
        const Maillage__V1__Structure *s = env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED
                                               ? env->member_joined->structure
                                               : env->member_updated->structure;
        if (!s || !s->structure_id) break;
        /* Only what messages name: no personal data (the contact) here. */
        char nets[1024];
        s_join_csv(nets, sizeof(nets), s->networks, s->n_networks);
        char key[128];
        snprintf(key, sizeof(key), "mg:notifier:structure:%s", s->structure_id);
        /* With the networks it joined, listed or not (as for the matcher). */
        mg_args_t put;
        s_call_begin(&put, "structure");
        mg_args_str(&put, key);
        mg_args_str(&put, s->name ? s->name : "");
        mg_args_str(&put, nets);
        mg_args_str(&put, s->commune ? s->commune : "");
        mg_args_str(&put, env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED
                              ? env->member_joined->network
                              : "");
        s_call(n, &put, NULL, NULL);
        if (env->payload_case != MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED) break;
        const Maillage__V1__MemberJoined *mj = env->member_joined;
        snprintf(id, sizeof(id), "member:%s:%s", s->structure_id, mj->network ? mj->network : "");
        snprintf(path, sizeof(path), "structure/%s", s->structure_id);
        s_item_init(n, it, MG_NOTIFIER_KIND_MEMBER, id, path);
        s_item_department(it, s_commune_department(n, s->commune));
        s_item_var(it, "structure", s->name && *s->name ? s->name : s->structure_id);
        s_item_var(it, "family", mg_fr_family(s->family));
        s_item_var(it, "commune", s_commune_name(n, s->commune));
        s_item_var(it, "description", s->description);
        s_item_nets_csv(it, nets);
        s_item_net(it, mj->network);
        s_item_net(it, env->source);
        /* The network by its name: [networks], else the member structure of
         * that id. */
        const char *network = s_member_network(env);
        if (mg_taxonomy_network_name(n->taxonomy, network)) {
            s_on_names_context(NULL, NULL, job);
            return;
        }
        mg_args_t a;
        s_get_begin(&a);
        static const char *const nf[] = {"name"};
        s_get_key(&a, "mg:notifier:structure:", network, nf, 1);
        if (s_call(n, &a, s_on_names_context, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED: {
        const Maillage__V1__Need *need = env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED
                                             ? env->need_reported->need
                                             : env->need_updated->need;
        if (!need || !need->need_id) break;
        mg_args_t a;
        s_call_begin(&a, "need");
        mg_args_str(&a, need->need_id);
        mg_args_int(&a, env->received_at_ms ? env->received_at_ms : mg_clock_service_now_ms());
        /* A need valid from a later day waits for an answer from that day
         * (the matcher matches it from then). */
        int64_t from =
            need->valid_from && *need->valid_from ? mg_clock_paris_day_start_ms(need->valid_from) : 0;
        mg_args_int(&a, from > 0 ? from : 0);
        mg_args_str(&a, env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED ? "1" : "0");
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRIu64, env->sequence);
        const char *pairs[] = {"title",   need->title,
                               "sid",     need->structure_id,
                               "cat",     need->category,
                               "commune", need->commune,
                               "dep",     s_commune_department(n, need->commune),
                               "source",  env->source,
                               "seq",     seq};
        for (size_t i = 0; i < sizeof(pairs) / sizeof(*pairs); i++)
            mg_args_str(&a, pairs[i]);
        if (s_call(n, &a, s_on_simple, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED: {
        mg_args_t a;
        s_call_begin(&a, "need_state");
        mg_args_str(&a, env->need_closed->need_id);
        mg_args_str(&a, "closed");
        mg_args_int(&a, (long long)env->need_closed->if_unchanged_since);
        mg_args_str(&a, env->need_closed->structure_id);
        if (s_call(n, &a, s_on_simple, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED: {
        const Maillage__V1__Offer *o = env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED
                                           ? env->offer_published->offer
                                           : env->offer_updated->offer;
        if (!o || !o->offer_id) break;
        char key[128];
        snprintf(key, sizeof(key), "mg:notifier:offer:%s", o->offer_id);
        /* Its place: its commune, or its territory's first entry. */
        const char *place = o->commune && *o->commune ? o->commune : o->n_territory ? o->territory[0] : "";
        char seq[24];
        snprintf(seq, sizeof(seq), "%" PRIu64, env->sequence);
        const char *pairs[] = {"title",   o->title ? o->title : "",
                               "commune", place,
                               "sid",     o->provider_id ? o->provider_id : "",
                               "seq",     seq};
        s_put(n, key, env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED, pairs, 8);
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND: {
        const Maillage__V1__MatchFound *mf = env->match_found;
        if (!mf->retired) {
            mg_args_t a;
            s_call_begin(&a, "need_state");
            mg_args_str(&a, mf->need_id);
            mg_args_str(&a, "answered");
            s_call(n, &a, NULL, NULL);
        }
        /* Only a pair's first proposal is news for staff; revisions and
         * retirements are visible on the staff page, and open pages showing
         * the match are told to fetch it again (the gateway's live stream,
         * event "match"). A hint, fire and forget: the matcher recorded
         * the pair before emitting, so a page woken by it reads the new
         * revision; a replay only repeats the hint. */
        if (mf->retired || mf->revision > 1) {
            if (!mg_id_is_valid(mf->match_id)) break;
            mg_redis_command(n->redis, NULL, NULL, "PUBLISH " MG_STAFF_MATCH_CHANNEL " %s", mf->match_id);
            /* Whether it is retired now: the digests still to send leave it
             * out, a proposal notified late is not (op "match"). */
            mg_args_t a;
            s_call_begin(&a, "match");
            mg_args_str(&a, mf->match_id);
            mg_args_int(&a, mf->revision);
            mg_args_str(&a, mf->retired ? "1" : "0");
            mg_args_int(&a, n->retention_ms);
            if (s_call(n, &a, s_on_simple, job) != 0) s_job_finish(job, "Redis unavailable");
            return;
        }
        snprintf(id, sizeof(id), "match:%s", mf->match_id);
        snprintf(path, sizeof(path), "match/%s", mf->match_id);
        s_item_init(n, it, MG_NOTIFIER_KIND_MATCH, id, path);
        it->score = mf->score;
        s_item_category(n, it, mf->category);
        s_item_department(it, mf->department);
        char text[32];
        s_item_var(it, "score", mg_fr_percent(mf->score, text, sizeof(text)));
        s_item_varf(it, "rank", "%u", mf->rank);
        s_item_var(it, "explanation", mf->explanation);
        mg_args_t a;
        s_get_begin(&a);
        static const char *const tf[] = {"title", "commune"};
        s_get_key(&a, "mg:notifier:need:", mf->need_id, tf, 2);
        s_get_key(&a, "mg:notifier:offer:", mf->offer_id, tf, 2);
        s_get_key(&a, "mg:notifier:structure:", mf->need_structure_id, s_structure_fields, 2);
        s_get_key(&a, "mg:notifier:structure:", mf->offer_structure_id, s_structure_fields, 2);
        if (s_call(n, &a, s_on_match_context, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COLLECTIVE_NEED_DETECTED: {
        const Maillage__V1__CollectiveNeedDetected *cn = env->collective_need_detected;
        snprintf(id, sizeof(id), "cn:%s:%u", cn->collective_id, cn->revision);
        snprintf(path, sizeof(path), "collective/%s", cn->collective_id);
        s_item_init(n, it, MG_NOTIFIER_KIND_COLLECTIVE, id, path);
        snprintf(it->collective, sizeof(it->collective), "%s", cn->collective_id);
        it->revision = cn->revision;
        s_item_category(n, it, cn->category);
        char dep[4];
        s_territory_department(n, cn->territory, dep);
        s_item_department(it, dep);
        s_item_also_territory(n, it, cn->territory);
        const char *where =
            cn->territory_name && *cn->territory_name ? cn->territory_name : s_commune_name(n, cn->territory);
        char of_where[300], at_where[300], said[256];
        s_item_var(it, "territory_name", where);
        if (strncmp(cn->territory, "epci:", 5) == 0) { /* "de la CU Caen la Mer", "à la CU Caen la Mer" */
            mg_fr_epci(where, said, sizeof(said));
            mg_fr_de(said, of_where, sizeof(of_where));
            mg_fr_a(said, at_where, sizeof(at_where));
        } else if (strncmp(cn->territory, "dep:", 4) == 0) { /* "du Calvados", "dans le Calvados" */
            const char *the = mg_fr_department_with_article(cn->territory + 4);
            const char *in = mg_fr_department_in(cn->territory + 4); /* "en Seine-Maritime" */
            mg_fr_de(the ? the : where, of_where, sizeof(of_where));
            snprintf(at_where, sizeof(at_where), "%s%s", in ? "" : "en ", in ? in : where);
        } else { /* a group by distance, centred on a commune: "à moins de 20 km du Havre" */
            mg_fr_de(where, said, sizeof(said));
            if (cn->radius_km > 0)
                snprintf(of_where, sizeof(of_where), "à moins de %u km %s", cn->radius_km, said);
            else
                snprintf(of_where, sizeof(of_where), "autour %s", said);
            snprintf(at_where, sizeof(at_where), "autour %s", said);
        }
        s_item_var(it, "of_territory", of_where);
        s_item_var(it, "at_territory", at_where);
        s_item_varf(it, "revision", "%u", cn->revision);
        s_item_var(it, "explanation", cn->explanation);
        s_item_net(it, env->source);
        mg_args_t a;
        s_get_begin(&a);
        for (size_t i = 0; i < cn->n_structure_ids && i < S_COLLECTIVE_ROWS; i++)
            s_get_key(&a, "mg:notifier:structure:", cn->structure_ids[i], s_structure_fields, 2);
        if (cn->n_structure_ids == 0) {
            mg_args_clear(&a);
            s_on_names_context(NULL, NULL, job);
            return;
        }
        if (s_call(n, &a, s_on_names_context, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED: {
        const Maillage__V1__CooperationProposed *cp = env->cooperation_proposed;
        snprintf(id, sizeof(id), "coop:%s", cp->proposal_id);
        snprintf(path, sizeof(path), "cooperation/%s", cp->proposal_id);
        s_item_init(n, it, MG_NOTIFIER_KIND_COOP_PROPOSED, id, path);
        s_item_category(n, it, cp->category);
        s_item_var(it, "cooperation_kind",
                   cp->kind ? mg_fr_cooperation_kind(cp->kind)
                            : "type non précisé"); /* not "coopération (coopération)" */
        s_item_var(it, "title", cp->title);
        s_item_var(it, "description", cp->description);
        s_item_net(it, env->source);
        mg_args_t a;
        s_get_begin(&a);
        s_get_key(&a, "mg:notifier:structure:", cp->from_structure_id, s_structure_fields, 3);
        s_get_key(&a, "mg:notifier:structure:", cp->to_structure_id, s_structure_fields, 3);
        if (s_call(n, &a, s_on_names_context, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_ANSWERED: {
        const Maillage__V1__CooperationAnswered *ca = env->cooperation_answered;
        snprintf(id, sizeof(id), "coopans:%s:%s:%d", ca->proposal_id, ca->structure_id, (int)ca->answer);
        snprintf(path, sizeof(path), "cooperation/%s", ca->proposal_id);
        s_item_init(n, it, MG_NOTIFIER_KIND_COOP_ANSWERED, id, path);
        s_item_var(it, "answer", mg_fr_cooperation_answer(ca->answer));
        s_item_var(it, "answered", s_answered(ca->answer));
        s_item_var(it, "comment", ca->comment);
        s_item_net(it, env->source);
        mg_args_t a;
        s_get_begin(&a);
        static const char *const pf[] = {"title", "from_name", "cat", "dep", "also", "nets"};
        s_get_key(&a, "mg:notifier:coop:", ca->proposal_id, pf, 6);
        s_get_key(&a, "mg:notifier:structure:", ca->structure_id, s_structure_fields, 3);
        if (s_call(n, &a, s_on_names_context, job) != 0) s_job_finish(job, "Redis unavailable");
        return;
    }
    default:
        break;
    }
    s_job_finish(job, NULL);
}

/* The context of collective needs and cooperations: structures' names. */
static void s_on_names_context(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    mg_notifier_t *n = job->n;
    (void)redis;
    if (redis && (!reply || reply->type != REDIS_REPLY_ARRAY)) {
        s_job_finish(job, reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "Redis connection lost");
        return;
    }
    const mg_envelope_t *env = job->env;
    s_item_t *it = &job->item;
    switch (it->kind) {
    case MG_NOTIFIER_KIND_MEMBER: {
        const char *network = s_member_network(env);
        const char *named = mg_taxonomy_network_name(n->taxonomy, network), *name = s_row(reply, 0, 0);
        s_item_var(it, "network", named ? named : *name ? name : network);
        s_item_var(it, "network_id", network);
        char the[320], to[320]; /* "au réseau URSCOP Normandie", "à la Fédération ..." */
        s_item_var(it, "to_network",
                   mg_fr_a(mg_fr_network(s_item_get(it, "network"), the, sizeof(the)), to, sizeof(to)));
        /* What the title ("... à accueillir : X (Caen)") does not say:
         * "Association · adhésion au réseau CRESS Normandie". */
        it->summary = mg_asprintf("%s · adhésion %s", s_item_get(it, "family"), to);
        if (*it->summary >= 'a' && *it->summary <= 'z') *it->summary = (char)(*it->summary - 'a' + 'A');
        break;
    }
    case MG_NOTIFIER_KIND_COLLECTIVE: {
        const Maillage__V1__CollectiveNeedDetected *cn = env->collective_need_detected;
        /* The names that fit, whole (the reply holds the first 50), then how
         * many more: "A, B et 12 autres". */
        char names[2048] = "";
        size_t len = 0, shown = 0, count = cn->n_structure_ids;
        for (size_t i = 0; i < count && i < S_COLLECTIVE_ROWS; i++)
            s_item_nets_csv(it, s_row(reply, i, 1));
        for (; shown < count && shown < S_COLLECTIVE_ROWS; shown++) {
            const char *nm = s_row(reply, shown, 0), *name = *nm ? nm : cn->structure_ids[shown];
            if (len + strlen(", ") + strlen(name) + sizeof(" et 1000000 autres") >= sizeof(names)) break;
            len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", shown ? ", " : "", name);
        }
        if (shown < count)
            snprintf(names + len, sizeof(names) - len, " et %zu autre%s", count - shown,
                     count - shown > 1 ? "s" : "");
        s_item_var(it, "structures", names);
        s_item_varf(it, "count", "%zu", cn->n_structure_ids);
        it->summary = mg_asprintf("Structures : %s", names); /* the title says the need, where, how many */
        break;
    }
    case MG_NOTIFIER_KIND_COOP_PROPOSED: {
        const Maillage__V1__CooperationProposed *cp = env->cooperation_proposed;
        const char *from = s_row(reply, 0, 0), *to = s_row(reply, 1, 0);
        s_item_var(it, "from_structure", *from ? from : cp->from_structure_id);
        char to_whom[1024], dep[4] = "";
        if (cp->to_structure_id && *cp->to_structure_id) {
            snprintf(to_whom, sizeof(to_whom), "%s", *to ? to : cp->to_structure_id);
        } else {
            /* "toute structure du Calvados et de la CU Caen la Mer" */
            char parts[4][192];
            size_t k = 0;
            for (size_t i = 0; i < cp->n_territory && k < 4; i++)
                s_territory_de(n, cp->territory[i], parts[k++], sizeof(parts[0]));
            char where[800];
            s_join_fr(where, sizeof(where), parts, k);
            snprintf(to_whom, sizeof(to_whom), "toute structure %s%s", k ? where : "de son territoire",
                     cp->n_territory > k ? ", entre autres" : "");
        }
        s_item_var(it, "to_whom", to_whom);
        char addressed_to[1100]; /* "aux Éditions du Marais", "à toute structure du Calvados" */
        s_item_var(it, "addressed_to", mg_fr_a(to_whom, addressed_to, sizeof(addressed_to)));
        snprintf(dep, sizeof(dep), "%s", s_commune_department(n, s_row(reply, 0, 2)));
        if (!*dep && cp->n_territory) s_territory_department(n, cp->territory[0], dep);
        s_item_department(it, dep);
        /* Staff following the addressee's department, or a department of
         * the territory it is addressed to, hear of it too. */
        s_item_also(it, s_commune_department(n, s_row(reply, 1, 2)));
        for (size_t i = 0; i < cp->n_territory; i++)
            s_item_also_territory(n, it, cp->territory[i]);
        s_item_nets_csv(it, s_row(reply, 0, 1));
        s_item_nets_csv(it, s_row(reply, 1, 1));
        char key[128], also[4 * S_MAX_DEPS] = "";
        for (size_t i = 0, len = 0; i < it->n_also && len < sizeof(also); i++)
            len += (size_t)snprintf(also + len, sizeof(also) - len, "%s%s", i ? " " : "", it->also[i]);
        /* Its networks too: whoever heard of the proposal hears of its
         * answers, by network as by department. */
        char nets[1024];
        s_join_csv(nets, sizeof(nets), it->nets, it->n_nets);
        snprintf(key, sizeof(key), "mg:notifier:coop:%s", cp->proposal_id);
        const char *pairs[] = {"title",     cp->title ? cp->title : "",
                               "from_name", s_item_get(it, "from_structure"),
                               "cat",       cp->category ? cp->category : "",
                               "dep",       dep,
                               "also",      also,
                               "nets",      nets};
        s_put(n, key, 0, pairs, 12);
        it->summary = mg_asprintf("%s propose une coopération (%s) %s.", s_item_get(it, "from_structure"),
                                  s_item_get(it, "cooperation_kind"), addressed_to);
        break;
    }
    case MG_NOTIFIER_KIND_COOP_ANSWERED: {
        const Maillage__V1__CooperationAnswered *ca = env->cooperation_answered;
        const char *title = s_row(reply, 0, 0), *from = s_row(reply, 0, 1), *sname = s_row(reply, 1, 0);
        s_item_var(it, "title", *title ? title : ca->proposal_id);
        s_item_var(it, "from_structure", *from ? from : "une structure");
        s_item_var(it, "structure", *sname ? sname : ca->structure_id);
        s_item_category(n, it, s_row(reply, 0, 2));
        const char *dep = s_row(reply, 0, 3), *answerer_dep = s_commune_department(n, s_row(reply, 1, 2));
        s_item_department(it, *dep ? dep : answerer_dep);
        /* Whoever heard of the proposal hears of its answers. */
        s_item_also(it, answerer_dep);
        char also[4 * S_MAX_DEPS];
        snprintf(also, sizeof(also), "%s", s_row(reply, 0, 4));
        for (char *save = NULL, *d = strtok_r(also, " ", &save); d; d = strtok_r(NULL, " ", &save))
            s_item_also(it, d);
        s_item_nets_csv(it, s_row(reply, 1, 1));
        s_item_nets_csv(it, s_row(reply, 0, 5)); /* the proposal's */
        it->summary = mg_asprintf("%s %s « %s »", s_item_get(it, "structure"), s_item_get(it, "answered"),
                                  s_item_get(it, "title"));
        break;
    }
    default:
        break;
    }
    s_route_and_create(job);
}

static void s_on_event(mg_subscriber_t *sub, const mg_envelope_t *env, mg_delivery_t *delivery, void *arg) {
    mg_notifier_t *n = arg;
    (void)sub;
    mg_metrics_inc(n->metrics.events);
    s_job_t *job = mg_calloc(1, sizeof(*job));
    job->n = n;
    job->env = env;
    job->delivery = delivery;
    if (!n->staff_loaded) {
        mg_warn("notifier: the staff list is not read yet; the event waits for it");
        n->held = job;
        return;
    }
    s_handle(n, job);
}

/* ---- needs without an answer ----------------------------------------------------------- */

static void s_on_due_needs(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_notifier_t *n = privdata;
    (void)redis;
    n->unanswered_running--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) continue;
        const char *nid = s_rstr(e->element[0]);
        const redisReply *h = e->element[1];
        s_job_t *job = mg_calloc(1, sizeof(*job));
        job->n = n;
        job->counted = 1;
        n->unanswered_running++;
        s_item_t *it = &job->item;
        char id[200], path[200];
        snprintf(id, sizeof(id), "unanswered:%s", nid);
        snprintf(path, sizeof(path), "need/%s", nid);
        s_item_init(n, it, MG_NOTIFIER_KIND_UNANSWERED, id, path);
        snprintf(it->need_done, sizeof(it->need_done), "%s", nid);
        const char *title = s_get_reply(h, "title"), *sname = s_rstr(e->element[2]);
        s_item_var(it, "need_title", title && *title ? title : nid);
        s_item_var(it, "need_structure", *sname ? sname : s_get_reply(h, "sid"));
        s_item_category(n, it, s_get_reply(h, "cat"));
        s_item_department(it, s_get_reply(h, "dep"));
        s_item_var(it, "commune", s_commune_name(n, s_get_reply(h, "commune")));
        s_item_varf(it, "days", "%lld", n->unanswered_days);
        s_item_varf(it, "duration", "%lld jour%s", n->unanswered_days, n->unanswered_days > 1 ? "s" : "");
        const char *first = s_get_reply(h, "first_at");
        char date[11] = "";
        if (first) mg_clock_paris_date(strtoll(first, NULL, 10), date);
        char fr[16] = "";
        if (date[0]) snprintf(fr, sizeof(fr), "%.2s/%.2s/%.4s", date + 8, date + 5, date);
        s_item_var(it, "reported_on", fr);
        s_item_net(it, s_get_reply(h, "source"));
        if (e->elements >= 4) s_item_nets_csv(it, s_rstr(e->element[3])); /* its structure's networks */
        it->summary = mg_asprintf("Exprimé par %s (%s, %s) le %s.", s_item_get(it, "need_structure"),
                                  s_item_get(it, "category"), s_item_get(it, "commune"),
                                  s_item_get(it, "reported_on"));
        s_route_and_create(job);
    }
}

static void s_on_unanswered_timer(evutil_socket_t fd, short what, void *arg) {
    mg_notifier_t *n = arg;
    (void)fd;
    (void)what;
    if (!n->redis_up || !n->staff_loaded || !n->active || n->stopping || n->unanswered_running) return;
    mg_args_t a;
    s_call_begin(&a, "due_needs");
    mg_args_int(&a, mg_clock_service_now_ms() - n->unanswered_days * S_MS_PER_DAY);
    mg_args_int(&a, 200);
    n->unanswered_running++;
    if (s_call(n, &a, s_on_due_needs, n) != 0) n->unanswered_running--;
}

/* ---- digests --------------------------------------------------------------------------- */

/* A digest call of the day (not a flush): who and which day it asked for. */
typedef struct {
    mg_notifier_t *n;
    char *staff;
    int channel;
    char date[11];
} s_digest_call_t;

/* Reply of "digest": any answer but an error means the day's slot is taken
 * (queued now, or earlier, or by another notifier). */
static void s_on_digest_created(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_digest_call_t *call = privdata;
    mg_notifier_t *n = call->n;
    (void)redis;
    if (reply && reply->type == REDIS_REPLY_INTEGER && call->date[0]) {
        s_staff_t *s = (s_staff_t *)s_find_staff(n, call->staff);
        if (s) memcpy(s->digest_taken[call->channel], call->date, sizeof(call->date));
    }
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        mg_metrics_inc(n->metrics.digests);
        s_kick_worker(n);
    }
    free(call->staff);
    free(call);
}

/* Ask the script for (staff `s`, channel `ch`)'s digest of `date`: one per
 * local date at the member's hour; or, with `flush` (the member left digest
 * mode with items still waiting for it), those items now, whatever the
 * hour, under an id of their own. */
static void s_digest_call(mg_notifier_t *n, const s_staff_t *s, int ch, int64_t now, const char *date,
                          int flush) {
    if (!flush && strcmp(s->digest_taken[ch], date) == 0) return;
    char item[64], nid[MG_NOTIFICATION_ID_LEN + 1], key[200];
    if (flush)
        snprintf(item, sizeof(item), "digest:%s:%lld", date, (long long)now);
    else
        snprintf(item, sizeof(item), "digest:%s", date);
    mg_notifier_notification_id(item, s->id, s_channel_names[ch], nid);
    snprintf(key, sizeof(key), "%s|%s|%s", item, s->id, s_channel_names[ch]);
    char why[512], fr[16], link[600];
    snprintf(fr, sizeof(fr), "%.2s/%.2s/%.4s", date + 8, date + 5, date);
    if (flush)
        snprintf(
            why, sizeof(why),
            "Vous recevez ce récapitulatif car vous recevez désormais vos notifications au fil de l'eau : "
            "voici celles qui attendaient le récapitulatif quotidien.");
    else
        snprintf(
            why, sizeof(why),
            "Vous recevez ce récapitulatif car vous avez choisi de recevoir vos notifications une fois par "
            "jour, à %d h.",
            s->digest_hour);
    snprintf(link, sizeof(link), "%s#inbox/%s", n->staff_url, s->id);
    mg_args_t a;
    s_call_begin(&a, "digest");
    mg_args_int(&a, now);
    mg_args_int(&a, flush ? s_due(s, now) : now);
    mg_args_int(&a, n->retention_ms);
    mg_args_str(&a, s->id);
    mg_args_str(&a, s_channel_names[ch]);
    mg_args_str(&a, flush ? "" : date);
    mg_args_str(&a, nid);
    const char *pairs[] = {"key",      key,          "kind",  "digest", "item", item,   "to", s->email, "url",
                           s->webhook, "staff_name", s->name, "why",    why,    "date", fr,   "link",   link};
    size_t np = sizeof(pairs) / sizeof(pairs[0]);
    mg_args_int(&a, (long long)np / 2);
    for (size_t k = 0; k < np; k++)
        mg_args_str(&a, pairs[k]);
    s_digest_call_t *call = mg_calloc(1, sizeof(*call));
    call->n = n;
    call->staff = mg_strdup(s->id);
    call->channel = ch;
    if (!flush) memcpy(call->date, date, sizeof(call->date));
    if (s_call(n, &a, s_on_digest_created, call) != 0) {
        free(call->staff);
        free(call);
    }
}

/* Reply of "digest_move": on a failure, the next tick tries again. */
static void s_on_digest_moved(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_notifier_t *n = privdata;
    (void)redis;
    if (reply && reply->type != REDIS_REPLY_ERROR) return;
    mg_warn("notifier: moving what waited for a digest: %s (again at the next tick)",
            reply ? reply->str : "Redis connection lost");
    n->digest_moves = 1;
}

/* What waits for the digest of a channel a member turned off goes to the
 * digest of their other channel, or to their inbox when only the inbox is
 * left: else it would wait for good. Sent before the tick's digest calls,
 * on the same connection, so a flush finds it moved. */
static void s_digest_moves(mg_notifier_t *n) {
    mg_args_t a;
    s_call_begin(&a, "digest_move");
    mg_args_int(&a, mg_clock_service_now_ms());
    mg_args_int(&a, n->inbox_max);
    mg_args_int(&a, n->retention_ms);
    size_t moves = 0;
    for (size_t i = 0; i < n->n_staff; i++) {
        const s_staff_t *s = &n->staff[i];
        for (int ch = S_CH_EMAIL; ch <= S_CH_WEBHOOK; ch++) {
            int on = ch == S_CH_EMAIL ? s->email_on : s->webhook_on;
            int other_on = ch == S_CH_EMAIL ? s->webhook_on : s->email_on;
            if (on) continue;
            mg_args_str(&a, s->id);
            mg_args_str(&a, s_channel_names[ch]);
            mg_args_str(&a, other_on ? s_channel_names[ch == S_CH_EMAIL ? S_CH_WEBHOOK : S_CH_EMAIL] : "");
            moves++;
        }
    }
    if (!moves)
        mg_args_clear(&a);
    else if (s_call(n, &a, s_on_digest_moved, n) != 0)
        n->digest_moves = 1;
}

/* Reply of "digest_drop": on a failure, the next tick tries again. */
static void s_on_digest_dropped(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_notifier_t *n = privdata;
    (void)redis;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        mg_info("notifier: %lld item(s) waiting for the digest of staff no longer on the list: failed",
                reply->integer);
    if (reply && reply->type != REDIS_REPLY_ERROR) return;
    mg_warn("notifier: failing what waited for a removed member's digest: %s (again at the next tick)",
            reply ? reply->str : "Redis connection lost");
    n->digest_drops = 1;
}

/* What waits for the digest of a member removed from the staff: failed
 * (the script finds them in mg:digest:waiting, so a removal made while the
 * notifier was down is seen too). */
static void s_digest_drops(mg_notifier_t *n) {
    mg_args_t a;
    s_call_begin(&a, "digest_drop");
    mg_args_int(&a, mg_clock_service_now_ms());
    mg_args_int(&a, n->retention_ms);
    for (size_t i = 0; i < n->n_staff; i++)
        mg_args_str(&a, n->staff[i].id);
    if (s_call(n, &a, s_on_digest_dropped, n) != 0) n->digest_drops = 1;
}

static void s_on_digest_timer(evutil_socket_t fd, short what, void *arg) {
    mg_notifier_t *n = arg;
    (void)fd;
    (void)what;
    /* Only once caught up with the journal: after a restart, the events
     * missed while the notifier was down belong in the digest too. */
    if (!n->redis_up || !n->staff_loaded || !n->active || n->stopping ||
        !mg_subscriber_is_live(n->subscriber))
        return;
    int64_t now = mg_clock_service_now_ms();
    int hour = s_paris_hour(now, NULL);
    char date[11];
    mg_clock_paris_date(now, date);
    /* Members in immediate mode are looked at after the first load of the
     * staff and after one of them left digest mode: what waited goes now. */
    if (n->digest_moves) {
        n->digest_moves = 0;
        s_digest_moves(n);
    }
    if (n->digest_drops) {
        n->digest_drops = 0;
        s_digest_drops(n);
    }
    int flush = n->digest_flush;
    n->digest_flush = 0;
    for (size_t i = 0; i < n->n_staff; i++) {
        const s_staff_t *s = &n->staff[i];
        /* At the hour, or later that day if the notifier was not running
         * then: the script makes one digest per local date, never two. */
        if (s->digest ? hour < s->digest_hour : !flush) continue;
        for (int ch = S_CH_EMAIL; ch <= S_CH_WEBHOOK; ch++) {
            if ((ch == S_CH_EMAIL && !s->email_on) || (ch == S_CH_WEBHOOK && !s->webhook_on)) continue;
            s_digest_call(n, s, ch, now, date, !s->digest);
        }
    }
}

/* ---- the queue: claim, send, record ----------------------------------------------------- */

typedef struct s_send {
    mg_notifier_t *n;
    struct s_send *prev, *next; /* in n->sending */
    char nid[MG_NOTIFICATION_ID_LEN + 1];
    char staff[MG_ID_MAX + 1];
    int channel;
    int quiet; /* keeps its recipient's quiet hours (s_keeps_quiet_hours()) */
    int gone;  /* its recipient is no longer on the staff */
    long long attempts;
    int64_t queued_at; /* its record's created_at (ms): retried until retry_for_s after it */
} s_send_t;

/* A clean stop waits for the sends in flight and for their results to be in
 * Redis: a loop that exits with a result still in hiredis' buffer drops it,
 * and the lease would bring the notification back to be sent again. (The
 * stop timer bounds the wait.) */
static void s_maybe_exit(mg_notifier_t *n) {
    if (n->stopping && n->flushed && n->in_flight == 0 && n->recording == 0)
        event_base_loopexit(n->base, NULL);
}

static void s_on_recorded(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_notifier_t *n = privdata;
    (void)redis;
    (void)reply;
    n->recording--;
    s_maybe_exit(n);
}

/* Record what became of a claimed notification (a result, a hold): the call
 * `a` (taken), counted until Redis answers. If Redis is down the record is
 * left as it is: the claim's lease brings the notification back. */
static void s_record(mg_notifier_t *n, mg_args_t *a) {
    if (!n->redis_up) {
        mg_args_clear(a);
        return;
    }
    if (s_call(n, a, s_on_recorded, n) == 0) n->recording++;
}

static void s_on_sent(const mg_outbound_result_t *result, void *arg) {
    s_send_t *send = arg;
    mg_notifier_t *n = send->n;
    if (send->prev)
        send->prev->next = send->next;
    else
        n->sending = send->next;
    if (send->next) send->next->prev = send->prev;
    n->in_flight--;
    mg_metrics_set(n->metrics.in_flight, n->in_flight);
    int64_t now = mg_clock_service_now_ms();
    if (result->not_started) { /* a clean stop came first: back to the queue, no attempt made */
        s_hold(n, send->nid, now);
        free(send);
        s_maybe_exit(n);
        return;
    }
    mg_args_t a;
    s_call_begin(&a, "result");
    mg_args_int(&a, now);
    mg_args_str(&a, send->nid);
    if (result->delivered) {
        mg_args_str(&a, "delivered");
        mg_args_int(&a, 0);
        mg_args_str(&a, "");
        mg_metrics_inc(n->metrics.delivered[send->channel]);
    } else if (result->retryable && (n->max_attempts == 0 || send->attempts < n->max_attempts) &&
               now < send->queued_at + n->retry_for_ms) {
        double delay = (double)n->retry_base_ms * pow(2.0, (double)(send->attempts - 1));
        if (delay > (double)n->retry_max_ms) delay = (double)n->retry_max_ms;
        delay *= 0.75 + 0.5 * ((double)rand() / RAND_MAX); /* jitter: +-25 % */
        /* A receiver that said when to come back (429, 503) is not asked before. */
        if ((double)result->retry_after_ms > delay) delay = (double)result->retry_after_ms;
        /* The last attempt at the deadline, not a whole delay after it. */
        if (delay > (double)(send->queued_at + n->retry_for_ms - now))
            delay = (double)(send->queued_at + n->retry_for_ms - now);
        int64_t next = now + (int64_t)delay;
        /* A retry keeps the recipient's quiet hours too (but a daily
         * digest's, which has its own hour). */
        const s_staff_t *s = send->quiet ? s_find_staff(n, send->staff) : NULL;
        int64_t due = s ? s_due(s, next) : next;
        mg_args_str(&a, "retry");
        mg_args_int(&a, due);
        mg_args_str(&a, result->error);
        mg_metrics_inc(n->metrics.retried[send->channel]);
        if (due != next)
            mg_info("notifier: %s (%s) attempt %lld failed: %s; retry after the quiet hours, in %.0f s", send->nid,
                    s_channel_names[send->channel], send->attempts, result->error, (double)(due - now) / 1000.0);
        else
            mg_info("notifier: %s (%s) attempt %lld failed: %s; retry in %.0f ms", send->nid,
                    s_channel_names[send->channel], send->attempts, result->error, delay);
    } else {
        mg_args_str(&a, "failed");
        mg_args_int(&a, 0);
        mg_args_str(&a, result->error);
        mg_metrics_inc(n->metrics.failed[send->channel]);
        mg_warn("notifier: %s (%s) failed after %lld attempt(s): %s", send->nid, s_channel_names[send->channel],
                send->attempts, result->error);
    }
    mg_args_int(&a, n->retention_ms);
    mg_args_int(&a, n->inbox_max);
    mg_args_str(&a, send->gone ? "0" : "1");
    /* If Redis is down the result is lost: the lease brings the notification
     * back, and the stable ids make the receiver see the same message. */
    s_record(n, &a);
    free(send);
    s_maybe_exit(n);
    if (!n->stopping) s_kick_worker(n);
}

/* The digest's text and HTML from its items (title, summary, score, link). */
static void s_render_digest(mg_notifier_t *n, const redisReply *rec, const redisReply *items, s_chat_t chat,
                            char **subject, char **text, char **html) {
    char *it_text = NULL, *it_html = NULL;
    size_t tl = 0, tc = 0, hl = 0, hc = 0;
    size_t count = 0;
    for (size_t i = 0; i + 3 < items->elements; i += 4) {
        /* An item without a score (a new member...) is queued with 0. */
        double value = strtod(s_rstr(items->element[i + 2]), NULL);
        char score[16] = "", note[32] = "";
        if (value > 0)
            snprintf(note, sizeof(note), " (score %s)", mg_fr_percent(value, score, sizeof(score)));
        mg_template_var_t v[] = {{"item_title", s_rstr(items->element[i])},
                                 {"item_summary", s_rstr(items->element[i + 1])},
                                 {"item_score", score},
                                 {"item_score_note", note},
                                 {"item_link", s_rstr(items->element[i + 3])}};
        char *t = s_render(n, MG_NOTIFIER_KIND_DIGEST, MG_TEMPLATE_ITEM_TEXT, v, 5, chat);
        char *h = s_render(n, MG_NOTIFIER_KIND_DIGEST, MG_TEMPLATE_ITEM_HTML, v, 5, chat);
        size_t need_t = tl + strlen(t) + 2, need_h = hl + strlen(h) + 2;
        if (need_t > tc) it_text = mg_realloc(it_text, tc = need_t * 2);
        if (need_h > hc) it_html = mg_realloc(it_html, hc = need_h * 2);
        tl += (size_t)sprintf(it_text + tl, "%s\n", t);
        hl += (size_t)sprintf(it_html + hl, "%s\n", h);
        free(t);
        free(h);
        count++;
    }
    char cnt[16], opportunities[48];
    snprintf(cnt, sizeof(cnt), "%zu", count);
    snprintf(opportunities, sizeof(opportunities), "%zu opportunité%s", count, count > 1 ? "s" : "");
    const char *staff_name = s_get_reply(rec, "staff_name"), *why = s_get_reply(rec, "why");
    mg_template_var_t v[] = {{"staff_name", staff_name},
                             {"why", why},
                             {"link", s_get_reply(rec, "link")},
                             {"count", cnt},
                             {"opportunities", opportunities},
                             {"date", s_get_reply(rec, "date")},
                             {"items_text", it_text ? it_text : ""},
                             {"items_html", it_html ? it_html : ""}};
    size_t nv = sizeof(v) / sizeof(v[0]);
    *subject = s_render(n, MG_NOTIFIER_KIND_DIGEST, MG_TEMPLATE_SUBJECT, v, nv, chat);
    *text = s_render(n, MG_NOTIFIER_KIND_DIGEST, MG_TEMPLATE_TEXT, v, nv, chat);
    *html = s_render(n, MG_NOTIFIER_KIND_DIGEST, MG_TEMPLATE_HTML, v, nv, chat);
    free(it_text);
    free(it_html);
}

/* Send one claimed notification. */
static void s_send(mg_notifier_t *n, const char *nid, const redisReply *rec, const redisReply *items) {
    const char *channel = s_get_reply(rec, "channel");
    const char *attempts = s_get_reply(rec, "attempts");
    s_send_t *send = mg_calloc(1, sizeof(*send));
    send->n = n;
    snprintf(send->nid, sizeof(send->nid), "%s", nid);
    send->attempts = attempts ? atoll(attempts) : 1;
    const char *queued_at = s_get_reply(rec, "created_at");
    send->queued_at = queued_at ? atoll(queued_at) : mg_clock_service_now_ms();
    send->channel = channel && strcmp(channel, "webhook") == 0 ? S_CH_WEBHOOK : S_CH_EMAIL;
    const char *staff = s_get_reply(rec, "staff");
    snprintf(send->staff, sizeof(send->staff), "%s", staff ? staff : "");
    const char *kind = s_get_reply(rec, "kind");
    /* The idempotency key, or the notification's id (a hash of it) when it
     * is too long for a header: ids near their 64 bytes make a cooperation
     * answer's key longer than MG_OUTBOUND_KEY_MAX. A webhook's body
     * carries the key whole. */
    const char *whole_key = s_get_reply(rec, "key");
    const char *key = whole_key && strlen(whole_key) <= MG_OUTBOUND_KEY_MAX ? whole_key : nid;
    if (!whole_key) whole_key = nid;
    int digest = kind && strcmp(kind, "digest") == 0;
    send->quiet = s_keeps_quiet_hours(kind, s_get_reply(rec, "item"));
    /* The recipient as the staff list says now, not as when the message was
     * queued (a retry may come days later): a member removed meanwhile, or
     * who turned this channel off, gets no more of it; a changed address is
     * the one used. */
    const s_staff_t *who = s_find_staff(n, send->staff);
    send->gone = who == NULL;
    const char *refused = !who ? "recipient no longer on the staff"
                          : !(send->channel == S_CH_EMAIL ? who->email_on : who->webhook_on)
                              ? "channel turned off by the recipient"
                              : NULL;
    char *subject = NULL, *text = NULL, *html = NULL, *json = NULL;
    s_chat_t chat = send->channel == S_CH_WEBHOOK && who ? s_chat_of(n, who->webhook) : S_PLAIN;
    if (digest && !refused) s_render_digest(n, rec, items, chat, &subject, &text, &html);
    int rc = -1;
    send->next = n->sending;
    if (n->sending) n->sending->prev = send;
    n->sending = send;
    n->in_flight++;
    mg_metrics_set(n->metrics.in_flight, n->in_flight);
    if (!refused && send->channel == S_CH_EMAIL) {
        char message_id[128], idem[512], kindh[96];
        /* Stable per idempotency key: a message sent again after a crash
         * carries the same Message-ID, which mail clients collapse. Its
         * domain is mail_from's (added by mg_outbound_mail()): the
         * chamber's, not a bare "maillage" shared by every installation. */
        snprintf(message_id, sizeof(message_id), "%s", nid);
        snprintf(idem, sizeof(idem), "X-Maillage-Idempotency-Key: %s", key);
        snprintf(kindh, sizeof(kindh), "X-Maillage-Kind: %s", kind ? kind : "");
        const char *headers[] = {idem, kindh, "Auto-Submitted: auto-generated", NULL};
        /* "Claire Dupont <claire@...>" when the staff list names her and gives
         * a bare address (one with a name already is kept as it is). */
        char to[512] = "";
        if (who->name && *who->name && who->email && !strchr(who->email, '<'))
            snprintf(to, sizeof(to), "%s <%s>", who->name, who->email);
        mg_mail_t mail = {
            .smtp_url = n->smtp_url,
            .starttls = n->smtp_starttls,
            .username = n->smtp_user,
            .password = n->smtp_password,
            .from = n->mail_from,
            .to = *to && mg_outbound_mailbox_is_valid(to) ? to : who->email,
            .subject = digest ? subject : s_get_reply(rec, "title"),
            .text = digest ? text : s_get_reply(rec, "text"),
            .html = s_part_or_null(digest ? html : s_get_reply(rec, "html")),
            .message_id = message_id,
            .headers = headers,
            .timeout_ms = n->send_timeout_ms,
        };
        rc = mail.to && *mail.to ? mg_outbound_mail(n->outbound, &mail, s_on_sent, send) : -1;
    } else if (!refused) {
        /* A message queued by an earlier version kept its body ("json"). */
        const char *body = s_get_reply(rec, "json");
        if (digest)
            body = json = s_webhook_json(chat, subject, text, whole_key);
        else if (s_get_reply(rec, "vars"))
            body = json = s_webhook_from_vars(n, kind, s_get_reply(rec, "vars"), chat, whole_key);
        const char *url = who->webhook;
        rc = url && *url && body
                 ? mg_outbound_webhook(n->outbound, url, body, key, n->send_timeout_ms, s_on_sent, send)
                 : -1;
    }
    free(subject);
    free(text);
    free(html);
    free(json);
    if (rc != 0) {
        /* Invalid input (no address, a header injection): never retried. */
        mg_outbound_result_t r = {.delivered = false, .retryable = false, .status = 0};
        snprintf(r.error, sizeof(r.error), "%s",
                 refused ? refused : "refused before sending (invalid address or content)");
        s_on_sent(&r, send);
    }
}

/* Put a claimed notification back in the queue at `due`, the attempt the
 * claim counted given back. If the call fails, the claim's lease brings it
 * back. */
static void s_hold(mg_notifier_t *n, const char *nid, int64_t due) {
    mg_args_t a;
    s_call_begin(&a, "hold");
    mg_args_str(&a, nid);
    mg_args_int(&a, due);
    s_record(n, &a);
    if (due < n->next_due) n->next_due = due;
}

/* A message that keeps quiet hours (all but the daily digest) is never sent
 * inside its recipient's, whatever brought it due then: a lease that
 * expired after a crash, or quiet hours set after it was queued. It goes
 * back to the queue until they end. Returns 1 if held. */
static int s_hold_if_quiet(mg_notifier_t *n, const char *nid, const redisReply *rec, int64_t now) {
    if (!s_keeps_quiet_hours(s_get_reply(rec, "kind"), s_get_reply(rec, "item"))) return 0;
    const s_staff_t *s = s_find_staff(n, s_get_reply(rec, "staff"));
    int64_t due = s ? s_due(s, now) : now;
    if (due == now) return 0;
    mg_info("notifier: %s held until the end of %s's quiet hours, in %.0f s", nid, s->id,
            (double)(due - now) / 1000.0);
    s_hold(n, nid, due);
    return 1;
}

static void s_on_claimed(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_notifier_t *n = privdata;
    (void)redis;
    n->claiming = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[1]->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR) mg_warn("notifier: claim: %s", reply->str);
        n->kicked = 1; /* again at the next tick */
        return;
    }
    const redisReply *claimed = reply->element[0];
    n->next_due = reply->element[1]->integer < 0 ? INT64_MAX : reply->element[1]->integer;
    int64_t now = mg_clock_service_now_ms();
    for (size_t i = 0; i < claimed->elements; i++) {
        const redisReply *e = claimed->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) continue;
        /* No send starts once stopping: back to the queue, the attempt the
         * claim counted given back. */
        if (n->stopping) {
            s_hold(n, s_rstr(e->element[0]), now);
            continue;
        }
        if (s_hold_if_quiet(n, s_rstr(e->element[0]), e->element[1], now)) continue;
        s_send(n, s_rstr(e->element[0]), e->element[1], e->element[2]);
    }
    /* A full batch: there may be more due right now. */
    if (claimed->elements > 0 && n->in_flight < (size_t)n->max_in_flight) s_kick_worker(n);
}

static void s_work(mg_notifier_t *n) {
    /* Not before the staff are loaded: their quiet hours decide what may go.
     * While another notifier sends, this one only renews the leases of its
     * sends in flight (the script claims nothing for it). */
    if (!n->redis_up || !n->staff_loaded || (!n->active && !n->sending) || n->stopping || n->claiming ||
        n->in_flight >= (size_t)n->max_in_flight)
        return;
    int64_t mono = mg_clock_monotonic_us();
    if (!n->kicked && mg_clock_service_now_ms() < n->next_due &&
        mono - n->claimed_at_us < S_CLAIM_POLL_MS * 1000LL)
        return;
    n->kicked = 0;
    n->claimed_at_us = mono;
    mg_args_t a;
    s_call_begin(&a, "claim");
    mg_args_int(&a, mg_clock_service_now_ms());
    /* The lease outlives an attempt (its timeout) by far; after a crash a
     * notification comes back then. One still being sent when it ran out (a
     * mail waits for a free mail worker before its timeout starts) is named,
     * so that it gets a new lease instead of being sent again. */
    mg_args_int(&a, 2 * n->send_timeout_ms + 1000);
    mg_args_int(&a, n->max_in_flight - (long long)n->in_flight);
    mg_args_str(&a, n->active_id);
    for (const s_send_t *send = n->sending; send; send = send->next)
        mg_args_str(&a, send->nid);
    n->claiming = 1;
    if (s_call(n, &a, s_on_claimed, n) != 0) {
        n->claiming = 0;
        n->kicked = 1;
    }
}

static void s_on_worker_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_work(arg);
}

/* Something was queued, or a send ended: claim now, or at the next tick if
 * a claim is under way (its reply may predate the change). */
static void s_kick_worker(mg_notifier_t *n) {
    n->kicked = 1;
    s_work(n);
}

/* ---- staff ---------------------------------------------------------------------------- */

static void s_staff_free_all(s_staff_t **staff, size_t *n) {
    for (size_t i = 0; i < *n; i++) s_staff_clear(&(*staff)[i]);
    free(*staff);
    *staff = NULL;
    *n = 0;
}

/* Links in e-mails and chat messages are opened where staff read them: a
 * staff_url on loopback (the default) opens only on the server. Said once,
 * when the first member receives either. */
static void s_say_loopback_links(mg_notifier_t *n) {
    const char *authority = strstr(n->staff_url, "://");
    if (n->loopback_links_said || !authority || !mg_config_authority_is_loopback(authority + 3)) return;
    for (size_t i = 0; i < n->n_staff; i++) {
        if (!n->staff[i].email_on && !n->staff[i].webhook_on) continue;
        mg_warn("notifier: [notifier] staff_url %s is on loopback: the links in e-mails and chat messages "
                "open only on this machine (set it to the staff page's address as staff reach it)",
                n->staff_url);
        n->loopback_links_said = 1;
        return;
    }
}

/* FNV-1a over a reply's strings, each ended by a 0 byte: equal for equal
 * staff lists (the script returns them in a stable order). */
static uint64_t s_reply_signature(const redisReply *r, uint64_t h) {
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            h = s_reply_signature(r->element[i], h);
        return (h ^ 0xff) * 1099511628211ULL;
    }
    for (size_t i = 0; r->str && i <= r->len; i++)
        h = (h ^ (unsigned char)(i < r->len ? r->str[i] : 0)) * 1099511628211ULL;
    return h;
}

/* A staff member's quiet hours changed: what they held. */
typedef struct {
    mg_notifier_t *n;
    char *staff;
    s_staff_t was; /* the old quiet hours (quiet_start, quiet_end) only */
} s_requeue_t;

/* Reply of "queued_for": each message held until the end of the old quiet
 * hours (its due is that end: s_due() of the moment before gives it back)
 * is due when the new ones let it go, from now: shortened, or removed,
 * quiet hours release what they held. */
static void s_on_queued_for(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_requeue_t *rq = privdata;
    mg_notifier_t *n = rq->n;
    (void)redis;
    const s_staff_t *now_s = s_find_staff(n, rq->staff);
    int64_t now = mg_clock_service_now_ms();
    size_t moved = 0;
    for (size_t i = 0; now_s && reply && reply->type == REDIS_REPLY_ARRAY && i + 3 < reply->elements;
         i += 4) {
        int64_t due = strtoll(s_rstr(reply->element[i + 1]), NULL, 10);
        if (!s_keeps_quiet_hours(s_rstr(reply->element[i + 2]), s_rstr(reply->element[i + 3])) ||
            s_due(&rq->was, due - 1) != due)
            continue; /* a daily digest, at its own hour; or not held by the quiet hours */
        int64_t again = s_due(now_s, now);
        if (again >= due) continue; /* the new hours hold it as long */
        mg_args_t a;
        s_call_begin(&a, "requeue");
        mg_args_str(&a, s_rstr(reply->element[i]));
        mg_args_int(&a, due);
        mg_args_int(&a, again);
        s_record(n, &a);
        if (again < n->next_due) n->next_due = again;
        moved++;
    }
    if (moved)
        mg_info("notifier: %s's quiet hours changed: %zu message(s) held by them due again", rq->staff,
                moved);
    free(rq->staff);
    free(rq);
}

static void s_requeue_quiet(mg_notifier_t *n, const s_staff_t *was) {
    s_requeue_t *rq = mg_calloc(1, sizeof(*rq));
    rq->n = n;
    rq->staff = mg_strdup(was->id);
    rq->was.quiet_start = was->quiet_start;
    rq->was.quiet_end = was->quiet_end;
    mg_args_t a;
    s_call_begin(&a, "queued_for");
    mg_args_str(&a, was->id);
    mg_args_int(&a, mg_clock_service_now_ms());
    if (s_call(n, &a, s_on_queued_for, rq) != 0) {
        free(rq->staff);
        free(rq);
    }
}

static void s_on_staff(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_notifier_t *n = privdata;
    (void)redis;
    n->staff_loading = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return;
    s_staff_t *staff = mg_calloc(reply->elements + 1, sizeof(*staff));
    size_t k = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
        s_staff_fill(&staff[k++], s_rstr(e->element[0]), s_get_reply, e->element[1]);
    }
    for (size_t i = 0; i < k; i++) {
        const s_staff_t *was = s_find_staff(n, staff[i].id);
        if (was && (was->quiet_start != staff[i].quiet_start || was->quiet_end != staff[i].quiet_end))
            s_requeue_quiet(n, was); /* its reply comes after the list below is in place */
        if (was && was->digest && !staff[i].digest) n->digest_flush = 1;
        if (was && ((was->email_on && !staff[i].email_on) || (was->webhook_on && !staff[i].webhook_on)))
            n->digest_moves = 1;
        if (was) memcpy(staff[i].digest_taken, was->digest_taken, sizeof(staff[i].digest_taken));
    }
    s_staff_free_all(&n->staff, &n->n_staff);
    n->staff = staff;
    n->n_staff = k;
    s_say_loopback_links(n);
    uint64_t signature = s_reply_signature(reply, 14695981039346656037ULL);
    /* What an operator's `maillage staff set` awaits: it applies from here. */
    if (n->staff_loaded && signature != n->staff_signature) {
        mg_info("notifier: staff list changed: %zu staff member(s)", k);
        n->digest_drops = 1;
    }
    n->staff_signature = signature;
    if (!n->staff_loaded) {
        n->digest_flush = 1;
        n->digest_moves = 1;
        n->digest_drops = 1;
        n->staff_loaded = 1;
        mg_info("notifier: %zu staff member(s); default recipient %s", k, n->default_staff);
        /* The subscriber starts on its own once Redis is up (this only
         * spares it a tick): an event it delivered before the list was read
         * is held (`held`), and handled now, routed to the staff. */
        if (n->subscriber) mg_subscriber_redis_state(n->subscriber, 1);
        s_job_t *held = n->held;
        n->held = NULL;
        if (held) s_handle(n, held);
    }
}

static void s_load_staff(mg_notifier_t *n) {
    if (n->staff_loading || !n->redis_up || !n->placed) return;
    mg_args_t a;
    s_call_begin(&a, "staff");
    mg_args_int(&a, mg_clock_service_now_ms());
    mg_args_int(&a, n->retention_ms);
    n->staff_loading = 1;
    if (s_call(n, &a, s_on_staff, n) != 0) n->staff_loading = 0;
}

static void s_on_staff_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_load_staff(arg);
}

static const char *const s_staff_keys[] = {"name",     "email",    "webhook", "departments", "categories",
                                           "networks", "min_score", "channels", "mode",       "digest_hour",
                                           "quiet_start", "quiet_end", NULL};

/* "a, b, c" from an array reply of ids, into out. */
static void s_join_ids(const redisReply *r, char *out, size_t outlen) {
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && len < outlen; i++)
        len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? ", " : "", s_rstr(r->element[i]));
}

static void s_on_staff_synced(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    (void)privdata;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        if (reply && reply->type == REDIS_REPLY_ERROR) mg_warn("notifier: staff from the config: %s", reply->str);
        return;
    }
    char kept[512], dropped[512];
    s_join_ids(reply->element[1], kept, sizeof(kept));
    s_join_ids(reply->element[2], dropped, sizeof(dropped));
    mg_info("notifier: staff from the config: %zu written", reply->element[0]->elements);
    if (*kept)
        mg_info("notifier: [staff.*] not applied to %s: edited or removed with `maillage staff` (origin cli; "
                "`maillage staff reset ID` gives a record back to the config)",
                kept);
    if (*dropped) mg_info("notifier: staff no longer in the config, removed: %s", dropped);
}

/* The [staff.*] sections into Redis, in one call: the config's own records
 * follow it, those edited with `maillage staff` stay as edited (see the
 * "staff_sync" step of the script). */
static void s_sync_config_staff(mg_notifier_t *n) {
    const mg_config_t *cfg = n->cfg;
    size_t count = mg_config_instance_count(cfg, "staff.*");
    mg_args_t a;
    s_call_begin(&a, "staff_sync");
    mg_args_int(&a, (long long)count);
    size_t nk = 0;
    while (s_staff_keys[nk]) nk++;
    for (size_t i = 0; i < count; i++) {
        const char *section = mg_config_instance_section(cfg, "staff.*", i);
        mg_args_str(&a, section + strlen("staff."));
        mg_args_int(&a, (long long)nk);
        for (size_t k = 0; s_staff_keys[k]; k++) {
            mg_args_str(&a, s_staff_keys[k]);
            if (strcmp(s_staff_keys[k], "min_score") == 0)
                s_args_score(&a, mg_config_double(cfg, section, "min_score"));
            else if (strstr(s_staff_keys[k], "hour") || strncmp(s_staff_keys[k], "quiet", 5) == 0)
                mg_args_int(&a, mg_config_int(cfg, section, s_staff_keys[k]));
            else
                mg_args_str(&a, mg_config_str(cfg, section, s_staff_keys[k]));
        }
    }
    s_call(n, &a, s_on_staff_synced, n);
}

/* ---- the active notifier --------------------------------------------------------------- */

static void s_active_call(mg_notifier_t *n, long long ttl_ms, const char *gone);

/* Reply of "active". The first one after a connection writes the config's
 * staff (only the notifier that sends: two machines' configs may differ),
 * then reads the staff list: events are not handled before. */
static void s_on_active(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_notifier_t *n = privdata;
    (void)redis;
    if (n->stopping) return;
    if (!reply || reply->type != REDIS_REPLY_STRING) {
        n->active = 0; /* not known to hold it: the next renewal says */
        return;
    }
    int mine = strcmp(reply->str, n->active_id) == 0, was = n->active;
    n->active = mine;
    if (mine && !n->had_place) mg_info("notifier: this notifier sends (mg:notifier:active)");
    if (!mine && n->had_place)
        mg_error("notifier: notifier %s took over the sends (this one did not renew its place for %d s): "
                 "this one records notifications only, and sends again once that one stops",
                 reply->str, S_ACTIVE_TTL_MS / 1000);
    else if (!mine && strcmp(n->holder_said, reply->str) != 0)
        mg_warn(
            "notifier: notifier %s sends: this one records notifications only, and takes over within %d s "
            "once that one stops (one notifier sends at a time)",
            reply->str, S_ACTIVE_TTL_MS / 1000);
    n->had_place = mine;
    snprintf(n->holder_said, sizeof(n->holder_said), "%s", mine ? "" : reply->str);
    if (mine && !was) s_sync_config_staff(n);
    if (!n->placed) {
        n->placed = 1;
        s_load_staff(n);
    }
    if (mine && !was) s_kick_worker(n);
    if (!mine && mg_process_ended(reply->str)) s_active_call(n, S_ACTIVE_TTL_MS, reply->str);
}

/* Take, renew (ttl_ms > 0; `gone`: a holder known ended) or give up (0) the
 * notifier's place as the one that sends. */
static void s_active_call(mg_notifier_t *n, long long ttl_ms, const char *gone) {
    if (!n->redis_up) return;
    mg_args_t a;
    s_call_begin(&a, "active");
    mg_args_str(&a, n->active_id);
    mg_args_int(&a, ttl_ms);
    mg_args_str(&a, gone);
    s_call(n, &a, ttl_ms ? s_on_active : NULL, n);
}

static void s_on_active_timer(evutil_socket_t fd, short what, void *arg) {
    mg_notifier_t *n = arg;
    (void)fd;
    (void)what;
    if (!n->stopping) s_active_call(n, S_ACTIVE_TTL_MS, "");
}

/* ---- Redis, metrics, life cycle ------------------------------------------------------- */

static void s_on_redis_state(mg_redis_t *redis, int up, void *arg) {
    mg_notifier_t *n = arg;
    (void)redis;
    n->redis_up = up;
    if (up) {
        if (n->script) mg_script_redis_up(n->script);
        /* Its reply writes the config's staff (if this one sends), then
         * reads the staff list (s_on_active()). */
        n->placed = 0;
        s_active_call(n, S_ACTIVE_TTL_MS, "");
        if (n->staff_loaded) {
            mg_info("notifier: Redis available again");
            if (n->subscriber) mg_subscriber_redis_state(n->subscriber, 1);
        }
        s_kick_worker(n); /* the leases of the sends in flight, even if another sends now */
    } else {
        n->claiming = 0;
        n->staff_loading = 0;
        n->active = 0; /* known again at the next reply */
        n->placed = 0;
        mg_warn("notifier: Redis unavailable; deliveries pause until it is back");
        if (n->subscriber) mg_subscriber_redis_state(n->subscriber, 0);
    }
}

static void s_metrics_register(mg_notifier_t *n) {
    s_metrics_t *x = &n->metrics;
    x->events = mg_metrics_counter("maillage_notifier_events_total", "Events delivered to the notifier.");
    for (int c = 0; c < S_CHANNELS; c++) {
        char name[128];
        snprintf(name, sizeof(name), "maillage_notifier_created_total{channel=\"%s\"}", s_channel_names[c]);
        x->created[c] = mg_metrics_counter(name, "Notifications created, by channel.");
        snprintf(name, sizeof(name), "maillage_notifier_delivered_total{channel=\"%s\"}", s_channel_names[c]);
        x->delivered[c] = mg_metrics_counter(name, "Notifications delivered, by channel.");
        snprintf(name, sizeof(name), "maillage_notifier_retries_total{channel=\"%s\"}", s_channel_names[c]);
        x->retried[c] = mg_metrics_counter(name, "Failed attempts that will be retried, by channel.");
        snprintf(name, sizeof(name), "maillage_notifier_failed_total{channel=\"%s\"}", s_channel_names[c]);
        x->failed[c] = mg_metrics_counter(name, "Notifications given up on after the last attempt, by channel.");
    }
    x->existing = mg_metrics_counter("maillage_notifier_already_created_total",
                                     "Notifications not created again (redelivery, replay): idempotency at work.");
    x->in_flight = mg_metrics_gauge("maillage_notifier_in_flight", "E-mails and webhooks being sent.");
    x->unanswered = mg_metrics_counter("maillage_notifier_unanswered_total", "Needs notified as without an answer.");
    x->digests = mg_metrics_counter("maillage_notifier_digests_total", "Daily digests queued.");
    x->failures = mg_metrics_counter("maillage_notifier_failures_total", "Events whose handling failed (retried).");
}

static void s_on_metrics_timer(evutil_socket_t fd, short what, void *arg) {
    mg_notifier_t *n = arg;
    (void)fd;
    (void)what;
    mg_redis_publish_metrics(n->redis, "notifier");
}

static void s_on_stop_timer(evutil_socket_t fd, short what, void *arg) {
    mg_notifier_t *n = arg;
    (void)fd;
    (void)what;
    event_base_loopexit(n->base, NULL);
}

static void s_on_flushed(mg_subscriber_t *sub, void *arg) {
    mg_notifier_t *n = arg;
    (void)sub;
    n->flushed = 1;
    s_maybe_exit(n);
}

void mg_notifier_shutdown(mg_notifier_t *n) {
    if (n->stopping) return;
    /* Another notifier may send at once (its claims wait for the leases
     * of the sends this one still has in flight). */
    s_active_call(n, 0, "");
    n->active = 0;
    n->stopping = 1;
    s_on_metrics_timer(-1, 0, n);
    /* The mails waiting for a mail worker are not started (they go back to
     * the queue): only those being sent are waited for, within their
     * timeout. */
    if (n->outbound) mg_outbound_drain(n->outbound);
    long long grace = n->send_timeout_ms + S_SHUTDOWN_AFTER_TIMEOUT_MS;
    if (grace < S_SHUTDOWN_GRACE_MS) grace = S_SHUTDOWN_GRACE_MS;
    struct timeval tv = {(time_t)(grace / 1000), (suseconds_t)((grace % 1000) * 1000)};
    evtimer_add(n->stop_timer, &tv);
    if (n->subscriber) mg_subscriber_flush(n->subscriber, s_on_flushed, n);
    else s_on_flushed(NULL, n);
}

mg_notifier_t *mg_notifier_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    mg_notifier_t *n = mg_calloc(1, sizeof(*n));
    char why[512];
    n->base = base;
    n->cfg = cfg;
    n->active_id = mg_process_id();
    n->staff_url = mg_config_str(cfg, "notifier", "staff_url");
    n->default_staff = mg_config_str(cfg, "notifier", "default_staff");
    n->smtp_url = mg_config_str(cfg, "notifier", "smtp_url");
    n->smtp_user = mg_config_str(cfg, "notifier", "smtp_user");
    n->smtp_starttls = mg_config_bool(cfg, "notifier", "smtp_starttls");
    n->mail_from = mg_config_str(cfg, "notifier", "mail_from");
    n->chat_format = mg_config_str(cfg, "notifier", "chat_format");
    n->unanswered_days = mg_config_int(cfg, "notifier", "unanswered_days");
    n->max_attempts = mg_config_int(cfg, "notifier", "max_attempts");
    n->retry_for_ms = mg_config_int(cfg, "notifier", "retry_for_s") * 1000;
    n->retry_base_ms = mg_config_int(cfg, "notifier", "retry_base_ms");
    n->retry_max_ms = mg_config_int(cfg, "notifier", "retry_max_ms");
    n->send_timeout_ms = mg_config_int(cfg, "notifier", "send_timeout_ms");
    n->max_in_flight = mg_config_int(cfg, "notifier", "max_in_flight");
    n->retention_ms = mg_config_int(cfg, "notifier", "retention_days") * S_MS_PER_DAY;
    n->inbox_max = mg_config_int(cfg, "notifier", "inbox_max");
    s_metrics_register(n);
    srand((unsigned)(mg_clock_monotonic_us() ^ (int64_t)getpid()));

    n->taxonomy = mg_taxonomy_new(cfg, why, sizeof(why));
    if (!n->taxonomy) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    n->communes = mg_communes_load(mg_config_str(cfg, "data", "communes_file"), why, sizeof(why));
    if (!n->communes) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    if (mg_notifier_config_check(cfg, n->taxonomy, n->communes, err, errlen) != 0) goto err;
    const char *smtp_pw = mg_config_str(cfg, "notifier", "smtp_password_file");
    if (*smtp_pw &&
        !(n->smtp_password = mg_config_read_secret("[notifier] smtp_password_file", smtp_pw, err, errlen)))
        goto err;
    if (mg_notifier_templates_load(cfg, n->templates, err, errlen) != 0) goto err;
    n->outbound = mg_outbound_new(base);
    if (!n->outbound) {
        mg_fail(err, errlen, "cannot initialise libcurl");
        goto err;
    }
    n->zmq_context = zmq_ctx_new();
    if (!n->zmq_context) {
        mg_fail(err, errlen, "zmq_ctx_new: %s", strerror(errno));
        goto err;
    }
    n->redis = mg_redis_new_from_config(base, cfg, s_on_redis_state, n, why, sizeof(why));
    if (!n->redis) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    n->script = mg_script_new(n->redis, mg_notifier_script);
    static const char *const topics[] = {"member.",      "need.", "offer.", "cooperation.", "match.found",
                                         "collective_need.", NULL};
    mg_subscriber_options_t sopts = {.name = "notifier",
                                     .fanout = mg_config_str(cfg, "broker", "fanout"),
                                     .topics = topics,
                                     .deadletter_maxlen = mg_config_int(cfg, "broker", "deadletter_maxlen")};
    n->subscriber = mg_subscriber_new(base, n->zmq_context, n->redis, &sopts, s_on_event, n, why, sizeof(why));
    if (!n->subscriber) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    n->worker_timer = event_new(base, -1, EV_PERSIST, s_on_worker_timer, n);
    n->staff_timer = event_new(base, -1, EV_PERSIST, s_on_staff_timer, n);
    n->digest_timer = event_new(base, -1, EV_PERSIST, s_on_digest_timer, n);
    n->unanswered_timer = event_new(base, -1, EV_PERSIST, s_on_unanswered_timer, n);
    n->metrics_timer = event_new(base, -1, EV_PERSIST, s_on_metrics_timer, n);
    n->stop_timer = evtimer_new(base, s_on_stop_timer, n);
    n->active_timer = event_new(base, -1, EV_PERSIST, s_on_active_timer, n);
    if (!n->worker_timer || !n->staff_timer || !n->digest_timer || !n->unanswered_timer ||
        !n->metrics_timer || !n->stop_timer || !n->active_timer) {
        mg_fail(err, errlen, "cannot create timers");
        goto err;
    }
    long long staff_ms = mg_config_int(cfg, "notifier", "staff_refresh_ms");
    long long un_s = mg_config_int(cfg, "notifier", "unanswered_check_s");
    struct timeval wtv = {0, S_WORKER_INTERVAL_MS * 1000}, stv = {staff_ms / 1000, (staff_ms % 1000) * 1000},
                   dtv = {0, S_DIGEST_INTERVAL_MS * 1000}, utv = {(time_t)un_s, 0}, mtv = {S_METRICS_INTERVAL_S, 0};
    event_add(n->worker_timer, &wtv);
    event_add(n->staff_timer, &stv);
    event_add(n->digest_timer, &dtv);
    event_add(n->unanswered_timer, &utv);
    event_add(n->metrics_timer, &mtv);
    struct timeval atv = {S_ACTIVE_RENEW_MS / 1000, (S_ACTIVE_RENEW_MS % 1000) * 1000};
    event_add(n->active_timer, &atv);
    if (mg_clock_test_file())
        mg_warn("notifier: TEST CLOCK: time is shifted by the offset in %s (MAILLAGE_CLOCK_FILE); never in "
                "production",
                mg_clock_test_file());
    mg_info("notifier: %zu staff section(s) in the config, templates from %s, fanout %s; connecting to Redis",
            mg_config_instance_count(cfg, "staff.*"), mg_config_str(cfg, "notifier", "templates_dir"),
            mg_config_str(cfg, "broker", "fanout"));
    return n;
err:
    mg_notifier_destroy(&n);
    return NULL;
}

void mg_notifier_destroy(mg_notifier_t **notifier_p) {
    if (!notifier_p || !*notifier_p) return;
    mg_notifier_t *n = *notifier_p;
    n->stopping = 1;
    n->redis_up = 0; /* results of aborted sends are not recorded: the lease retries them */
    if (n->worker_timer) event_free(n->worker_timer);
    if (n->staff_timer) event_free(n->staff_timer);
    if (n->digest_timer) event_free(n->digest_timer);
    if (n->unanswered_timer) event_free(n->unanswered_timer);
    if (n->metrics_timer) event_free(n->metrics_timer);
    if (n->stop_timer) event_free(n->stop_timer);
    if (n->active_timer) event_free(n->active_timer);
    mg_outbound_destroy(&n->outbound);
    free(n->held); /* not done: delivered again from the checkpoint */
    mg_subscriber_destroy(&n->subscriber);
    mg_redis_destroy(&n->redis);
    if (n->zmq_context) zmq_ctx_term(n->zmq_context);
    for (int k = 0; k < MG_NOTIFIER_KINDS; k++)
        mg_template_file_clear(&n->templates[k]);
    s_staff_free_all(&n->staff, &n->n_staff);
    mg_taxonomy_destroy(&n->taxonomy);
    mg_communes_destroy(&n->communes);
    mg_script_destroy(&n->script);
    free(n->smtp_password);
    free(n);
    *notifier_p = NULL;
}
