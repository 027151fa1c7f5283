/* taxonomy.c -- the need and offer categories, from [categories].
 *
 * A dozen entries: a linear scan is faster than any index and keeps the
 * configuration order, which is also the order staff see them in. */
#include "maillage/taxonomy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/envelope.h"
#include "maillage/mem.h"

typedef struct {
    char *code;
    char *label;
} s_category_t;

struct mg_taxonomy {
    s_category_t *items;
    size_t count;
};

static int s_code_is_valid(const char *code) {
    size_t n = strlen(code);
    if (n == 0 || n > 32) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((code[i] >= 'a' && code[i] <= 'z') || code[i] == '_')) return 0;
    }
    return 1;
}

mg_taxonomy_t *mg_taxonomy_new(const mg_config_t *cfg, char *err, size_t errlen) {
    size_t n = mg_config_open_count(cfg, "categories");
    mg_taxonomy_t *tax = mg_calloc(1, sizeof *tax);
    tax->items = mg_calloc(n ? n : 1, sizeof *tax->items);
    if (n == 0) {
        snprintf(err, errlen, "[categories]: no category defined");
        goto err;
    }
    for (size_t i = 0; i < n; i++) {
        const char *code, *label;
        mg_config_open_entry(cfg, "categories", i, &code, &label);
        if (!s_code_is_valid(code)) {
            snprintf(err, errlen, "[categories] %s: a category code is 1 to 32 characters of a-z and _",
                     code);
            goto err;
        }
        if (!label || !*label) {
            snprintf(err, errlen, "[categories] %s: empty label", code);
            goto err;
        }
        if (!mg_utf8_is_valid(label, strlen(label)) || strlen(label) > 200) {
            snprintf(err, errlen, "[categories] %s: label is not valid UTF-8 of at most 200 bytes", code);
            goto err;
        }
        tax->items[i].code = mg_strdup(code);
        tax->items[i].label = mg_strdup(label);
        tax->count++;
    }
    return tax;

err:
    mg_taxonomy_destroy(&tax);
    return NULL;
}

void mg_taxonomy_destroy(mg_taxonomy_t **tax_p) {
    if (!tax_p || !*tax_p) return;
    mg_taxonomy_t *tax = *tax_p;
    for (size_t i = 0; i < tax->count; i++) {
        free(tax->items[i].code);
        free(tax->items[i].label);
    }
    free(tax->items);
    free(tax);
    *tax_p = NULL;
}

const char *mg_taxonomy_label(const mg_taxonomy_t *tax, const char *code) {
    if (!tax || !code) return NULL;
    for (size_t i = 0; i < tax->count; i++) {
        if (strcmp(tax->items[i].code, code) == 0) return tax->items[i].label;
    }
    return NULL;
}

size_t mg_taxonomy_count(const mg_taxonomy_t *tax) {
    return tax ? tax->count : 0;
}

const char *mg_taxonomy_code(const mg_taxonomy_t *tax, size_t index) {
    if (!tax || index >= tax->count) return NULL;
    return tax->items[index].code;
}
