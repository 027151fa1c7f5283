/* fuzz_event_batch.c -- libFuzzer target for the gateway's request parsing:
 * an HTTP body of events (event_batch.h).
 *
 * The first byte picks the framing (even: JSON object or array, odd: NDJSON)
 * and the allowed types (bit 1: "need.*" only); the rest is the body.
 * Whatever the bytes, the parser must answer without crashing, leaking or
 * reading out of bounds; a refusal always says why; and what it accepts
 * must be what the broker would accept: every item unpacks, validates, has
 * the id it claims (unique in the body), an empty source and an allowed type. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/envelope.h"
#include "maillage/event_batch.h"
#include "maillage/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *types = (data[0] & 2) ? "need.*" : NULL;
    mg_event_batch_options_t opts = {
        .ndjson = data[0] & 1,
        .max_events = 50,
        .max_envelope_bytes = 262144,
        .allowed_types = types,
    };
    mg_event_batch_t batch;
    mg_event_batch_error_t err;
    mg_event_batch_status_t rc = mg_event_batch_parse((const char *)data + 1, size - 1, &opts, &batch, &err);
    if (rc != MG_EVENT_BATCH_OK) {
        if (!err.message[0] || !err.code || !err.code[0] || batch.count != 0) abort();
        return 0;
    }
    if (batch.count == 0 || batch.count > opts.max_events) abort();
    for (size_t i = 0; i < batch.count; i++) {
        const mg_event_batch_item_t *it = &batch.items[i];
        mg_envelope_t *env = mg_envelope_unpack(it->data, it->len);
        if (!env) abort();
        mg_invalid_t why;
        if (mg_envelope_validate(env, NULL, NULL, &why) != 0) {
            fprintf(stderr, "accepted but invalid: %s: %s\n", why.field, why.reason);
            abort();
        }
        if (strcmp(env->event_id, it->event_id) != 0 || env->source[0] || strcmp(env->type, it->type) != 0) abort();
        if (types && !mg_token_types_allow(types, env->type)) abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(batch.items[k].event_id, it->event_id) == 0) abort();
        mg_envelope_free(env);
    }
    mg_event_batch_clear(&batch);
    return 0;
}
