/* event_batch.h -- the body of an HTTP POST of events, parsed and checked
 * whole before anything is sent.
 *
 * A body is one Envelope as a JSON object, a JSON array of them, or NDJSON
 * (one object per line, blank lines ignored), in protobuf's canonical proto3
 * JSON mapping (json.h). Every element is converted and validated
 * (mg_envelope_validate(), the caller's allowed types) and serialized; the
 * first invalid element stops the parse and is reported with its index and
 * the JSON path of the offending field, so a client fixes its input without
 * guessing. A missing eventId gets a new ULID; `source`, `receivedAtMs` and
 * `sequence` are cleared (the broker stamps them).
 *
 * Pure (no I/O; ULIDs read the clock); any thread. */
#ifndef MAILLAGE_EVENT_BATCH_H
#define MAILLAGE_EVENT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "maillage/envelope.h"

typedef struct {
    char event_id[MG_ID_MAX + 1];
    const char *type; /* static (the event type table) */
    uint8_t *data;    /* the serialized Envelope, owned by the batch */
    size_t len;
} mg_event_batch_item_t;

typedef struct {
    mg_event_batch_item_t *items;
    size_t count;
    int single; /* the body was one JSON object (not an array, not NDJSON) */
} mg_event_batch_t;

typedef enum {
    MG_EVENT_BATCH_OK = 0,
    MG_EVENT_BATCH_INVALID,   /* bad JSON or an invalid event (HTTP 400) */
    MG_EVENT_BATCH_TOO_MANY,  /* more than max_events (HTTP 413) */
    MG_EVENT_BATCH_FORBIDDEN, /* a type the caller may not send (HTTP 403) */
} mg_event_batch_status_t;

typedef struct {
    mg_event_batch_status_t status;
    const char *code; /* static: "invalid_json", "invalid_event", "duplicate_event_id", "empty_body",
                         "too_many_events", "event_too_large", "forbidden_type" */
    long index;       /* the element (0-based), -1 for the body as a whole */
    char field[160];  /* JSON path, lowerCamelCase ("needReported.need.commune"); "" for none */
    char message[384];
} mg_event_batch_error_t;

typedef struct {
    int ndjson;                       /* 1: one object per line */
    size_t max_events;                /* 0 = no limit */
    size_t max_envelope_bytes;        /* serialized size limit per event, 0 = none */
    const char *allowed_types;        /* comma-separated patterns (token.h); NULL = any */
    const mg_taxonomy_t *taxonomy;    /* for mg_envelope_validate(); may be NULL */
    const mg_communes_t *communes;    /* idem */
} mg_event_batch_options_t;

/* Parse and check the `len` bytes at `body` (need not be NUL-terminated).
 * On MG_EVENT_BATCH_OK, `out` holds every event in body order: caller owns
 * it and frees it with mg_event_batch_clear(). Otherwise `out` is empty and
 * `err` says what and where. */
mg_event_batch_status_t mg_event_batch_parse(const char *body, size_t len, const mg_event_batch_options_t *opts,
                                             mg_event_batch_t *out, mg_event_batch_error_t *err);

/* Free what a batch holds and empty it; accepts an empty batch. */
void mg_event_batch_clear(mg_event_batch_t *batch);

/* Write the lowerCamelCase form of a snake_case field path
 * ("need_reported.need.commune" -> "needReported.need.commune"). */
void mg_event_batch_camel_path(const char *snake, char *out, size_t outlen);

#endif
