/* test_template.c -- {{name}} substitution, HTML escaping, unknown names,
 * template files in parts, and every shipped template of config/templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/template.h"

static void placeholders_are_replaced(void **state) {
    (void)state;
    mg_template_var_t vars[] = {{"nom", "Alice"}, {"dep", "Calvados"}, {"nom", "ignored"}, {"vide", NULL}};
    char *s = mg_template_render("Bonjour {{nom}}, {{dep}}!{{vide}}{{inconnu}}", vars, 4, 0);
    assert_string_equal(s, "Bonjour Alice, Calvados!");
    free(s);
}

static void what_is_not_a_placeholder_stays(void **state) {
    (void)state;
    mg_template_var_t vars[] = {{"a", "X"}};
    const char *cases[][2] = {
        {"{a}", "{a}"},   {"{{ a }}", "X"}, {"{{A}}", "{{A}}"}, {"{{a}", "{{a}"},   {"{{a}}}", "X}"},
        {"{{{a}}", "{X"}, {"", ""},         {"{{", "{{"},       {"é{{a}}è", "éXè"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = mg_template_render(cases[i][0], vars, 1, 0);
        assert_string_equal(s, cases[i][1]);
        free(s);
    }
}

static void lines_of_empty_values_are_dropped(void **state) {
    (void)state;
    mg_template_var_t vars[] = {{"titre", "Atelier"}, {"desc", ""}, {"note", NULL}, {"x", "X"}};
    const char *cases[][2] = {
        {"{{titre}}\n{{desc}}\n\nFin", "Atelier\n\nFin"}, /* no blank line for an empty description */
        {"a\n  {{desc}} {{{note}}}\r\nb", "a\nb"},        /* blanks and CR around them */
        {"a\n{{desc}}{{x}}\nb", "a\nX\nb"},               /* one value is enough to keep it */
        {"a\n- {{desc}}\nb", "a\n- \nb"},                 /* so is any other text */
        {"a\n{{desc}}", "a\n"},                           /* the last line */
        {"{{desc}}\n{{titre}}", "Atelier"},               /* the first */
        {"a\n\n \nb", "a\n\n \nb"},                       /* lines without placeholders stay */
        {"a\n{{inconnu}}\nb", "a\nb"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = mg_template_render(cases[i][0], vars, 4, i % 2);
        assert_string_equal(s, cases[i][1]);
        free(s);
    }
}

static void html_parts_escape_values_but_not_raw_ones(void **state) {
    (void)state;
    mg_template_var_t vars[] = {{"t", "<b>\"Café\" & 'thé'</b>"}, {"list", "<li>un</li>"}};
    char *s = mg_template_render("<p>{{t}}</p><ul>{{{list}}}</ul>", vars, 2, MG_TEMPLATE_ESCAPE_HTML);
    assert_string_equal(s, "<p>&lt;b&gt;&quot;Café&quot; &amp; &#39;thé&#39;&lt;/b&gt;</p><ul><li>un</li></ul>");
    free(s);
    s = mg_template_render("{{t}}", vars, 2, MG_TEMPLATE_ESCAPE_NONE);
    assert_string_equal(s, "<b>\"Café\" & 'thé'</b>");
    free(s);
}

static void html_keeps_line_breaks_and_drops_the_markup_of_empty_values(void **state) {
    (void)state;
    /* A comment's lines were run together in one line, and an empty comment
     * left "<p></p>". */
    mg_template_var_t vars[] = {
        {"comment", "Ligne 1\r\nLigne 2 <3\nFin"}, {"empty", ""}, {"link", "https://x/"}};
    const char *tpl =
        "<p>Début</p>\n<p>{{comment}}</p>\n<p style=\"color:#666\">{{empty}}</p>\n"
        "<p><a href=\"{{link}}\">Voir</a></p>\n<p><a href=\"{{empty}}\"></a></p>\n<p>x {{empty}}</p>";
    char *s = mg_template_render(tpl, vars, 3, MG_TEMPLATE_ESCAPE_HTML);
    assert_string_equal(s, "<p>Début</p>\n<p>Ligne 1<br>\nLigne 2 &lt;3<br>\nFin</p>\n"
                           "<p><a href=\"https://x/\">Voir</a></p>\n<p>x </p>");
    free(s);
    /* The text part keeps its lines as they are, and markup-looking text. */
    s = mg_template_render("<p>{{empty}}</p>\n{{comment}}", vars, 3, MG_TEMPLATE_ESCAPE_NONE);
    assert_string_equal(s, "<p></p>\nLigne 1\r\nLigne 2 <3\nFin");
    free(s);
}

static void chat_parts_neutralise_markdown_mentions_and_links_of_values(void **state) {
    (void)state;
    const char *cases[][2] = {
        {"Local @channel <!channel> [valider ici](https://evil.example/login)",
         "Local @\xe2\x80\x8b"
         "channel &lt;!channel&gt; \\[valider ici\\](https://evil.example/login)"},
        {"@all, *gras* _x_ `code` ~barré~ # titre | a\\b & c",
         "@\xe2\x80\x8b"
         "all, \\*gras\\* \\_x\\_ \\`code\\` \\~barré\\~ \\# titre \\| a\\\\b &amp; c"},
        {"contact@asso-caen.example (écrire à @here)", "contact@asso-caen.example (écrire à @\xe2\x80\x8b"
                                                       "here)"},
        {"https://maillage.example/#match/m_1~x", "https://maillage.example/#match/m_1~x"},
        {"https://evil.example/[x](y)", "https://evil.example/\\[x\\](y)"},
        /* the chat splits words at . - : +, and reads a mention in a URL */
        {"Atelier.@channel -@here +@all x:@all", "Atelier.@\xe2\x80\x8b"
                                                 "channel -@\xe2\x80\x8b"
                                                 "here "
                                                 "+@\xe2\x80\x8b"
                                                 "all x:@\xe2\x80\x8b"
                                                 "all"},
        {"https://evil.example/@channel", "https://evil.example/@\xe2\x80\x8b"
                                          "channel"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mg_template_var_t vars[] = {{"v", cases[i][0]}};
        char *s = mg_template_render("**{{v}}**", vars, 1, MG_TEMPLATE_ESCAPE_CHAT);
        char want[256];
        snprintf(want, sizeof want, "**%s**", cases[i][1]);
        assert_string_equal(s, want); /* the template's own Markdown stays */
        free(s);
    }
    /* A mention right after the template's text is a mention too. */
    mg_template_var_t at[] = {{"v", "@channel"}};
    char *s = mg_template_render("Titre :{{v}}", at, 1, MG_TEMPLATE_ESCAPE_CHAT);
    assert_string_equal(s, "Titre :@\xe2\x80\x8b"
                           "channel");
    free(s);
}

static void slack_values_keep_their_text_but_no_control_sequence_nor_mention(void **state) {
    (void)state;
    /* Slack shows a backslash as it is: only what it parses is escaped. */
    static const char *const cases[][2] = {
        {"<!channel> <@U123> <https://evil.example|Votre banque>",
         "&lt;!channel&gt; &lt;@\xe2\x80\x8b"
         "U123&gt; &lt;https://evil.example|Votre banque&gt;"},
        {"Atelier [vélo] & cuisine_partagée #14 *bio*", "Atelier [vélo] &amp; cuisine_partagée #14 *bio*"},
        {"@here, écrivez à camille@asso.example", "@\xe2\x80\x8b"
                                                 "here, écrivez à camille@asso.example"},
        {"https://maillage.example/#match/m_1", "https://maillage.example/#match/m_1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mg_template_var_t vars[] = {{"v", cases[i][0]}};
        char *s = mg_template_render("*{{v}}*", vars, 1, MG_TEMPLATE_ESCAPE_SLACK);
        char want[256];
        snprintf(want, sizeof want, "*%s*", cases[i][1]);
        assert_string_equal(s, want);
        free(s);
    }
}

static void check_reports_the_first_unknown_name(void **state) {
    (void)state;
    const char *const known[] = {"a", "b", NULL};
    char bad[64] = "";
    int line = 0;
    assert_int_equal(mg_template_check("{{a}} {{{b}}} {x} { {a} }", known, bad, sizeof bad, &line), 0);
    assert_int_equal(mg_template_check("{{a}}\n{{ a }} {{nom_inconnu}} {{c}}", known, bad, sizeof bad, &line),
                     -1);
    assert_string_equal(bad, "nom_inconnu");
    assert_int_equal(line, 2);
}

/* What staff type by habit or by mistake: blanks inside the braces work;
 * a capital, a dash or a missing "}}" is refused with its line (it was
 * kept as text, and "{{ need_title }}" reached staff as written). */
static void check_refuses_a_brace_pair_that_starts_no_placeholder(void **state) {
    (void)state;
    const char *const known[] = {"need_title", "category", NULL};
    mg_template_var_t vars[] = {{"need_title", "Local"}};
    char *s =
        mg_template_render("[{{ need_title }}] [{{{\tneed_title }}}]", vars, 1, MG_TEMPLATE_ESCAPE_NONE);
    assert_string_equal(s, "[Local] [Local]");
    free(s);
    assert_int_equal(mg_template_check("{{ need_title }} {{{ category}}}", known, NULL, 0, NULL), 0);
    static const char *const cases[][2] = {
        {"x\n\nA {{Category}} b", "{{Category}} b"},
        {"x\n\n{{need-title}}", "{{need-title}}"},
        {"x\n\n{{need_title\nsuite", "{{need_title"},
        {"x\n\n{{{category}}", "{{{category}}"},
        {"x\n\n{{}}", "{{}}"},
        {"x\n\n{{ é }}", "{{ é }}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char bad[64] = "";
        int line = 0;
        assert_int_equal(mg_template_check(cases[i][0], known, bad, sizeof bad, &line), -2);
        assert_string_equal(bad, cases[i][1]);
        assert_int_equal(line, 3);
    }
    /* Cut to 40 bytes, never inside a character. */
    char bad[64] = "";
    assert_int_equal(mg_template_check("{{ ééééééééééééééééééééééé", known, bad, sizeof bad, NULL), -2);
    assert_int_equal(strlen(bad), 39);
}

static void files_have_parts(void **state) {
    (void)state;
    const char *text = "# un commentaire\n\n[subject]\nObjet {{a}}\n\n[text]\nLigne 1\n\nLigne 2\n\n\n"
                       "[html]\r\n<p>{{a}}</p>\r\n";
    mg_template_file_t f;
    char err[256];
    assert_int_equal(mg_template_file_parse("t.tpl", text, strlen(text), &f, err, sizeof err), 0);
    assert_string_equal(f.part[MG_TEMPLATE_SUBJECT], "Objet {{a}}");
    assert_string_equal(f.part[MG_TEMPLATE_TEXT], "Ligne 1\n\nLigne 2");
    assert_string_equal(f.part[MG_TEMPLATE_HTML], "<p>{{a}}</p>");
    assert_null(f.part[MG_TEMPLATE_ITEM_TEXT]);
    mg_template_file_clear(&f);
    mg_template_file_clear(&f); /* twice is fine */
}

static void bad_files_are_refused_with_a_line(void **state) {
    (void)state;
    mg_template_file_t f;
    char err[256];
    const char *cases[][2] = {
        {"[sujet]\nx\n", "t.tpl:1: unknown part [sujet] (subject, text, html, item_text, item_html)"},
        {"texte\n[subject]\nx\n", "t.tpl:1: text before the first part (start with [subject])"},
        {"[subject]\na\n[subject]\nb\n", "t.tpl:3: part [subject] repeated"},
        {"[subject]\na\nb\n", "t.tpl: [subject] must be one line"},
        {"[text]\n\xff\n", "t.tpl: not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(mg_template_file_parse("t.tpl", cases[i][0], strlen(cases[i][0]), &f, err, sizeof err), -1);
        assert_string_equal(err, cases[i][1]);
        assert_null(f.part[MG_TEMPLATE_SUBJECT]);
    }
    assert_int_equal(mg_template_file_load("/nonexistent/x.tpl", &f, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

/* Every shipped template loads, has a subject, a text and an HTML part, and
 * says why it was sent. */
static void shipped_templates_are_complete(void **state) {
    (void)state;
    static const char *const kinds[] = {"match", "collective_need", "cooperation_proposed", "cooperation_answered",
                                        "member_joined", "unanswered_need", "digest"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char path[512], err[256];
        snprintf(path, sizeof path, "%s/config/templates/%s.tpl", MAILLAGE_SOURCE_DIR, kinds[i]);
        mg_template_file_t f;
        if (mg_template_file_load(path, &f, err, sizeof err) != 0) fail_msg("%s", err);
        for (int p = MG_TEMPLATE_SUBJECT; p <= MG_TEMPLATE_HTML; p++)
            if (!f.part[p] || !*f.part[p]) fail_msg("%s: part %d missing", path, p);
        if (!strstr(f.part[MG_TEMPLATE_TEXT], "{{why}}") || !strstr(f.part[MG_TEMPLATE_HTML], "{{why}}"))
            fail_msg("%s: the text and HTML parts must say why ({{why}})", path);
        if (!strstr(f.part[MG_TEMPLATE_TEXT], "{{link}}")) fail_msg("%s: no {{link}} in the text", path);
        mg_template_file_clear(&f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(placeholders_are_replaced),
        cmocka_unit_test(check_refuses_a_brace_pair_that_starts_no_placeholder),
        cmocka_unit_test(what_is_not_a_placeholder_stays),
        cmocka_unit_test(lines_of_empty_values_are_dropped),
        cmocka_unit_test(html_keeps_line_breaks_and_drops_the_markup_of_empty_values),
        cmocka_unit_test(html_parts_escape_values_but_not_raw_ones),
        cmocka_unit_test(chat_parts_neutralise_markdown_mentions_and_links_of_values),
        cmocka_unit_test(slack_values_keep_their_text_but_no_control_sequence_nor_mention),
        cmocka_unit_test(check_reports_the_first_unknown_name),
        cmocka_unit_test(files_have_parts),
        cmocka_unit_test(bad_files_are_refused_with_a_line),
        cmocka_unit_test(shipped_templates_are_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
