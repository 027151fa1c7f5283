/* taxonomy.h -- need and offer categories: stable codes and French labels,
 * from the [categories] section of the configuration; and the networks'
 * names staff read, from [networks]. Read-only once built; any thread. */
#ifndef MAILLAGE_TAXONOMY_H
#define MAILLAGE_TAXONOMY_H

#include <stddef.h>

#include "maillage/config.h"

typedef struct mg_taxonomy mg_taxonomy_t;

/* Build the taxonomy from cfg's [categories] and [networks]. Returns NULL
 * with a reason in `err` if there is no category, a category code is not of
 * [a-z_]{1,32}, a network id is not an id (envelope.h), or a label is empty
 * or not UTF-8 of at most 200 bytes.
 * Caller owns the result (mg_taxonomy_destroy). */
mg_taxonomy_t *mg_taxonomy_new(const mg_config_t *cfg, char *err, size_t errlen);
void mg_taxonomy_destroy(mg_taxonomy_t **tax_p);

/* The French label of `code`, or NULL if the code is unknown. Borrowed. */
const char *mg_taxonomy_label(const mg_taxonomy_t *tax, const char *code);

/* Number of categories, and the code of the i-th, in configuration order. */
size_t mg_taxonomy_count(const mg_taxonomy_t *tax);
const char *mg_taxonomy_code(const mg_taxonomy_t *tax, size_t index);

/* The name of network `id` ("URSCOP Normandie"), or NULL when [networks]
 * does not name it. Borrowed. */
const char *mg_taxonomy_network_name(const mg_taxonomy_t *tax, const char *id);

/* Number of named networks, and the id of the i-th, in configuration order. */
size_t mg_taxonomy_network_count(const mg_taxonomy_t *tax);
const char *mg_taxonomy_network_id(const mg_taxonomy_t *tax, size_t index);

#endif
