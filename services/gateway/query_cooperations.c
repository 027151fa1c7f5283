/* query_cooperations.c -- one cooperation proposal, as staff open it from
 * a notification's link (#cooperation/<id> on the staff page):
 *
 *   GET /v1/cooperations/{id}   mg:coop:<id>, the matcher's hash (`seq`,
 *                               `pb` = serialized CooperationProposed,
 *                               `ans:<sid>` = a CooperationAnswer number),
 *                               then the structures' names (mg:structure:)
 *
 * The answer is the proposal in proto3 JSON plus "id", "sequence",
 * "categoryLabel", "kindLabel", "fromStructureName", "toStructureName",
 * "territoryNames" (one per "territory" entry) and "answers" (one per
 * answering structure, by structure id). No hash, or a hash without `pb`
 * (an answer recorded before its proposal): 404. A `pb` that is not a
 * CooperationProposed: 500, logged. A stored answer that is not the number
 * of a CooperationAnswer value reads as COOPERATION_ANSWER_UNSPECIFIED. */
#include <stdlib.h>
#include <string.h>

#include "maillage/french.h"
#include "maillage/json.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/v1/events.pb-c.h"
#include "query.h"

typedef struct {
    char sid[MG_ID_MAX + 1];
    const ProtobufCEnumValue *answer; /* static, from the enum's descriptor */
    char *comment;                    /* owned; NULL when none */
    long long at;                     /* received, Unix ms; 0 when unknown */
} s_answer_t;

typedef struct {
    gw_request_t *r;
    Maillage__V1__CooperationProposed *cp; /* owned */
    char seq[24];
    s_answer_t *answers; /* sorted by structure id */
    size_t n_answers;
} s_coop_t;

static void s_coop_free(void *arg) {
    s_coop_t *q = arg;
    if (q->cp) maillage__v1__cooperation_proposed__free_unpacked(q->cp, NULL);
    for (size_t i = 0; i < q->n_answers; i++)
        free(q->answers[i].comment);
    free(q->answers);
    free(q);
}

/* The CooperationAnswer value stored as `text` (its decimal number), or
 * UNSPECIFIED for anything else. Never NULL. */
static const ProtobufCEnumValue *s_answer_value(const char *text) {
    const ProtobufCEnumDescriptor *d = &maillage__v1__cooperation_answer__descriptor;
    size_t len = strlen(text);
    const ProtobufCEnumValue *v = NULL;
    if (len > 0 && len < 10 && strspn(text, "0123456789") == len)
        v = protobuf_c_enum_descriptor_get_value(d, atoi(text));
    return v ? v : protobuf_c_enum_descriptor_get_value(d, 0);
}

static int s_cmp_answer(const void *a, const void *b) {
    return strcmp(((const s_answer_t *)a)->sid, ((const s_answer_t *)b)->sid);
}

static void s_set_name(json_t *o, const char *key, const redisReply *pb) {
    char *name = gq_structure_name(pb);
    gq_set_str(o, key, name);
    free(name);
}

/* `reply`: the `pb` of the structures, from, to, then each answer's. */
static void s_on_names(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_coop_t *q = privdata;
    (void)redis;
    if (!gq_exec_ok(reply, 2 + q->n_answers)) {
        gw_reply_unavailable(q->r, "cooperation");
        return;
    }
    mg_gateway_t *gw = q->r->gw;
    const Maillage__V1__CooperationProposed *cp = q->cp;
    json_t *o = json_pack("{s:s}", "id", q->r->params[0]);
    json_t *fields = mg_json_from_message(&cp->base);
    json_object_update(o, fields);
    json_decref(fields);
    gq_set_str(o, "sequence", q->seq);
    gq_set_category(gw, o, cp->category);
    gq_set_str(o, "kindLabel", mg_fr_cooperation_kind(cp->kind));
    s_set_name(o, "fromStructureName", gq_at(reply, 0));
    s_set_name(o, "toStructureName", gq_at(reply, 1));
    gq_set_territory_names(gw, o);
    json_t *answers = json_array();
    for (size_t i = 0; i < q->n_answers; i++) {
        const s_answer_t *a = &q->answers[i];
        json_t *one =
            json_pack("{s:s, s:s, s:s}", "structureId", a->sid, "answer", a->answer->name, "answerLabel",
                      mg_fr_cooperation_answer((Maillage__V1__CooperationAnswer)a->answer->value));
        s_set_name(one, "structureName", gq_at(reply, 2 + i));
        if (a->comment) gq_set_str(one, "comment", a->comment);
        if (a->at > 0) {
            char when[32];
            gq_rfc3339(a->at, when);
            gq_set_str(one, "answeredAt", when);
        }
        json_array_append_new(answers, one);
    }
    json_object_set_new(o, "answers", answers);
    gw_reply_json(q->r, 200, o);
}

static void s_on_coop(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_coop_t *q = privdata;
    (void)redis;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        gw_reply_unavailable(q->r, "cooperation");
        return;
    }
    const redisReply *pb = mg_redis_field(reply, "pb");
    if (!pb) {
        gw_reply_error(q->r, 404, "not_found", NULL, -1, "no cooperation proposal with this id");
        return;
    }
    q->cp = maillage__v1__cooperation_proposed__unpack(NULL, pb->len, (const uint8_t *)pb->str);
    if (!q->cp) {
        mg_warn("gateway: mg:coop:%s: its pb is not a CooperationProposed", q->r->params[0]);
        gw_reply_error(q->r, 500, "internal", NULL, -1, "the stored cooperation proposal cannot be read");
        return;
    }
    const redisReply *seq = mg_redis_field(reply, "seq");
    if (seq && seq->len > 0 && seq->len < sizeof(q->seq) && strspn(seq->str, "0123456789") == seq->len)
        memcpy(q->seq, seq->str, seq->len + 1);
    q->answers = mg_calloc(reply->elements / 2 + 1, sizeof(s_answer_t));
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const char *field = gq_str(reply->element[i]), *value = gq_str(reply->element[i + 1]);
        if (!field || !value || strncmp(field, "ans:", 4) != 0 || !mg_id_is_valid(field + 4)) continue;
        s_answer_t *a = &q->answers[q->n_answers++];
        snprintf(a->sid, sizeof(a->sid), "%s", field + 4);
        a->answer = s_answer_value(value);
        char name[MG_ID_MAX + 8]; /* its comment and time, kept beside it */
        snprintf(name, sizeof(name), "cmt:%s", a->sid);
        const redisReply *comment = mg_redis_field(reply, name);
        if (comment && comment->len > 0) a->comment = mg_strndup(comment->str, comment->len);
        snprintf(name, sizeof(name), "at:%s", a->sid);
        const redisReply *at = mg_redis_field(reply, name);
        a->at = at ? atoll(at->str) : 0;
    }
    if (q->n_answers) qsort(q->answers, q->n_answers, sizeof(s_answer_t), s_cmp_answer);
    const char *sids[2] = {q->cp->from_structure_id, q->cp->to_structure_id};
    gq_tx_t tx;
    gq_tx_begin(&tx, q->r->gw);
    char key[200];
    for (size_t i = 0; i < 2 + q->n_answers; i++) {
        /* "mg:structure:" for an empty id: a nil, as for an unknown one. */
        snprintf(key, sizeof(key), "mg:structure:%s",
                 i < 2 ? (sids[i] ? sids[i] : "") : q->answers[i - 2].sid);
        gq_tx_add(&tx, "HGET", key, "pb", NULL);
    }
    if (gq_tx_exec(&tx, s_on_names, q) != 0) gw_reply_unavailable(q->r, "cooperation");
}

static void s_coop_get(gw_request_t *r) {
    s_coop_t *q = gq_state_new(r, sizeof(*q), s_coop_free);
    q->r = r;
    char key[200];
    snprintf(key, sizeof(key), "mg:coop:%s", r->params[0]);
    if (mg_redis_command(gw_redis(r->gw), s_on_coop, q, "HGETALL %s", key) != 0)
        gw_reply_unavailable(r, "cooperation");
}

void gq_cooperations_register(mg_gateway_t *gw) {
    gw_route(gw, EVHTTP_REQ_GET, "/v1/cooperations/{id}", GW_STAFF, NULL, s_coop_get);
}
