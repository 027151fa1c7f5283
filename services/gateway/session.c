/* session.c -- POST /v1/session (token -> HttpOnly cookie), DELETE
 * /v1/session, GET /v1/me.
 *
 * The cookie holds the token itself (the server keeps no session state):
 * HttpOnly so page scripts never see it, SameSite=Strict so no other site
 * can make a browser send it, and every POST must be application/json
 * (gateway.c), which a cross-site form cannot send. Secure when
 * [gateway] cookie_secure (behind a TLS proxy). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "maillage/mem.h"
#include "maillage/staff.h"
#include "maillage/token.h"

static void s_set_cookie(gw_request_t *r, const char *value, int clear) {
    char cookie[256];
    snprintf(cookie, sizeof cookie, "mg_session=%s; Path=/; HttpOnly; SameSite=Strict%s%s", value,
             clear ? "; Max-Age=0" : "", mg_config_bool(gw_config(r->gw), "gateway", "cookie_secure") ? "; Secure" : "");
    gw_header(r, "Set-Cookie", cookie);
}

static void s_on_session_auth(gw_request_t *r, int status, const gw_principal_t *who) {
    if (status == 503) {
        gw_reply_unavailable(r, "Redis");
    } else if (status != 200) {
        gw_header(r, "WWW-Authenticate", "Bearer");
        gw_reply_error(r, 401, "unauthorized", "token", -1, "unknown or revoked token");
    } else if (who->kind != GW_STAFF) {
        /* A session is the staff page's: a network system sends its token
         * with each request, and its token in a cookie would post events. */
        gw_reply_error(r, 403, "forbidden", "token", -1, "a session needs a staff token");
    } else {
        s_set_cookie(r, r->state, 0);
        gw_reply_bytes(r, 204, NULL, NULL, 0);
    }
}

static void s_post_session(gw_request_t *r) {
    size_t len;
    const char *body = gw_body(r, &len);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *token = root && json_is_object(root) ? json_object_get(root, "token") : NULL;
    if (!token || !json_is_string(token)) {
        json_decref(root);
        gw_reply_error(r, 400, "invalid_json", "token", -1, "expected {\"token\": \"mgt_...\"}");
        return;
    }
    const char *text = json_string_value(token);
    size_t tlen = json_string_length(token);
    if (!mg_token_is_well_formed(text, tlen)) {
        json_decref(root);
        gw_header(r, "WWW-Authenticate", "Bearer");
        gw_reply_error(r, 401, "unauthorized", "token", -1, "unknown or revoked token");
        return;
    }
    r->state = mg_strndup(text, tlen);
    json_decref(root);
    gw_authenticate(r, r->state, tlen, s_on_session_auth);
}

static void s_delete_session(gw_request_t *r) {
    s_set_cookie(r, "", 1);
    gw_reply_bytes(r, 204, NULL, NULL, 0);
}

/* A staff record's list field ("14, 50", "14 50") as a JSON array, its items
 * as the CLI and the notifier read them (staff.h). */
static json_t *s_list(const char *value) {
    json_t *a = json_array();
    size_t len;
    for (const char *item, *p = value ? value : ""; (item = mg_staff_list_next(&p, &len));) {
        json_t *s = json_stringn(item, len);
        if (s) json_array_append_new(a, s);
    }
    return a;
}

static void s_on_staff(mg_redis_t *redis, redisReply *reply, void *privdata) {
    gw_request_t *r = privdata;
    (void)redis;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        gw_reply_unavailable(r, "Redis");
        return;
    }
    const redisReply *name = mg_redis_field(reply, "name");
    const redisReply *deps = mg_redis_field(reply, "departments");
    const redisReply *cats = mg_redis_field(reply, "categories");
    const redisReply *nets = mg_redis_field(reply, "networks");
    json_t *me = json_object();
    json_object_set_new(me, "kind", json_string("staff"));
    json_object_set_new(me, "id", json_string(r->who.subject));
    json_t *n = name && name->len ? json_stringn(name->str, name->len) : NULL;
    json_object_set_new(me, "name", n ? n : json_string(r->who.subject));
    json_object_set_new(me, "departments", s_list(deps ? deps->str : NULL));
    json_object_set_new(me, "categories", s_list(cats ? cats->str : NULL));
    json_object_set_new(me, "networks", s_list(nets ? nets->str : NULL));
    gw_reply_json(r, 200, me);
}

static void s_get_me(gw_request_t *r) {
    if (r->who.kind == GW_NETWORK) {
        json_t *me = json_object();
        json_object_set_new(me, "kind", json_string("network"));
        json_object_set_new(me, "id", json_string(r->who.subject));
        json_object_set_new(me, "types", s_list(r->who.types));
        gw_reply_json(r, 200, me);
        return;
    }
    if (mg_redis_command(gw_redis(r->gw), s_on_staff, r, "HGETALL mg:staff:%s", r->who.subject) != 0)
        gw_reply_unavailable(r, "Redis");
}

void gw_session_register(mg_gateway_t *gw) {
    gw_route(gw, EVHTTP_REQ_POST, "/v1/session", GW_NOBODY, NULL, s_post_session);
    gw_route(gw, EVHTTP_REQ_DELETE, "/v1/session", GW_NOBODY, NULL, s_delete_session);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/me", GW_NETWORK | GW_STAFF, NULL, s_get_me);
}
