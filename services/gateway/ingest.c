/* ingest.c -- POST /v1/events (network tokens) and POST
 * /v1/matches/{id}/feedback (staff): events relayed to the broker, answered
 * once the broker has answered every one of them.
 *
 * The whole body is checked first (event_batch.h: JSON or NDJSON -> validated
 * envelopes, the token's types), so an invalid element means nothing is
 * sent. Then the broker capacity (max_pending), the network's rate limit,
 * and each envelope goes out with mg_producer_send_as() on behalf of the
 * token's network -- the broker stamps that network as the source, whatever
 * the body said. A timeout answers 503 with every id: retrying them is safe,
 * the broker answers those already journaled "duplicate" with their
 * sequence. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "maillage/clock.h"
#include "maillage/event_batch.h"
#include "maillage/json.h"
#include "maillage/log.h"
#include "maillage/mem.h"

typedef struct s_ingest s_ingest_t;

/* One relayed event of a request. */
typedef struct {
    gw_request_t *r;
    char event_id[MG_ID_MAX + 1];
    Maillage__V1__Ack__Status status; /* UNSPECIFIED until answered (and after a timeout) */
    int answered;
    uint64_t sequence;
    char *reason; /* REJECTED only (rare), freed by s_free_reasons() before the reply */
} s_item_t;

/* r->state: freed with the request. */
struct s_ingest {
    size_t count, remaining;
    int single;   /* the body was one object: add top-level eventId/sequence */
    int feedback; /* POST .../feedback: answer {"eventId","sequence"} */
    s_item_t items[];
};

static s_ingest_t *s_state_new(gw_request_t *r, size_t count) {
    s_ingest_t *st = mg_calloc(1, sizeof *st + count * sizeof(s_item_t));
    st->count = st->remaining = count;
    for (size_t i = 0; i < count; i++) st->items[i].r = r;
    r->state = st; /* freed with free() by the reply: reasons are freed before it */
    return st;
}

static void s_free_reasons(s_ingest_t *st) {
    for (size_t i = 0; i < st->count; i++) {
        free(st->items[i].reason);
        st->items[i].reason = NULL;
    }
}

static const char *s_status_name(Maillage__V1__Ack__Status status) {
    switch (status) {
    case MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED: return "accepted";
    case MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE: return "duplicate";
    case MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED: return "rejected";
    default: return "unavailable";
    }
}

/* {"results":[...]} for every item. */
static json_t *s_results(const s_ingest_t *st) {
    json_t *results = json_array();
    for (size_t i = 0; i < st->count; i++) {
        const s_item_t *it = &st->items[i];
        json_t *o = json_object();
        json_object_set_new(o, "eventId", json_string(it->event_id));
        if (it->sequence) {
            char seq[24];
            snprintf(seq, sizeof seq, "%" PRIu64, it->sequence);
            json_object_set_new(o, "sequence", json_string(seq));
        }
        json_object_set_new(o, "status", json_string(s_status_name(it->status)));
        if (it->status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED && it->reason && it->reason[0]) {
            json_t *reason = json_string(it->reason);
            if (reason) json_object_set_new(o, "reason", reason);
        }
        json_array_append_new(results, o);
    }
    return results;
}

/* 503 with every id, nothing (more) to wait for. */
static void s_reply_unavailable(gw_request_t *r, s_ingest_t *st, const char *code, int retry_after,
                                const char *message) {
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry_after);
    gw_header(r, "Retry-After", ra);
    json_t *body = json_object();
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_object_set_new(e, "message", json_string(message));
    json_object_set_new(body, "error", e);
    json_object_set_new(body, "results", s_results(st));
    s_free_reasons(st);
    gw_reply_json(r, 503, body);
}

/* 202: every event journaled (accepted or duplicate). Written by hand, not
 * with jansson: it is the reply of the hot path, and ids need no escaping
 * (mg_id_is_valid). */
static void s_reply_accepted(gw_request_t *r, s_ingest_t *st) {
    size_t cap = 160 + st->count * (MG_ID_MAX + 80), n = 0;
    char *out = mg_malloc(cap);
    const s_item_t *first = &st->items[0];
    if (st->single || st->feedback)
        n += (size_t)snprintf(out + n, cap - n, "{\"eventId\":\"%s\",\"sequence\":\"%" PRIu64 "\"%s", first->event_id,
                              first->sequence, st->feedback ? ",\"status\":\"" : ",\"results\":[");
    else
        n += (size_t)snprintf(out + n, cap - n, "{\"results\":[");
    if (st->feedback) {
        n += (size_t)snprintf(out + n, cap - n, "%s\"}", s_status_name(first->status));
    } else {
        for (size_t i = 0; i < st->count; i++) {
            const s_item_t *it = &st->items[i];
            n += (size_t)snprintf(out + n, cap - n, "%s{\"eventId\":\"%s\",\"sequence\":\"%" PRIu64 "\",\"status\":\"%s\"}",
                                  i ? "," : "", it->event_id, it->sequence, s_status_name(it->status));
        }
        n += (size_t)snprintf(out + n, cap - n, "]}");
    }
    gw_reply_bytes(r, 202, "application/json", out, n);
    free(out);
}

static void s_finish(gw_request_t *r, s_ingest_t *st) {
    size_t timeouts = 0, rejected = 0, forbidden = 0, not_owner = 0, limited = 0;
    for (size_t i = 0; i < st->count; i++) {
        const s_item_t *it = &st->items[i];
        if (it->status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED) {
            rejected++;
            /* A permission ("may not emit <type>", "may not relay"), or
             * another network's item or structure (MG_NOT_OWNER). */
            int owner = it->reason && strncmp(it->reason, MG_NOT_OWNER, strlen(MG_NOT_OWNER)) == 0;
            if (owner) not_owner++;
            if (owner || (it->reason && strstr(it->reason, "may not")))
                forbidden++;
            else if (it->reason && strncmp(it->reason, MG_RATE_LIMITED, strlen(MG_RATE_LIMITED)) == 0)
                limited++;
        } else if (it->status != MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED &&
                   it->status != MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE) {
            timeouts++;
        }
    }
    if (timeouts) {
        s_reply_unavailable(r, st, "broker_timeout", 2,
                            "the broker did not answer in time; retry with the same event ids (safe: events "
                            "already journaled are answered duplicate)");
        return;
    }
    if (!rejected) {
        s_reply_accepted(r, st);
        return;
    }
    /* Rare after our own validation: the broker's rules differ (its
     * permissions, its rate limit). Journaled ones keep their results. */
    int status = forbidden == rejected ? 403 : limited == rejected ? 429 : 400;
    json_t *body = json_object();
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(status != 403       ? "rejected"
                                               : not_owner == rejected ? "not_owner"
                                                                       : "forbidden_type"));
    json_object_set_new(e, "message", json_string("the broker rejected some events (see results)"));
    json_object_set_new(body, "error", e);
    json_object_set_new(body, "results", s_results(st));
    s_free_reasons(st);
    if (status == 429) gw_header(r, "Retry-After", "1");
    gw_reply_json(r, status, body);
}

static void s_on_ack(const char *network, const char *event_id, Maillage__V1__Ack__Status status, uint64_t sequence,
                     const char *reason, void *arg) {
    s_item_t *it = arg;
    (void)network;
    (void)event_id;
    gw_request_t *r = it->r;
    s_ingest_t *st = r->state;
    if (it->answered) return;
    it->answered = 1;
    it->status = status;
    it->sequence = sequence;
    if (status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED) it->reason = mg_strdup(reason ? reason : "");
    if (--st->remaining == 0) s_finish(r, st);
}

/* Capacity, then relay every item of `st` (whose ids and bytes are given)
 * on behalf of `network`. `rate` says whether the network's bucket applies.
 * Answers on its own when nothing can be sent. Takes each data[i] it sends
 * (set to NULL); what is left is the caller's to free. */
static void s_relay(gw_request_t *r, s_ingest_t *st, const char *network, int rate, uint8_t **data,
                    const size_t *lens) {
    mg_gateway_t *gw = r->gw;
    if (!mg_redis_is_up(gw_redis(gw))) {
        s_reply_unavailable(r, st, "unavailable", 1, "Redis is unavailable; retry with the same event ids");
        return;
    }
    if (gw_pending_check(gw, st->count) != 0) {
        s_reply_unavailable(r, st, "overloaded", 1, "too many events wait for the broker; retry with the same event ids");
        return;
    }
    for (size_t i = 0; i < st->count; i++) {
        if (gw_ack_awaited(gw, network, st->items[i].event_id)) {
            s_reply_unavailable(r, st, "in_flight", 1,
                                "an event with this id is being relayed for another request; retry with the same "
                                "event ids");
            return;
        }
    }
    int retry_after = 1;
    if (rate && gw_rate_take(gw, network, st->count, &retry_after) != 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        gw_header(r, "Retry-After", ra);
        gw_reply_error(r, 429, "rate_limited", NULL, -1,
                       "rate limit of network %s reached; nothing was sent, retry after %d s", network, retry_after);
        return;
    }
    for (size_t i = 0; i < st->count; i++) {
        s_item_t *it = &st->items[i];
        gw_relay(gw, network, it->event_id, data[i], lens[i]);
        data[i] = NULL;
        gw_await_ack(gw, network, it->event_id, s_on_ack, it);
    }
}

/* ---- POST /v1/events ------------------------------------------------------------------ */

static void s_post_events(gw_request_t *r) {
    mg_gateway_t *gw = r->gw;
    const mg_config_t *cfg = gw_config(gw);
    size_t len;
    const char *body = gw_body(r, &len);
    mg_event_batch_options_t opts = {
        .ndjson = gw_content_type_is(r, "application/x-ndjson"),
        .max_events = (size_t)mg_config_int(cfg, "gateway", "max_batch_events"),
        .max_envelope_bytes = (size_t)mg_config_int(cfg, "broker", "max_message_bytes"),
        .allowed_types = r->who.types,
        .taxonomy = gw_taxonomy(gw),
        .communes = gw_communes(gw),
    };
    mg_event_batch_t batch;
    mg_event_batch_error_t err;
    switch (mg_event_batch_parse(body, len, &opts, &batch, &err)) {
    case MG_EVENT_BATCH_OK:
        break;
    case MG_EVENT_BATCH_TOO_MANY:
        gw_reply_error(r, 413, err.code, err.field, err.index, "%s", err.message);
        return;
    case MG_EVENT_BATCH_FORBIDDEN:
        gw_reply_error(r, 403, err.code, err.field, err.index, "%s", err.message);
        return;
    default:
        gw_reply_error(r, 400, err.code, err.field, err.index, "%s", err.message);
        return;
    }
    s_ingest_t *st = s_state_new(r, batch.count);
    st->single = batch.single;
    uint8_t **data = mg_malloc(batch.count * sizeof *data);
    size_t *lens = mg_malloc(batch.count * sizeof *lens);
    for (size_t i = 0; i < batch.count; i++) {
        memcpy(st->items[i].event_id, batch.items[i].event_id, sizeof st->items[i].event_id);
        data[i] = batch.items[i].data;
        lens[i] = batch.items[i].len;
        batch.items[i].data = NULL;
    }
    s_relay(r, st, r->who.subject, 1, data, lens);
    /* `r` may be gone now: only what was not sent is ours. */
    for (size_t i = 0; i < batch.count; i++) free(data[i]);
    free(data);
    free(lens);
    mg_event_batch_clear(&batch);
}

/* ---- POST /v1/matches/{id}/feedback ------------------------------------------------------- */

typedef struct {
    gw_request_t *r;
    Maillage__V1__MatchOutcome outcome;
    char *comment;
} s_feedback_t;

static void s_feedback_emit(gw_request_t *r, const char *match_id, Maillage__V1__MatchOutcome outcome,
                            const char *comment) {
    mg_gateway_t *gw = r->gw;
    Maillage__V1__MatchFeedback fb = MAILLAGE__V1__MATCH_FEEDBACK__INIT;
    fb.match_id = (char *)match_id;
    fb.staff_id = r->who.subject;
    fb.outcome = outcome;
    fb.comment = (char *)comment;
    Maillage__V1__Envelope env = MAILLAGE__V1__ENVELOPE__INIT;
    char event_id[MG_ULID_LEN + 1];
    mg_ulid_new(event_id);
    env.event_id = event_id;
    env.type = "match.feedback";
    env.occurred_at_ms = mg_clock_now_ms();
    env.schema_version = MG_SCHEMA_VERSION;
    env.correlation_id = (char *)match_id;
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FEEDBACK;
    env.match_feedback = &fb;
    mg_invalid_t why;
    if (mg_envelope_validate(&env, NULL, NULL, &why) != 0) {
        /* Only the comment comes from the client here. */
        gw_reply_error(r, 400, "invalid_feedback", "comment", -1, "comment: %s", why.reason);
        return;
    }
    uint8_t *data = NULL;
    size_t len = mg_envelope_pack(&env, &data);
    s_ingest_t *st = s_state_new(r, 1);
    st->feedback = 1;
    memcpy(st->items[0].event_id, event_id, sizeof event_id);
    uint8_t *datas[1] = {data};
    size_t lens[1] = {len};
    s_relay(r, st, mg_config_str(gw_config(gw), "gateway", "staff_network"), 0, datas, lens);
    free(datas[0]);
}

static void s_on_match_exists(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_feedback_t *f = privdata;
    (void)redis;
    gw_request_t *r = f->r;
    char *comment = f->comment;
    Maillage__V1__MatchOutcome outcome = f->outcome;
    free(f);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        gw_reply_unavailable(r, "Redis");
    } else if (reply->type != REDIS_REPLY_STRING) {
        gw_reply_error(r, 404, "not_found", NULL, -1, "no match %s", r->params[0]);
    } else {
        s_feedback_emit(r, r->params[0], outcome, comment);
    }
    free(comment);
}

static void s_post_feedback(gw_request_t *r) {
    size_t len;
    const char *body = gw_body(r, &len);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        gw_reply_error(r, 400, "invalid_json", NULL, -1, "invalid JSON at line %d, column %d: %s", jerr.line,
                       jerr.column, jerr.text);
        return;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        gw_reply_error(r, 400, "invalid_json", NULL, -1, "expected a JSON object");
        return;
    }
    /* The match and the staff member come from the path and the token. */
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "outcome") != 0 && strcmp(key, "comment") != 0) {
            gw_reply_error(r, 400, "invalid_feedback", key, -1, "%s: unknown field (expected outcome, comment)",
                           key);
            json_decref(root);
            return;
        }
    }
    char why[512];
    Maillage__V1__MatchFeedback *fb =
        (Maillage__V1__MatchFeedback *)mg_json_to_message(&maillage__v1__match_feedback__descriptor, root, why, sizeof why);
    json_decref(root);
    if (!fb) {
        const char *colon = strstr(why, ": ");
        char field[64] = "";
        if (colon && (size_t)(colon - why) < sizeof field && !memchr(why, ' ', (size_t)(colon - why)))
            snprintf(field, sizeof field, "%.*s", (int)(colon - why), why);
        gw_reply_error(r, 400, "invalid_feedback", field, -1, "%s", why);
        return;
    }
    if (fb->outcome != MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_CONTACT_MADE &&
        fb->outcome != MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_NOT_RELEVANT) {
        protobuf_c_message_free_unpacked(&fb->base, NULL);
        gw_reply_error(r, 400, "invalid_feedback", "outcome", -1,
                       "outcome: expected MATCH_OUTCOME_CONTACT_MADE or MATCH_OUTCOME_NOT_RELEVANT");
        return;
    }
    s_feedback_t *f = mg_calloc(1, sizeof *f);
    f->r = r;
    f->outcome = fb->outcome;
    f->comment = mg_strdup(fb->comment ? fb->comment : "");
    protobuf_c_message_free_unpacked(&fb->base, NULL);
    if (mg_redis_command(gw_redis(r->gw), s_on_match_exists, f, "GET mg:mid:%s", r->params[0]) != 0) {
        free(f->comment);
        free(f);
        gw_reply_unavailable(r, "Redis");
    }
}

void gw_ingest_register(mg_gateway_t *gw) {
    gw_route(gw, EVHTTP_REQ_POST, "/v1/events", GW_NETWORK | GW_ACCEPT_NDJSON, NULL, s_post_events);
    gw_route(gw, EVHTTP_REQ_POST, "/v1/matches/{id}/feedback", GW_STAFF, NULL, s_post_feedback);
}
