/* template.c -- {{name}} substitution and the parts of a template file.
 *
 * Kept deliberately small: no conditionals, no loops, no filters. What a
 * message needs beyond substitution (the "why" sentence, a digest's list) is
 * built by the notifier and passed in as variables, so the files stay easy
 * for staff to edit without breaking anything. */
#include "maillage/template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/envelope.h"
#include "maillage/mem.h"

static void s_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 256;
        while (c < *len + n + 1)
            c *= 2;
        *buf = mg_realloc(*buf, c);
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

void mg_template_escape_html(char **buf, size_t *len, size_t *cap, const char *s) {
    const char *run = s;
    for (const char *p = s;; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        case '\n':
            rep = "<br>\n";
            break; /* a description's lines stay lines */
        case '\r':
            rep = "";
            break;
        default: break;
        }
        if (!rep && *p) continue;
        s_append(buf, len, cap, run, (size_t)(p - run));
        if (!*p) break;
        s_append(buf, len, cap, rep, strlen(rep));
        run = p + 1;
    }
}

/* A value that is one URL (a link to the staff page): the chat makes it a
 * link by itself, and a backslash would land inside it. */
static int s_is_url(const char *s) {
    return (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) && !strpbrk(s, " \t\r\n");
}

/* Append `s` to `*buf` escaped for a chat's Markdown, or Slack's mrkdwn
 * when `slack` (MG_TEMPLATE_ESCAPE_CHAT, MG_TEMPLATE_ESCAPE_SLACK). */
static void s_escape_chat(char **buf, size_t *len, size_t *cap, const char *s, int slack) {
    const char *run = s;
    int url = s_is_url(s);
    for (const char *p = s;; p++) {
        const char *rep = NULL;
        char esc[3] = {'\\', *p, '\0'};
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '[':
        case ']':
            rep = slack ? NULL : esc;
            break;
        case '\\':
        case '`':
        case '*':
        case '_':
        case '~':
        case '#':
        case '|':
            rep = url || slack ? NULL : esc;
            break;
        case '@': {
            /* A mention starts after anything but a letter or a digit (the
             * chat splits words at . - : + /), also inside a URL;
             * "camille@asso.example" is no mention. */
            char before = p > s ? p[-1] : *len ? (*buf)[*len - 1] : ' ';
            int word = (before >= 'a' && before <= 'z') || (before >= 'A' && before <= 'Z') ||
                       (before >= '0' && before <= '9');
            if (!word) rep = "@\xe2\x80\x8b"; /* U+200B ZERO WIDTH SPACE */
            break;
        }
        default:
            break;
        }
        if (!rep && *p) continue;
        s_append(buf, len, cap, run, (size_t)(p - run));
        if (!*p) break;
        s_append(buf, len, cap, rep, strlen(rep));
        run = p + 1;
    }
}

static int s_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int s_blank(char c) {
    return c == ' ' || c == '\t';
}

/* If `p` starts a placeholder, return its name's start/length, whether it is
 * raw ({{{...}}}), and the length of the whole placeholder; else 0. */
static size_t s_placeholder(const char *p, const char **name, size_t *name_len, int *raw) {
    if (p[0] != '{' || p[1] != '{') return 0;
    int r = p[2] == '{';
    const char *n = p + 2 + r;
    while (s_blank(*n))
        n++;
    size_t k = 0;
    while (s_name_char(n[k]))
        k++;
    if (k == 0 || k > 64) return 0;
    const char *end = n + k;
    while (s_blank(*end))
        end++;
    if (end[0] != '}' || end[1] != '}' || (r && end[2] != '}')) return 0;
    *name = n;
    *name_len = k;
    *raw = r;
    return (size_t)(end + 2 + r - p);
}

static const char *s_lookup(const mg_template_var_t *vars, size_t n, const char *name, size_t len, int *found) {
    for (size_t i = 0; i < n; i++) {
        if (strncmp(vars[i].name, name, len) == 0 && vars[i].name[len] == '\0') {
            *found = 1;
            return vars[i].value ? vars[i].value : "";
        }
    }
    *found = 0;
    return "";
}

char *mg_template_render(const char *tpl, const mg_template_var_t *vars, size_t n,
                         mg_template_escape_t escape) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    s_append(&buf, &len, &cap, "", 0);
    /* The line being rendered: where it starts in `buf`, whether it has
     * placeholders, whether one of them rendered something, whether it has
     * anything else than placeholders and blanks. */
    size_t line_start = 0;
    int holes = 0, filled = 0, text = 0, in_tag = 0;
    const char *run = tpl;
    for (const char *p = tpl;; p++) {
        if (*p == '\n' || *p == '\0') {
            s_append(&buf, &len, &cap, run, (size_t)(p - run));
            if (holes && !filled && !text) { /* only empty values: the line goes, with its newline */
                len = line_start;
                buf[len] = '\0';
            } else if (*p) {
                s_append(&buf, &len, &cap, "\n", 1);
            }
            if (!*p) break;
            run = p + 1;
            line_start = len;
            holes = filled = text = in_tag = 0;
            continue;
        }
        const char *name;
        size_t name_len;
        int raw, found;
        size_t whole = s_placeholder(p, &name, &name_len, &raw);
        if (!whole) {
            /* In HTML, markup is no text: "<p>{{comment}}</p>" goes too. */
            if (escape == MG_TEMPLATE_ESCAPE_HTML && (*p == '<' || *p == '>'))
                in_tag = *p == '<';
            else
                text |= !in_tag && *p != ' ' && *p != '\t' && *p != '\r';
            continue;
        }
        s_append(&buf, &len, &cap, run, (size_t)(p - run));
        const char *value = s_lookup(vars, n, name, name_len, &found);
        holes = 1;
        filled |= *value != '\0';
        if (escape == MG_TEMPLATE_ESCAPE_HTML && !raw)
            mg_template_escape_html(&buf, &len, &cap, value);
        else if ((escape == MG_TEMPLATE_ESCAPE_CHAT || escape == MG_TEMPLATE_ESCAPE_SLACK) && !raw)
            s_escape_chat(&buf, &len, &cap, value, escape == MG_TEMPLATE_ESCAPE_SLACK);
        else s_append(&buf, &len, &cap, value, strlen(value));
        p += whole - 1;
        run = p + 1;
    }
    return buf;
}

int mg_template_check(const char *tpl, const char *const *known, char *bad, size_t badlen, int *line) {
    int lineno = 1;
    for (const char *p = tpl; *p; p++) {
        if (*p == '\n') lineno++;
        if (p[0] != '{' || p[1] != '{') continue;
        const char *name;
        size_t name_len;
        int raw;
        size_t whole = s_placeholder(p, &name, &name_len, &raw);
        if (line) *line = lineno;
        if (!whole) { /* "{{Nom}}", "{{ville", "{{ nom-x }}": a typo, never meant as text */
            size_t n = strcspn(p, "\n");
            if (n > 40)
                for (n = 40; (p[n] & 0xC0) == 0x80; n--) { /* not inside a character */
                }
            if (bad && badlen) snprintf(bad, badlen, "%.*s", (int)n, p);
            return -2;
        }
        int ok = 0;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strncmp(known[i], name, name_len) == 0 && known[i][name_len] == '\0';
        if (!ok) {
            if (bad && badlen) snprintf(bad, badlen, "%.*s", (int)name_len, name);
            return -1;
        }
        p += whole - 1;
    }
    return 0;
}

static const char *const s_part_names[MG_TEMPLATE_PARTS] = {"subject", "text", "html", "item_text", "item_html"};

void mg_template_file_clear(mg_template_file_t *file) {
    for (int i = 0; i < MG_TEMPLATE_PARTS; i++) {
        free(file->part[i]);
        file->part[i] = NULL;
    }
}

/* Drop trailing newlines and blanks of a part. */
static void s_trim_end(char *s, size_t *len) {
    while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r' || s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        s[--*len] = '\0';
}

int mg_template_file_parse(const char *name, const char *data, size_t len, mg_template_file_t *out, char *err,
                           size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (!name) name = "(template)";
    if (memchr(data, '\0', len)) {
        snprintf(err, errlen, "%s: NUL byte in file", name);
        return -1;
    }
    if (!mg_utf8_is_valid(data, len)) {
        snprintf(err, errlen, "%s: not valid UTF-8", name);
        return -1;
    }
    int current = -1;
    size_t plen[MG_TEMPLATE_PARTS] = {0}, pcap[MG_TEMPLATE_PARTS] = {0};
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        lineno++;
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        size_t m = n;
        if (m > 0 && start[m - 1] == '\r') m--;
        if (m >= 3 && start[0] == '[' && start[m - 1] == ']') {
            int found = -1;
            for (int i = 0; i < MG_TEMPLATE_PARTS; i++)
                if (strlen(s_part_names[i]) == m - 2 && strncmp(start + 1, s_part_names[i], m - 2) == 0) found = i;
            if (found < 0) {
                snprintf(err, errlen, "%s:%zu: unknown part %.*s (subject, text, html, item_text, item_html)", name,
                         lineno, (int)(m > 40 ? 40 : m), start);
                goto err;
            }
            if (out->part[found]) {
                snprintf(err, errlen, "%s:%zu: part [%s] repeated", name, lineno, s_part_names[found]);
                goto err;
            }
            current = found;
            out->line[current] = (int)lineno + 1;
            s_append(&out->part[current], &plen[current], &pcap[current], "", 0);
            continue;
        }
        if (current < 0) {
            if (m == 0 || start[0] == '#') continue;
            snprintf(err, errlen, "%s:%zu: text before the first part (start with [subject])", name, lineno);
            goto err;
        }
        s_append(&out->part[current], &plen[current], &pcap[current], start, m);
        s_append(&out->part[current], &plen[current], &pcap[current], "\n", 1);
    }
    for (int i = 0; i < MG_TEMPLATE_PARTS; i++)
        if (out->part[i]) s_trim_end(out->part[i], &plen[i]);
    if (out->part[MG_TEMPLATE_SUBJECT] && strchr(out->part[MG_TEMPLATE_SUBJECT], '\n')) {
        snprintf(err, errlen, "%s: [subject] must be one line", name);
        goto err;
    }
    return 0;
err:
    mg_template_file_clear(out);
    return -1;
}

int mg_template_file_load(const char *path, mg_template_file_t *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (1u << 20)) break; /* a template is a few KB */
            buf = mg_realloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    int rc = mg_template_file_parse(path, buf ? buf : "", len, out, err, errlen);
    free(buf);
    return rc;
}
