/* event_batch.c -- an HTTP body of events -> validated, serialized envelopes;
 * see event_batch.h.
 *
 * All or nothing: the body is parsed whole (jansson, duplicate keys refused),
 * each element converted (mg_json), checked (mg_envelope_validate, allowed
 * types) and packed, then the ids checked unique within the body, before the
 * caller sends anything. The first error wins and names its element and
 * field. */
#include "maillage/event_batch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "maillage/clock.h"
#include "maillage/json.h"
#include "maillage/mem.h"
#include "maillage/token.h"

/* Deepest nesting accepted in one element: an Envelope is 4 levels deep. */
#define S_MAX_DEPTH 64

static mg_event_batch_status_t s_fail(mg_event_batch_error_t *err, mg_event_batch_status_t status, const char *code,
                                      long index, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static mg_event_batch_status_t s_fail(mg_event_batch_error_t *err, mg_event_batch_status_t status, const char *code,
                                      long index, const char *field, const char *fmt, ...) {
    err->status = status;
    err->code = code;
    err->index = index;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

void mg_event_batch_camel_path(const char *snake, char *out, size_t outlen) {
    size_t o = 0;
    int upper = 0;
    if (!outlen) return;
    for (const char *p = snake; *p && o + 1 < outlen; p++) {
        if (*p == '_') {
            upper = 1;
            continue;
        }
        char c = *p;
        if (upper && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        upper = 0;
        out[o++] = c;
    }
    out[o] = '\0';
}

/* The element of a top-level array that byte `pos` falls in: commas at
 * depth 1 before it, strings skipped. -1 when `pos` is not inside the array. */
static long s_array_index_at(const char *text, size_t len, size_t pos) {
    long index = -1;
    int depth = 0;
    if (pos > len) pos = len;
    for (size_t i = 0; i < pos; i++) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < pos && text[i] != '"'; i++)
                if (text[i] == '\\') i++;
        } else if (c == '[' || c == '{') {
            if (++depth == 1 && c == '[') index = 0;
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == ',' && depth == 1 && index >= 0) {
            index++;
        }
    }
    return index;
}

/* The field path at the start of an mg_json error ("needReported.need.radiusKm:
 * expected ..."), or "" when the error is about the whole object. */
static void s_json_error_field(const char *msg, char *out, size_t outlen) {
    const char *colon = strstr(msg, ": ");
    out[0] = '\0';
    if (!colon) return;
    for (const char *p = msg; p < colon; p++)
        if (*p == ' ') return; /* a sentence, not a path */
    size_t n = (size_t)(colon - msg);
    if (n >= outlen) n = outlen - 1;
    memcpy(out, msg, n);
    out[n] = '\0';
}

/* Convert, check and pack one element into batch->items[batch->count]. */
static mg_event_batch_status_t s_add(mg_event_batch_t *batch, const json_t *obj, long index,
                                     const mg_event_batch_options_t *opts, mg_event_batch_error_t *err) {
    if (!json_is_object(obj))
        return s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_event", index, NULL, "expected a JSON object (an Envelope)");
    if (mg_json_depth(obj, S_MAX_DEPTH) > S_MAX_DEPTH)
        return s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_event", index, NULL, "nested deeper than %d levels",
                      S_MAX_DEPTH);
    char why[512];
    mg_envelope_t *env =
        (mg_envelope_t *)mg_json_to_message(&maillage__v1__envelope__descriptor, obj, why, sizeof why);
    if (!env) {
        char field[160];
        s_json_error_field(why, field, sizeof field);
        return s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_event", index, field, "%s", why);
    }

    /* The id (generated when absent) and what the broker stamps, set on the
     * message only for packing: the unpacked strings stay the converter's to
     * free. */
    mg_event_batch_item_t *it = &batch->items[batch->count];
    memset(it, 0, sizeof *it);
    char *orig_id = env->event_id, *orig_source = env->source;
    mg_event_batch_status_t rc = MG_EVENT_BATCH_OK;
    if (!orig_id || !*orig_id) mg_ulid_new(it->event_id);
    else snprintf(it->event_id, sizeof it->event_id, "%s", orig_id);
    env->event_id = it->event_id;
    env->source = (char *)protobuf_c_empty_string;
    env->received_at_ms = 0;
    env->sequence = 0;

    mg_invalid_t invalid;
    if (orig_id && strlen(orig_id) > MG_ID_MAX) {
        rc = s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_event", index, "eventId",
                    "eventId: longer than %d characters", MG_ID_MAX);
        goto out;
    }
    if (mg_envelope_validate(env, opts->taxonomy, opts->communes, &invalid) != 0) {
        char field[160];
        mg_event_batch_camel_path(invalid.field, field, sizeof field);
        rc = s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_event", index, field, "%s%s%s", field,
                    field[0] ? ": " : "", invalid.reason);
        goto out;
    }
    const mg_event_type_t *type = mg_event_type_by_name(env->type);
    if (!type) { /* validate() checked it; stay safe */
        rc = s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_event", index, "type", "type: unknown event type");
        goto out;
    }
    if (opts->allowed_types && !mg_token_types_allow(opts->allowed_types, type->type)) {
        rc = s_fail(err, MG_EVENT_BATCH_FORBIDDEN, "forbidden_type", index, "type",
                    "type: this token may not send %s events (allowed: %s)", type->type, opts->allowed_types);
        goto out;
    }
    it->type = type->type;
    it->len = mg_envelope_pack(env, &it->data);
    if (opts->max_envelope_bytes && it->len > opts->max_envelope_bytes) {
        rc = s_fail(err, MG_EVENT_BATCH_INVALID, "event_too_large", index, NULL,
                    "the event takes %zu bytes serialized, more than the %zu accepted", it->len,
                    opts->max_envelope_bytes);
        free(it->data);
        it->data = NULL;
        goto out;
    }
    batch->count++;
out:
    env->event_id = orig_id;
    env->source = orig_source;
    protobuf_c_message_free_unpacked(&env->base, NULL);
    return rc;
}

/* Items of one array, by id then by position (pointers into one array
 * compare as their indexes). */
static int s_cmp_item(const void *a, const void *b) {
    const mg_event_batch_item_t *x = *(const mg_event_batch_item_t *const *)a;
    const mg_event_batch_item_t *y = *(const mg_event_batch_item_t *const *)b;
    int c = strcmp(x->event_id, y->event_id);
    return c ? c : (x > y) - (x < y);
}

/* Ids unique within the body, checked once every element is valid: sorting
 * keeps a body of 1000 events far from the half million comparisons of a
 * pairwise check. */
static mg_event_batch_status_t s_check_unique(const mg_event_batch_t *batch, mg_event_batch_error_t *err) {
    if (batch->count < 2) return MG_EVENT_BATCH_OK;
    const mg_event_batch_item_t **order = mg_malloc(batch->count * sizeof *order);
    for (size_t i = 0; i < batch->count; i++) order[i] = &batch->items[i];
    qsort(order, batch->count, sizeof *order, s_cmp_item);
    /* In a run of equal ids the first is the earliest element: each later
     * one repeats it. Name the earliest repeat of the body. */
    const mg_event_batch_item_t *dup = NULL, *first = NULL, *run = order[0];
    for (size_t i = 1; i < batch->count; i++) {
        if (strcmp(order[i]->event_id, run->event_id) != 0) {
            run = order[i];
        } else if (!dup || order[i] < dup) {
            dup = order[i];
            first = run;
        }
    }
    free(order);
    if (!dup) return MG_EVENT_BATCH_OK;
    return s_fail(err, MG_EVENT_BATCH_INVALID, "duplicate_event_id", (long)(dup - batch->items), "eventId",
                  "eventId: \"%s\" is also the id of element %ld of this body", dup->event_id,
                  (long)(first - batch->items));
}

static void s_reserve(mg_event_batch_t *batch, size_t n) {
    batch->items = mg_calloc(n ? n : 1, sizeof *batch->items);
}

/* Where the NDJSON line starting at `i` ends (its '\n', or `len`), and
 * whether it holds only blanks. */
static size_t s_line_end(const char *body, size_t len, size_t i, int *blank) {
    *blank = 1;
    for (; i < len && body[i] != '\n'; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r') *blank = 0;
    return i;
}

static mg_event_batch_status_t s_parse_ndjson(const char *body, size_t len, const mg_event_batch_options_t *opts,
                                              mg_event_batch_t *out, mg_event_batch_error_t *err) {
    /* Count the non-blank lines first: the limit is answered before any work. */
    size_t lines = 0;
    for (size_t i = 0; i < len;) {
        int blank;
        size_t end = s_line_end(body, len, i, &blank);
        if (!blank) lines++;
        i = end + 1;
    }
    if (lines == 0) return s_fail(err, MG_EVENT_BATCH_INVALID, "empty_body", -1, NULL, "no event in the body");
    if (opts->max_events && lines > opts->max_events)
        return s_fail(err, MG_EVENT_BATCH_TOO_MANY, "too_many_events", -1, NULL,
                      "%zu events in one request; at most %zu (max_batch_events)", lines, opts->max_events);
    s_reserve(out, lines);
    long index = 0;
    size_t line_no = 0;
    for (size_t i = 0; i < len;) {
        int blank;
        size_t end = s_line_end(body, len, i, &blank);
        line_no++;
        if (!blank) {
            json_error_t jerr;
            json_t *obj = json_loadb(body + i, end - i, JSON_REJECT_DUPLICATES, &jerr);
            if (!obj)
                return s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_json", index, NULL,
                              "line %zu: invalid JSON at column %d: %s", line_no, jerr.column,
                              mg_json_error_text(&jerr));
            mg_event_batch_status_t rc = s_add(out, obj, index, opts, err);
            json_decref(obj);
            if (rc != MG_EVENT_BATCH_OK) return rc;
            index++;
        }
        i = end + 1;
    }
    return MG_EVENT_BATCH_OK;
}

static mg_event_batch_status_t s_parse_json(const char *body, size_t len, const mg_event_batch_options_t *opts,
                                            mg_event_batch_t *out, mg_event_batch_error_t *err) {
    size_t first = 0;
    while (first < len && (body[first] == ' ' || body[first] == '\t' || body[first] == '\r' || body[first] == '\n'))
        first++;
    if (first == len) return s_fail(err, MG_EVENT_BATCH_INVALID, "empty_body", -1, NULL, "no event in the body");
    int is_array = body[first] == '[';
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        long index = is_array ? s_array_index_at(body, len, (size_t)jerr.position) : -1;
        return s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_json", index, NULL,
                      "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
                      mg_json_error_text(&jerr));
    }
    mg_event_batch_status_t rc = MG_EVENT_BATCH_OK;
    if (json_is_object(root)) {
        s_reserve(out, 1);
        out->single = 1;
        rc = s_add(out, root, 0, opts, err);
        if (rc == MG_EVENT_BATCH_OK) err->index = -1;
    } else if (json_is_array(root)) {
        size_t n = json_array_size(root);
        if (n == 0) {
            rc = s_fail(err, MG_EVENT_BATCH_INVALID, "empty_body", -1, NULL, "no event in the array");
        } else if (opts->max_events && n > opts->max_events) {
            rc = s_fail(err, MG_EVENT_BATCH_TOO_MANY, "too_many_events", -1, NULL,
                        "%zu events in one request; at most %zu (max_batch_events)", n, opts->max_events);
        } else {
            s_reserve(out, n);
            for (size_t i = 0; i < n && rc == MG_EVENT_BATCH_OK; i++)
                rc = s_add(out, json_array_get(root, i), (long)i, opts, err);
        }
    } else {
        rc = s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_json", -1, NULL,
                    "expected an Envelope object or an array of them");
    }
    json_decref(root);
    return rc;
}

mg_event_batch_status_t mg_event_batch_parse(const char *body, size_t len, const mg_event_batch_options_t *opts,
                                             mg_event_batch_t *out, mg_event_batch_error_t *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    err->index = -1;
    err->code = "";
    /* A byte order mark may start a JSON text (RFC 8259, 8.1): read past it. */
    size_t bom = mg_utf8_bom_len(body, len);
    if (bom) body += bom, len -= bom;
    /* A raw NUL is no JSON anywhere; said as such, not as jansson's "end of file". */
    const char *nul = body ? memchr(body, '\0', len) : NULL;
    if (nul)
        return s_fail(err, MG_EVENT_BATCH_INVALID, "invalid_json", -1, NULL,
                      "a NUL byte at byte %zu of the body", (size_t)(nul - body));
    mg_event_batch_status_t rc = opts->ndjson ? s_parse_ndjson(body, len, opts, out, err)
                                              : s_parse_json(body, len, opts, out, err);
    if (rc == MG_EVENT_BATCH_OK) rc = s_check_unique(out, err);
    if (rc != MG_EVENT_BATCH_OK) mg_event_batch_clear(out);
    return rc;
}

void mg_event_batch_clear(mg_event_batch_t *batch) {
    if (!batch) return;
    for (size_t i = 0; i < batch->count; i++) free(batch->items[i].data);
    free(batch->items);
    memset(batch, 0, sizeof *batch);
}
