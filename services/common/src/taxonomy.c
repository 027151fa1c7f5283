/* taxonomy.c -- the need and offer categories, from [categories], and the
 * networks' names, from [networks].
 *
 * A few dozen entries: a linear scan is faster than any index and keeps the
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
} s_entry_t;

typedef struct {
    s_entry_t *items;
    size_t count;
} s_table_t;

struct mg_taxonomy {
    s_table_t categories, networks;
};

static int s_category_code_is_valid(const char *code) {
    size_t n = strlen(code);
    if (n == 0 || n > 32) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((code[i] >= 'a' && code[i] <= 'z') || code[i] == '_')) return 0;
    }
    return 1;
}

/* The entries of the open `section` into `table`: each code passes
 * `code_ok` (else `rule` says why), each label is non-empty UTF-8 of at most
 * 200 bytes. */
static int s_table_load(const mg_config_t *cfg, const char *section, int (*code_ok)(const char *),
                        const char *rule, s_table_t *table, char *err, size_t errlen) {
    size_t n = mg_config_open_count(cfg, section);
    table->items = mg_calloc(n ? n : 1, sizeof *table->items);
    for (size_t i = 0; i < n; i++) {
        const char *code, *label;
        mg_config_open_entry(cfg, section, i, &code, &label);
        if (!code_ok(code)) {
            snprintf(err, errlen, "[%s] %s: %s", section, code, rule);
            return -1;
        }
        if (!label || !*label) {
            snprintf(err, errlen, "[%s] %s: empty label", section, code);
            return -1;
        }
        if (!mg_utf8_is_valid(label, strlen(label)) || strlen(label) > 200) {
            snprintf(err, errlen, "[%s] %s: label is not valid UTF-8 of at most 200 bytes", section, code);
            return -1;
        }
        table->items[i].code = mg_strdup(code);
        table->items[i].label = mg_strdup(label);
        table->count++;
    }
    return 0;
}

static void s_table_clear(s_table_t *table) {
    for (size_t i = 0; i < table->count; i++) {
        free(table->items[i].code);
        free(table->items[i].label);
    }
    free(table->items);
    memset(table, 0, sizeof *table);
}

static const char *s_table_label(const s_table_t *table, const char *code) {
    for (size_t i = 0; code && i < table->count; i++) {
        if (strcmp(table->items[i].code, code) == 0) return table->items[i].label;
    }
    return NULL;
}

static const char *s_table_code(const s_table_t *table, size_t index) {
    return index < table->count ? table->items[index].code : NULL;
}

mg_taxonomy_t *mg_taxonomy_new(const mg_config_t *cfg, char *err, size_t errlen) {
    mg_taxonomy_t *tax = mg_calloc(1, sizeof *tax);
    if (s_table_load(cfg, "categories", s_category_code_is_valid,
                     "a category code is 1 to 32 characters of a-z and _", &tax->categories, err,
                     errlen) != 0 ||
        s_table_load(cfg, "networks", mg_id_is_valid,
                     "not a network id (1 to 64 characters of A-Z, a-z, 0-9, . _ -)", &tax->networks, err,
                     errlen) != 0)
        goto err;
    if (tax->categories.count == 0) {
        snprintf(err, errlen, "[categories]: no category defined");
        goto err;
    }
    return tax;

err:
    mg_taxonomy_destroy(&tax);
    return NULL;
}

void mg_taxonomy_destroy(mg_taxonomy_t **tax_p) {
    if (!tax_p || !*tax_p) return;
    s_table_clear(&(*tax_p)->categories);
    s_table_clear(&(*tax_p)->networks);
    free(*tax_p);
    *tax_p = NULL;
}

const char *mg_taxonomy_label(const mg_taxonomy_t *tax, const char *code) {
    return tax ? s_table_label(&tax->categories, code) : NULL;
}

size_t mg_taxonomy_count(const mg_taxonomy_t *tax) {
    return tax ? tax->categories.count : 0;
}

const char *mg_taxonomy_code(const mg_taxonomy_t *tax, size_t index) {
    return tax ? s_table_code(&tax->categories, index) : NULL;
}

const char *mg_taxonomy_network_name(const mg_taxonomy_t *tax, const char *id) {
    return tax ? s_table_label(&tax->networks, id) : NULL;
}

size_t mg_taxonomy_network_count(const mg_taxonomy_t *tax) {
    return tax ? tax->networks.count : 0;
}

const char *mg_taxonomy_network_id(const mg_taxonomy_t *tax, size_t index) {
    return tax ? s_table_code(&tax->networks, index) : NULL;
}
