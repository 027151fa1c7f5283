/* test_spellings.c -- a folded keyword's spelling from a word list: plurals
 * set aside, ambiguous keywords left alone, plain spellings respelled, a
 * file with bad lines (a NUL inside one, a byte order mark before the
 * first), and a path that is no file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "maillage/mem.h"
#include "maillage/spellings.h"

static const char *const s_words[] = {
    "comptabilité", "comptabilités", "bénévole", "bénévoles", "hôpital", "hôpitaux", "œuvre",         "côte",
    "côté",         "coté",          "marche",   "marché",    "cuisine", "Sécurité", "porte-monnaie", "les",
};

static void a_keyword_gets_its_one_spelling_with_accents(void **state) {
    (void)state;
    mg_spellings_t *s = mg_spellings_from_words(s_words, sizeof s_words / sizeof s_words[0]);
    assert_string_equal(mg_spellings_find(s, "comptabilite"), "comptabilité"); /* not its plural */
    assert_string_equal(mg_spellings_find(s, "benevole"), "bénévole");
    assert_string_equal(mg_spellings_find(s, "hopital"), "hôpital"); /* -aux for -al */
    assert_string_equal(mg_spellings_find(s, "oeuvre"), "œuvre");
    assert_string_equal(mg_spellings_find(s, "securite"), "sécurité"); /* lower case */
    assert_null(mg_spellings_find(s, "cote"));                         /* côte, côté, coté: which? */
    assert_null(mg_spellings_find(s, "marche"));                       /* marche or marché */
    assert_null(mg_spellings_find(s, "cuisine"));                      /* no accent to add */
    assert_null(mg_spellings_find(s, "porte"));                        /* two words, no keyword of its own */
    assert_null(mg_spellings_find(s, "inconnu"));
    assert_null(mg_spellings_find(NULL, "benevole"));
    assert_int_equal(mg_spellings_count(s), 5);
    mg_spellings_destroy(&s);
    assert_null(s);
    mg_spellings_destroy(&s);
}

static void plain_spellings_are_respelled_others_kept(void **state) {
    (void)state;
    static const char *const words[] = {"bénévole", "déni", "créa", "stratégie"};
    mg_spellings_t *s = mg_spellings_from_words(words, 4);
    char *kw[] = {"benevole", "comptabilite", "strategie", "deni", "crea"};
    char *typed[] = {"benevole", "comptabilité", "strategies", "denis", "crea"};
    const char *want[] = {"bénévole",     /* respelled */
                          "comptabilité", /* typed with its accents */
                          "strategies",   /* a plural typed plain: left */
                          "denis",        /* a name maybe: left */
                          "crea"};        /* an acronym maybe: left */
    char *sp[5];
    for (int i = 0; i < 5; i++)
        sp[i] = mg_strdup(typed[i]);
    mg_spellings_respell(s, kw, sp, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(sp[i], want[i]);
    free(sp[0]);
    sp[0] = mg_strdup("benevole");
    mg_spellings_respell(NULL, kw, sp, 5);
    assert_string_equal(sp[0], "benevole");
    for (int i = 0; i < 5; i++)
        free(sp[i]);
    mg_spellings_destroy(&s);
}

static void a_file_with_bad_lines_keeps_the_good_ones(void **state) {
    (void)state;
    char path[] = "/tmp/test-spellings-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("stratégie\r\n\n\xff\xfe invalide\n", f);
    for (int i = 0; i < 300; i++)
        fputc('a', f);       /* a line too long */
    fputs("é\nréemploi", f); /* the last line without its newline */
    fclose(f);
    char err[256];
    mg_spellings_t *s = mg_spellings_load(path, err, sizeof err);
    assert_non_null(s);
    assert_string_equal(mg_spellings_find(s, "strategie"), "stratégie");
    assert_string_equal(mg_spellings_find(s, "reemploi"), "réemploi");
    assert_int_equal(mg_spellings_count(s), 2);
    mg_spellings_destroy(&s);
    unlink(path);
    assert_null(mg_spellings_load("/nonexistent/french", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/french"));
}

/* The list of the `len` bytes at `text`, read as a file would be. */
static mg_spellings_t *s_read(const char *text, size_t len) {
    char err[256] = "";
    FILE *f = fmemopen((void *)text, len, "r");
    assert_non_null(f);
    mg_spellings_t *s = mg_spellings_read(f, "words", err, sizeof err);
    fclose(f);
    assert_non_null(s);
    return s;
}

static void a_line_with_a_nul_byte_is_skipped_not_cut(void **state) {
    (void)state;
    /* Cut at its NUL, the first line gave "réemploi": a word it is not. */
    static const char text[] = "réemploi\0xyz\nstratégie\n\0\nété\0";
    mg_spellings_t *s = s_read(text, sizeof text - 1);
    assert_null(mg_spellings_find(s, "reemploi"));
    assert_string_equal(mg_spellings_find(s, "strategie"), "stratégie");
    assert_int_equal(mg_spellings_count(s), 1);
    mg_spellings_destroy(&s);
}

static void lines_over_128_bytes_are_skipped_whatever_their_end(void **state) {
    (void)state;
    char text[1024];
    /* 128 bytes: "stratégie" (10) and 118 spaces, then CRLF; then 129. */
    int n = snprintf(text, sizeof text, "stratégie%118s\r\nbénévole%119s\n", "", "");
    mg_spellings_t *s = s_read(text, (size_t)n);
    assert_string_equal(mg_spellings_find(s, "strategie"), "stratégie");
    assert_null(mg_spellings_find(s, "benevole"));
    mg_spellings_destroy(&s);
}

static void a_byte_order_mark_is_no_part_of_the_first_line(void **state) {
    (void)state;
    char text[1024];
    /* 128 bytes without the mark: read, not skipped as 131 bytes long. */
    int n = snprintf(text, sizeof text, "\xef\xbb\xbfstratégie%118s\nréemploi", "");
    mg_spellings_t *s = s_read(text, (size_t)n);
    assert_string_equal(mg_spellings_find(s, "strategie"), "stratégie");
    assert_string_equal(mg_spellings_find(s, "reemploi"), "réemploi");
    mg_spellings_destroy(&s);
    static const char only[] = "\xef\xbb\xbf";
    s = s_read(only, sizeof only - 1);
    assert_int_equal(mg_spellings_count(s), 0);
    mg_spellings_destroy(&s);
}

static void a_directory_is_refused_as_not_a_regular_file(void **state) {
    (void)state;
    char dir[] = "/tmp/test-spellings-dir-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[256] = "", want[300];
    assert_null(mg_spellings_load(dir, err, sizeof err));
    snprintf(want, sizeof want, "%s: not a regular file", dir);
    assert_string_equal(err, want);
    /* Read anyway (a FILE of a directory opens), the read error says why. */
    FILE *f = fopen(dir, "r");
    assert_non_null(f);
    assert_null(mg_spellings_read(f, dir, err, sizeof err));
    fclose(f);
    snprintf(want, sizeof want, "%s: %s", dir, strerror(EISDIR));
    assert_string_equal(err, want);
    assert_int_equal(rmdir(dir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_keyword_gets_its_one_spelling_with_accents),
        cmocka_unit_test(plain_spellings_are_respelled_others_kept),
        cmocka_unit_test(a_file_with_bad_lines_keeps_the_good_ones),
        cmocka_unit_test(a_line_with_a_nul_byte_is_skipped_not_cut),
        cmocka_unit_test(lines_over_128_bytes_are_skipped_whatever_their_end),
        cmocka_unit_test(a_byte_order_mark_is_no_part_of_the_first_line),
        cmocka_unit_test(a_directory_is_refused_as_not_a_regular_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
