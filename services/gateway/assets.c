/* assets.c -- the staff page's files and /v1/openapi.json.
 *
 * Served from the copies embedded at build time (assets.h), or, when
 * [gateway] web_root names a directory, read from that directory at each
 * request, so a page being edited shows at the next reload (the paths are
 * still those embedded: a new file needs a rebuild to be routed). Every
 * answer carries a strong ETag (If-None-Match gives 304), `no-cache` (the
 * browser revalidates, so a new gateway's page is never stale) and the
 * headers that keep the page to itself: a Content-Security-Policy allowing
 * only its own origin, no framing, no Referer (gw_reply_bytes() adds nosniff). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assets.h"
#include "gateway.h"
#include "maillage/log.h"
#include "maillage/mem.h"

#define S_OPENAPI_ROUTE "/v1/openapi.json"
#define S_MAX_FILE_BYTES (8u * 1024u * 1024u)

static void s_security_headers(gw_request_t *r) {
    gw_header(r, "Content-Security-Policy",
              "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
              "form-action 'self'; frame-ancestors 'none'");
    gw_header(r, "Referrer-Policy", "no-referrer");
    gw_header(r, "X-Frame-Options", "DENY");
}

/* The file `path` under web_root, read whole. Caller owns the result (free);
 * NULL if missing, unreadable or too large. */
static char *s_read_file(const char *root, const char *path, size_t *len) {
    char *full = mg_asprintf("%s%s", root, path);
    FILE *f = fopen(full, "rb");
    free(full);
    if (!f) return NULL;
    char *data = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && (unsigned long)size <= S_MAX_FILE_BYTES && fseek(f, 0, SEEK_SET) == 0) {
            data = mg_malloc((size_t)size + 1);
            if (fread(data, 1, (size_t)size, f) != (size_t)size) {
                free(data);
                data = NULL;
            } else {
                *len = (size_t)size;
            }
        }
    }
    fclose(f);
    return data;
}

static void s_serve(gw_request_t *r) {
    const char *path = strcmp(r->path, S_OPENAPI_ROUTE) == 0 ? "/openapi.json" : r->path;
    const gw_asset_t *asset = gw_asset_find(path);
    if (!asset) { /* cannot happen: only embedded paths are routed */
        gw_reply_error(r, 404, "not_found", NULL, -1, "no such file");
        return;
    }
    s_security_headers(r);
    gw_header(r, "Cache-Control", "no-cache");
    const char *root = mg_config_str(gw_config(r->gw), "gateway", "web_root");
    if (root && *root && strcmp(path, "/openapi.json") != 0) {
        size_t len = 0;
        char *data = s_read_file(root, strcmp(path, "/") == 0 ? "/index.html" : path, &len);
        if (!data) {
            mg_warn("gateway: web_root %s has no readable %s; serving the embedded copy", root, path);
        } else {
            gw_reply_bytes(r, 200, asset->content_type, data, len);
            free(data);
            return;
        }
    }
    const char *match = gw_request_header(r, "If-None-Match");
    gw_header(r, "ETag", asset->etag);
    if (match && strstr(match, asset->etag)) {
        gw_reply_bytes(r, 304, NULL, NULL, 0);
        return;
    }
    gw_reply_bytes(r, 200, asset->content_type, asset->data, asset->len);
}

void gw_assets_register(mg_gateway_t *gw) {
    size_t count = 0;
    const gw_asset_t *all = gw_asset_all(&count);
    gw_route(gw, EVHTTP_REQ_GET, "/", GW_NOBODY, NULL, s_serve);
    for (size_t i = 0; i < count; i++) {
        if (strcmp(all[i].path, "/openapi.json") == 0)
            gw_route(gw, EVHTTP_REQ_GET, S_OPENAPI_ROUTE, GW_NOBODY, NULL, s_serve);
        else
            gw_route(gw, EVHTTP_REQ_GET, all[i].path, GW_NOBODY, NULL, s_serve);
    }
}
