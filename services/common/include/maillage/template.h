/* template.h -- the message templates of the notifier: a tiny {{name}}
 * substitution engine and the file format staff edit.
 *
 * Syntax of a template text: "{{name}}" is replaced by the value of `name`
 * (escaped for the part rendered: see mg_template_escape_t), "{{{name}}}" by
 * the value as is (for a part already built, such as the list of a digest's
 * items). Names are [a-z0-9_]{1,64}, with blanks around them allowed
 * ("{{ name }}"); a "{{" that starts no placeholder ("{{Nom}}", "{{nom")
 * is kept as written by mg_template_render() and refused by
 * mg_template_check(). A line made only of placeholders (and blanks, and in HTML
 * markup) that all render as nothing is dropped with its newline, so that an
 * optional value (a description, a comment) leaves no blank line and no
 * empty "<p></p>". An unknown name renders
 * as nothing; mg_template_check() finds such names when templates are
 * loaded, so a typo is an error at start-up, not an empty hole in a
 * message.
 *
 * A template file (config/templates/<kind>.tpl) is UTF-8 text in parts:
 *
 *     # comments, before the first part only
 *     [subject]
 *     Nouvelle mise en relation : {{need_title}}
 *     [text]
 *     ...
 *     [html]
 *     ...
 *
 * A part runs from its "[name]" line to the next part line or the end; its
 * trailing blank lines are dropped (the subject is one line). Known parts:
 * subject, text, html, item_text, item_html (the last two for one entry of
 * a digest). Pure functions; any thread. */
#ifndef MAILLAGE_TEMPLATE_H
#define MAILLAGE_TEMPLATE_H

#include <stddef.h>

typedef struct {
    const char *name;
    const char *value; /* NULL renders as "" */
} mg_template_var_t;

/* How the values of {{name}} are written: values come from networks, the
 * template's own text is the staff's. */
typedef enum {
    MG_TEMPLATE_ESCAPE_NONE, /* plain text (an e-mail's text part, the inbox) */
    MG_TEMPLATE_ESCAPE_HTML, /* & < > " ' as entities, a line break as <br> */
    /* Markdown of a chat (Mattermost, Rocket.Chat): & < > as entities, \ ` *
     * _ ~ [ ] # | backslash-escaped (no disguised link [text](url), no
     * formatting), and an @ that starts a word (after anything but an ASCII
     * letter or digit) followed by a zero-width space (no @channel, @all or
     * @user mention); an e-mail address stays as it is, and a value that is
     * one http(s) URL keeps its \ ` * _ ~ # |. */
    MG_TEMPLATE_ESCAPE_CHAT,
    /* Slack's mrkdwn, which has no escape character: & < > as entities
     * (its <!channel>, <@user> and <url|text> need them) and the @ of a
     * mention broken as above; * _ ~ ` may still format a value's words. */
    MG_TEMPLATE_ESCAPE_SLACK,
} mg_template_escape_t;

/* Render `tpl` with the `n` variables of `vars` (the first of a name wins),
 * the values of {{name}} escaped as `escape` says. Caller owns the result
 * (free()); never NULL. */
char *mg_template_render(const char *tpl, const mg_template_var_t *vars, size_t n,
                         mg_template_escape_t escape);

/* Check that every {{name}} / {{{name}}} of `tpl` is in `known` (a
 * NULL-terminated list) and that every "{{" starts one. Returns 0; -1 for
 * an unknown name, in `bad`; -2 for a "{{" that starts no placeholder, the
 * text from it to the end of its line in `bad` (both truncated to badlen,
 * the text to 40 bytes); with the line of `tpl` (from 1) in *line if not
 * NULL. */
int mg_template_check(const char *tpl, const char *const *known, char *bad, size_t badlen, int *line);

/* Append `s` to `*buf` (of length *len, capacity *cap) HTML-escaped. */
void mg_template_escape_html(char **buf, size_t *len, size_t *cap, const char *s);

/* The parts of a template file, each NULL when the file does not have it. */
typedef enum {
    MG_TEMPLATE_SUBJECT,
    MG_TEMPLATE_TEXT,
    MG_TEMPLATE_HTML,
    MG_TEMPLATE_ITEM_TEXT,
    MG_TEMPLATE_ITEM_HTML,
    MG_TEMPLATE_PARTS
} mg_template_part_t;

typedef struct {
    char *part[MG_TEMPLATE_PARTS];
    int line[MG_TEMPLATE_PARTS]; /* the file's line where each part's text starts */
} mg_template_file_t;

/* Parse the `len` bytes of a template file. `name` is used in errors
 * ("match.tpl:3: unknown part [sujet]"). Returns 0, or -1 with a reason in
 * `err` (and `out` left empty). Clear with mg_template_file_clear(). */
int mg_template_file_parse(const char *name, const char *data, size_t len, mg_template_file_t *out, char *err,
                           size_t errlen);

/* Read and parse the file at `path`. Same contract. */
int mg_template_file_load(const char *path, mg_template_file_t *out, char *err, size_t errlen);

/* Free the parts; accepts an empty one. */
void mg_template_file_clear(mg_template_file_t *file);

#endif
