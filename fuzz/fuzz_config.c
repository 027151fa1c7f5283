/* fuzz_config.c -- libFuzzer target for the configuration parser.
 *
 * Arbitrary bytes are loaded as a configuration file. The parser must answer
 * without crashing or leaking; a refusal is one line starting with the file's
 * name; an accepted file yields a value for every key of the schema, and its
 * [categories] and [networks] either build a taxonomy or are refused with a
 * reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/config.h"
#include "maillage/taxonomy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    err[0] = '\0';
    mg_config_t *cfg = mg_config_load_buffer("fuzz.conf", (const char *)data, size, err, sizeof err);
    if (!cfg) {
        if (strncmp(err, "fuzz.conf", 9) != 0 || strchr(err, '\n')) abort();
        return 0;
    }
    for (size_t i = 0; mg_config_schema[i].section; i++) {
        const mg_config_key_t *k = &mg_config_schema[i];
        if (!k->key) continue;
        int open = 0;
        for (size_t j = 0; mg_config_schema[j].section; j++)
            if (!mg_config_schema[j].key && strcmp(mg_config_schema[j].section, k->section) == 0) open = 1;
        if (open) continue;
        switch (k->type) {
        case MG_CONFIG_STRING:
            if (!mg_config_str(cfg, k->section, k->key)) abort();
            break;
        case MG_CONFIG_INT: {
            long long v = mg_config_int(cfg, k->section, k->key);
            if ((double)v < k->min || (double)v > k->max) abort();
            break;
        }
        case MG_CONFIG_DOUBLE: {
            double v = mg_config_double(cfg, k->section, k->key);
            if (v < k->min || v > k->max) abort();
            break;
        }
        case MG_CONFIG_BOOL:
            (void)mg_config_bool(cfg, k->section, k->key);
            break;
        }
    }
    err[0] = '\0';
    mg_taxonomy_t *tax = mg_taxonomy_new(cfg, err, sizeof err);
    if (tax) {
        for (size_t i = 0; i < mg_taxonomy_count(tax); i++) {
            const char *code = mg_taxonomy_code(tax, i);
            if (!code || !mg_taxonomy_label(tax, code)) abort();
        }
        for (size_t i = 0; i < mg_taxonomy_network_count(tax); i++) {
            const char *id = mg_taxonomy_network_id(tax, i);
            if (!id || !mg_taxonomy_network_name(tax, id)) abort();
        }
        mg_taxonomy_destroy(&tax);
    } else if (err[0] == '\0') {
        abort();
    }
    mg_config_destroy(&cfg);
    return 0;
}
