/* fuzz_spellings.c -- libFuzzer target for the word list ([data]
 * words_file), read by mg_spellings_read() from a stream of the bytes
 * (spellings.h), as mg_spellings_load() reads the file.
 *
 * Whatever the bytes: the read answers without crashing, leaking or reading
 * out of bounds, and (a memory stream has no read error) always gives a
 * list; the spelling it gives a keyword of one of its lines folds back to
 * that keyword. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/match_score.h"
#include "maillage/spellings.h"

/* The spelling of `keyword`, if any, is one of its. */
static void s_check_keyword(const mg_spellings_t *s, const char *keyword) {
    const char *sp = mg_spellings_find(s, keyword);
    if (!sp) return;
    char *kw[2];
    size_t n = mg_text_keywords(sp, kw, 2);
    if (n != 1 || strcmp(kw[0], keyword) != 0) abort();
    for (size_t i = 0; i < n; i++)
        free(kw[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f) abort();
    char err[256] = "";
    mg_spellings_t *s = mg_spellings_read(f, "fuzz", err, sizeof err);
    fclose(f);
    if (!s) abort();
    static const char *const known[] = {"strategie", "benevole", "hopital", "cote", "marche", "", "e"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        s_check_keyword(s, known[i]);
    /* The keywords of the first lines, as the matcher would look them up. */
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    char *save = NULL;
    int lines = 0;
    for (char *line = strtok_r(text, "\n", &save); line && lines < 64;
         line = strtok_r(NULL, "\n", &save), lines++) {
        char *kw[4];
        size_t n = mg_text_keywords(line, kw, 4);
        for (size_t i = 0; i < n; i++) {
            s_check_keyword(s, kw[i]);
            free(kw[i]);
        }
    }
    free(text);
    if (mg_spellings_count(s) > size) abort();
    mg_spellings_destroy(&s);
    return 0;
}
