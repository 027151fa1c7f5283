/* taxonomy.h -- need and offer categories: stable codes and French labels,
 * from the [categories] section of the configuration. Read-only once built;
 * any thread. */
#ifndef MAILLAGE_TAXONOMY_H
#define MAILLAGE_TAXONOMY_H

#include <stddef.h>

#include "maillage/config.h"

typedef struct mg_taxonomy mg_taxonomy_t;

/* Build the taxonomy from cfg's [categories]. Returns NULL with a reason in
 * `err` if a code is not of [a-z_]{1,32} or a label is empty.
 * Caller owns the result (mg_taxonomy_destroy). */
mg_taxonomy_t *mg_taxonomy_new(const mg_config_t *cfg, char *err, size_t errlen);
void mg_taxonomy_destroy(mg_taxonomy_t **tax_p);

/* The French label of `code`, or NULL if the code is unknown. Borrowed. */
const char *mg_taxonomy_label(const mg_taxonomy_t *tax, const char *code);

/* Number of categories, and the code of the i-th, in configuration order. */
size_t mg_taxonomy_count(const mg_taxonomy_t *tax);
const char *mg_taxonomy_code(const mg_taxonomy_t *tax, size_t index);

#endif
