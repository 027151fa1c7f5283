/* match_score.c -- hard filters, score components and the French sentence
 * for one (need, offer) pair, and the French text folding behind the keyword
 * component.
 *
 * Rules chosen here (the header gives the contract; these are the details):
 *
 * Area. A pair is in area when the need's commune is in the offer's territory
 * ("dep:NN" = its department, "epci:SIREN" = its EPCI, or its commune code),
 * or when the distance between the two communes is within both radii. A need
 * radius of 0 means "no limit". An offer radius of 0 means the offer serves
 * its territory and its own commune only (so an offer with neither radius nor
 * territory serves its own commune). An offer always serves its own commune.
 *
 * Score. Each component is in 0..1; the score is sum(w*v)/sum(w) over the
 * non-negative weights (0 when they are all 0):
 *   distance          1 - d/R, floored at 0. Matched by the radii: R is the
 *                     smaller positive radius (50 km when neither is
 *                     positive, i.e. same commune). Matched only by the
 *                     territory: R is the need's radius, or 50 km without one.
 *                     An offer placed by its territory only is at no known
 *                     distance: 1 when that territory names the need's
 *                     commune (it serves that commune itself), else 0.
 *   keywords          |A n B| / max(min(|A|,|B|), 3) of the folded keywords
 *                     of tags + title + description of each side, the words
 *                     of the category's code left out ("formation",
 *                     "local" for locaux: both sides share the category
 *                     already): the overlap coefficient, where a side of
 *                     one or two words ("Formations") is not a full match.
 *   sector            same NAF sub-class 1, same division 0.6, same section
 *                     0.3, else (or unknown) 0.
 *   intercooperation  both structures of the ESS 1, one 0.5, none 0.
 *   freshness         1 - age/90 days, floored at 0.
 *   feedback          (contact_made + 1) / (contact_made + not_relevant + 2).
 *   fairness          1 / (1 + recent_proposals / 5).
 *
 * Folding. UTF-8 is decoded strictly; invalid bytes, and every code point
 * that is not an ASCII letter or digit or a Latin letter of Latin-1 or
 * Latin Extended-A, separate words (so apostrophes split "l'épicerie").
 * Letters are lower-cased and lose their accents (œ -> oe, æ -> ae,
 * ß -> ss). Then stop words, words shorter than 3 characters and words made
 * only of digits are dropped, words are cut at 40 characters, and a simple
 * plural is folded on words longer than 4 characters: "-eaux" -> "-eau"
 * ("bureaux" -> "bureau"), "-aux" -> "-al" ("locaux" -> "local"), "-ux" ->
 * "-u" ("lieux" -> "lieu"), and a final "s" not after another "s"
 * ("cuisines" -> "cuisine"); the irregular plurals of the trade ("baux",
 * "travaux", "matériaux", "tuyaux", "vitraux"...) and the short ones
 * ("jeux", "feux", "eaux") go to their singular.
 * Combining accents (text typed or pasted decomposed, NFD) are dropped
 * within a word, as the composed letters lose theirs. The same folding runs on both sides, so the
 * result only has to be consistent, not good French. Keywords are ASCII. */
#include "maillage/match_score.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/french.h"
#include "maillage/mem.h"

/* ---- Text folding ------------------------------------------------------ */

#define S_WORD_MAX 40

/* French stop words, accent-folded, sorted in C order for bsearch. Besides
 * grammar words, a few words every need or offer says ("besoin", "propose",
 * "recherche", "association", "structure", "ESS", "etc") carry no signal for the
 * overlap, nor do the fillers of a request ("egalement", "notamment",
 * "souhaitons", "trouver"). The elided forms of stop words are stop words
 * ("lorsqu'il": "lorsqu"), and so are the pieces of set phrases that mean
 * nothing alone ("c'est-à-dire": "dire", "au-delà": "dela"). */
static const char *const s_stop_words[] = {
    "a",          "afin",        "ai",         "aie",         "aient",       "aies",      "ainsi",
    "ait",        "alors",       "apres",      "as",          "association", "au",        "aucun",
    "aucune",     "aujourd",     "aupres",     "auquel",      "aura",        "aurai",     "auraient",
    "aurais",     "aurait",      "aurez",      "auriez",      "aurions",     "aurons",    "auront",
    "aussi",      "autant",      "autre",      "autres",      "aux",         "auxquels",  "avaient",
    "avais",      "avait",       "avant",      "avec",        "avez",        "avions",    "avoir",
    "avons",      "ayant",       "ayez",       "ayons",       "beaucoup",    "besoin",    "besoins",
    "bien",       "bonjour",     "c",          "ca",          "car",         "ce",        "ceci",
    "cela",       "celle",       "celles",     "celui",       "cependant",   "certain",   "certaine",
    "certaines",  "certains",    "ces",        "cet",         "cette",       "ceux",      "chacun",
    "chacune",    "chaque",      "cherche",    "cherchent",   "cherchez",    "cherchons", "chez",
    "ci",         "comme",       "comment",    "contre",      "d",           "dans",      "de",
    "deja",       "dela",        "depuis",     "des",         "deux",        "devant",    "dire",
    "disponible", "disponibles", "doit",       "doivent",     "donc",        "dont",      "du",
    "duquel",     "egalement",   "elle",       "elles",       "en",          "encore",    "entre",
    "es",         "ess",         "est",        "et",          "etaient",     "etais",     "etait",
    "etant",      "etc",         "ete",        "etes",        "etiez",       "etions",    "etre",
    "eu",         "eue",         "eues",       "eumes",       "eurent",      "eus",       "eut",
    "eux",        "faire",       "fait",       "fois",        "font",        "fumes",     "furent",
    "fus",        "fut",         "hors",       "hui",         "ici",         "il",        "ils",
    "j",          "je",          "jusqu",      "jusque",      "l",           "la",        "laquelle",
    "le",         "lequel",      "les",        "lesquelles",  "lesquels",    "leur",      "leurs",
    "lors",       "lorsqu",      "lorsque",    "lui",         "m",           "ma",        "maintenant",
    "mais",       "me",          "meme",       "memes",       "merci",       "mes",       "moi",
    "moins",      "mon",         "n",          "ne",          "ni",          "non",       "nos",
    "notamment",  "notre",       "nous",       "offre",       "offres",      "offrons",   "on",
    "ont",        "ou",          "par",        "parce",       "parmi",       "partir",    "pas",
    "pendant",    "peu",         "peut",       "peuvent",     "peux",        "plus",      "plusieurs",
    "pour",       "pourquoi",    "pourraient", "pourrait",    "pourrions",   "pourrons",  "pouvez",
    "pouvons",    "presqu",      "presque",    "propose",     "proposee",    "proposees", "proposent",
    "proposes",   "proposez",    "proposons",  "puis",        "puisqu",      "puisque",   "qu",
    "quand",      "que",         "quel",       "quelle",      "quelles",     "quelqu",    "quelque",
    "quelques",   "quels",       "qui",        "quoi",        "quoiqu",      "quoique",   "recherche",
    "recherchee", "recherchees", "recherches", "recherchons", "s",           "sa",        "sans",
    "se",         "selon",       "sera",       "serai",       "seraient",    "serais",    "serait",
    "serez",      "seriez",      "serions",    "serons",      "seront",      "ses",       "si",
    "sien",       "soient",      "sois",       "soit",        "sommes",      "son",       "sont",
    "souhaite",   "souhaitent",  "souhaitez",  "souhaitons",  "sous",        "soyez",     "soyons",
    "structure",  "suis",        "sur",        "svp",         "t",           "ta",        "tandis",
    "te",         "tel",         "telle",      "telles",      "tels",        "tes",       "toi",
    "ton",        "toujours",    "tous",       "tout",        "toute",       "toutes",    "tres",
    "trop",       "trouver",     "tu",         "un",          "une",         "unes",      "uns",
    "vers",       "veut",        "via",        "voici",       "voila",       "vont",      "vos",
    "votre",      "voudrait",    "voudrions",  "voulez",      "voulons",     "vous",      "y",
};

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int s_is_stop_word(const char *word) {
    return bsearch(&word, s_stop_words, sizeof s_stop_words / sizeof s_stop_words[0], sizeof s_stop_words[0],
                   s_cmp_str) != NULL;
}

/* Folding of U+00C0..U+00FF: a base letter, ' ' for a separator (x and
 * division signs), '*' for the two-letter cases handled in s_fold(). */
static const char s_latin1[65] = "aaaaaa*ceeeeiiiidnooooo ouuuuy**"
                                 "aaaaaa*ceeeeiiiidnooooo ouuuuy*y";

/* Folding of U+0100..U+017F (Latin Extended-A); '*' for IJ and OE. */
static const char s_latin_ext_a[129] =
    "aaaaaa"       /* U+0100 A macron, breve, ogonek */
    "cccccccc"     /* U+0106 C acute, circumflex, dot, caron */
    "dddd"         /* U+010E D caron, stroke */
    "eeeeeeeeee"   /* U+0112 E macron, breve, dot, ogonek, caron */
    "gggggggg"     /* U+011C G circumflex, breve, dot, cedilla */
    "hhhh"         /* U+0124 H circumflex, stroke */
    "iiiiiiiiii"   /* U+0128 I tilde, macron, breve, ogonek, dotted, dotless */
    "**"           /* U+0132 IJ ligature */
    "jj"           /* U+0134 J circumflex */
    "kkk"          /* U+0136 K cedilla, kra */
    "llllllllll"   /* U+0139 L acute, cedilla, caron, middle dot, stroke */
    "nnnnnnnnn"    /* U+0143 N acute, cedilla, caron, apostrophe, eng */
    "oooooo"       /* U+014C O macron, breve, double acute */
    "**"           /* U+0152 OE ligature */
    "rrrrrr"       /* U+0154 R acute, cedilla, caron */
    "ssssssss"     /* U+015A S acute, circumflex, cedilla, caron */
    "tttttt"       /* U+0162 T cedilla, caron, stroke */
    "uuuuuuuuuuuu" /* U+0168 U tilde, macron, breve, ring, double acute, ogonek */
    "ww"           /* U+0174 W circumflex */
    "yyy"          /* U+0176 Y circumflex, Y diaeresis */
    "zzzzzz"       /* U+0179 Z acute, dot, caron */
    "s" /* U+017F long s */;

/* Decode one code point at s[0..len). Returns its length in bytes and the
 * code point in *cp, or 0 for an ill-formed sequence (overlong forms,
 * surrogates, beyond U+10FFFF, truncated). */
static size_t s_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

/* The ASCII folding of code point `cp` into out[0..2], NUL-terminated:
 * "" when it separates words. */
static void s_fold(uint32_t cp, char out[3]) {
    out[0] = out[1] = out[2] = '\0';
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9'))
            out[0] = (char)cp;
        else if (cp >= 'A' && cp <= 'Z')
            out[0] = (char)(cp - 'A' + 'a');
        return;
    }
    if (cp >= 0xC0 && cp <= 0xFF) {
        char f = s_latin1[cp - 0xC0];
        if (f == '*') {
            const char *two = (cp == 0xC6 || cp == 0xE6) ? "ae" : (cp == 0xDF) ? "ss" : "th";
            memcpy(out, two, 2);
        } else if (f != ' ') {
            out[0] = f;
        }
        return;
    }
    if (cp >= 0x100 && cp <= 0x17F) {
        char f = s_latin_ext_a[cp - 0x100];
        if (f == '*')
            memcpy(out, (cp == 0x132 || cp == 0x133) ? "ij" : "oe", 2);
        else
            out[0] = f;
    }
}

/* Fold the plural of `w` (NUL-terminated, ASCII) in place; see the top. */
static void s_fold_plural(char *w) {
    static const char *const irregular[][2] = {
        {"baux", "bail"},     {"travaux", "travail"},    {"vitraux", "vitrail"}, {"emaux", "email"},
        {"coraux", "corail"}, {"materiaux", "materiau"}, {"tuyaux", "tuyau"},    {"noyaux", "noyau"},
        {"boyaux", "boyau"},  {"joyaux", "joyau"},       {"jeux", "jeu"},        {"feux", "feu"},
        {"eaux", "eau"}};
    for (size_t i = 0; i < sizeof(irregular) / sizeof(irregular[0]); i++) {
        if (strcmp(w, irregular[i][0]) == 0) {
            strcpy(w, irregular[i][1]); /* never longer */
            return;
        }
    }
    size_t n = strlen(w);
    if (n <= 4) return;
    if (strcmp(w + n - 4, "eaux") == 0) {
        w[n - 1] = '\0'; /* "bureaux" -> "bureau" */
    } else if (strcmp(w + n - 3, "aux") == 0) {
        strcpy(w + n - 2, "l"); /* "locaux" -> "local" */
    } else if (strcmp(w + n - 2, "ux") == 0) {
        w[n - 1] = '\0';
    } else if (w[n - 1] == 's' && w[n - 2] != 's') {
        w[n - 1] = '\0';
    }
}

/* Keep the word w[0..n) of `buf` (already folded) if it says something;
 * returns 1 when kept, with its plural folded and NUL-terminated. */
static int s_keep_word(char *w, size_t n) {
    if (n > S_WORD_MAX) n = S_WORD_MAX;
    w[n] = '\0';
    if (n < 3) return 0;
    if (strspn(w, "0123456789") == n) return 0;
    if (s_is_stop_word(w)) return 0;
    s_fold_plural(w);
    return strspn(w, "0123456789") != strlen(w) && !s_is_stop_word(w);
}

/* A kept word: its folding in the scratch buffer, where it was in the text,
 * whether it was spelled in plain ASCII there, and its rank (so a word's
 * first spelling with accents wins, else its first: a tag "numerique"
 * before a title's "numérique" gives "numérique"). */
typedef struct {
    const char *word;
    size_t from, to, rank;
    size_t first; /* the rank of the word's first place in the text, over its spellings */
    int plain;
} s_found_t;

static int s_cmp_first(const void *a, const void *b) {
    const s_found_t *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int s_cmp_found(const void *a, const void *b) {
    const s_found_t *x = a, *y = b;
    int c = strcmp(x->word, y->word);
    if (c) return c;
    if (x->plain != y->plain) return x->plain - y->plain;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* text[from..to) in lower case (A-Z, À-Þ, Œ and Ÿ: the capitals of French;
 * other bytes as they are), as a new string. */
static char *s_lower_copy(const char *text, size_t from, size_t to) {
    char *out = mg_malloc(to - from + 1);
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        unsigned char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        else if (i + 1 < to && c == 0xC3 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9E && s[i + 1] != 0x97) {
            out[n++] = (char)c;
            c = (unsigned char)(s[++i] + 0x20);
        } else if (i + 1 < to && c == 0xC5 && s[i + 1] == 0x92) {
            out[n++] = (char)c;
            c = 0x93, i++;
        } else if (i + 1 < to && c == 0xC5 && s[i + 1] == 0xB8) { /* Ÿ: ÿ is in Latin-1 */
            out[n++] = (char)0xC3;
            c = 0xBF, i++;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}

size_t mg_text_keywords_spelled(const char *text, char **words, char **spellings, size_t *places,
                                size_t max) {
    if (!text || !words || max == 0) return 0;
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    /* Every code point folds into at most as many bytes as it takes, plus
     * one terminator per word: 2 * len + 2 bytes always suffice. */
    char *buf = mg_malloc(2 * len + 2);
    size_t nwords = 0, cap = 16;
    s_found_t *list = mg_malloc(cap * sizeof *list);
    size_t out = 0, start = 0, from = 0;

    for (size_t i = 0; i <= len;) {
        char f[3] = "";
        size_t step = 1;
        if (i < len) {
            uint32_t cp;
            step = s_utf8_decode(s + i, len - i, &cp);
            if (step == 0) {
                step = 1; /* skip a bad byte: it separates words */
            } else if (cp >= 0x300 && cp <= 0x36F) {
                i += step; /* a combining accent (NFD): dropped, the word goes on */
                continue;
            } else {
                s_fold(cp, f);
            }
        }
        if (f[0] != '\0') {
            if (out == start) from = i;
            size_t fl = strlen(f);
            memcpy(buf + out, f, fl);
            out += fl;
        } else if (out > start) {
            if (s_keep_word(buf + start, out - start)) {
                if (nwords == cap) {
                    cap *= 2;
                    list = mg_realloc(list, cap * sizeof *list);
                }
                int plain = 1;
                for (size_t k = from; k < i && plain; k++)
                    plain = s[k] < 0x80;
                list[nwords] = (s_found_t){buf + start, from, i, nwords, nwords, plain};
                nwords++;
                start += strlen(buf + start) + 1; /* keep it, terminator included */
            }
            out = start; /* a dropped word's bytes are reused */
        }
        i += step;
    }

    /* Each word once, in its preferred spelling (the first of its run). */
    qsort(list, nwords, sizeof *list, s_cmp_found);
    size_t distinct = 0;
    for (size_t i = 0; i < nwords; i++) {
        if (distinct > 0 && strcmp(list[i].word, list[distinct - 1].word) == 0) {
            if (list[i].rank < list[distinct - 1].first) list[distinct - 1].first = list[i].rank;
            continue;
        }
        list[distinct++] = list[i];
    }
    /* More than `max`: those the text says first (tags, then the title, then
     * the description), not the first in alphabetical order. */
    if (distinct > max) {
        qsort(list, distinct, sizeof *list, s_cmp_first);
        distinct = max;
        qsort(list, distinct, sizeof *list, s_cmp_found);
    }
    size_t written = 0;
    for (size_t i = 0; i < distinct; i++) {
        if (spellings) spellings[written] = s_lower_copy(text, list[i].from, list[i].to);
        if (places) places[written] = list[i].first;
        words[written++] = mg_strdup(list[i].word);
    }
    free(list);
    free(buf);
    return written;
}

size_t mg_text_keywords(const char *text, char **words, size_t max) {
    return mg_text_keywords_spelled(text, words, NULL, NULL, max);
}

/* ---- Filters ----------------------------------------------------------- */

/* Radius applied when a pair matched without any positive radius. */
#define S_DEFAULT_RADIUS_KM 50.0
/* Age at which an offer's freshness reaches 0. */
#define S_FRESHNESS_DAYS 90.0
/* Recent proposals that halve a provider's fairness. */
#define S_FAIRNESS_HALF 5.0
/* Keywords read from each side's texts. */
#define S_KEYWORDS_MAX 256
/* The least side the keyword overlap divides by, and the words of a
 * category's code left out of it. */
#define S_KEYWORDS_SIDE_MIN 3
#define S_CATEGORY_WORDS    4

static int s_is_ess(Maillage__V1__Family family) {
    switch (family) {
    case MAILLAGE__V1__FAMILY__FAMILY_ASSOCIATION:
    case MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE:
    case MAILLAGE__V1__FAMILY__FAMILY_MUTUAL:
    case MAILLAGE__V1__FAMILY__FAMILY_FOUNDATION:
    case MAILLAGE__V1__FAMILY__FAMILY_ESS_COMPANY:
    case MAILLAGE__V1__FAMILY__FAMILY_NETWORK:
        return 1;
    default:
        return 0;
    }
}

static int s_empty(const char *s) {
    return !s || s[0] == '\0';
}

/* 1 if `today` lies within [from, until]; empty bounds are open. ISO dates
 * compare as strings. */
static int s_valid_on(const char *today, const char *from, const char *until) {
    if (s_empty(today)) return 1;
    if (!s_empty(from) && strcmp(today, from) < 0) return 0;
    if (!s_empty(until) && strcmp(today, until) > 0) return 0;
    return 1;
}

static const mg_commune_t *s_need_commune(const mg_match_input_t *in) {
    if (in->need_commune) return in->need_commune;
    return in->need_party ? in->need_party->commune : NULL;
}

static const mg_commune_t *s_offer_commune(const mg_match_input_t *in) {
    if (in->offer_commune) return in->offer_commune;
    /* An offer placed by its territory only has no place of its own: its
     * provider's seat is not one. */
    if (s_empty(in->offer->commune)) return NULL;
    return in->offer_party ? in->offer_party->commune : NULL;
}

/* How a pair is in area, and the figures the score needs. */
typedef struct {
    int same_commune;
    int by_radius;         /* within both radii (or same commune) */
    const char *territory; /* the territory entry that matched (the narrowest), or NULL */
    int territory_commune; /* ... and it names the need's commune */
    int distance_known;
    double distance_km;
} s_area_t;

static void s_area(const mg_match_input_t *in, s_area_t *a) {
    const Maillage__V1__Need *need = in->need;
    const Maillage__V1__Offer *offer = in->offer;
    const mg_commune_t *nc = s_need_commune(in);
    const mg_commune_t *oc = s_offer_commune(in);
    const char *need_code = nc ? nc->code : need->commune;
    const char *offer_code = oc ? oc->code : offer->commune;
    memset(a, 0, sizeof *a);

    a->same_commune = !s_empty(need_code) && !s_empty(offer_code) && strcmp(need_code, offer_code) == 0;
    if (nc && oc) {
        a->distance_known = 1;
        a->distance_km = a->same_commune ? 0.0 : mg_communes_distance_km(nc, oc);
    }

    /* The territory entry the need's commune is in, the narrowest of them
     * (its commune, then its EPCI, then its department), whatever their order. */
    int narrowest = 0; /* 3 commune, 2 EPCI, 1 department */
    for (size_t i = 0; i < offer->n_territory && narrowest < 3; i++) {
        const char *t = offer->territory[i];
        int fits = 0;
        if (s_empty(t)) continue;
        if (strncmp(t, "dep:", 4) == 0)
            fits = nc && strcmp(t + 4, nc->department) == 0 ? 1 : 0;
        else if (strncmp(t, "epci:", 5) == 0)
            fits = nc && nc->epci[0] != '\0' && strcmp(t + 5, nc->epci) == 0 ? 2 : 0;
        else
            fits = !s_empty(need_code) && strcmp(t, need_code) == 0 ? 3 : 0;
        if (fits > narrowest) narrowest = fits, a->territory = t;
    }
    a->territory_commune = narrowest == 3;

    if (a->same_commune) {
        a->by_radius = 1; /* an offer always serves its own commune */
    } else if (a->distance_known && offer->radius_km > 0) {
        int need_ok = need->radius_km == 0 || a->distance_km <= (double)need->radius_km;
        int offer_ok = a->distance_km <= (double)offer->radius_km;
        a->by_radius = need_ok && offer_ok;
    }
}

static int s_contains(char *const *list, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++) {
        if (list[i] && s && strcmp(list[i], s) == 0) return 1;
    }
    return 0;
}

int mg_match_family_admitted(const Maillage__V1__OfferConditions *c, Maillage__V1__Family family) {
    if (!c) return 1;
    if (c->ess_only && !s_is_ess(family)) return 0;
    if (c->n_families > 0) {
        int allowed = 0;
        for (size_t i = 0; i < c->n_families && !allowed; i++)
            allowed = c->families[i] == family;
        if (!allowed) return 0;
    }
    return 1;
}

static int s_conditions_hold(const mg_match_input_t *in) {
    const Maillage__V1__OfferConditions *c = in->offer->conditions;
    if (!c) return 1;
    const mg_match_party_t *p = in->need_party;
    Maillage__V1__Family family = p ? p->family : MAILLAGE__V1__FAMILY__FAMILY_UNSPECIFIED;

    if (!mg_match_family_admitted(c, family)) return 0;
    if (c->n_member_of > 0) {
        int member = 0;
        for (const char *const *net = p ? p->networks : NULL; net && *net && !member; net++) {
            member = s_contains(c->member_of, c->n_member_of, *net);
        }
        if (!member) return 0;
    }
    if (c->n_departments > 0) {
        const mg_commune_t *nc = s_need_commune(in);
        if (!nc || !s_contains(c->departments, c->n_departments, nc->department)) return 0;
    }
    return 1;
}

mg_match_verdict_t mg_match_filter(const mg_match_input_t *in) {
    const Maillage__V1__Need *need = in->need;
    const Maillage__V1__Offer *offer = in->offer;

    if (s_empty(need->category) || s_empty(offer->category) || strcmp(need->category, offer->category) != 0)
        return MG_MATCH_OTHER_CATEGORY;

    const char *need_structure = !s_empty(need->structure_id) ? need->structure_id
                                 : in->need_party             ? in->need_party->structure_id
                                                              : NULL;
    const char *provider = !s_empty(offer->provider_id) ? offer->provider_id
                           : in->offer_party            ? in->offer_party->structure_id
                                                        : NULL;
    if (!s_empty(need_structure) && !s_empty(provider) && strcmp(need_structure, provider) == 0)
        return MG_MATCH_SAME_STRUCTURE;

    if (!s_valid_on(in->today, need->valid_from, need->valid_until) ||
        !s_valid_on(in->today, offer->valid_from, offer->valid_until))
        return MG_MATCH_NOT_VALID_TODAY;

    s_area_t area;
    s_area(in, &area);
    if (!area.by_radius && !area.territory) return MG_MATCH_OUT_OF_AREA;

    if (!s_conditions_hold(in)) return MG_MATCH_CONDITIONS;
    return MG_MATCH_OK;
}

const char *mg_match_verdict_name(mg_match_verdict_t verdict) {
    switch (verdict) {
    case MG_MATCH_OK:
        return "ok";
    case MG_MATCH_OTHER_CATEGORY:
        return "other_category";
    case MG_MATCH_SAME_STRUCTURE:
        return "same_structure";
    case MG_MATCH_OUT_OF_AREA:
        return "out_of_area";
    case MG_MATCH_NOT_VALID_TODAY:
        return "not_valid_today";
    case MG_MATCH_CONDITIONS:
        return "conditions";
    }
    return "unknown";
}

/* ---- Scoring ----------------------------------------------------------- */

void mg_match_weights_default(mg_match_weights_t *w) {
    w->distance = 0.25;
    w->keywords = 0.25;
    w->sector = 0.10;
    w->intercooperation = 0.10;
    w->freshness = 0.10;
    w->feedback = 0.10;
    w->fairness = 0.10;
    w->threshold = 0.35;
}

/* A bounded UTF-8 string: appends what fits, cut before a character that
 * would not fit whole, and nothing more once something was cut (so the text
 * never skips a piece to show a later one). */
typedef struct {
    char *buf;
    size_t size;
    size_t len;
    int full;
} s_text_t;

static void s_text_init(s_text_t *t, char *buf, size_t size) {
    t->buf = buf;
    t->size = size;
    t->len = 0;
    t->full = size == 0;
    if (size > 0) buf[0] = '\0';
}

static void s_text_add(s_text_t *t, const char *s) {
    if (t->full) return;
    size_t n = strlen(s);
    size_t room = t->size - 1 - t->len;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] starts the first dropped char */
        t->full = 1;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void s_text_addf(s_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_text_addf(s_text_t *t, const char *fmt, ...) {
    char tmp[1024]; /* larger than any buffer filled here, so a cut happens in s_text_add */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    s_text_add(t, tmp);
}

static const char *s_department_name(const char *code) {
    static const struct {
        const char *code, *name;
    } names[] = {
        {"14", "Calvados"}, {"27", "Eure"}, {"50", "Manche"}, {"61", "Orne"}, {"76", "Seine-Maritime"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(code, names[i].code) == 0) return names[i].name;
    }
    return NULL;
}

/* "Calvados", "CU Caen la Mer", "Caen": the name of a matched territory. */
static void s_territory_name(const char *entry, const mg_commune_t *nc, char *out, size_t size) {
    if (strncmp(entry, "dep:", 4) == 0) {
        const char *name = s_department_name(entry + 4);
        if (name)
            snprintf(out, size, "%s", name);
        else
            snprintf(out, size, "département %s", entry + 4);
    } else if (strncmp(entry, "epci:", 5) == 0) {
        if (nc && nc->epci_name && nc->epci_name[0])
            snprintf(out, size, "%s", nc->epci_name);
        else
            snprintf(out, size, "EPCI %s", entry + 5);
    } else {
        snprintf(out, size, "%s", nc && nc->name ? nc->name : entry);
    }
}

double mg_match_distance_shown(double km) {
    return round(km * 10.0) / 10.0;
}

/* "à 4 km", from the distance the match.found carries: the notifier
 * phrases that value, and both must say the same (106.46 km read « à 106
 * km » here but « à 107 km » there, from 106.5). */
static void s_distance_phrase(double km, s_text_t *t) {
    char phrase[32];
    s_text_add(t, mg_fr_distance(mg_match_distance_shown(km), 0, phrase, sizeof(phrase)));
}

static double s_distance(const mg_match_input_t *in, const s_area_t *a, char *detail, size_t size) {
    unsigned need_r = in->need->radius_km, offer_r = in->offer->radius_km;
    s_text_t t;
    s_text_init(&t, detail, size);
    if (a->same_commune) {
        s_text_add(&t, "dans la même commune");
        return 1.0;
    }
    if (!a->distance_known) {
        /* An offer placed by its territory only: where, not how far. */
        if (!a->territory) return 0.0;
        char name[128];
        s_territory_name(a->territory, s_need_commune(in), name, sizeof name);
        s_text_addf(&t, "sur le territoire desservi (%s)", name);
        return a->territory_commune ? 1.0 : 0.0;
    }

    double radius;
    if (a->by_radius || !a->territory) {
        unsigned r = need_r > 0 && (offer_r == 0 || need_r < offer_r) ? need_r : offer_r;
        radius = r > 0 ? (double)r : S_DEFAULT_RADIUS_KM;
        s_distance_phrase(a->distance_km, &t);
        if (r > 0) s_text_addf(&t, " dans un rayon de %u km", r);
    } else {
        char name[128];
        radius = need_r > 0 ? (double)need_r : S_DEFAULT_RADIUS_KM;
        s_territory_name(a->territory, s_need_commune(in), name, sizeof name);
        s_distance_phrase(a->distance_km, &t);
        s_text_addf(&t, ", sur le territoire desservi (%s)", name);
    }
    double v = 1.0 - a->distance_km / radius;
    return v > 0.0 ? v : 0.0;
}

/* Tags, title and description of one side as one text. Caller frees. */
static char *s_side_text(char *const *tags, size_t n_tags, const char *title, const char *description) {
    size_t len = 1;
    for (size_t i = 0; i < n_tags; i++)
        len += (tags[i] ? strlen(tags[i]) : 0) + 1;
    len += (title ? strlen(title) : 0) + 1 + (description ? strlen(description) : 0) + 1;
    char *s = mg_malloc(len);
    s_text_t t;
    s_text_init(&t, s, len);
    for (size_t i = 0; i < n_tags; i++) {
        if (tags[i]) s_text_add(&t, tags[i]);
        s_text_add(&t, " ");
    }
    if (title) s_text_add(&t, title);
    s_text_add(&t, " ");
    if (description) s_text_add(&t, description);
    return s;
}

size_t mg_match_need_keywords(const Maillage__V1__Need *need, char **words, char **spellings, size_t *places,
                              size_t max) {
    char *text = s_side_text(need->tags, need->n_tags, need->title, need->description);
    size_t n = mg_text_keywords_spelled(text, words, spellings, places, max);
    free(text);
    return n;
}

size_t mg_match_offer_keywords(const Maillage__V1__Offer *offer, char **words, char **spellings,
                               size_t *places, size_t max) {
    char *text = s_side_text(offer->tags, offer->n_tags, offer->title, offer->description);
    size_t n = mg_text_keywords_spelled(text, words, spellings, places, max);
    free(text);
    return n;
}

static void s_free_words(char **words, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

/* 1 if `w` is one of words[0..n). */
static int s_among(const char *w, char *const *words, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(w, words[i]) == 0) return 1;
    return 0;
}

/* The shared words the explanation names: at most this many, "et N autres"
 * for the rest. */
#define S_WORDS_SHOWN 4

static double s_keywords(const mg_match_input_t *in, char *detail, size_t size) {
    /* Use the caller's folded keywords when given (a matcher folds a need
     * once for all its candidates), else fold both sides here. */
    char **own_a = NULL, **own_b = NULL, **own_sa = NULL, **own_sb = NULL;
    size_t *own_pa = NULL, *own_pb = NULL;
    const char *const *a = in->need_keywords, *const *b = in->offer_keywords;
    const char *const *sa = in->need_spellings, *const *sb = in->offer_spellings;
    const size_t *pa = in->need_places, *pb = in->offer_places;
    size_t na = in->n_need_keywords, nb = in->n_offer_keywords;
    if (!a) {
        own_a = mg_malloc(S_KEYWORDS_MAX * sizeof *own_a);
        own_sa = mg_malloc(S_KEYWORDS_MAX * sizeof *own_sa);
        pa = own_pa = mg_malloc(S_KEYWORDS_MAX * sizeof *own_pa);
        na = mg_match_need_keywords(in->need, own_a, own_sa, own_pa, S_KEYWORDS_MAX);
        a = (const char *const *)own_a, sa = (const char *const *)own_sa;
    }
    if (!b) {
        own_b = mg_malloc(S_KEYWORDS_MAX * sizeof *own_b);
        own_sb = mg_malloc(S_KEYWORDS_MAX * sizeof *own_sb);
        pb = own_pb = mg_malloc(S_KEYWORDS_MAX * sizeof *own_pb);
        nb = mg_match_offer_keywords(in->offer, own_b, own_sb, own_pb, S_KEYWORDS_MAX);
        b = (const char *const *)own_b, sb = (const char *const *)own_sb;
    }

    /* The words of the category's code: each side may say them, and they
     * tell nothing the category did not. A code is ASCII words joined by
     * '_' ([categories]): folded here as keywords are, without allocating
     * (this runs for every candidate pair). */
    char code[S_CATEGORY_WORDS * (S_WORD_MAX + 1)], *cat[S_CATEGORY_WORDS];
    size_t ncat = 0, size_a = na, size_b = nb;
    snprintf(code, sizeof(code), "%s", in->need && in->need->category ? in->need->category : "");
    for (char *w = code, *end; *w && ncat < S_CATEGORY_WORDS; w = end) {
        end = w + strcspn(w, "_");
        int more = *end == '_';
        if (s_keep_word(w, (size_t)(end - w))) cat[ncat++] = w; /* NUL-terminates it */
        end += more;
    }

    /* The shared words, in alphabetical order, with where a side first says
     * them (the nearer of the two when both sides tell). */
    struct {
        const char *shown; /* as a side's own text spells it ("équipe"), else folded */
        size_t place;
    } shared[S_KEYWORDS_MAX];
    size_t common = 0;
    for (size_t i = 0, j = 0; i < na || j < nb;) { /* both lists are sorted */
        int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i], b[j]);
        const char *w = c <= 0 ? a[i] : b[j];
        if (s_among(w, cat, ncat)) {
            if (c <= 0) size_a--, i++;
            if (c >= 0) size_b--, j++;
        } else if (c < 0) {
            i++;
        } else if (c > 0) {
            j++;
        } else {
            if (common < S_KEYWORDS_MAX) {
                size_t place = pa ? pa[i] : SIZE_MAX;
                if (pb && pb[j] < place) place = pb[j];
                shared[common].shown = sa ? sa[i] : sb ? sb[j] : a[i];
                shared[common].place = place;
            }
            common++;
            i++, j++;
        }
    }
    /* More than S_WORDS_SHOWN: those said first, still in alphabetical order. */
    size_t listed = common < S_KEYWORDS_MAX ? common : S_KEYWORDS_MAX;
    unsigned char chosen[S_KEYWORDS_MAX] = {0};
    for (size_t k = 0; k < S_WORDS_SHOWN && k < listed; k++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < listed; i++)
            if (!chosen[i] && (best == SIZE_MAX || shared[i].place < shared[best].place)) best = i;
        chosen[best] = 1;
    }
    s_text_t t;
    s_text_init(&t, detail, size);
    if (common == 1) { /* singular: "mot commun : cuisine" (a spelling may be longer than S_WORD_MAX bytes) */
        s_text_addf(&t, "mot commun : %s", shared[0].shown);
    } else {
        for (size_t i = 0, n = 0; i < listed; i++)
            if (chosen[i]) s_text_addf(&t, "%s%s", n++ == 0 ? "mots communs : " : ", ", shared[i].shown);
        if (common > S_WORDS_SHOWN)
            s_text_addf(&t, " et %zu autre%s", common - S_WORDS_SHOWN, common - S_WORDS_SHOWN > 1 ? "s" : "");
    }
    size_t smaller = size_a < size_b ? size_a : size_b;
    double v = (double)common / (double)(smaller > S_KEYWORDS_SIDE_MIN ? smaller : S_KEYWORDS_SIDE_MIN);

    if (own_a) s_free_words(own_a, na), s_free_words(own_sa, na), free(own_pa);
    if (own_b) s_free_words(own_b, nb), s_free_words(own_sb, nb), free(own_pb);
    return v;
}

/* NAF code without its dot, upper case: "88.10A" -> "8810A". */
static void s_naf_normalize(const char *code, char out[8]) {
    size_t n = 0;
    for (const char *p = code ? code : ""; *p && n < 7; p++) {
        if (*p == '.' || *p == ' ') continue;
        out[n++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
    }
    out[n] = '\0';
}

/* Section of a NAF division (from the INSEE table shared in
 * naf-rev2-sections.csv), with a short French label; NULL if none. */
static const char *s_naf_section(int division, char *letter) {
    static const struct {
        int from, to;
        char letter;
        const char *label;
    } sections[] = {
        {1, 3, 'A', "agriculture, sylviculture et pêche"},
        {5, 9, 'B', "industries extractives"},
        {10, 33, 'C', "industrie manufacturière"},
        {35, 35, 'D', "énergie"},
        {36, 39, 'E', "eau, assainissement et déchets"},
        {41, 43, 'F', "construction"},
        {45, 47, 'G', "commerce"},
        {49, 53, 'H', "transports et entreposage"},
        {55, 56, 'I', "hébergement et restauration"},
        {58, 63, 'J', "information et communication"},
        {64, 66, 'K', "activités financières et d'assurance"},
        {68, 68, 'L', "activités immobilières"},
        {69, 75, 'M', "activités spécialisées, scientifiques et techniques"},
        {77, 82, 'N', "services administratifs et de soutien"},
        {84, 84, 'O', "administration publique"},
        {85, 85, 'P', "enseignement"},
        {86, 88, 'Q', "santé humaine et action sociale"},
        {90, 93, 'R', "arts, spectacles et activités récréatives"},
        {94, 96, 'S', "autres activités de services"},
        {97, 98, 'T', "activités des ménages"},
        {99, 99, 'U', "activités extra-territoriales"},
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (division >= sections[i].from && division <= sections[i].to) {
            *letter = sections[i].letter;
            return sections[i].label;
        }
    }
    return NULL;
}

static int s_naf_division(const char *normalized) {
    if (normalized[0] < '0' || normalized[0] > '9' || normalized[1] < '0' || normalized[1] > '9') return -1;
    return (normalized[0] - '0') * 10 + (normalized[1] - '0');
}

static double s_sector(const mg_match_input_t *in, char *detail, size_t size) {
    const char *need_naf = in->need_party ? in->need_party->naf_code : NULL;
    const char *offer_naf = in->offer_party ? in->offer_party->naf_code : NULL;
    char a[8], b[8];
    s_naf_normalize(need_naf, a);
    s_naf_normalize(offer_naf, b);
    int da = s_naf_division(a), db = s_naf_division(b);
    detail[0] = '\0';
    if (da < 0 || db < 0) return 0.0;
    if (strcmp(a, b) == 0) {
        snprintf(detail, size, "même secteur d'activité (%s)", need_naf);
        return 1.0;
    }
    if (da == db) {
        snprintf(detail, size, "même division d'activité (NAF %02d)", da);
        return 0.6;
    }
    char la = 0, lb = 0;
    const char *label = s_naf_section(da, &la);
    s_naf_section(db, &lb);
    if (label && la == lb) {
        s_text_t t;
        s_text_init(&t, detail, size);
        s_text_addf(&t, "secteurs d'activité proches (%s)", label);
        return 0.3;
    }
    return 0.0;
}

static double s_intercooperation(const mg_match_input_t *in, char *detail, size_t size) {
    int n = (in->need_party && s_is_ess(in->need_party->family)) +
            (in->offer_party && s_is_ess(in->offer_party->family));
    detail[0] = '\0';
    if (n == 2) snprintf(detail, size, "deux structures de l'ESS");
    return n / 2.0;
}

static double s_freshness(const mg_match_input_t *in, char *detail, size_t size) {
    double age = in->offer_age_days > 0 ? (double)in->offer_age_days : 0.0;
    detail[0] = '\0';
    if (age <= 14.0) snprintf(detail, size, "offre récente");
    double v = 1.0 - age / S_FRESHNESS_DAYS;
    return v > 0.0 ? v : 0.0;
}

static double s_feedback(const mg_match_input_t *in, char *detail, size_t size) {
    double made = in->feedback_contact_made, not_relevant = in->feedback_not_relevant;
    double v = (made + 1.0) / (made + not_relevant + 2.0);
    detail[0] = '\0';
    if (in->feedback_contact_made >= 2 && v >= 0.6)
        snprintf(detail, size, "offre souvent suivie d'une mise en relation");
    return v;
}

static double s_fairness(const mg_match_input_t *in) {
    return 1.0 / (1.0 + (double)in->provider_recent_proposals / S_FAIRNESS_HALF);
}

static double s_weight(double w) {
    return w > 0.0 && isfinite(w) ? w : 0.0;
}

enum { S_DISTANCE, S_KEYWORDS, S_SECTOR, S_INTERCOOPERATION, S_FRESHNESS, S_FEEDBACK, S_FAIRNESS };

double mg_match_score(const mg_match_input_t *in, const mg_match_weights_t *weights, mg_match_score_t *out) {
    mg_match_weights_t defaults;
    if (!weights) {
        mg_match_weights_default(&defaults);
        weights = &defaults;
    }
    memset(out, 0, sizeof *out);
    s_area_t area;
    s_area(in, &area);
    out->distance_km = area.distance_known ? area.distance_km : -1.0;

    static const char *const names[MG_MATCH_COMPONENTS] = {
        "distance", "keywords", "sector", "intercooperation", "freshness", "feedback", "fairness"};
    const double w[MG_MATCH_COMPONENTS] = {weights->distance,         weights->keywords,  weights->sector,
                                           weights->intercooperation, weights->freshness, weights->feedback,
                                           weights->fairness};
    const size_t dsize = sizeof out->components[0].detail;
    double v[MG_MATCH_COMPONENTS];
    v[S_DISTANCE] = s_distance(in, &area, out->components[S_DISTANCE].detail, dsize);
    v[S_KEYWORDS] = s_keywords(in, out->components[S_KEYWORDS].detail, dsize);
    v[S_SECTOR] = s_sector(in, out->components[S_SECTOR].detail, dsize);
    v[S_INTERCOOPERATION] = s_intercooperation(in, out->components[S_INTERCOOPERATION].detail, dsize);
    v[S_FRESHNESS] = s_freshness(in, out->components[S_FRESHNESS].detail, dsize);
    v[S_FEEDBACK] = s_feedback(in, out->components[S_FEEDBACK].detail, dsize);
    v[S_FAIRNESS] = s_fairness(in);

    double sum = 0.0, total = 0.0;
    for (int i = 0; i < MG_MATCH_COMPONENTS; i++) {
        out->components[i].name = names[i];
        out->components[i].value = v[i];
        out->components[i].weight = s_weight(w[i]);
        sum += out->components[i].weight * v[i];
        total += out->components[i].weight;
    }
    out->score = total > 0.0 ? sum / total : 0.0;

    /* The sentence: the category, then what speaks for the pair, in the
     * order staff weigh it; a component with no weight says nothing. The
     * shared words come last, because their list is itself comma-separated. */
    static const int order[] = {S_DISTANCE,  S_SECTOR,   S_INTERCOOPERATION,
                                S_FRESHNESS, S_FEEDBACK, S_KEYWORDS};
    s_text_t t;
    s_text_init(&t, out->explanation, sizeof out->explanation);
    char label[sizeof out->explanation];
    mg_fr_lower_initial(!s_empty(in->category_label) ? in->category_label : in->offer->category, label,
                        sizeof(label));
    /* "Logistique (transport, stockage)" reads "(logistique : transport,
     * stockage)", not in parentheses within parentheses. */
    const char *open = strstr(label, " (");
    size_t len = strlen(label);
    if (open && open > label && label[len - 1] == ')')
        s_text_addf(&t, "Même catégorie (%.*s : %.*s)", (int)(open - label), label,
                    (int)(len - (size_t)(open - label) - 3), open + 2);
    else
        s_text_addf(&t, "Même catégorie (%s)", label);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *detail = out->components[order[i]].detail;
        if (detail[0] == '\0' || out->components[order[i]].weight <= 0.0) continue;
        s_text_add(&t, ", ");
        s_text_add(&t, detail);
    }
    return out->score;
}
