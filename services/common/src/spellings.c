/* spellings.c -- a folded keyword's spelling with accents, from a word list.
 *
 * The list is outside input ([data] words_file): read by getline(), which
 * counts a line's bytes, so a NUL inside one skips it rather than cutting
 * it short; fuzz/fuzz_spellings.c feeds it bytes. */
#include "maillage/spellings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "maillage/envelope.h"
#include "maillage/match_score.h"
#include "maillage/mem.h"

#define S_LINE_MAX    128 /* longer lines are no words */
#define S_RESPELL_MIN 5   /* shorter keywords are left as typed */

struct mg_spellings {
    char *arena;     /* "keyword\0spelling\0" for each entry */
    const char **kw; /* sorted (strcmp) */
    const char **sp; /* aligned with kw */
    size_t n;
};

typedef struct {
    char *kw, *sp; /* owned while building */
} s_pair_t;

typedef struct {
    s_pair_t *v;
    size_t n, cap;
} s_pairs_t;

static void s_add_word(s_pairs_t *p, const char *word) {
    char *kw[2], *sp[2];
    size_t n = mg_text_keywords_spelled(word, kw, sp, NULL, 2);
    if (n == 1) {
        if (p->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 1024;
            p->v = mg_realloc(p->v, p->cap * sizeof(*p->v));
        }
        p->v[p->n++] = (s_pair_t){kw[0], sp[0]};
        return;
    }
    for (size_t i = 0; i < n; i++)
        free(kw[i]), free(sp[i]);
}

static int s_pair_cmp(const void *a, const void *b) {
    const s_pair_t *x = a, *y = b;
    int c = strcmp(x->kw, y->kw);
    return c ? c : strcmp(x->sp, y->sp);
}

static int s_has_accent(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 1;
    return 0;
}

/* Whether `sp` is the plural of another spelling of the group [g, g + n):
 * the same plus "s" or "x", or "aux" for "al". */
static int s_is_plural(const s_pair_t *g, size_t n, const char *sp) {
    size_t len = strlen(sp);
    for (size_t i = 0; i < n; i++) {
        const char *o = g[i].sp;
        size_t ol = strlen(o);
        if (len == ol + 1 && (sp[ol] == 's' || sp[ol] == 'x') && strncmp(sp, o, ol) == 0) return 1;
        if (len == ol + 1 && ol >= 2 && strcmp(sp + len - 3, "aux") == 0 && strcmp(o + ol - 2, "al") == 0 &&
            strncmp(sp, o, ol - 2) == 0)
            return 1;
    }
    return 0;
}

/* The one spelling of a group of pairs sharing a keyword, once plurals are
 * set aside, if it has accents; else NULL (no accent, or ambiguous). */
static const char *s_group_spelling(const s_pair_t *g, size_t n) {
    const char *one = NULL;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(g[i].sp, g[i - 1].sp) == 0) continue;
        if (s_is_plural(g, n, g[i].sp)) continue;
        if (one) return NULL;
        one = g[i].sp;
    }
    return one && s_has_accent(one) ? one : NULL;
}

static mg_spellings_t *s_build(s_pairs_t *p) {
    if (p->n) qsort(p->v, p->n, sizeof(*p->v), s_pair_cmp); /* (v is NULL for none) */
    mg_spellings_t *s = mg_calloc(1, sizeof(*s));
    size_t bytes = 0, n = 0;
    for (int pass = 0; pass < 2; pass++) {
        char *at = s->arena;
        for (size_t i = 0, j; i < p->n; i = j) {
            j = i + 1;
            while (j < p->n && strcmp(p->v[j].kw, p->v[i].kw) == 0)
                j++;
            const char *sp = s_group_spelling(p->v + i, j - i);
            if (!sp) continue;
            size_t kl = strlen(p->v[i].kw) + 1, sl = strlen(sp) + 1;
            if (pass == 0) {
                bytes += kl + sl;
                n++;
                continue;
            }
            memcpy(at, p->v[i].kw, kl);
            memcpy(at + kl, sp, sl);
            s->kw[s->n] = at;
            s->sp[s->n++] = at + kl;
            at += kl + sl;
        }
        if (pass == 0) {
            s->arena = mg_malloc(bytes ? bytes : 1);
            s->kw = mg_malloc((n ? n : 1) * sizeof(*s->kw));
            s->sp = mg_malloc((n ? n : 1) * sizeof(*s->sp));
        }
    }
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].kw), free(p->v[i].sp);
    free(p->v);
    return s;
}

mg_spellings_t *mg_spellings_from_words(const char *const *words, size_t n) {
    s_pairs_t p = {0};
    for (size_t i = 0; i < n; i++)
        s_add_word(&p, words[i]);
    return s_build(&p);
}

mg_spellings_t *mg_spellings_load(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* A directory opens, and fails only at the first read. */
    struct stat st;
    const char *why = fstat(fileno(f), &st) != 0 ? strerror(errno)
                      : !S_ISREG(st.st_mode)     ? "not a regular file"
                                                 : NULL;
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        fclose(f);
        return NULL;
    }
    mg_spellings_t *s = mg_spellings_read(f, path, err, errlen);
    fclose(f);
    return s;
}

mg_spellings_t *mg_spellings_read(FILE *f, const char *name, char *err, size_t errlen) {
    s_pairs_t p = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    for (int first = 1; (got = getline(&line, &cap, f)) >= 0; first = 0) {
        char *word = line;
        size_t n = (size_t)got;
        if (first) { /* a UTF-8 byte order mark is no part of the first word */
            word += mg_utf8_bom_len(word, n);
            n -= (size_t)(word - line);
        }
        if (n && word[n - 1] == '\n') n--;
        if (n && word[n - 1] == '\r') n--;
        /* getline() counts the bytes: a NUL would cut the line into a word
         * it is not. */
        if (n == 0 || n > S_LINE_MAX || memchr(word, '\0', n)) continue;
        word[n] = '\0';
        word[strcspn(word, "\r")] = '\0';
        if (*word && mg_utf8_is_valid(word, strlen(word))) s_add_word(&p, word);
    }
    int failed = ferror(f), saved = errno;
    free(line);
    if (failed) {
        snprintf(err, errlen, "%s: %s", name, saved ? strerror(saved) : "read error");
        for (size_t i = 0; i < p.n; i++)
            free(p.v[i].kw), free(p.v[i].sp);
        free(p.v);
        return NULL;
    }
    return s_build(&p);
}

const char *mg_spellings_find(const mg_spellings_t *s, const char *keyword) {
    if (!s || !keyword) return NULL;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->kw[mid], keyword);
        if (c == 0) return s->sp[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void mg_spellings_respell(const mg_spellings_t *s, char *const *keywords, char **spellings, size_t n) {
    for (size_t i = 0; s && i < n; i++) {
        /* Only a word typed as its keyword (a plural may be a name: "Denis"
         * folds to "deni", "déni" in the list) and long enough not to be an
         * acronym or a foreign word ("CREA", "male"). */
        if (strcmp(spellings[i], keywords[i]) != 0 || strlen(keywords[i]) < S_RESPELL_MIN) continue;
        const char *sp = mg_spellings_find(s, keywords[i]);
        if (!sp) continue;
        free(spellings[i]);
        spellings[i] = mg_strdup(sp);
    }
}

size_t mg_spellings_count(const mg_spellings_t *s) {
    return s ? s->n : 0;
}

void mg_spellings_destroy(mg_spellings_t **s_p) {
    if (!s_p || !*s_p) return;
    mg_spellings_t *s = *s_p;
    free(s->arena);
    free(s->kw);
    free(s->sp);
    free(s);
    *s_p = NULL;
}
