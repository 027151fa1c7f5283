/* communes.h -- the commune table: INSEE code -> name, department, EPCI and
 * position. Loaded once from the CSV the project ships
 * (config/communes-normandie.csv, made from the shared reference data by
 * scripts/make-communes.py); read-only afterwards, any thread.
 *
 * The table holds the current communes. It also answers to the codes of the
 * former communes merged into one of them (communes déléguées and
 * associées, the CSV's optional former_codes column), which many
 * information systems still hold: such a code stands for the commune it
 * merged into. */
#ifndef MAILLAGE_COMMUNES_H
#define MAILLAGE_COMMUNES_H

#include <stddef.h>

typedef struct {
    char code[6];        /* INSEE code, "14118" */
    char department[4];  /* "14" */
    char epci[10];       /* SIREN of the EPCI, "" if none */
    const char *name;    /* "Caen" */
    const char *epci_name; /* "CU Caen la Mer", "" if none */
    double latitude;     /* WGS84 degrees */
    double longitude;
    unsigned population;
} mg_commune_t;

typedef struct mg_communes mg_communes_t;

/* An EPCI (intercommunality), as the table's communes describe it. */
typedef struct {
    char siren[10];       /* "200065597" */
    const char *name;     /* "CU Caen la Mer", "" if the table gives none */
    char department[4];   /* of its first commune in the table */
    char departments[16]; /* of all its communes, that one first: "14 27" (an EPCI across two is rare) */
} mg_epci_t;

/* Load the table at `path`. Returns NULL and a reason ("FILE:LINE: ...") in
 * `err` on error. Caller owns the result (mg_communes_destroy). */
mg_communes_t *mg_communes_load(const char *path, char *err, size_t errlen);
void mg_communes_destroy(mg_communes_t **communes_p);

/* The commune with INSEE code `code`, or NULL; for a former commune's code,
 * the commune it merged into, whose `code` differs from `code`. Borrowed
 * from the table. */
const mg_commune_t *mg_communes_find(const mg_communes_t *communes, const char *code);

/* Number of (current) communes, and the i-th in file order. */
size_t mg_communes_count(const mg_communes_t *communes);
const mg_commune_t *mg_communes_at(const mg_communes_t *communes, size_t index);

/* The EPCI with SIREN `siren` (one the table's communes name), or NULL.
 * Borrowed from the table. */
const mg_epci_t *mg_communes_epci(const mg_communes_t *communes, const char *siren);

/* The name of a territory entry, as staff read it: a department's for
 * "dep:14" ("Calvados"), an EPCI's for "epci:<siren>" ("CU Caen la Mer"), a
 * commune's for its INSEE code; NULL when unknown. Borrowed. */
const char *mg_communes_territory_name(const mg_communes_t *communes, const char *entry);

/* The department of a territory entry: "14" for "dep:14", an EPCI's (of its
 * first commune) for "epci:<siren>", a commune's for its INSEE code; NULL
 * when unknown. Borrowed from the table, or from `entry` for "dep:". */
const char *mg_communes_territory_department(const mg_communes_t *communes, const char *entry);

/* 1 if one of `epci`'s communes is in `department`, else 0 (NULL: 0). */
int mg_epci_in_department(const mg_epci_t *epci, const char *department);

/* Great-circle distance in kilometres between two communes (haversine). */
double mg_communes_distance_km(const mg_commune_t *a, const mg_commune_t *b);

/* The index (file order) of `commune`, which must come from this table. */
size_t mg_communes_index(const mg_communes_t *communes, const mg_commune_t *commune);

/* The communes nearest the point (latitude, longitude), nearest first (equal
 * distances by code): at most `max` into `out` (borrowed) with their
 * distances in km (haversine) into `km`. Returns how many (the table's size
 * if smaller). Reads the whole table: callers keep what they reuse. */
size_t mg_communes_nearest(const mg_communes_t *communes, double latitude, double longitude, size_t max,
                           const mg_commune_t **out, double *km);

/* 1 if `code` has the shape of an INSEE commune code (5 characters: two digits,
 * or 2A/2B, then three digits), else 0. */
int mg_commune_code_is_valid(const char *code);

#endif
