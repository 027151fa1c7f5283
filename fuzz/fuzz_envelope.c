/* fuzz_envelope.c -- libFuzzer target for the broker's gate: unpacking and
 * validating an Envelope from arbitrary bytes, and looking for NUL bytes in
 * its text fields.
 *
 * Whatever the bytes, unpacking and validation must answer without crashing,
 * leaking or reading out of bounds; a refusal always names a reason. When the
 * bytes unpack, our own packing of them decodes again with the same verdict,
 * and a sequence appended to the packed bytes is what decodes. A valid
 * envelope filed under today's communes (mg_envelope_current_communes())
 * stays valid, and filing it again changes nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/communes.h"
#include "maillage/config.h"
#include "maillage/envelope.h"
#include "maillage/taxonomy.h"

static mg_taxonomy_t *s_taxonomy;
static mg_communes_t *s_communes;

static void s_init(void) {
    char err[256];
    mg_config_t *cfg = mg_config_load(NULL, err, sizeof err);
    if (!cfg) abort();
    s_taxonomy = mg_taxonomy_new(cfg, err, sizeof err);
    s_communes = mg_communes_load(mg_config_str(cfg, "data", "communes_file"), err, sizeof err);
    mg_config_destroy(&cfg);
    if (!s_taxonomy || !s_communes) {
        fprintf(stderr, "fuzz_envelope: %s\n", err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!s_taxonomy) s_init();
    mg_envelope_t *env = mg_envelope_unpack(data, size);
    if (!env) return 0;

    mg_invalid_t why;
    if (mg_envelope_check_nul(data, size, &why) != 0 && (!why.field[0] || !why.reason[0])) abort();
    int verdict = mg_envelope_validate(env, s_taxonomy, s_communes, &why);
    if (verdict != 0 && why.reason[0] == '\0') abort(); /* a refusal always says why */
    if (verdict == 0 && (why.field[0] || why.reason[0])) abort();
    /* Without the tables, the checks are a subset: what passes with them passes without. */
    if (verdict == 0 && mg_envelope_validate(env, NULL, NULL, NULL) != 0) abort();

    /* Byte equality of re-packing is not asserted: protobuf-c keeps unknown
     * fields, even of the invalid field number 0, and re-encodes their tags. */
    uint8_t *bin1 = NULL;
    size_t len1 = mg_envelope_pack(env, &bin1);
    mg_envelope_t *again = mg_envelope_unpack(bin1, len1);
    if (!again) abort(); /* our own output must decode */
    if (mg_envelope_check_nul(bin1, len1, NULL) != 0) abort(); /* and holds no text cut short */
    if (mg_envelope_validate(again, s_taxonomy, s_communes, NULL) != verdict) abort();

    uint8_t *seq = malloc(len1 + 11);
    if (!seq) abort();
    uint64_t wanted = (uint64_t)size * 0x9E3779B97F4A7C15ULL;
    size_t seq_len = mg_envelope_append_sequence(bin1, len1, wanted, seq);
    mg_envelope_t *stamped = mg_envelope_unpack(seq, seq_len);
    if (!stamped || stamped->sequence != wanted) abort();

    if (verdict == 0) {
        mg_envelope_current_communes(again, s_communes);
        if (mg_envelope_validate(again, s_taxonomy, s_communes, NULL) != 0) abort();
        if (mg_envelope_current_communes(again, s_communes) != 0) abort();
    }

    mg_envelope_free(stamped);
    free(seq);
    mg_envelope_free(again);
    free(bin1);
    mg_envelope_free(env);
    return 0;
}
