/* json.c -- protobuf-c messages <-> protobuf's canonical proto3 JSON mapping.
 *
 * Everything is driven by the protobuf-c descriptor tables, so a field added
 * to the schema converts without a line of code here. Two things protobuf-c
 * 1.4.1 does not give us are derived the way protoc derives them: the JSON
 * name of a field (lowerCamelCase of its proto name) and the grouping of
 * oneof members (members of one oneof share their case field, i.e. their
 * `quantifier_offset`).
 *
 * Messages built from JSON are laid out exactly like those of
 * protobuf_c_message_unpack() with the system allocator: every string, array,
 * byte buffer and submessage is malloc'd, unset strings keep pointing at
 * protobuf_c_empty_string (the descriptors' default), so the caller frees the
 * result with protobuf_c_message_free_unpacked(msg, NULL). The message under
 * construction is kept freeable at every step (a pointer is stored before the
 * counter that makes free_unpacked look at it), which is how every error path
 * frees it with that same single call. */
#include "maillage/json.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/mem.h"

/* Deepest JSON nesting mg_json_parse_message() accepts: far above what the
 * schema needs (an Envelope is 4 levels deep), far below a stack risk. */
#define MG_JSON_MAX_DEPTH 64

/* ---- Shared helpers ---------------------------------------------------- */

static const char *const s_base64_std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Bytes one value of type `type` takes in a repeated field's array. */
static size_t s_type_size(ProtobufCType type) {
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* protoc's ToJsonName(): drop each '_' and upper-case the letter after it.
 * Writes at most `outlen` bytes, NUL included. */
static void s_json_name(const char *name, char *out, size_t outlen) {
    size_t n = 0;
    bool upper_next = false;
    for (const char *p = name; *p && n + 1 < outlen; p++) {
        if (*p == '_') {
            upper_next = true;
        } else {
            char c = *p;
            if (upper_next && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
            upper_next = false;
            out[n++] = c;
        }
    }
    out[n] = '\0';
}

/* Whether `key` is the JSON name of the proto field name `name`, computed on
 * the fly so that names of any length compare without a buffer. */
static bool s_json_name_equals(const char *name, const char *key) {
    bool upper_next = false;
    const char *k = key;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            upper_next = true;
            continue;
        }
        char c = *p;
        if (upper_next && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        upper_next = false;
        if (*k != c) return false;
        k++;
    }
    return *k == '\0';
}

/* Length of the longest valid UTF-8 prefix of s[0..len) (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF). */
static size_t s_utf8_valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return i;
        }
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

/* ---- Output: message -> JSON ------------------------------------------- */

/* Whether the field is written: the rules protobuf-c's packer applies, plus
 * proto3 JSON's "a set oneof member is always written". Keeping both in step
 * means the JSON and the binary of one message always say the same thing. */
static bool s_field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f) {
    const char *base = (const char *)msg;
    const void *member = base + f->offset;

    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(const void *)(base + f->quantifier_offset) > 0;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
        const void *ptr = *(const void *const *)member;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id) return false;
            return ptr != NULL && ptr != f->default_value;
        }
        if (ptr == NULL) return false;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL) return ptr != f->default_value;
        if (f->label == PROTOBUF_C_LABEL_REQUIRED || f->type == PROTOBUF_C_TYPE_MESSAGE) return true;
        return *(const char *)ptr != '\0';
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(const void *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
        return *(const protobuf_c_boolean *)(const void *)(base + f->quantifier_offset) != 0;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED) return true;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)member != 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)member != 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)member != 0.0f;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)member != 0.0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member != 0;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len > 0;
    default:
        return false;
    }
}

/* Text from a peer's protobuf bytes should be UTF-8 but may not be: invalid
 * sequences become U+FFFD, as protobuf's own serializers do, rather than
 * failing the whole conversion. */
json_t *mg_json_string_lossy(const char *s, size_t len) {
    size_t ok = s_utf8_valid_prefix((const unsigned char *)s, len);
    if (ok == len) return json_stringn_nocheck(s, len);

    char *clean = mg_malloc(len * 3 + 1);
    size_t n = 0, i = 0;
    while (i < len) {
        size_t run = s_utf8_valid_prefix((const unsigned char *)s + i, len - i);
        memcpy(clean + n, s + i, run);
        n += run;
        i += run;
        if (i < len) {
            memcpy(clean + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        }
    }
    json_t *j = json_stringn_nocheck(clean, n);
    free(clean);
    return j;
}

static json_t *s_bytes_to_json(const ProtobufCBinaryData *b) {
    size_t outlen = (b->len + 2) / 3 * 4;
    char *out = mg_malloc(outlen + 1);
    size_t o = 0;
    for (size_t i = 0; i < b->len; i += 3) {
        uint32_t v = (uint32_t)b->data[i] << 16;
        if (i + 1 < b->len) v |= (uint32_t)b->data[i + 1] << 8;
        if (i + 2 < b->len) v |= b->data[i + 2];
        out[o++] = s_base64_std[(v >> 18) & 63];
        out[o++] = s_base64_std[(v >> 12) & 63];
        out[o++] = i + 1 < b->len ? s_base64_std[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < b->len ? s_base64_std[v & 63] : '=';
    }
    json_t *j = json_stringn_nocheck(out, o);
    free(out);
    return j;
}

/* A float or double: a JSON number, or one of the three strings proto3 JSON
 * uses for what JSON numbers cannot say. */
static json_t *s_double_to_json(double v) {
    if (isnan(v)) return json_string("NaN");
    if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

/* A float is written as the shortest decimal that reads back as the same
 * float (0.1f is "0.1", not 0.10000000149011612), as protobuf's own
 * serializers do; that decimal is then carried as the nearest double. */
static json_t *s_float_to_json(float v) {
    if (isnan(v) || isinf(v)) return s_double_to_json((double)v);
    char buf[48];
    for (int precision = 6; precision <= 9; precision++) {
        snprintf(buf, sizeof buf, "%.*g", precision, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return json_real(strtod(buf, NULL));
}

static json_t *s_int64_string(int64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return json_string(buf);
}

static json_t *s_uint64_string(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return json_string(buf);
}

static json_t *s_message_to_json(const ProtobufCMessage *msg);

/* One value of field `f`, stored at `member` (an element, for repeated). */
static json_t *s_value_to_json(const ProtobufCFieldDescriptor *f, const void *member) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)member);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)member);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return s_int64_string(*(const int64_t *)member);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return s_uint64_string(*(const uint64_t *)member);
    case PROTOBUF_C_TYPE_FLOAT:
        return s_float_to_json(*(const float *)member);
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_double_to_json(*(const double *)member);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)member);
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)member;
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)member;
        if (!s) s = "";
        return mg_json_string_lossy(s, strlen(s));
    }
    case PROTOBUF_C_TYPE_BYTES:
        return s_bytes_to_json((const ProtobufCBinaryData *)member);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
        if (!sub) return json_object();
        return s_message_to_json(sub);
    }
    }
    return json_null();
}

static json_t *s_message_to_json(const ProtobufCMessage *msg) {
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    json_t *obj = json_object();
    if (!obj) return NULL;

    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (!s_field_present(msg, f)) continue;

        const char *member = (const char *)msg + f->offset;
        json_t *value;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)((const char *)msg + f->quantifier_offset);
            const char *arr = *(const char *const *)(const void *)member;
            size_t size = s_type_size(f->type);
            value = json_array();
            for (size_t k = 0; value && k < n; k++) {
                json_t *elem = s_value_to_json(f, arr + k * size);
                if (!elem || json_array_append_new(value, elem) != 0) {
                    json_decref(value);
                    value = NULL;
                }
            }
        } else {
            value = s_value_to_json(f, member);
        }

        char stackname[128];
        size_t namelen = strlen(f->name) + 1;
        char *name = namelen <= sizeof stackname ? stackname : mg_malloc(namelen);
        s_json_name(f->name, name, namelen);
        int rc = value ? json_object_set_new(obj, name, value) : -1;
        if (name != stackname) free(name);
        if (rc != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *mg_json_from_message(const ProtobufCMessage *msg) {
    if (!msg) return NULL;
    return s_message_to_json(msg);
}

/* ---- Input: JSON -> message -------------------------------------------- */

/* Where the conversion is, for error messages: "needReported.need.tags[2]". */
typedef struct {
    char path[512];
    size_t pathlen;
    char *err;
    size_t errlen;
} s_ctx_t;

static size_t s_path_push(s_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append to the path; returns the previous length, for s_path_pop(). A path
 * too long for the buffer is truncated, which only shortens a message. */
static size_t s_path_push(s_ctx_t *ctx, const char *fmt, ...) {
    size_t saved = ctx->pathlen;
    size_t room = sizeof ctx->path - ctx->pathlen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ctx->path + ctx->pathlen, room, fmt, ap);
    va_end(ap);
    if (n > 0) ctx->pathlen += (size_t)n < room ? (size_t)n : room - 1;
    return saved;
}

static void s_path_pop(s_ctx_t *ctx, size_t saved) {
    ctx->pathlen = saved;
    ctx->path[saved] = '\0';
}

static int s_fail(s_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the error at the current path. Always returns -1. */
static int s_fail(s_ctx_t *ctx, const char *fmt, ...) {
    if (!ctx->err || ctx->errlen == 0) return -1;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (ctx->pathlen > 0)
        snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->path, reason);
    else
        snprintf(ctx->err, ctx->errlen, "%s", reason);
    return -1;
}

/* Name of a JSON value's type, for "expected X, got Y" messages. */
static const char *s_json_type_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* A strict decimal integer in a string: optional '-', digits, nothing else
 * (no spaces, no '+', no exponent), as proto3 JSON writes them. Sets
 * *negative; *magnitude saturates at UINT64_MAX with *overflow set. */
static int s_parse_decimal(const char *s, bool *negative, uint64_t *magnitude, bool *overflow) {
    *negative = false;
    *overflow = false;
    *magnitude = 0;
    if (*s == '-') {
        *negative = true;
        s++;
    }
    if (*s < '0' || *s > '9') return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        unsigned d = (unsigned)(*s - '0');
        if (*magnitude > (UINT64_MAX - d) / 10) {
            *overflow = true;
            *magnitude = UINT64_MAX;
        } else if (!*overflow) {
            *magnitude = *magnitude * 10 + d;
        }
    }
    return 0;
}

/* An integer field's value within [min, max] (signed), from a JSON integer,
 * an integral JSON real, or a decimal string. */
static int s_get_signed(s_ctx_t *ctx, const json_t *j, int64_t min, int64_t max, const char *type,
                        int64_t *out) {
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v < min || v > max) return s_fail(ctx, "value %lld out of range for %s", (long long)v, type);
        *out = (int64_t)v;
        return 0;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!isfinite(d) || d != trunc(d)) return s_fail(ctx, "expected an integer");
        if (d < (double)min || d >= -(double)INT64_MIN || (int64_t)d > max)
            return s_fail(ctx, "value %g out of range for %s", d, type);
        *out = (int64_t)d;
        return 0;
    }
    if (json_is_string(j)) {
        bool neg, overflow;
        uint64_t mag;
        if (s_parse_decimal(json_string_value(j), &neg, &mag, &overflow) != 0)
            return s_fail(ctx, "expected an integer");
        bool in_range = !overflow && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX);
        int64_t v = 0;
        if (in_range) v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        if (!in_range || v < min || v > max)
            return s_fail(ctx, "value %s out of range for %s", json_string_value(j), type);
        *out = v;
        return 0;
    }
    return s_fail(ctx, "expected an integer, got %s", s_json_type_name(j));
}

/* Same for unsigned fields, within [0, max]. */
static int s_get_unsigned(s_ctx_t *ctx, const json_t *j, uint64_t max, const char *type, uint64_t *out) {
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v < 0 || (uint64_t)v > max)
            return s_fail(ctx, "value %lld out of range for %s", (long long)v, type);
        *out = (uint64_t)v;
        return 0;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (!isfinite(d) || d != trunc(d)) return s_fail(ctx, "expected an integer");
        if (d < 0 || d >= 18446744073709551616.0 || (uint64_t)d > max)
            return s_fail(ctx, "value %g out of range for %s", d, type);
        *out = (uint64_t)d;
        return 0;
    }
    if (json_is_string(j)) {
        bool neg, overflow;
        uint64_t mag;
        if (s_parse_decimal(json_string_value(j), &neg, &mag, &overflow) != 0)
            return s_fail(ctx, "expected an integer");
        if ((neg && mag != 0) || overflow || mag > max)
            return s_fail(ctx, "value %s out of range for %s", json_string_value(j), type);
        *out = mag;
        return 0;
    }
    return s_fail(ctx, "expected an integer, got %s", s_json_type_name(j));
}

/* A float or double: a JSON number, "NaN", "Infinity", "-Infinity", or a
 * number written as a string (accepted by proto3 JSON parsers). */
static int s_get_double(s_ctx_t *ctx, const json_t *j, bool is_float, double *out) {
    double d;
    if (json_is_number(j)) {
        d = json_number_value(j);
    } else if (json_is_string(j)) {
        const char *s = json_string_value(j);
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
            return 0;
        }
        if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
            *out = s[0] == '-' ? -INFINITY : INFINITY;
            return 0;
        }
        char *end;
        errno = 0;
        d = strtod(s, &end);
        /* strtod would also take " 1", "0x1p3", "inf": proto3 JSON does not. */
        bool plain = *s != '\0' && strspn(s, "0123456789+-.eE") == strlen(s);
        if (!plain || *end != '\0') return s_fail(ctx, "expected a number");
        if (!isfinite(d))
            return s_fail(ctx, "value %s out of range for %s", s, is_float ? "float" : "double");
    } else {
        return s_fail(ctx, "expected a number, got %s", s_json_type_name(j));
    }
    if (is_float && isfinite(d) && fabs(d) > FLT_MAX)
        return s_fail(ctx, "value %g out of range for float", d);
    *out = d;
    return 0;
}

static int s_base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional (what protobuf parsers take). */
static int s_get_bytes(s_ctx_t *ctx, const json_t *j, ProtobufCBinaryData *out) {
    if (!json_is_string(j)) return s_fail(ctx, "expected a base64 string, got %s", s_json_type_name(j));
    const unsigned char *s = (const unsigned char *)json_string_value(j);
    size_t len = json_string_length(j);
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1 || json_string_length(j) - len > 2) return s_fail(ctx, "invalid base64");
    if (json_string_length(j) != len && json_string_length(j) % 4 != 0) return s_fail(ctx, "invalid base64");

    uint8_t *data = len ? mg_malloc(len / 4 * 3 + 3) : NULL;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = s_base64_value(s[i]);
        if (v < 0) {
            free(data);
            return s_fail(ctx, "invalid base64");
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    out->data = data;
    out->len = n;
    return 0;
}

/* A string field: valid UTF-8 (the jansson parser checks text it reads, but
 * a json_t may come from elsewhere) and no NUL, which C strings cannot hold.
 * The copy is malloc'd, even when empty, like protobuf-c's unpack does. */
static int s_get_string(s_ctx_t *ctx, const json_t *j, char **out) {
    if (!json_is_string(j)) return s_fail(ctx, "expected a string, got %s", s_json_type_name(j));
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    if (memchr(s, '\0', len)) return s_fail(ctx, "string contains a NUL character");
    if (s_utf8_valid_prefix((const unsigned char *)s, len) != len)
        return s_fail(ctx, "string is not valid UTF-8");
    char *copy = mg_malloc(len + 1);
    memcpy(copy, s, len + 1);
    *out = copy;
    return 0;
}

static int s_get_enum(s_ctx_t *ctx, const json_t *j, const ProtobufCEnumDescriptor *ed, int32_t *out) {
    if (json_is_string(j)) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
        if (!ev) return s_fail(ctx, "unknown value \"%s\" of enum %s", json_string_value(j), ed->name);
        *out = ev->value;
        return 0;
    }
    if (json_is_number(j)) {
        int64_t v;
        /* proto3 enums are open: any int32 is kept, known or not. */
        if (s_get_signed(ctx, j, INT32_MIN, INT32_MAX, "enum", &v) != 0) return -1;
        *out = (int32_t)v;
        return 0;
    }
    return s_fail(ctx, "expected an enum name or number, got %s", s_json_type_name(j));
}

/* One non-message value of field `f` into `member`. Allocates (strings,
 * bytes) only on success, so a failure leaves `member` untouched. */
static int s_value_from_json(s_ctx_t *ctx, const ProtobufCFieldDescriptor *f, const json_t *j, void *member) {
    int64_t sv;
    uint64_t uv;
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (s_get_signed(ctx, j, INT32_MIN, INT32_MAX, "int32", &sv) != 0) return -1;
        *(int32_t *)member = (int32_t)sv;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (s_get_signed(ctx, j, INT64_MIN, INT64_MAX, "int64", &sv) != 0) return -1;
        *(int64_t *)member = sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (s_get_unsigned(ctx, j, UINT32_MAX, "uint32", &uv) != 0) return -1;
        *(uint32_t *)member = (uint32_t)uv;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (s_get_unsigned(ctx, j, UINT64_MAX, "uint64", &uv) != 0) return -1;
        *(uint64_t *)member = uv;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (s_get_double(ctx, j, true, &d) != 0) return -1;
        *(float *)member = (float)d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (s_get_double(ctx, j, false, &d) != 0) return -1;
        *(double *)member = d;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(j)) return s_fail(ctx, "expected true or false, got %s", s_json_type_name(j));
        *(protobuf_c_boolean *)member = json_is_true(j);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return s_get_enum(ctx, j, f->descriptor, (int32_t *)member);
    case PROTOBUF_C_TYPE_STRING:
        return s_get_string(ctx, j, (char **)member);
    case PROTOBUF_C_TYPE_BYTES:
        return s_get_bytes(ctx, j, (ProtobufCBinaryData *)member);
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    return s_fail(ctx, "unsupported field type");
}

static int s_fill_message(s_ctx_t *ctx, ProtobufCMessage *msg, const json_t *obj, int depth);

/* A submessage: allocated, initialised and stored in *slot BEFORE being
 * filled, so that on failure the enclosing message's free reaches it. */
static int s_submessage(s_ctx_t *ctx, const ProtobufCFieldDescriptor *f, const json_t *j,
                        ProtobufCMessage **slot, int depth) {
    const ProtobufCMessageDescriptor *sd = f->descriptor;
    if (!json_is_object(j)) return s_fail(ctx, "expected an object, got %s", s_json_type_name(j));
    if (depth >= MG_JSON_MAX_DEPTH) return s_fail(ctx, "nested deeper than %d levels", MG_JSON_MAX_DEPTH);
    ProtobufCMessage *sub = mg_malloc(sd->sizeof_message);
    protobuf_c_message_init(sd, sub);
    *slot = sub;
    return s_fill_message(ctx, sub, j, depth + 1);
}

static int s_repeated_from_json(s_ctx_t *ctx, const ProtobufCFieldDescriptor *f, const json_t *j,
                                ProtobufCMessage *msg, int depth) {
    if (!json_is_array(j)) return s_fail(ctx, "expected an array, got %s", s_json_type_name(j));
    size_t count = json_array_size(j);
    if (count == 0) return 0;

    size_t size = s_type_size(f->type);
    size_t *n = (size_t *)(void *)((char *)msg + f->quantifier_offset);
    char *arr = mg_calloc(count, size);
    *(char **)(void *)((char *)msg + f->offset) = arr;
    *n = 0;
    for (size_t k = 0; k < count; k++) {
        const json_t *elem = json_array_get(j, k);
        size_t saved = s_path_push(ctx, "[%zu]", k);
        if (json_is_null(elem)) return s_fail(ctx, "null is not allowed in a repeated field");
        int rc;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (!json_is_object(elem))
                return s_fail(ctx, "expected an object, got %s", s_json_type_name(elem));
            /* Counted first: from here on the element is the parent's to free. */
            (*n)++;
            rc = s_submessage(ctx, f, elem, (ProtobufCMessage **)(void *)(arr + k * size), depth);
        } else {
            rc = s_value_from_json(ctx, f, elem, arr + k * size);
            if (rc == 0) (*n)++;
        }
        if (rc != 0) return -1;
        s_path_pop(ctx, saved);
    }
    return 0;
}

static int s_field_from_json(s_ctx_t *ctx, const ProtobufCFieldDescriptor *f, const json_t *j,
                             ProtobufCMessage *msg, int depth) {
    char *base = (char *)msg;
    void *member = base + f->offset;

    if (f->label == PROTOBUF_C_LABEL_REPEATED) return s_repeated_from_json(ctx, f, j, msg, depth);

    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (!json_is_object(j)) return s_fail(ctx, "expected an object, got %s", s_json_type_name(j));
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* Pointer stored (inside s_submessage) then case set, before any
             * fill can fail: free_unpacked only looks at the selected member. */
            ProtobufCMessage **slot = member;
            const ProtobufCMessageDescriptor *sd = f->descriptor;
            if (depth >= MG_JSON_MAX_DEPTH)
                return s_fail(ctx, "nested deeper than %d levels", MG_JSON_MAX_DEPTH);
            ProtobufCMessage *sub = mg_malloc(sd->sizeof_message);
            protobuf_c_message_init(sd, sub);
            *slot = sub;
            *(uint32_t *)(void *)(base + f->quantifier_offset) = f->id;
            return s_fill_message(ctx, sub, j, depth + 1);
        }
        return s_submessage(ctx, f, j, member, depth);
    }

    if (s_value_from_json(ctx, f, j, member) != 0) return -1;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(void *)(base + f->quantifier_offset) = f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)(void *)(base + f->quantifier_offset) = 1;
    return 0;
}

/* Per-field bookkeeping while one JSON object is read. */
enum { S_SEEN = 1, S_SET = 2 };

static int s_fill_fields(s_ctx_t *ctx, ProtobufCMessage *msg, const json_t *obj, int depth,
                         unsigned char *state) {
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *key;
    json_t *value;

    json_object_foreach((json_t *)obj, key, value) {
        const ProtobufCFieldDescriptor *f = NULL;
        unsigned i;
        for (i = 0; i < desc->n_fields; i++) {
            if (strcmp(desc->fields[i].name, key) == 0 || s_json_name_equals(desc->fields[i].name, key)) {
                f = &desc->fields[i];
                break;
            }
        }
        char jname[128];
        size_t saved;
        if (!f) {
            s_path_push(ctx, "%s%s", ctx->pathlen ? "." : "", key);
            return s_fail(ctx, "unknown field");
        }
        s_json_name(f->name, jname, sizeof jname);
        saved = s_path_push(ctx, "%s%s", ctx->pathlen ? "." : "", jname);
        if (state[i] & S_SEEN)
            return s_fail(ctx, "duplicate field (given both as \"%s\" and \"%s\")", f->name, jname);
        state[i] |= S_SEEN;

        if (json_is_null(value)) {
            /* null is the default, which the message already holds. */
            s_path_pop(ctx, saved);
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            for (unsigned k = 0; k < desc->n_fields; k++) {
                const ProtobufCFieldDescriptor *other = &desc->fields[k];
                if (k != i && (state[k] & S_SET) && (other->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    other->quantifier_offset == f->quantifier_offset) {
                    char oname[128];
                    s_json_name(other->name, oname, sizeof oname);
                    return s_fail(ctx, "only one of \"%s\" and \"%s\" may be set (same oneof)", oname, jname);
                }
            }
        }
        state[i] |= S_SET;
        if (s_field_from_json(ctx, f, value, msg, depth) != 0) return -1;
        s_path_pop(ctx, saved);
    }
    return 0;
}

static int s_fill_message(s_ctx_t *ctx, ProtobufCMessage *msg, const json_t *obj, int depth) {
    if (!json_is_object(obj)) return s_fail(ctx, "expected an object, got %s", s_json_type_name(obj));
    unsigned n = msg->descriptor->n_fields;
    unsigned char stackstate[64];
    unsigned char *state = n <= sizeof stackstate ? stackstate : mg_malloc(n);
    memset(state, 0, n <= sizeof stackstate ? sizeof stackstate : n);
    int rc = s_fill_fields(ctx, msg, obj, depth, state);
    if (state != stackstate) free(state);
    return rc;
}

ProtobufCMessage *mg_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json, char *err,
                                     size_t errlen) {
    s_ctx_t ctx = {.pathlen = 0, .err = err, .errlen = errlen};
    ctx.path[0] = '\0';
    if (err && errlen) err[0] = '\0';
    if (!desc || !json || !json_is_object(json)) {
        s_fail(&ctx, "expected a JSON object");
        return NULL;
    }
    ProtobufCMessage *msg = mg_malloc(desc->sizeof_message);
    protobuf_c_message_init(desc, msg);
    if (s_fill_message(&ctx, msg, json, 1) != 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return NULL;
    }
    return msg;
}

/* ---- Text --------------------------------------------------------------- */

/* A growing text buffer for the writer below. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} s_buf_t;

static void s_buf_put(s_buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 256;
        b->data = mg_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void s_buf_quoted(s_buf_t *b, const char *s, size_t len) {
    s_buf_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        s_buf_put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"':
            s_buf_put(b, "\\\"", 2);
            break;
        case '\\':
            s_buf_put(b, "\\\\", 2);
            break;
        case '\n':
            s_buf_put(b, "\\n", 2);
            break;
        case '\r':
            s_buf_put(b, "\\r", 2);
            break;
        case '\t':
            s_buf_put(b, "\\t", 2);
            break;
        case '\b':
            s_buf_put(b, "\\b", 2);
            break;
        case '\f':
            s_buf_put(b, "\\f", 2);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            s_buf_put(b, esc, 6);
        }
    }
    s_buf_put(b, s + run, len - run);
    s_buf_put(b, "\"", 1);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double:
 * 0.1 is written "0.1" (as protobuf and Python do), where jansson's fixed
 * 17 digits would write 0.10000000000000001. */
static void s_buf_real(s_buf_t *b, double v) {
    char num[40];
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(num, sizeof num, "%.*g", precision, v);
        if (strtod(num, NULL) == v) break;
    }
    s_buf_put(b, num, strlen(num));
    if (!strpbrk(num, ".eE")) s_buf_put(b, ".0", 2);
}

static void s_dump(s_buf_t *b, const json_t *j) {
    char num[32];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *value;
        bool first = true;
        s_buf_put(b, "{", 1);
        json_object_foreach((json_t *)j, key, value) {
            if (!first) s_buf_put(b, ",", 1);
            first = false;
            s_buf_quoted(b, key, strlen(key));
            s_buf_put(b, ":", 1);
            s_dump(b, value);
        }
        s_buf_put(b, "}", 1);
        break;
    }
    case JSON_ARRAY: {
        size_t idx;
        json_t *value;
        s_buf_put(b, "[", 1);
        json_array_foreach(j, idx, value) {
            if (idx > 0) s_buf_put(b, ",", 1);
            s_dump(b, value);
        }
        s_buf_put(b, "]", 1);
        break;
    }
    case JSON_STRING:
        s_buf_quoted(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        s_buf_put(b, num, strlen(num));
        break;
    case JSON_REAL:
        s_buf_real(b, json_real_value(j));
        break;
    case JSON_TRUE:
        s_buf_put(b, "true", 4);
        break;
    case JSON_FALSE:
        s_buf_put(b, "false", 5);
        break;
    case JSON_NULL:
        s_buf_put(b, "null", 4);
        break;
    }
}

/* Written by hand rather than with json_dumps() for the numbers (see
 * s_buf_real); the output is compact, UTF-8, keys in field order. */
char *mg_json_dumps_message(const ProtobufCMessage *msg) {
    json_t *j = mg_json_from_message(msg);
    if (!j) return NULL;
    s_buf_t b = {NULL, 0, 0};
    s_dump(&b, j);
    json_decref(j);
    return b.data;
}

/* The JSON path of the value at byte `pos` of `text`, for errors jansson
 * reports with a position only (an invalid UTF-8 byte in a string, a number
 * too large for it, nesting beyond its own limit). The text before `pos` was
 * accepted by jansson, so a light scan of its structure is enough. */
static void s_path_at(const char *text, size_t len, size_t pos, char *out, size_t outlen) {
    enum { MAXF = MG_JSON_MAX_DEPTH + 2 };
    struct {
        char kind;
        bool expect_key;
        size_t index;
        char key[64];
    } frames[MAXF];
    size_t depth = 0;

    out[0] = '\0';
    if (pos > len) pos = len;
    for (size_t i = 0; i < pos; i++) {
        char c = text[i];
        if (c == '{' || c == '[') {
            if (depth < MAXF) {
                frames[depth].kind = c;
                frames[depth].expect_key = true;
                frames[depth].index = 0;
                frames[depth].key[0] = '\0';
            }
            depth++;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if (c == ',' && depth > 0 && depth <= MAXF) {
            frames[depth - 1].index++;
            frames[depth - 1].expect_key = true;
        } else if (c == ':' && depth > 0 && depth <= MAXF) {
            frames[depth - 1].expect_key = false;
        } else if (c == '"') {
            size_t start = ++i;
            while (i < pos && text[i] != '"') {
                if (text[i] == '\\') i++;
                i++;
            }
            if (depth > 0 && depth <= MAXF && frames[depth - 1].kind == '{' && frames[depth - 1].expect_key &&
                i < pos) {
                size_t n = i - start < sizeof frames[0].key - 1 ? i - start : sizeof frames[0].key - 1;
                memcpy(frames[depth - 1].key, text + start, n);
                frames[depth - 1].key[n] = '\0';
            }
        }
    }

    /* A few components say where; hundreds of "[0]" would drown the reason. */
    size_t o = 0;
    for (size_t k = 0; k < depth && k < MAXF && o + 1 < outlen; k++) {
        int n;
        if (k == 8) {
            snprintf(out + o, outlen - o, "...");
            break;
        }
        if (frames[k].kind == '[') {
            n = snprintf(out + o, outlen - o, "[%zu]", frames[k].index);
        } else {
            if (frames[k].expect_key || frames[k].key[0] == '\0') break;
            n = snprintf(out + o, outlen - o, "%s%s", o ? "." : "", frames[k].key);
        }
        if (n < 0) break;
        o += (size_t)n < outlen - o ? (size_t)n : outlen - o - 1;
    }
}

int mg_json_depth(const json_t *j, int limit) {
    if (limit < 0) return 1;
    int deepest = 0;
    if (json_is_object(j)) {
        const char *key;
        json_t *value;
        json_object_foreach((json_t *)j, key, value) {
            int d = mg_json_depth(value, limit - 1);
            if (d > deepest) deepest = d;
            if (deepest > limit) break;
        }
        return deepest + 1;
    }
    if (json_is_array(j)) {
        size_t idx;
        json_t *value;
        json_array_foreach(j, idx, value) {
            int d = mg_json_depth(value, limit - 1);
            if (d > deepest) deepest = d;
            if (deepest > limit) break;
        }
        return deepest + 1;
    }
    return 0;
}

ProtobufCMessage *mg_json_parse_message(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                                        char *err, size_t errlen) {
    json_error_t jerr;
    if (err && errlen) err[0] = '\0';
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (err && errlen) {
            char path[256];
            s_path_at(text, len, (size_t)jerr.position, path, sizeof path);
            snprintf(err, errlen, "%s%sinvalid JSON at line %d, column %d: %s", path, path[0] ? ": " : "",
                     jerr.line, jerr.column, mg_json_error_text(&jerr));
        }
        return NULL;
    }
    if (!json_is_object(root)) {
        if (err && errlen) snprintf(err, errlen, "expected a JSON object, got %s", s_json_type_name(root));
        json_decref(root);
        return NULL;
    }
    if (mg_json_depth(root, MG_JSON_MAX_DEPTH) > MG_JSON_MAX_DEPTH) {
        /* Name the top-level field holding the deep value. */
        const char *key;
        json_t *value;
        json_object_foreach(root, key, value) {
            if (mg_json_depth(value, MG_JSON_MAX_DEPTH - 1) > MG_JSON_MAX_DEPTH - 1) break;
        }
        if (err && errlen)
            snprintf(err, errlen, "%s: nested deeper than %d levels", key ? key : "(root)",
                     MG_JSON_MAX_DEPTH);
        json_decref(root);
        return NULL;
    }
    ProtobufCMessage *msg = mg_json_to_message(desc, root, err, errlen);
    json_decref(root);
    return msg;
}

const char *mg_json_error_text(const json_error_t *e) {
    if (strstr(e->text, "JSON_ALLOW_NUL")) return "\\u0000 (NUL) is not allowed in a string";
    return e->text;
}
