/* fuzz_template.c -- libFuzzer target for the notifier's templates
 * (template.h): a template file as staff may write it, parsed, checked and
 * rendered.
 *
 * Whatever the bytes, parsing, checking and rendering must not crash, leak
 * or read out of bounds. A file that parses has no part beginning or ending
 * with a newline; rendering the input itself as a template gives it back
 * unchanged when it has no "{{" (lines without placeholders stay), and
 * never adds a line: a placeholder's value here holds no newline. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/envelope.h"
#include "maillage/template.h"

static size_t s_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    static const mg_template_var_t vars[] = {{"staff_name", "Éva Martin"}, {"why", "Vous suivez l'Eure."},
                                             {"link", "https://maillage.example/#match/m1"},
                                             {"title", "<b>Atelier</b> & \"cuisine\""}, {"empty", ""},
                                             {"none", NULL}};
    static const char *const known[] = {"staff_name", "why", "link", "title", "empty", "none", NULL};
    size_t nvars = sizeof vars / sizeof vars[0];

    for (int escape = MG_TEMPLATE_ESCAPE_NONE; escape <= MG_TEMPLATE_ESCAPE_SLACK; escape++) {
        char *out = mg_template_render(text, vars, nvars, (mg_template_escape_t)escape);
        if (!strstr(text, "{{") && strcmp(out, text) != 0) abort();
        if (s_lines(out) > s_lines(text)) abort();
        free(out);
    }
    char bad[65];
    int line = 0;
    int checked = mg_template_check(text, known, bad, sizeof bad, &line);
    /* A refusal names a line of the text, and a name or text cut whole. */
    if (checked != 0 && (line < 1 || (size_t)line > s_lines(text) + 1)) abort();
    if (checked != 0 && mg_utf8_is_valid(text, size) && !mg_utf8_is_valid(bad, strlen(bad))) abort();

    mg_template_file_t file;
    char err[256];
    if (mg_template_file_parse("fuzz.tpl", (const char *)data, size, &file, err, sizeof err) == 0) {
        for (int i = 0; i < MG_TEMPLATE_PARTS; i++) {
            const char *part = file.part[i];
            if (!part) continue;
            size_t len = strlen(part);
            if (len && part[len - 1] == '\n') abort();
            char *out = mg_template_render(
                part, vars, nvars, i == MG_TEMPLATE_HTML ? MG_TEMPLATE_ESCAPE_HTML : MG_TEMPLATE_ESCAPE_CHAT);
            free(out);
        }
        mg_template_file_clear(&file);
    }
    free(text);
    return 0;
}
