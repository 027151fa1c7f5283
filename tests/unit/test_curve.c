/* test_curve.c -- the broker's CURVE allow-list, checked as text with
 * mg_curve_allow_list_check() (the parser the broker loads its
 * curve_clients_file with): what it accepts, and the hostile lines it
 * refuses with one line naming where. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/curve.h"
#include "maillage/mem.h"

/* Public keys of zmq_curve_keypair(); the first and the last hold a '#'. */
#define KEY_A "ixV9Mb.j-$X#&[fA]Ic]Nd:K?0oS!xA:kmVQ8bZg"
#define KEY_B "0>&TOdyt1iJ+L)dY>(rTJ)dW%5F+8dTmS#T4E3eo"
#define KEY_C "PL!tNTD+6{.}iRM:ht?{>:]kL.K7]xi)2cGhp]ID"
#define KEY_D "]Kwn!-.&Q#y*f-B5fC{8.U&$kr2wKi91&S=+.X*("

static char s_err[512];

static int s_check(const char *text) {
    memset(s_err, 0, sizeof s_err);
    return mg_curve_allow_list_check(text, strlen(text), s_err, sizeof s_err);
}

/* `text` is refused with one line of error that holds `want`. */
static void s_assert_refused(const char *text, size_t len, const char *want) {
    memset(s_err, 0, sizeof s_err);
    assert_int_equal(mg_curve_allow_list_check(text, len, s_err, sizeof s_err), -1);
    if (!strstr(s_err, want)) fail_msg("error \"%s\" does not say \"%s\"", s_err, want);
    assert_null(strchr(s_err, '\n'));
    assert_null(strchr(s_err, '\r'));
}

static void s_assert_refused_text(const char *text, const char *want) {
    s_assert_refused(text, strlen(text), want);
}

static void a_list_with_comments_none_and_any_is_read(void **state) {
    (void)state;
    assert_int_equal(s_check("# network  key  types (a '#' line is a comment)\n"
                             "net-a  " KEY_A "  need.*,offer.reported\n"
                             "\n"
                             "   # an indented comment\n"
                             "notifier\t" KEY_B "\t-\n"
                             "gateway " KEY_C " relay,*\n"),
                     3);
    /* A key holding '#' is no comment: the line is a client. */
    assert_int_equal(s_check("net-d " KEY_D " need.reported"), 1);
    /* A network may have several keys (a rotation). */
    assert_int_equal(s_check("net-a " KEY_A " need.*\nnet-a " KEY_B " need.*\n"), 2);
}

static void an_empty_list_has_no_client(void **state) {
    (void)state;
    assert_int_equal(s_check(""), 0);
    assert_int_equal(s_check("\n\n  \t \r\n# only a comment\n"), 0);
}

static void a_line_without_its_types_is_refused(void **state) {
    (void)state;
    /* Before, it was read as "may emit nothing", silently. */
    s_assert_refused_text("# clients\nnet-a " KEY_A "\n",
                          "allow-list:2: expected \"network_id  PUBLIC_KEY  allowed-types\"");
    s_assert_refused_text("net-a " KEY_A " \t \r\n", "allow-list:1: expected");
    s_assert_refused_text("net-a\n", "allow-list:1: expected");
}

static void a_fourth_column_is_refused(void **state) {
    (void)state;
    s_assert_refused_text("net-a " KEY_A " need.* offer.*\n", "allow-list:1: expected");
    /* No inline comment either: Z85 keys hold '#'. */
    s_assert_refused_text("net-a " KEY_A " - # the subscriber\n", "allow-list:1: expected");
}

static void a_bad_network_id_is_refused(void **state) {
    (void)state;
    s_assert_refused_text("net-a " KEY_A " -\nnet/b " KEY_B " -\n",
                          "allow-list:2: network \"net/b\": not a valid id");
    s_assert_refused_text("réseau " KEY_A " -\n", "not a valid id");
    s_assert_refused_text("net-a:items " KEY_A " -\n", "not a valid id");
}

static void a_bad_key_is_refused(void **state) {
    (void)state;
    s_assert_refused_text("net-a " KEY_A "x -\n", "allow-list:1: not a CurveZMQ public key");
    s_assert_refused_text("net-a ixV9Mb.j-$X#&[fA]Ic]Nd:K?0oS!xA:kmVQ8bZ -\n", "not a CurveZMQ public key");
    s_assert_refused_text("net-a ixV9Mb.j-$X#&[fA]Ic]Nd:K?0oS!xA:kmVQ8bZ\" -\n", "not a CurveZMQ public key");
}

static void a_key_listed_twice_is_refused(void **state) {
    (void)state;
    s_assert_refused_text("net-a " KEY_A " need.*\nnet-b " KEY_B " -\nnet-c " KEY_A " -\n",
                          "allow-list:3: this key is already listed for \"net-a\"");
}

static void a_bad_type_pattern_is_refused(void **state) {
    (void)state;
    s_assert_refused_text("net-a " KEY_A " need.*,Need.reported\n",
                          "allow-list:1: event type pattern \"Need.reported\": expected types like");
    s_assert_refused_text("net-a " KEY_A " need.**\n", "event type pattern");
    s_assert_refused_text("net-a " KEY_A " need-reported\n", "event type pattern");
    s_assert_refused_text("net-a " KEY_A " *.reported\n", "event type pattern");
}

static void a_nul_byte_is_refused_with_its_offset(void **state) {
    (void)state;
    static const char text[] = "# clients\nnet-a " KEY_A " need.*\0\nnet-b " KEY_B " need.*\n";
    /* Not cut at the NUL: the lines after it would be unread, silently. */
    s_assert_refused(text, sizeof text - 1, "allow-list: a NUL byte at offset 63: not a text file");
}

static void a_byte_order_mark_is_skipped_at_the_start_only(void **state) {
    (void)state;
    assert_int_equal(s_check("\xef\xbb\xbfnet-a " KEY_A " need.*\n"), 1);
    assert_int_equal(s_check("\xef\xbb\xbf"), 0);
    s_assert_refused_text("net-a " KEY_A " -\n\xef\xbb\xbfnet-b " KEY_B " -\n", "allow-list:2: network");
}

static void crlf_line_ends_are_read(void **state) {
    (void)state;
    assert_int_equal(s_check("# clients\r\nnet-a " KEY_A " need.*\r\nnet-b " KEY_B " -\r\n\r\n"), 2);
    s_assert_refused_text("net-a " KEY_A " -\r\nnet-b " KEY_B "\r\n", "allow-list:2: expected");
}

static void a_very_long_line_is_refused_in_one_line(void **state) {
    (void)state;
    size_t n = 200000;
    char *text = mg_malloc(n + 64);
    memset(text, 'a', n);
    snprintf(text + n, 64, " %s -\n", KEY_A);
    s_assert_refused_text(text, "allow-list:1: network \"aaaa");
    assert_int_equal(strlen(s_err), sizeof s_err - 1); /* cut to fit, not overrun */
    /* A long but valid types column is read. */
    size_t at = (size_t)snprintf(text, n, "net-a %s ", KEY_A);
    while (at + 16 < n)
        at += (size_t)snprintf(text + at, n - at, "need.reported,");
    memcpy(text + at, "*\n", 3);
    assert_int_equal(s_check(text), 1);
    free(text);
}

static void a_text_over_a_mebibyte_is_refused(void **state) {
    (void)state;
    size_t n = (size_t)1 << 20;
    char *text = mg_malloc(n);
    memset(text, '\n', n);
    s_assert_refused(text, n, "allow-list: file too large");
    assert_int_equal(mg_curve_allow_list_check(text, n - 2, s_err, sizeof s_err), 0);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_list_with_comments_none_and_any_is_read),
        cmocka_unit_test(an_empty_list_has_no_client),
        cmocka_unit_test(a_line_without_its_types_is_refused),
        cmocka_unit_test(a_fourth_column_is_refused),
        cmocka_unit_test(a_bad_network_id_is_refused),
        cmocka_unit_test(a_bad_key_is_refused),
        cmocka_unit_test(a_key_listed_twice_is_refused),
        cmocka_unit_test(a_bad_type_pattern_is_refused),
        cmocka_unit_test(a_nul_byte_is_refused_with_its_offset),
        cmocka_unit_test(a_byte_order_mark_is_skipped_at_the_start_only),
        cmocka_unit_test(crlf_line_ends_are_read),
        cmocka_unit_test(a_very_long_line_is_refused_in_one_line),
        cmocka_unit_test(a_text_over_a_mebibyte_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
