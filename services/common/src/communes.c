/* communes.c -- the commune table, loaded from a small CSV.
 *
 * The CSV is the one scripts/make-communes.py writes (RFC 4180 quoting: EPCI
 * names contain commas). Columns are found by their header names, so extra
 * columns are ignored; the former_codes column is optional. Lookups by code
 * go through an open-addressing hash table of every code, current or former:
 * validation looks up every commune of every event, and a national table has
 * about 35,000 rows. */
#include "maillage/communes.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/envelope.h"
#include "maillage/french.h"
#include "maillage/mem.h"

/* A code the table answers to: a commune's own, or a former commune's. */
typedef struct {
    char code[6];
    uint32_t item; /* index into items */
    uint32_t line; /* where the file gives it (error messages) */
} s_key_t;

struct mg_communes {
    mg_commune_t *items;
    size_t count, cap;
    s_key_t *keys; /* in file order */
    size_t nkeys, keycap;
    uint32_t *slots; /* key index + 1, 0 = empty */
    size_t nslots;   /* power of two */
    mg_epci_t *epcis; /* sorted by SIREN */
    size_t nepcis;
};

enum { S_CODE, S_NAME, S_DEP, S_EPCI, S_EPCI_NAME, S_LAT, S_LON, S_POP, S_NCOLS };
static const char *const s_columns[S_NCOLS] = {
    "code_insee", "nom",      "dep_code",  "epci_siren",
    "epci_nom",   "latitude", "longitude", "population_municipale",
};
static const char s_former_column[] = "former_codes";

#define S_MAX_FIELDS 64

int mg_commune_code_is_valid(const char *code) {
    if (!code || strlen(code) != 5) return 0;
    int head_ok = (code[0] >= '0' && code[0] <= '9' && code[1] >= '0' && code[1] <= '9') ||
                  (code[0] == '2' && (code[1] == 'A' || code[1] == 'B'));
    if (!head_ok) return 0;
    for (int i = 2; i < 5; i++) {
        if (code[i] < '0' || code[i] > '9') return 0;
    }
    return 1;
}

static uint32_t s_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void s_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Split one CSV record in place. `line` ends at its NUL; quoted fields may
 * contain commas and doubled quotes (but not newlines: none in this data).
 * Returns the number of fields, or -1 on a malformed quote. */
static int s_split(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        if (*p == '"') {
            char *out = ++p;
            fields[n++] = out;
            for (;;) {
                if (*p == '\0') return -1;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *out++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *out++ = *p++;
            }
            if (*p != ',' && *p != '\0') return -1;
            int last = *p == '\0';
            *out = '\0';
            if (last) return n;
            p++;
        } else {
            fields[n++] = p;
            char *comma = strchr(p, ',');
            if (!comma) return n;
            *comma = '\0';
            p = comma + 1;
        }
    }
}

static int s_parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

static void s_add_key(mg_communes_t *t, const char *code, size_t lineno) {
    if (t->nkeys == t->keycap) {
        t->keycap = t->keycap ? t->keycap * 2 : 1024;
        t->keys = mg_realloc(t->keys, t->keycap * sizeof *t->keys);
    }
    s_key_t *k = &t->keys[t->nkeys++];
    memcpy(k->code, code, 6);
    k->item = (uint32_t)(t->count - 1);
    k->line = (uint32_t)lineno;
}

/* The codes of the space-separated list `list` as former codes of the
 * table's last commune. */
static int s_add_former_codes(mg_communes_t *t, char *list, const char *path, size_t lineno, char *err,
                              size_t errlen) {
    for (char *save = NULL, *code = strtok_r(list, " ", &save); code; code = strtok_r(NULL, " ", &save)) {
        if (!mg_commune_code_is_valid(code)) {
            s_err(err, errlen, "%s:%zu: bad former commune code \"%s\"", path, lineno, code);
            return -1;
        }
        s_add_key(t, code, lineno);
    }
    return 0;
}

/* Index every key; a code given twice is an error. */
static int s_index(mg_communes_t *t, const char *path, char *err, size_t errlen) {
    t->nslots = 16;
    while (t->nslots < t->nkeys * 2)
        t->nslots *= 2;
    t->slots = mg_calloc(t->nslots, sizeof *t->slots);
    for (size_t i = 0; i < t->nkeys; i++) {
        const s_key_t *k = &t->keys[i];
        size_t j = s_hash(k->code) & (t->nslots - 1);
        for (; t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
            const s_key_t *other = &t->keys[t->slots[j] - 1];
            if (strcmp(other->code, k->code) == 0) {
                s_err(err, errlen, "%s:%u: commune code %s already given on line %u", path, (unsigned)k->line,
                      k->code, (unsigned)other->line);
                return -1;
            }
        }
        t->slots[j] = (uint32_t)i + 1;
    }
    return 0;
}

static int s_cmp_epci(const void *a, const void *b) {
    return strcmp(((const mg_epci_t *)a)->siren, ((const mg_epci_t *)b)->siren);
}

/* The EPCIs the communes name, sorted by SIREN, with their departments. */
static void s_index_epcis(mg_communes_t *t) {
    size_t cap = 0;
    for (size_t i = 0; i < t->count; i++) {
        const mg_commune_t *c = &t->items[i];
        if (!c->epci[0]) continue;
        /* Communes of one EPCI mostly follow each other in the file: the
         * last one added first, then the whole list. */
        mg_epci_t *e = t->nepcis && strcmp(t->epcis[t->nepcis - 1].siren, c->epci) == 0
                           ? &t->epcis[t->nepcis - 1]
                           : NULL;
        for (size_t k = 0; k < t->nepcis && !e; k++)
            if (strcmp(t->epcis[k].siren, c->epci) == 0) e = &t->epcis[k];
        if (!e) {
            if (t->nepcis == cap) {
                cap = cap ? 2 * cap : 64;
                t->epcis = mg_realloc(t->epcis, cap * sizeof *t->epcis);
            }
            e = &t->epcis[t->nepcis++];
            memset(e, 0, sizeof *e);
            snprintf(e->siren, sizeof e->siren, "%s", c->epci);
            snprintf(e->department, sizeof e->department, "%s", c->department);
            e->name = c->epci_name ? c->epci_name : "";
        }
        size_t used = strlen(e->departments);
        if (!mg_epci_in_department(e, c->department) &&
            used + 1 + strlen(c->department) < sizeof e->departments)
            snprintf(e->departments + used, sizeof e->departments - used, "%s%s", used ? " " : "",
                     c->department);
    }
    if (t->nepcis) qsort(t->epcis, t->nepcis, sizeof *t->epcis, s_cmp_epci);
}

const mg_epci_t *mg_communes_epci(const mg_communes_t *t, const char *siren) {
    if (!t || !siren || !t->nepcis) return NULL;
    mg_epci_t key;
    if ((size_t)snprintf(key.siren, sizeof key.siren, "%s", siren) >= sizeof key.siren) return NULL;
    return bsearch(&key, t->epcis, t->nepcis, sizeof *t->epcis, s_cmp_epci);
}

const char *mg_communes_territory_name(const mg_communes_t *t, const char *entry) {
    if (!entry || !*entry) return NULL;
    if (strncmp(entry, "dep:", 4) == 0) return mg_fr_department(entry + 4);
    if (strncmp(entry, "epci:", 5) == 0) {
        const mg_epci_t *e = mg_communes_epci(t, entry + 5);
        return e && *e->name ? e->name : NULL;
    }
    const mg_commune_t *c = t ? mg_communes_find(t, entry) : NULL;
    return c ? c->name : NULL;
}

const char *mg_communes_territory_department(const mg_communes_t *t, const char *entry) {
    if (!entry || !*entry) return NULL;
    if (strncmp(entry, "dep:", 4) == 0) return entry[4] ? entry + 4 : NULL;
    if (strncmp(entry, "epci:", 5) == 0) {
        const mg_epci_t *e = t ? mg_communes_epci(t, entry + 5) : NULL;
        return e ? e->department : NULL;
    }
    const mg_commune_t *c = t ? mg_communes_find(t, entry) : NULL;
    return c ? c->department : NULL;
}

int mg_epci_in_department(const mg_epci_t *epci, const char *department) {
    size_t n = department ? strlen(department) : 0;
    if (!epci || !n) return 0;
    for (const char *p = epci->departments; (p = strstr(p, department)) != NULL; p += n)
        if ((p == epci->departments || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

mg_communes_t *mg_communes_load(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        s_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    mg_communes_t *t = mg_calloc(1, sizeof *t);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    size_t lineno = 0;
    int col[S_NCOLS], former_col = -1;
    char *fields[S_MAX_FIELDS];

    while ((len = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if ((size_t)len != strlen(line)) {
            s_err(err, errlen, "%s:%zu: NUL byte in line", path, lineno);
            goto err;
        }
        if (lineno > 1 && len == 0) continue;
        if (!mg_utf8_is_valid(line, (size_t)len)) {
            s_err(err, errlen, "%s:%zu: invalid UTF-8", path, lineno);
            goto err;
        }
        int nf = s_split(line, fields, S_MAX_FIELDS);
        if (nf < 0) {
            s_err(err, errlen, "%s:%zu: malformed CSV record", path, lineno);
            goto err;
        }
        if (lineno == 1) {
            for (int c = 0; c < S_NCOLS; c++) {
                col[c] = -1;
                for (int i = 0; i < nf; i++) {
                    if (strcmp(fields[i], s_columns[c]) == 0) col[c] = i;
                }
                if (col[c] < 0) {
                    s_err(err, errlen, "%s:1: missing column \"%s\"", path, s_columns[c]);
                    goto err;
                }
            }
            for (int i = 0; i < nf; i++) {
                if (strcmp(fields[i], s_former_column) == 0) former_col = i;
            }
            continue;
        }
        const char *v[S_NCOLS];
        for (int c = 0; c < S_NCOLS; c++) {
            if (col[c] >= nf) {
                s_err(err, errlen, "%s:%zu: %d fields, expected at least %d", path, lineno, nf, col[c] + 1);
                goto err;
            }
            v[c] = fields[col[c]];
        }
        if (!mg_commune_code_is_valid(v[S_CODE])) {
            s_err(err, errlen, "%s:%zu: bad commune code \"%s\"", path, lineno, v[S_CODE]);
            goto err;
        }
        size_t dl = strlen(v[S_DEP]);
        if (dl < 2 || dl > 3 || strncmp(v[S_DEP], v[S_CODE], 2) != 0) {
            s_err(err, errlen, "%s:%zu: department \"%s\" does not match code %s", path, lineno, v[S_DEP],
                  v[S_CODE]);
            goto err;
        }
        size_t el = strlen(v[S_EPCI]);
        if (el != 0 && (el != 9 || strspn(v[S_EPCI], "0123456789") != 9)) {
            s_err(err, errlen, "%s:%zu: bad EPCI SIREN \"%s\"", path, lineno, v[S_EPCI]);
            goto err;
        }
        double lat, lon, pop = 0;
        if (s_parse_double(v[S_LAT], &lat) < 0 || s_parse_double(v[S_LON], &lon) < 0 || lat < -90 ||
            lat > 90 || lon < -180 || lon > 180) {
            s_err(err, errlen, "%s:%zu: bad coordinates", path, lineno);
            goto err;
        }
        if (*v[S_POP] && (s_parse_double(v[S_POP], &pop) < 0 || pop < 0 || pop > 4e9)) {
            s_err(err, errlen, "%s:%zu: bad population \"%s\"", path, lineno, v[S_POP]);
            goto err;
        }
        if (!*v[S_NAME]) {
            s_err(err, errlen, "%s:%zu: empty commune name", path, lineno);
            goto err;
        }
        if (t->count == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 1024;
            t->items = mg_realloc(t->items, t->cap * sizeof *t->items);
        }
        mg_commune_t *c = &t->items[t->count++];
        memset(c, 0, sizeof *c);
        memcpy(c->code, v[S_CODE], 6);
        memcpy(c->department, v[S_DEP], dl + 1);
        memcpy(c->epci, v[S_EPCI], el + 1);
        c->name = mg_strdup(v[S_NAME]);
        c->epci_name = mg_strdup(v[S_EPCI_NAME]);
        c->latitude = lat;
        c->longitude = lon;
        c->population = (unsigned)pop;
        s_add_key(t, c->code, lineno);
        if (former_col >= 0 && former_col < nf &&
            s_add_former_codes(t, fields[former_col], path, lineno, err, errlen) < 0)
            goto err;
    }
    if (ferror(f)) {
        s_err(err, errlen, "%s: read error", path);
        goto err;
    }
    if (lineno == 0) {
        s_err(err, errlen, "%s: empty file", path);
        goto err;
    }
    if (s_index(t, path, err, errlen) < 0) goto err;
    s_index_epcis(t);
    free(line);
    fclose(f);
    return t;

err:
    free(line);
    fclose(f);
    mg_communes_destroy(&t);
    return NULL;
}

void mg_communes_destroy(mg_communes_t **communes_p) {
    if (!communes_p || !*communes_p) return;
    mg_communes_t *t = *communes_p;
    for (size_t i = 0; i < t->count; i++) {
        free((char *)t->items[i].name);
        free((char *)t->items[i].epci_name);
    }
    free(t->items);
    free(t->keys);
    free(t->slots);
    free(t->epcis);
    free(t);
    *communes_p = NULL;
}

const mg_commune_t *mg_communes_find(const mg_communes_t *t, const char *code) {
    if (!t || !code || !t->slots) return NULL;
    size_t j = s_hash(code) & (t->nslots - 1);
    while (t->slots[j]) {
        const s_key_t *k = &t->keys[t->slots[j] - 1];
        if (strcmp(k->code, code) == 0) return &t->items[k->item];
        j = (j + 1) & (t->nslots - 1);
    }
    return NULL;
}

size_t mg_communes_count(const mg_communes_t *t) {
    return t ? t->count : 0;
}

const mg_commune_t *mg_communes_at(const mg_communes_t *t, size_t index) {
    if (!t || index >= t->count) return NULL;
    return &t->items[index];
}

size_t mg_communes_index(const mg_communes_t *t, const mg_commune_t *c) {
    return (size_t)(c - t->items);
}

size_t mg_communes_nearest(const mg_communes_t *t, double latitude, double longitude, size_t max,
                           const mg_commune_t **out, double *km) {
    mg_commune_t point = {.latitude = latitude, .longitude = longitude};
    size_t n = 0;
    for (size_t i = 0; t && i < t->count && max > 0; i++) {
        const mg_commune_t *c = &t->items[i];
        double d = mg_communes_distance_km(&point, c);
        /* Insertion into the sorted prefix; equal distances by code. */
        size_t at = n;
        while (at > 0 && (km[at - 1] > d || (km[at - 1] == d && strcmp(out[at - 1]->code, c->code) > 0)))
            at--;
        if (at >= max) continue;
        size_t move = (n < max ? n : max - 1) - at;
        memmove(out + at + 1, out + at, move * sizeof(*out));
        memmove(km + at + 1, km + at, move * sizeof(*km));
        out[at] = c;
        km[at] = d;
        if (n < max) n++;
    }
    return n;
}

double mg_communes_distance_km(const mg_commune_t *a, const mg_commune_t *b) {
    const double r = 6371.0088; /* mean Earth radius, km */
    const double rad = M_PI / 180.0;
    double dlat = (b->latitude - a->latitude) * rad;
    double dlon = (b->longitude - a->longitude) * rad;
    double h = sin(dlat / 2) * sin(dlat / 2) +
               cos(a->latitude * rad) * cos(b->latitude * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (h > 1) h = 1;
    return 2 * r * asin(sqrt(h));
}
