/* fuzz_text.c -- libFuzzer target for the French text folding.
 *
 * Arbitrary bytes, invalid UTF-8 included, are folded into keywords. Whatever
 * they are, mg_text_keywords must not crash, leak or read out of bounds, and
 * every keyword must keep its promise: 3 to 40 bytes of [a-z0-9], strictly
 * sorted (so no duplicates), never more than asked for. Folding a keyword
 * again must give back that keyword, unless it is one whose plural folding
 * goes on ("bureaus" -> "bureau"): it is checked to give one word at most.
 * mg_text_keywords_spelled gives the same keywords, each with a spelling
 * that folds back into exactly that keyword and a place in the text that no
 * other keyword has. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/match_score.h"

#define MAX_WORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The function reads a C string: stop at the first NUL like callers do. */
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';

    char *words[MAX_WORDS];
    size_t max = size > 0 ? data[0] % (MAX_WORDS + 1) : MAX_WORDS; /* also small limits */
    size_t n = mg_text_keywords(text, words, max);
    if (n > max) abort();
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(words[i]);
        if (len < 3 || len > 40) abort();
        if (strspn(words[i], "abcdefghijklmnopqrstuvwxyz0123456789") != len) abort();
        if (i > 0 && strcmp(words[i - 1], words[i]) >= 0) abort();

        char *again[2];
        size_t m = mg_text_keywords(words[i], again, 2);
        if (m > 1) abort();
        for (size_t j = 0; j < m; j++)
            free(again[j]);
    }
    char *same[MAX_WORDS], *spellings[MAX_WORDS];
    size_t places[MAX_WORDS];
    if (mg_text_keywords_spelled(text, same, spellings, places, max) != n) abort();
    for (size_t i = 0; i < n; i++) {
        if (strcmp(same[i], words[i]) != 0) abort();
        for (size_t j = 0; j < i; j++)
            if (places[j] == places[i]) abort();
        char *back[2];
        size_t m = mg_text_keywords(spellings[i], back, 2);
        if (m != 1 || strcmp(back[0], words[i]) != 0) abort();
        free(back[0]);
        free(same[i]);
        free(spellings[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(text);
    return 0;
}
