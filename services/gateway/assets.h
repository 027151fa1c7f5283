/* assets.h -- the staff page's static files and the OpenAPI document,
 * embedded in maillage-gateway at build time.
 *
 * cmake/embed_assets.cmake turns every file of web/ (as "/<relative path>",
 * e.g. "/index.html", "/app.js") plus docs/openapi.json (as "/openapi.json")
 * into ${CMAKE_BINARY_DIR}/gen/web_assets.c, which defines gw_asset_find().
 * Editing any of those files rebuilds the gateway; nothing is read from disk
 * at run time (the gateway's `web_root` option is the way to serve files
 * being edited).
 *
 * Pure data and a lookup: no state, no allocation, callable from any thread. */
#ifndef MAILLAGE_GATEWAY_ASSETS_H
#define MAILLAGE_GATEWAY_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;            /* "/index.html", "/app.js", "/openapi.json" */
    const unsigned char *data;   /* the file's bytes, followed by a NUL not counted in len */
    size_t len;                  /* size in bytes */
    const char *content_type;    /* "text/html; charset=utf-8" */
    const char *etag;            /* strong ETag of the content, quoted: "\"<hex>\"" */
} gw_asset_t;

/* The embedded asset at `path` (a decoded URL path without query string;
 * "/" means "/index.html"), or NULL if there is none. Exact match only: no
 * normalisation, so "/../x" or "//app.js" simply find nothing. Borrowed,
 * static: valid for the life of the program. */
const gw_asset_t *gw_asset_find(const char *path);

/* Every embedded asset, for listings and tests: sets *count and returns the
 * first of *count consecutive entries. Borrowed, static. */
const gw_asset_t *gw_asset_all(size_t *count);

#endif
