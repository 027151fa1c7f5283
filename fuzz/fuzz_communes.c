/* fuzz_communes.c -- libFuzzer target for the commune table's loader
 * (communes.h), which reads the CSV an operator may name in [data]
 * communes_file.
 *
 * Whatever the bytes: the load answers without crashing, leaking or reading
 * out of bounds; a refusal says why, as FILE:LINE or FILE: reason. A table
 * that loads finds each of its communes by its own code, and every code it
 * answers to leads to one of its communes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maillage/communes.h"

static char s_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!s_path[0]) snprintf(s_path, sizeof s_path, "/tmp/fuzz-communes-%ld.csv", (long)getpid());
    FILE *f = fopen(s_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();

    char err[256] = "";
    mg_communes_t *t = mg_communes_load(s_path, err, sizeof err);
    unlink(s_path);
    if (!t) {
        if (strncmp(err, s_path, strlen(s_path)) != 0 || err[strlen(s_path)] != ':') abort();
        return 0;
    }
    size_t n = mg_communes_count(t);
    for (size_t i = 0; i < n; i++) {
        const mg_commune_t *c = mg_communes_at(t, i);
        if (!c || mg_communes_find(t, c->code) != c || mg_communes_index(t, c) != i) abort();
        if (!mg_commune_code_is_valid(c->code)) abort();
    }
    /* Any 5-character prefix of the input that the table answers to leads
     * to one of its communes. */
    for (size_t at = 0; at + 5 <= size && at < 4096; at++) {
        char code[6];
        memcpy(code, data + at, 5);
        code[5] = '\0';
        const mg_commune_t *c = mg_communes_find(t, code);
        if (c && (mg_communes_index(t, c) >= n || mg_communes_at(t, mg_communes_index(t, c)) != c)) abort();
    }
    mg_communes_destroy(&t);
    return 0;
}
