/* test_staff.c -- a staff record's list fields split on commas, spaces and
 * tabs, in any mix, and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/staff.h"

/* The items of `list` joined with '|'. */
static const char *s_items(const char *list) {
    static char out[256];
    size_t len;
    out[0] = '\0';
    for (const char *t, *p = list; (t = mg_staff_list_next(&p, &len));) {
        if (out[0]) strcat(out, "|");
        strncat(out, t, len);
    }
    return out;
}

static void items_split_on_commas_spaces_and_tabs(void **state) {
    (void)state;
    assert_string_equal(s_items("14,50"), "14|50");
    assert_string_equal(s_items("inbox, email"), "inbox|email");
    assert_string_equal(s_items("inbox email\twebhook"), "inbox|email|webhook");
    assert_string_equal(s_items(" ,\t14 ,, 61\t,"), "14|61");
}

static void an_empty_or_blank_list_has_no_item(void **state) {
    (void)state;
    assert_string_equal(s_items(""), "");
    assert_string_equal(s_items(" ,\t, "), "");
}

static void other_characters_belong_to_the_item(void **state) {
    (void)state;
    /* Network ids hold dashes and dots; a newline is not a separator (the
     * CLI refuses a value of more than one line). */
    assert_string_equal(s_items("reseau-caen,ess.normandie"), "reseau-caen|ess.normandie");
    assert_string_equal(s_items("a\nb;c"), "a\nb;c");
}

static void has_compares_whole_items(void **state) {
    (void)state;
    assert_true(mg_staff_list_has("inbox,\temail", "email"));
    assert_true(mg_staff_list_has("email", "email"));
    assert_false(mg_staff_list_has("emails, inbox", "email"));
    assert_false(mg_staff_list_has("inbox", "inbo"));
    assert_false(mg_staff_list_has("", "inbox"));
    assert_false(mg_staff_list_has(NULL, "inbox"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(items_split_on_commas_spaces_and_tabs),
        cmocka_unit_test(an_empty_or_blank_list_has_no_item),
        cmocka_unit_test(other_characters_belong_to_the_item),
        cmocka_unit_test(has_compares_whole_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
