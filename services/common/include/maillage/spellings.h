/* spellings.h -- how French writes a folded keyword, from a word list.
 *
 * The keyword overlap of match_score.h works on folded keywords
 * ("comptabilite"); an explanation shows each common word as the new item's
 * own text spells it, but a tag is often typed without its accents, and the
 * other side's text is not at hand. A word list (Debian's wfrench,
 * /usr/share/dict/french: one UTF-8 word per line) gives the spelling:
 * each word is folded as mg_text_keywords() folds it, and a keyword gets the
 * one spelling with accents its words agree on, the singular of a plural
 * ("bénévoles" and "bénévole" give "benevole" -> "bénévole"). A keyword
 * whose words disagree ("cote": côte, côté, coté) or that a plain word also
 * gives ("marche": marche, marché) gets none: a wrong accent would be worse
 * than none.
 *
 * Loading folds every word once (about 0.1 s for wfrench's 346,000 words)
 * and keeps ~100,000 keywords sorted; lookups are binary searches. Pure
 * after loading; any thread. */
#ifndef MAILLAGE_SPELLINGS_H
#define MAILLAGE_SPELLINGS_H

#include <stddef.h>
#include <stdio.h>

typedef struct mg_spellings mg_spellings_t;

/* Read the word list at `path`, a regular file, with mg_spellings_read().
 * Returns NULL with "PATH: reason" in `err` when it cannot be opened, is not
 * a regular file (a directory) or a read fails. Caller owns the result. */
mg_spellings_t *mg_spellings_load(const char *path, char *err, size_t errlen);

/* Read a word list from `f` (borrowed: read to its end, not closed), one
 * word per line, "\n" or "\r\n". A UTF-8 byte order mark at its start is
 * skipped; lines that are empty, longer than 128 bytes, not UTF-8 or that
 * hold a NUL byte are skipped. Returns NULL with "NAME: reason" in `err`
 * (`name` names the list) when a read fails. Caller owns the result. */
mg_spellings_t *mg_spellings_read(FILE *f, const char *name, char *err, size_t errlen);

/* Build from `n` words in memory (tests); never NULL. */
mg_spellings_t *mg_spellings_from_words(const char *const *words, size_t n);

/* The spelling with accents of folded keyword `keyword`, or NULL when the
 * list has none (or an ambiguous one). Borrowed from `s`. */
const char *mg_spellings_find(const mg_spellings_t *s, const char *keyword);

/* Replace each of the `n` spellings (aligned with `keywords`, as
 * mg_text_keywords_spelled() gives them) that is its keyword as is, of 5
 * letters or more, with the list's spelling of it, if it has one: a tag
 * typed plain ("comptabilite") reads "comptabilité". A plural typed plain
 * ("denis" gives "deni": a name, or "déni"?) and a short word (an acronym,
 * "CREA"; a foreign word, "male") stay as typed. `s` NULL changes nothing. */
void mg_spellings_respell(const mg_spellings_t *s, char *const *keywords, char **spellings, size_t n);

/* How many keywords have a spelling. */
size_t mg_spellings_count(const mg_spellings_t *s);

/* Free; accepts NULL and sets *s_p to NULL. */
void mg_spellings_destroy(mg_spellings_t **s_p);

#endif
