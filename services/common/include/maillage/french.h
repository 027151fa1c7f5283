/* french.h -- the French words staff read for the schema's enums and for the
 * departments, in one place for the CLI's text and the notifier's messages.
 * Static strings; any thread. */
#ifndef MAILLAGE_FRENCH_H
#define MAILLAGE_FRENCH_H

#include <stddef.h>

#include "maillage/v1/events.pb-c.h"

/* "Calvados" for "14", or NULL for a department the table does not know. */
const char *mg_fr_department(const char *code);

/* The code of the table's i-th department ("14"), NULL past the last. */
const char *mg_fr_department_code(size_t i);

/* "le Calvados", "l'Eure", "la Manche"; NULL when unknown. */
const char *mg_fr_department_with_article(const char *code);

/* Where things happen: "dans le Calvados", "dans l'Eure", "en
 * Seine-Maritime"; NULL when unknown. */
const char *mg_fr_department_in(const char *code);

/* "association", "coopérative", ... ("structure" when unspecified). */
const char *mg_fr_family(Maillage__V1__Family family);

/* "Associations", "Coopératives", ... for table headings. */
const char *mg_fr_family_plural(Maillage__V1__Family family);

/* Why a need closed: "satisfait", "annulé", "expiré", "la structure a
 * quitté le réseau"; with `feminine`, why an offer was withdrawn ("pourvue",
 * "annulée", "expirée"). */
const char *mg_fr_closure(Maillage__V1__Closure reason, int feminine);

/* "mutualisation", "partenariat", "réponse commune", ... */
const char *mg_fr_cooperation_kind(Maillage__V1__CooperationKind kind);

/* "acceptée", "déclinée", "en discussion". */
const char *mg_fr_cooperation_answer(Maillage__V1__CooperationAnswer answer);

/* "mise en relation faite", "pas pertinent". */
const char *mg_fr_match_outcome(Maillage__V1__MatchOutcome outcome);

/* "de" before `name`, elided or contracted as French wants, written into
 * `buf`: "du Calvados" (le), "des Andelys" (les), "de la Manche", "de
 * l'Eure", "d'Honfleur", "d'Épicerie solidaire", "de Caen", "de la CU Caen
 * la Mer" (given "la CU Caen la Mer": see mg_fr_epci()). Returns `buf`. */
char *mg_fr_de(const char *name, char *buf, size_t len);

/* "de" before a person's name: "d'Éric Morel", "d'Hélène", "de Yann Duval",
 * "de Le Goff Marie" (never contracted: no "du Goff"). Returns `buf`. */
char *mg_fr_de_person(const char *name, char *buf, size_t len);

/* "à" before `name`, contracted as French wants, written into `buf`: "au
 * Havre" (le), "aux Andelys" (les), "à la Manche", "à Caen", "à la CC
 * Pré-Bocage Intercom" (given "la CC ..."). Returns `buf`. */
char *mg_fr_a(const char *name, char *buf, size_t len);

/* An intercommunality's name with its article, into `buf`: "la CU Caen la
 * Mer". Normandy's are all communautés (de communes, d'agglomération,
 * urbaines) or a métropole: feminine. Returns `buf`. */
char *mg_fr_epci(const char *name, char *buf, size_t len);

/* A label as it reads inside a sentence, into `buf`: its first letter
 * lowered ("Locaux" -> "locaux", "Équipement" -> "équipement") unless it
 * starts an acronym ("ESS", "TPE"); cut, if it must be, at a character.
 * Returns `buf`. */
char *mg_fr_lower_initial(const char *label, char *buf, size_t len);

/* A network named in a sentence, with its article, into `buf`: "le réseau
 * URSCOP Normandie", but "le Réseau normand des ressourceries", "la
 * Fédération des centres sociaux", "l'Union régionale des Scop" when the
 * name starts with such a noun, "le Mouvement associatif" for "Le
 * Mouvement associatif" (and "L'", "L’"), "un réseau" without a name.
 * mg_fr_a() of it reads "au réseau URSCOP Normandie", "à l'Union ...".
 * Returns `buf`. */
char *mg_fr_network(const char *name, char *buf, size_t len);

/* A distance as explanations say it, written into `buf`: "dans la même
 * commune" when `same_commune`, else "à moins d'un km" or "à 4 km" (whole
 * km). Returns `buf`. */
char *mg_fr_distance(double km, int same_commune, char *buf, size_t len);

/* `v` with `decimals` decimals and a decimal comma, written into `buf`:
 * "3,6". Returns `buf`. */
char *mg_fr_number(double v, int decimals, char *buf, size_t len);

/* A score in [0, 1] as a percentage, written into `buf`: "72 %" (rounded).
 * Returns `buf`. */
char *mg_fr_percent(double score, char *buf, size_t len);

/* The same with at most `decimals` decimals, trailing zeros dropped:
 * "49,5 %", "50 %". */
char *mg_fr_percent_with(double score, int decimals, char *buf, size_t len);

/* The decimals (0 to 2) a percentage needs so that `score` does not read as
 * any of the `n` values `others` it is compared with, unless equal: a score
 * of 0.4951 below a threshold of 0.5 is "49,5 %", not "50 %". */
int mg_fr_percent_decimals(double score, const double *others, size_t n);

/* mg_fr_percent_with() of a score said to be under `limit` (the lowest of
 * the thresholds named beside it): rounded as everywhere else when that
 * reads below `limit`, else rounded down, so that it never reads as the
 * threshold, even closer than two decimals ("39,99 %" under 40 %). */
char *mg_fr_percent_under(double score, int decimals, double limit, char *buf, size_t len);

#endif
