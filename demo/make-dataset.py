#!/usr/bin/python3
"""Generate demo/normandie.ndjson: a fictitious but plausible Normandy dataset.

Every line is a maillage.v1.Envelope in canonical proto3 JSON, checked by
python3-protobuf's json_format. Ids are stable so re-emitting is idempotent.
"""
import csv
import json
import random
import sys
import unicodedata
import datetime

# Usage: /usr/bin/python3 demo/make-dataset.py [BUILD_DIR [OUTPUT]]
# (BUILD_DIR holds the generated python bindings, build/python.)
import os  # noqa: E402
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build"), "python"))
from google.protobuf import json_format  # noqa: E402
from maillage.v1 import envelope_pb2  # noqa: E402

COMMUNES = {}
with open(os.path.join(HERE, "..", "config", "communes-normandie.csv"), encoding="utf-8") as f:
    for row in csv.DictReader(f):
        COMMUNES[row["nom"]] = row


def commune(name):
    return COMMUNES[name]["code_insee"]


def epci(name):
    return "epci:" + COMMUNES[name]["epci_siren"]


rng = random.Random(2026)


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def make_siren():
    while True:
        base = str(rng.randint(30000000, 99999999)).zfill(8)
        for last in range(10):
            s = base + str(last)
            if luhn_ok(s):
                return s


def make_siret(siren):
    while True:
        nic = str(rng.randint(10, 999)).zfill(4)
        for last in range(10):
            s = siren + nic + str(last)
            if luhn_ok(s):
                return s


# (id, name, family, legal_category, naf, commune name, networks, labels,
#  employees, volunteers, description, contact (name, role))
S = []


def structure(sid, name, family, cj, naf, town, networks, labels, employees, volunteers,
              description, contact_name, role, joined_network, joined_on, siren=None):
    S.append(dict(sid=sid, name=name, family=family, cj=cj, naf=naf, town=town,
                  networks=networks, labels=labels, employees=employees,
                  volunteers=volunteers, description=description,
                  contact_name=contact_name, role=role, joined_network=joined_network,
                  joined_on=joined_on, official_siren=siren))


# ---- networks --------------------------------------------------------------
structure("fcs-normandie", "Fédération des centres sociaux et socioculturels de Normandie",
          "FAMILY_NETWORK", "9220", "94.99Z", "Caen", ["cress-normandie"], [], 6, 40,
          "Fédère une soixantaine de centres sociaux normands : formation des équipes, "
          "appui aux projets d'animation de la vie sociale, plaidoyer.",
          "Claire Vasseur", "déléguée régionale", "cress-normandie", "2026-09-02")
structure("urscop-normandie", "Union régionale des Scop et Scic de Normandie",
          "FAMILY_NETWORK", "9220", "94.12Z", "Rouen", ["cress-normandie"], [], 9, 0,
          "Accompagne la création, la transmission en coopérative et le développement "
          "des Scop et Scic de la région.",
          "Thomas Lebrun", "délégué régional", "cress-normandie", "2026-09-02")
structure("manche-active", "Manche Active Solidaire (réseau France Active)",
          "FAMILY_NETWORK", "9220", "64.92Z", "Saint-Lô", ["cress-normandie"], [], 7, 25,
          "Antenne départementale du réseau France Active : garanties bancaires, prêts "
          "solidaires et accompagnement financier des entreprises de l'ESS de la Manche.",
          "Sophie Marie", "chargée d'investissement", "cress-normandie", "2026-09-03")
structure("geiq-btp-eure", "GEIQ Bâtiment Durable de l'Eure",
          "FAMILY_ASSOCIATION", "9223", "78.30Z", "Évreux", ["cress-normandie"], ["siae"], 14, 0,
          "Groupement d'employeurs pour l'insertion et la qualification : recrute, forme "
          "en alternance et met à disposition des salariés dans le bâtiment éco-rénové.",
          "Karim Benali", "directeur", "cress-normandie", "2026-09-05")
structure("reseau-ressourceries-normandie", "Réseau normand des ressourceries et recycleries",
          "FAMILY_NETWORK", "9220", "94.99Z", "Argentan", ["cress-normandie"], [], 3, 12,
          "Anime les ressourceries normandes : collecte, valorisation, éducation à "
          "l'environnement, mutualisation des moyens logistiques.",
          "Élodie Petit", "coordinatrice", "cress-normandie", "2026-09-04")
structure("jardins-insertion-normandie", "Collectif normand des jardins d'insertion",
          "FAMILY_NETWORK", "9220", "94.99Z", "Coutances", ["cress-normandie"], [], 2, 10,
          "Réseau des jardins maraîchers d'insertion de Normandie : échanges de pratiques, "
          "débouchés en restauration collective, formation des encadrants.",
          "Paul Hamel", "coordinateur", "cress-normandie", "2026-09-08")

# ---- associations ----------------------------------------------------------
structure("saveurs-partagees-caen", "Saveurs Partagées",
          "FAMILY_ASSOCIATION", "9221", "56.10A", "Caen", ["fcs-normandie"], ["siae"], 11, 20,
          "Restaurant et traiteur d'insertion : prépare des repas de saison avec des "
          "personnes éloignées de l'emploi.",
          "Nadia Ferreira", "directrice", "fcs-normandie", "2026-10-01")
structure("epicerie-solidaire-bessin", "Épicerie solidaire du Bessin",
          "FAMILY_ASSOCIATION", "9220", "88.99B", "Bayeux", ["fcs-normandie"], [], 3, 35,
          "Épicerie à petits prix pour les familles orientées par les travailleurs "
          "sociaux ; ateliers cuisine et budget.",
          "Jeanne Lecoq", "présidente", "fcs-normandie", "2026-10-03")
structure("repair-cafe-lexovien", "Repair Café lexovien",
          "FAMILY_ASSOCIATION", "9220", "95.29Z", "Lisieux", ["reseau-ressourceries-normandie"], [], 0, 28,
          "Ateliers mensuels de réparation d'objets du quotidien avec des bénévoles "
          "bricoleurs.",
          "Marc Duval", "trésorier", "reseau-ressourceries-normandie", "2026-10-05")
structure("ressourcerie-la-boucle", "Ressourcerie La Boucle",
          "FAMILY_ASSOCIATION", "9221", "38.32Z", "Val-de-Reuil", ["reseau-ressourceries-normandie"],
          ["siae"], 18, 15,
          "Collecte, trie, répare et revend meubles et objets ; chantier d'insertion de "
          "douze postes.",
          "Hélène Moreau", "directrice", "reseau-ressourceries-normandie", "2026-09-20")
structure("jardins-cocagne-cotentin", "Jardins de Cocagne du Cotentin",
          "FAMILY_ASSOCIATION", "9221", "01.13Z", "Cherbourg-en-Cotentin",
          ["jardins-insertion-normandie"], ["siae"], 16, 8,
          "Maraîchage biologique d'insertion : paniers hebdomadaires et légumes pour la "
          "restauration collective.",
          "Yann Le Goff", "directeur", "jardins-insertion-normandie", "2026-09-15")
structure("creche-ptits-galets", "Crèche parentale Les P'tits Galets",
          "FAMILY_ASSOCIATION", "9220", "88.91A", "Fécamp", [], [], 7, 12,
          "Crèche parentale de vingt berceaux gérée par les familles.",
          "Aurélie Vautier", "co-présidente", "cress-normandie", "2026-10-10")
structure("theatre-estran", "Compagnie Théâtre de l'Estran",
          "FAMILY_ASSOCIATION", "9220", "90.01Z", "Dieppe", [], [], 3, 10,
          "Compagnie de théâtre professionnelle : créations, ateliers en milieu scolaire "
          "et en EHPAD.",
          "Lucie Garnier", "administratrice", "cress-normandie", "2026-10-12")
structure("radio-bocage", "Radio Bocage FM",
          "FAMILY_ASSOCIATION", "9220", "60.10Z", "Flers", [], [], 4, 30,
          "Radio associative locale du bocage ornais : information de proximité, émissions "
          "faites par les habitants.",
          "Julien Roussel", "coordinateur d'antenne", "cress-normandie", "2026-10-02")
structure("mobilite-solidaire-perche", "Mobilité solidaire du Perche",
          "FAMILY_ASSOCIATION", "9220", "49.39B", "Mortagne-au-Perche", [], [], 2, 45,
          "Transport solidaire à la demande pour les personnes sans voiture : rendez-vous "
          "médicaux, courses, démarches.",
          "Bernard Hue", "président", "cress-normandie", "2026-10-06")
structure("domicile-pays-auge", "Aide à domicile Pays d'Auge",
          "FAMILY_ASSOCIATION", "9220", "88.10A", "Honfleur", [], [], 64, 10,
          "Service d'aide et d'accompagnement à domicile des personnes âgées et "
          "handicapées.",
          "Isabelle Lefèvre", "directrice", "cress-normandie", "2026-10-08")
structure("mjc-vernon", "Maison des jeunes et de la culture de Vernon",
          "FAMILY_ASSOCIATION", "9220", "93.29Z", "Vernon", ["fcs-normandie"], [], 12, 50,
          "Activités culturelles et de loisirs pour les jeunes, studio de musique, "
          "accueil de loisirs.",
          "Samuel Ogier", "directeur", "fcs-normandie", "2026-10-09")
structure("lire-ecrire-orne", "Lire et Écrire en Orne",
          "FAMILY_ASSOCIATION", "9220", "85.59B", "Alençon", [], [], 3, 40,
          "Ateliers sociolinguistiques et lutte contre l'illettrisme, avec des bénévoles "
          "formés.",
          "Fatou Diallo", "coordinatrice", "cress-normandie", "2026-10-11")
structure("espaces-verts-solidaires-havre", "Espaces verts solidaires havrais",
          "FAMILY_ASSOCIATION", "9221", "81.30Z", "Le Havre", [], ["siae"], 22, 4,
          "Chantier d'insertion d'entretien d'espaces verts et de jardins partagés.",
          "Olivier Lemaître", "encadrant technique", "cress-normandie", "2026-10-13")
structure("fjt-le-relais-saint-lo", "Foyer de jeunes travailleurs Le Relais",
          "FAMILY_ASSOCIATION", "9220", "55.90Z", "Saint-Lô", ["manche-active"], [], 9, 6,
          "Loge et accompagne quatre-vingts jeunes en formation ou en premier emploi.",
          "Anne Guérin", "directrice", "manche-active", "2026-10-14")
structure("centre-social-grand-parc", "Centre socioculturel du Grand Parc",
          "FAMILY_ASSOCIATION", "9220", "88.99B", "Hérouville-Saint-Clair", ["fcs-normandie"], [], 15, 60,
          "Centre social agréé : accueil des familles, accompagnement scolaire, "
          "animations de quartier.",
          "Mehdi Chaouch", "directeur", "fcs-normandie", "2026-09-25")
structure("fabrique-rurale-bernay", "La Fabrique rurale",
          "FAMILY_ASSOCIATION", "9220", "94.99Z", "Bernay", [], [], 4, 25,
          "Tiers-lieu rural : coworking, fablab, café associatif et ateliers numériques.",
          "Chloé Renaud", "coordinatrice", "cress-normandie", "2026-10-15")

# ---- cooperatives ----------------------------------------------------------
structure("cae-rouen-seine", "Coopérative d'activité et d'emploi Rouen Seine",
          "FAMILY_COOPERATIVE", "5458", "70.22Z", "Rouen", ["urscop-normandie"], [], 85, 0,
          "CAE : héberge des entrepreneurs salariés et les accompagne dans le test et le "
          "développement de leur activité.",
          "Marion Caron", "gérante", "urscop-normandie", "2026-09-18")
structure("editions-du-marais", "Les Éditions du Marais",
          "FAMILY_COOPERATIVE", "5458", "58.14Z", "Carentan-les-Marais", ["urscop-normandie"], [], 6, 0,
          "Scop d'édition et de graphisme : revues, supports de communication, sites web "
          "pour les acteurs locaux.",
          "Gaëlle Jourdan", "co-gérante", "urscop-normandie", "2026-09-22")
structure("scic-restau-bio-normand", "Scic Restauration collective bio normande",
          "FAMILY_COOPERATIVE", "5560", "56.29A", "Coutances", ["urscop-normandie", "jardins-insertion-normandie"],
          ["scic", "esus"], 28, 0,
          "Cuisine centrale coopérative : repas bio et locaux pour cantines et EHPAD, "
          "associant producteurs, salariés et collectivités.",
          "Vincent Lebas", "directeur général", "urscop-normandie", "2026-09-19")
structure("scic-numerique-solidaire", "Scic Numérique solidaire normand",
          "FAMILY_COOPERATIVE", "5560", "95.11Z", "Caen", ["urscop-normandie"], ["scic", "esus"], 9, 5,
          "Reconditionne des ordinateurs, forme aux outils libres et accompagne les "
          "associations dans leur transition numérique.",
          "Antoine Perrin", "directeur", "urscop-normandie", "2026-09-21")
structure("scop-nettoyage-havre", "Scop Nettoyage écologique havrais",
          "FAMILY_COOPERATIVE", "5458", "81.21Z", "Le Havre", ["urscop-normandie"], [], 31, 0,
          "Nettoyage de bureaux et de locaux associatifs avec des produits écolabellisés.",
          "Sandrine Leroux", "gérante", "urscop-normandie", "2026-09-23")
structure("cuma-trois-vallees", "CUMA des Trois Vallées",
          "FAMILY_COOPERATIVE", "6316", "01.61Z", "Argentan", [], [], 2, 0,
          "Coopérative d'utilisation de matériel agricole de trente-cinq exploitations.",
          "Didier Marchand", "président", "cress-normandie", "2026-10-16")
structure("coop-laitiere-val-de-saire", "Coopérative laitière du Val de Saire",
          "FAMILY_COOPERATIVE", "6317", "10.51A", "Valognes", [], [], 46, 0,
          "Collecte et transforme le lait de soixante producteurs du Cotentin.",
          "Erwan Le Bihan", "responsable logistique", "cress-normandie", "2026-10-17")
structure("cidrerie-pays-auge", "Cidrerie coopérative du Pays d'Auge",
          "FAMILY_COOPERATIVE", "6317", "11.03Z", "Livarot-Pays-d'Auge", [], [], 12, 0,
          "Presse et commercialise les pommes de quarante vergers haute-tige.",
          "Pierre Lesage", "directeur", "cress-normandie", "2026-10-18")

# ---- mutuals, cooperative banks, foundations -------------------------------
structure("mutuelle-sante-solidaire", "Mutuelle santé solidaire normande",
          "FAMILY_MUTUAL", "8210", "65.12Z", "Rouen", [], [], 140, 60,
          "Mutuelle santé régionale ; fonds de prévention et d'action sociale.",
          "Catherine Delaunay", "responsable action sociale", "cress-normandie", "2026-09-10")
structure("mutuelle-assurance-associations", "Mutuelle d'assurance des associations de l'Ouest",
          "FAMILY_MUTUAL", "6411", "65.12Z", "Caen", [], [], 75, 0,
          "Assure les associations et leurs bénévoles ; diagnostics des risques.",
          "François Tessier", "chargé de développement", "cress-normandie", "2026-09-11")
structure("credit-solidaire-evreux", "Caisse locale de crédit solidaire d'Évreux",
          "FAMILY_COOPERATIVE", "6595", "64.19Z", "Évreux", [], [], 18, 0,
          "Banque coopérative locale : prêts aux associations et aux entreprises de l'ESS.",
          "Laurence Picard", "conseillère ESS", "cress-normandie", "2026-09-12")
structure("fondation-littoral-solidaire", "Fondation Littoral solidaire",
          "FAMILY_FOUNDATION", "9300", "88.99B", "Le Havre", [], [], 5, 0,
          "Finance des projets d'inclusion et de transition écologique sur le littoral "
          "normand.",
          "Hugo Bertrand", "chargé de programmes", "cress-normandie", "2026-09-14")
structure("fondation-bocage-avenir", "Fondation Bocage Avenir",
          "FAMILY_FOUNDATION", "9300", "94.99Z", "Flers", [], [], 2, 0,
          "Fondation territoriale : bourses aux initiatives rurales du bocage normand.",
          "Martine Olivier", "déléguée générale", "cress-normandie", "2026-09-16")

# ---- ESS companies (ESUS) --------------------------------------------------
structure("recyclerie-numerique-evreux", "Recyclerie numérique d'Évreux",
          "FAMILY_ESS_COMPANY", "5710", "47.79Z", "Évreux", [], ["esus"], 8, 0,
          "SAS agréée ESUS : collecte et reconditionne le matériel informatique des "
          "entreprises.",
          "Romain Fleury", "président", "cress-normandie", "2026-10-20")
structure("net-eure-insertion", "Net'Eure Insertion",
          "FAMILY_ESS_COMPANY", "5710", "81.21Z", "Louviers", [], ["esus", "siae"], 38, 0,
          "Entreprise d'insertion de nettoyage et de propreté urbaine.",
          "Céline Barbier", "directrice", "cress-normandie", "2026-10-21")
structure("baluchon-logistique", "Baluchon logistique urbaine",
          "FAMILY_ESS_COMPANY", "5710", "53.20Z", "Rouen", [], ["esus"], 11, 0,
          "Livraison du dernier kilomètre en vélo-cargo et entrepôt urbain mutualisé.",
          "Maxime Colin", "cofondateur", "cress-normandie", "2026-10-22")

# ---- local businesses ------------------------------------------------------
structure("traiteur-lemoine", "Traiteur Maison Lemoine",
          "FAMILY_LOCAL_BUSINESS", "5499", "56.21Z", "Caen", [], [], 9, 0,
          "Traiteur événementiel ; sa cuisine est libre la plupart des après-midi.",
          "Patrick Lemoine", "gérant", "cress-normandie", "2026-10-23")
structure("immobiliere-pays-de-caux", "Immobilière du Pays de Caux",
          "FAMILY_LOCAL_BUSINESS", "5499", "68.20B", "Yvetot", [], [], 4, 0,
          "Loue des locaux d'activité et des entrepôts dans le pays de Caux.",
          "Nathalie Grenier", "gérante", "cress-normandie", "2026-10-24")
structure("negoce-agricole-saint-lois", "Négoce agricole saint-lois",
          "FAMILY_LOCAL_BUSINESS", "5710", "46.21Z", "Saint-Lô", [], [], 23, 0,
          "Négoce de céréales et d'aliments ; dispose d'entrepôts et d'une flotte de "
          "camions.",
          "Jérôme Lecomte", "directeur logistique", "cress-normandie", "2026-10-24")
structure("cabinet-assur-ouest", "Cabinet Assur'Ouest",
          "FAMILY_LOCAL_BUSINESS", "5499", "66.22Z", "Avranches", [], [], 6, 0,
          "Courtier en assurances ; ses associés donnent du temps aux associations.",
          "Stéphane Noël", "associé", "cress-normandie", "2026-10-25")

# ---- public bodies ---------------------------------------------------------
structure("ccas-cherbourg", "CCAS de Cherbourg-en-Cotentin",
          "FAMILY_PUBLIC_BODY", "7361", "88.99B", "Cherbourg-en-Cotentin", [], [], 120, 0,
          "Centre communal d'action sociale : aides facultatives, épicerie sociale, "
          "résidences autonomie.",
          "Service développement social", "service", "cress-normandie", "2026-09-30")
structure("ville-val-de-reuil-eco", "Ville de Val-de-Reuil — mission économie sociale",
          "FAMILY_PUBLIC_BODY", "7210", "84.11Z", "Val-de-Reuil", [], [], 0, 0,
          "Mission municipale qui soutient l'installation d'activités de l'ESS dans les "
          "quartiers.",
          "Mission économie sociale", "service", "cress-normandie", "2026-09-29",
          # The town's own SIREN (siren_commune of 27701 in the COG 2026 commune file).
          siren="212707012")
structure("cc-terres-argentan", "Communauté de communes Terres d'Argentan Interco",
          "FAMILY_PUBLIC_BODY", "7346", "84.11Z", "Argentan", [], [], 0, 0,
          "Service développement économique : immobilier d'entreprise, appui aux "
          "porteurs de projets ruraux.",
          "Service développement économique", "service", "cress-normandie", "2026-09-28",
          # The intercommunality's own SIREN, the one its offer's territory names.
          siren=COMMUNES["Argentan"]["epci_siren"])

BY_ID = {s["sid"]: s for s in S}

# ---- needs: (id, structure, category, tags, title, description, radius, quantity, urgency, until)
NEEDS = [
    ("need-spc-cuisine", "saveurs-partagees-caen", "locaux", ["cuisine", "traiteur", "haccp"],
     "Cuisine partagée pour traiteur solidaire",
     "Cuisine professionnelle aux normes HACCP, trois après-midi par semaine, pour "
     "développer l'activité traiteur du chantier d'insertion.", 15, "3 après-midi/semaine", 3, "2027-06-30"),
    ("need-estran-salle", "theatre-estran", "locaux", ["salle", "repetition", "spectacle"],
     "Salle de répétition deux soirs par semaine",
     "Plateau d'au moins 80 m² pour répéter la prochaine création, de janvier à mai.",
     30, "80 m²", 2, "2027-05-31"),
    ("need-creche-financement", "creche-ptits-galets", "financement", ["investissement", "amenagement", "petite-enfance"],
     "Financer le réaménagement du dortoir",
     "Travaux d'isolation phonique et mobilier adapté pour le dortoir des petits.",
     0, "18 000 €", 2, "2027-03-31"),
    ("need-boucle-pret", "ressourcerie-la-boucle", "financement", ["pret", "camion", "investissement"],
     "Prêt pour un second camion de collecte",
     "Camion 20 m³ avec hayon pour doubler les tournées de collecte chez les habitants.",
     60, "35 000 €", 2, "2027-02-28"),
    ("need-grand-parc-juridique", "centre-social-grand-parc", "competences", ["juridique", "droit-associatif", "gouvernance"],
     "Appui juridique pour réviser nos statuts",
     "Relecture des statuts et du règlement intérieur avant l'assemblée générale.",
     40, "2 demi-journées", 1, "2027-04-30"),
    ("need-fjt-comptable", "fjt-le-relais-saint-lo", "competences", ["comptabilite", "gestion", "budget"],
     "Compétences en comptabilité analytique",
     "Mettre en place une comptabilité analytique par activité (logement, restauration).",
     50, "5 jours", 2, "2027-03-31"),
    ("need-cocagne-encadrant", "jardins-cocagne-cotentin", "emploi_partage", ["encadrant", "maraichage", "temps-partage"],
     "Encadrant technique maraîcher à temps partagé",
     "Un mi-temps d'encadrant technique d'insertion, à partager avec une autre structure.",
     40, "0,5 ETP", 3, "2027-01-31"),
    ("need-cuma-salarie", "cuma-trois-vallees", "emploi_partage", ["mecanique", "chauffeur", "temps-partage"],
     "Mécanicien-chauffeur partagé entre structures",
     "Salarié polyvalent pour l'entretien du parc et la conduite, à partager l'hiver.",
     40, "1 ETP", 2, "2027-09-30"),
    ("need-ccas-achats", "ccas-cherbourg", "achats", ["clauses-sociales", "nettoyage", "insertion"],
     "Prestataire d'insertion pour le nettoyage des résidences",
     "Marché de nettoyage de trois résidences autonomie avec clause sociale d'insertion.",
     50, "3 résidences", 2, "2027-01-15"),
    ("need-mutuelle-traiteur", "mutuelle-sante-solidaire", "achats", ["traiteur", "repas", "evenementiel"],
     "Traiteur solidaire pour l'assemblée générale",
     "Buffet pour 250 délégués en juin, avec des produits locaux de saison.",
     80, "250 couverts", 1, "2027-05-15"),
    ("need-epicerie-frigo", "epicerie-solidaire-bessin", "logistique", ["froid", "transport", "camion"],
     "Transport frigorifique depuis la banque alimentaire",
     "Deux tournées par semaine entre Caen et Bayeux en camion réfrigéré.",
     40, "2 tournées/semaine", 3, "2027-06-30"),
    ("need-boucle-stockage", "ressourcerie-la-boucle", "logistique", ["stockage", "entrepot", "meubles"],
     "Entrepôt de stockage pour meubles collectés",
     "300 m² couverts et accessibles en camion pour stocker le mobilier en attente.",
     30, "300 m²", 2, "2027-12-31"),
    ("need-repair-outillage", "repair-cafe-lexovien", "materiel", ["outillage", "electronique", "reparation"],
     "Outillage électronique pour les ateliers",
     "Stations de soudure, multimètres et alimentation de laboratoire.",
     50, "4 postes", 1, "2027-06-30"),
    ("need-evs-debroussailleuses", "espaces-verts-solidaires-havre", "materiel", ["espaces-verts", "outillage", "batterie"],
     "Débroussailleuses et taille-haies sur batterie",
     "Renouveler le matériel thermique bruyant par du matériel sur batterie.",
     40, "6 machines", 2, "2027-03-31"),
    ("need-domicile-formation", "domicile-pays-auge", "formation", ["aide-a-domicile", "gestes-postures", "prevention"],
     "Formation gestes et postures pour les aides à domicile",
     "Former quinze intervenantes à la prévention des troubles musculo-squelettiques.",
     60, "15 personnes", 2, "2027-04-30"),
    ("need-nettoyage-formation", "scop-nettoyage-havre", "formation", ["ecolabel", "nettoyage", "produits"],
     "Formation aux techniques de nettoyage écologique",
     "Former les nouveaux associés aux méthodes sans produits chimiques agressifs.",
     80, "8 personnes", 1, "2027-06-30"),
    ("need-perche-chauffeurs", "mobilite-solidaire-perche", "benevolat", ["chauffeur", "transport", "rural"],
     "Chauffeurs bénévoles pour le transport solidaire",
     "Bénévoles disposant d'une voiture pour accompagner des habitants à leurs "
     "rendez-vous.", 25, "10 bénévoles", 3, "2027-12-31"),
    ("need-lire-benevoles", "lire-ecrire-orne", "benevolat", ["alphabetisation", "francais", "accompagnement"],
     "Bénévoles pour des ateliers de français",
     "Animer un atelier hebdomadaire de conversation en français pour adultes.",
     20, "6 bénévoles", 2, "2027-07-31"),
    ("need-creche-logiciel", "creche-ptits-galets", "numerique", ["logiciel", "gestion", "petite-enfance"],
     "Logiciel de gestion des présences et de la facturation",
     "Outil simple, si possible libre, pour les plannings et la facturation aux familles.",
     0, "1 licence", 2, "2027-03-31"),
    ("need-mjc-ordinateurs", "mjc-vernon", "numerique", ["ordinateurs", "reconditionne", "jeunes"],
     "Ordinateurs reconditionnés pour l'espace jeunes",
     "Dix postes pour l'espace multimédia et l'aide aux devoirs.", 60, "10 ordinateurs", 2, "2027-02-28"),
    ("need-estran-communication", "theatre-estran", "communication", ["affiche", "graphisme", "spectacle"],
     "Affiche et dossier de diffusion de la création",
     "Graphisme de l'affiche et d'un dossier de diffusion pour les programmateurs.",
     0, "1 affiche + 1 dossier", 1, "2027-02-15"),
    ("need-cidrerie-communication", "cidrerie-pays-auge", "communication", ["radio", "evenementiel", "territoire"],
     "Faire connaître la fête du cidre coopérative",
     "Annonces radio et presse locale pour la fête des vergers d'octobre.",
     80, "1 campagne", 1, "2027-09-30"),
    ("need-fjt-accompagnement", "fjt-le-relais-saint-lo", "accompagnement", ["diversification", "modele-economique", "strategie"],
     "Accompagnement pour diversifier nos ressources",
     "Dispositif local d'accompagnement ou conseil pour revoir le modèle économique.",
     60, "6 mois", 2, "2027-06-30"),
    ("need-grand-parc-numerique", "centre-social-grand-parc", "accompagnement", ["numerique", "inclusion", "formation"],
     "Accompagner l'équipe vers des outils collaboratifs",
     "Choisir et déployer des outils collaboratifs libres pour les salariés et bénévoles.",
     30, "3 mois", 1, "2027-03-31"),
    ("need-epicerie-benevoles", "epicerie-solidaire-bessin", "benevolat", ["accueil", "distribution", "alimentaire"],
     "Bénévoles pour l'accueil du samedi",
     "Renforcer l'équipe d'accueil et de distribution du samedi matin.", 20, "4 bénévoles", 1, "2027-06-30"),
    ("need-restau-bio-camion", "scic-restau-bio-normand", "logistique", ["froid", "camion", "mutualisation"],
     "Camion frigorifique à mutualiser",
     "Partager un camion réfrigéré pour les livraisons aux cantines du Coutançais.",
     40, "1 camion", 2, "2027-09-30"),
]

# ---- offers: (id, provider, category, tags, title, description, commune (or None), radius,
#               territory, capacity, slots, until, free, terms, conditions)
OFFERS = [
    ("offer-lemoine-cuisine", "traiteur-lemoine", "locaux", ["cuisine", "haccp", "traiteur"],
     "Cuisine professionnelle disponible les après-midi",
     "Cuisine aux normes HACCP de 60 m² avec chambre froide, libre de 14 h à 19 h en "
     "semaine.", None, 20, [], "3 après-midi/semaine", 1, "2027-12-31", False, "participation aux charges", None),
    ("offer-mjc-salle", "mjc-vernon", "locaux", ["salle", "spectacle", "repetition"],
     "Salle polyvalente de 120 m² en soirée",
     "Salle avec plancher bois et sonorisation, disponible deux soirs par semaine.",
     None, 40, ["dep:27"], "2 soirs/semaine", 2, "2027-06-30", True, "", None),
    ("offer-val-de-reuil-local", "ville-val-de-reuil-eco", "locaux", ["local-commercial", "quartier", "boutique"],
     "Local commercial en pied d'immeuble à loyer modéré",
     "Local de 150 m² en cœur de quartier, réservé à une activité de l'ESS.",
     None, 0, ["epci:200089456"], "150 m²", 1, "2027-06-30", False, "loyer modéré", {"essOnly": True}),
    ("offer-fondation-littoral-aap", "fondation-littoral-solidaire", "financement", ["subvention", "inclusion", "investissement"],
     "Appel à projets inclusion et transition 2027",
     "Subventions de 5 000 à 20 000 € pour des projets d'inclusion sur le littoral.",
     None, 0, ["dep:76", "dep:14", "dep:50"], "5 000 à 20 000 €", 12, "2027-03-15", True, "", {"essOnly": True}),
    ("offer-credit-solidaire-pret", "credit-solidaire-evreux", "financement", ["pret", "investissement", "camion"],
     "Prêts d'équipement à taux solidaire",
     "Prêts de 10 000 à 80 000 € pour véhicules et équipements des structures de l'ESS.",
     None, 0, ["dep:27"], "10 000 à 80 000 €", 20, "2027-12-31", False, "taux solidaire", {"essOnly": True}),
    ("offer-manche-active-garantie", "manche-active", "financement", ["garantie", "pret", "creation"],
     "Garantie bancaire et prêt solidaire",
     "Garantie jusqu'à 80 % d'un prêt bancaire et prêt solidaire pour les structures "
     "de l'ESS de la Manche.", None, 0, ["dep:50"], "jusqu'à 30 000 €", 15, "2027-12-31", False, "", {"essOnly": True}),
    ("offer-assur-ouest-juridique", "cabinet-assur-ouest", "competences", ["juridique", "assurance", "gouvernance"],
     "Mécénat de compétences juridiques et assurance",
     "Les associés du cabinet consacrent une journée par mois aux associations.",
     None, 0, ["dep:50", "dep:14"], "1 jour/mois", 6, "2027-12-31", True, "", None),
    ("offer-mutuelle-comptable", "mutuelle-sante-solidaire", "competences", ["comptabilite", "gestion", "budget"],
     "Mécénat de compétences en gestion financière",
     "Des contrôleurs de gestion volontaires accompagnent une structure sur 5 jours.",
     None, 0, ["dep:76", "dep:27", "dep:50"], "5 jours", 4, "2027-06-30", True, "", None),
    ("offer-geiq-mise-a-disposition", "geiq-btp-eure", "emploi_partage", ["temps-partage", "alternance", "mise-a-disposition"],
     "Salariés en alternance mis à disposition par le groupement",
     "Mise à disposition, à temps partagé, de salariés en contrat de professionnalisation "
     "dans les métiers du bâtiment, avec leur tuteur au groupement.",
     None, 0, ["dep:27", "dep:76"], "4 ETP", 4, "2027-12-31", False, "coût salarial sans marge", None),
    ("offer-cuma-chauffeur", "cuma-trois-vallees", "emploi_partage", ["mecanique", "temps-partage", "chauffeur"],
     "Partager notre mécanicien l'hiver",
     "Hors saison des récoltes, notre mécanicien est disponible à mi-temps de novembre à mars.",
     None, 40, [], "0,5 ETP", 1, "2027-03-31", False, "refacturation au coût", None),
    ("offer-net-eure-nettoyage", "net-eure-insertion", "achats", ["nettoyage", "clauses-sociales", "insertion"],
     "Prestations de nettoyage avec heures d'insertion",
     "Nettoyage de locaux et de résidences, comptabilisé dans vos clauses sociales.",
     None, 60, ["dep:27"], "2 000 h/an", 5, "2027-12-31", False, "sur devis", None),
    ("offer-scop-nettoyage-havre", "scop-nettoyage-havre", "achats", ["nettoyage", "ecolabel", "bureaux"],
     "Nettoyage écologique de locaux associatifs",
     "Entretien régulier de bureaux et salles avec produits écolabellisés.",
     None, 30, [], "1 500 h/an", 8, "2027-12-31", False, "tarif ESS", None),
    ("offer-spc-traiteur", "saveurs-partagees-caen", "achats", ["traiteur", "repas", "insertion"],
     "Buffets et plateaux-repas d'insertion",
     "Buffets de saison de 20 à 300 couverts, préparés par nos salariés en insertion.",
     None, 120, [], "300 couverts", 10, "2027-12-31", False, "sur devis", None),
    ("offer-negoce-camion", "negoce-agricole-saint-lois", "logistique", ["camion", "froid", "transport"],
     "Camion frigorifique disponible en fin de semaine",
     "Camion réfrigéré 12 m³ avec chauffeur, du jeudi au samedi.",
     None, 60, [], "3 jours/semaine", 2, "2027-12-31", False, "coût de revient", None),
    ("offer-immo-caux-entrepot", "immobiliere-pays-de-caux", "logistique", ["entrepot", "stockage", "quai"],
     "Entrepôt de 400 m² avec quai de chargement",
     "Entrepôt sec divisible, accessible aux poids lourds, bail souple.",
     None, 50, [], "400 m²", 2, "2027-12-31", False, "loyer négocié pour l'ESS", None),
    ("offer-baluchon-livraison", "baluchon-logistique", "logistique", ["livraison", "velo-cargo", "dernier-kilometre"],
     "Livraison en vélo-cargo dans la métropole",
     "Tournées mutualisées de livraison du dernier kilomètre.",
     None, 15, ["epci:200023414"], "200 colis/jour", 10, "2027-12-31", False, "tarif ESS", None),
    ("offer-coop-laitiere-froid", "coop-laitiere-val-de-saire", "logistique", ["froid", "stockage", "chambre-froide"],
     "Chambre froide partagée",
     "40 m³ de chambre froide positive disponibles pour des structures voisines.",
     None, 30, [], "40 m³", 3, "2027-12-31", False, "participation énergie", None),
    ("offer-ressourceries-outillage", "reseau-ressourceries-normandie", "materiel", ["outillage", "reemploi", "reparation"],
     "Outillage de réemploi pour ateliers de réparation",
     "Lots d'outillage remis en état par les ressourceries du réseau.",
     None, 0, ["dep:61", "dep:14", "dep:27"], "30 lots", 30, "2027-12-31", True, "", {"essOnly": True}),
    ("offer-cuma-materiel", "cuma-trois-vallees", "materiel", ["espaces-verts", "broyeur", "outillage"],
     "Location de broyeur de végétaux et de matériel d'entretien",
     "Broyeur, débroussailleuses et remorque loués au coût hors saison.",
     None, 50, [], "5 machines", 3, "2027-10-31", False, "location au coût", None),
    ("offer-boucle-mobilier", "ressourcerie-la-boucle", "materiel", ["mobilier", "reemploi", "bureau"],
     "Mobilier de bureau de réemploi",
     "Bureaux, chaises et armoires remis en état, livrés dans l'Eure.",
     None, 60, [], "100 meubles", 20, "2027-12-31", False, "prix solidaire", None),
    ("offer-mutuelle-prevention", "mutuelle-sante-solidaire", "formation", ["prevention", "gestes-postures", "sante-au-travail"],
     "Formations à la prévention des TMS pour les métiers du soin",
     "Ergonome et kinésithérapeute animent des sessions gestes et postures.",
     None, 0, ["dep:14", "dep:76", "dep:27"], "6 sessions", 6, "2027-12-31", True, "", None),
    ("offer-repair-formation", "repair-cafe-lexovien", "formation", ["reparation", "electronique", "reemploi"],
     "Initiation à la réparation électronique",
     "Sessions d'initiation pour bénévoles et salariés d'autres structures.",
     None, 40, [], "4 sessions", 4, "2027-06-30", True, "", None),
    ("offer-cae-formation-gestion", "cae-rouen-seine", "formation", ["gestion", "creation", "entrepreneuriat"],
     "Cycle de formation à la gestion d'activité",
     "Six modules pour piloter une activité : devis, trésorerie, statut.",
     None, 0, ["dep:76", "dep:27"], "12 places", 12, "2027-06-30", False, "pris en charge OPCO", None),
    ("offer-fcs-benevoles", "fcs-normandie", "benevolat", ["accompagnement", "alphabetisation", "benevoles"],
     "Plateforme d'orientation de bénévoles",
     "Oriente les habitants volontaires vers les centres sociaux et les associations.",
     None, 0, ["dep:14", "dep:61", "dep:50"], "50 bénévoles/an", 50, "2027-12-31", True, "", None),
    ("offer-radio-benevoles", "radio-bocage", "benevolat", ["appel-a-benevoles", "rural", "entraide"],
     "Relais des appels à bénévoles à l'antenne",
     "Chronique hebdomadaire « Coup de main » pour les associations du bocage.",
     None, 50, [], "1 chronique/semaine", 20, "2027-12-31", True, "", None),
    ("offer-scic-numerique-ordis", "scic-numerique-solidaire", "numerique", ["ordinateurs", "reconditionne", "logiciel-libre"],
     "Ordinateurs reconditionnés sous logiciels libres",
     "Postes garantis un an, installés avec des logiciels libres, pour les associations.",
     None, 0, ["dep:14", "dep:50", "dep:61"], "200 postes/an", 40, "2027-12-31", False, "prix solidaire", {"essOnly": True}),
    ("offer-recyclerie-numerique", "recyclerie-numerique-evreux", "numerique", ["ordinateurs", "reconditionne", "jeunes"],
     "Parc informatique reconditionné à prix solidaire",
     "Portables et fixes reconditionnés, livraison et installation comprises.",
     None, 70, ["dep:27"], "150 postes/an", 30, "2027-12-31", False, "prix solidaire", None),
    ("offer-fabrique-logiciel", "fabrique-rurale-bernay", "numerique", ["logiciel", "gestion", "logiciel-libre"],
     "Installation d'outils libres de gestion",
     "Le fablab installe et paramètre des logiciels libres de gestion associative.",
     None, 80, [], "10 structures", 10, "2027-06-30", True, "", None),
    ("offer-editions-graphisme", "editions-du-marais", "communication", ["graphisme", "affiche", "edition"],
     "Graphisme et mise en page à tarif ESS",
     "Affiches, plaquettes et dossiers de diffusion pour les structures de l'ESS.",
     None, 0, ["dep:50", "dep:14", "dep:76", "dep:27", "dep:61"], "20 projets/an", 20, "2027-12-31", False,
     "tarif ESS", {"essOnly": True}),
    ("offer-radio-annonces", "radio-bocage", "communication", ["radio", "annonces", "territoire"],
     "Annonces gratuites des événements associatifs",
     "Agenda radio quotidien des événements de l'ESS du territoire.",
     None, 90, [], "illimité", 0, "2027-12-31", True, "", None),
    ("offer-urscop-accompagnement", "urscop-normandie", "accompagnement", ["modele-economique", "strategie", "cooperative"],
     "Diagnostic et accompagnement du modèle économique",
     "Accompagnement de six mois par un délégué de l'union régionale.",
     None, 0, ["dep:14", "dep:27", "dep:50", "dep:61", "dep:76"], "10 structures/an", 10, "2027-12-31", False,
     "pris en charge pour les adhérents", None),
    ("offer-scic-numerique-accompagnement", "scic-numerique-solidaire", "accompagnement", ["numerique", "outils-collaboratifs", "formation"],
     "Accompagnement à la transition numérique",
     "Diagnostic, choix d'outils collaboratifs libres et formation des équipes.",
     None, 40, [], "8 structures", 8, "2027-12-31", False, "tarif ESS", None),
    ("offer-cc-argentan-accompagnement", "cc-terres-argentan", "accompagnement", ["creation", "rural", "immobilier"],
     "Accueil des porteurs de projets de l'ESS en milieu rural",
     "Rendez-vous de diagnostic et orientation vers les aides locales.",
     None, 0, ["epci:200068450"], "illimité", 0, "2027-12-31", True, "", None),
]

EVENTS = []
BASE = datetime.datetime(2026, 11, 16, 8, 0, tzinfo=datetime.timezone.utc)
counter = [0]


def emit(etype, field, payload):
    counter[0] += 1
    n = counter[0]
    occurred = BASE + datetime.timedelta(minutes=7 * n)
    env = {
        "eventId": "demo-normandie-%04d" % n,
        "type": etype,
        "occurredAtMs": str(int(occurred.timestamp() * 1000)),
        "schemaVersion": 1,
        field: payload,
    }
    EVENTS.append(env)


def email_of(s):
    local = s["contact_name"].split()[0].lower()
    local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    if s["role"] == "service":
        local = "contact"
    return "%s@%s.example.org" % (local, s["sid"])


def structure_msg(s):
    # Invented organisations get an invented SIREN; a public body is a real one
    # and keeps its own. The draw is made anyway, so the other numbers stay put.
    siren = make_siren()
    if s["official_siren"]:
        siren = s["official_siren"]
        assert luhn_ok(siren), siren
    s["siren"] = siren
    s["siret"] = make_siret(siren)
    st = {
        "structureId": s["sid"],
        "name": s["name"],
        "siren": s["siren"],
        "siret": s["siret"],
        "family": s["family"],
        "legalCategory": s["cj"],
        "nafCode": s["naf"],
        "commune": commune(s["town"]),
    }
    if s["networks"]:
        st["networks"] = s["networks"]
    if s["labels"]:
        st["labels"] = s["labels"]
    if s["employees"]:
        st["employees"] = s["employees"]
    if s["volunteers"]:
        st["volunteers"] = s["volunteers"]
    st["website"] = "https://%s.example.org" % s["sid"]
    st["description"] = s["description"]
    st["contact"] = {"name": s["contact_name"], "email": email_of(s), "role": s["role"]}
    return st


for s in S:
    emit("member.joined", "memberJoined",
         {"structure": structure_msg(s), "network": s["joined_network"], "joinedOn": s["joined_on"]})

# Interleave needs and offers so the feed reads like a real day.
items = []
for i in range(max(len(NEEDS), len(OFFERS))):
    if i < len(NEEDS):
        items.append(("need", NEEDS[i]))
    if i < len(OFFERS):
        items.append(("offer", OFFERS[i]))



def emit_need(item):
    nid, sid, cat, tags, title, desc, radius, qty, urg, until = item
    need = {"needId": nid, "structureId": sid, "category": cat, "tags": tags, "title": title,
            "description": desc, "commune": commune(BY_ID[sid]["town"])}
    if radius:
        need["radiusKm"] = radius
    need.update({"validFrom": "2026-11-16", "validUntil": until, "quantity": qty, "urgency": urg})
    emit("need.reported", "needReported", {"need": need})


for kind, item in items:
    if kind == "need":
        emit_need(item)
    else:
        (oid, pid, cat, tags, title, desc, town, radius, territory, capacity, slots, until,
         free, terms, cond) = item
        offer = {"offerId": oid, "providerId": pid, "category": cat, "tags": tags, "title": title,
                 "description": desc, "commune": commune(town or BY_ID[pid]["town"])}
        if radius:
            offer["radiusKm"] = radius
        if territory:
            offer["territory"] = territory
        offer["capacity"] = capacity
        if slots:
            offer["slots"] = slots
        offer.update({"validFrom": "2026-11-16", "validUntil": until})
        if cond:
            offer["conditions"] = cond
        if free:
            offer["freeOfCharge"] = True
        if terms:
            offer["terms"] = terms
        emit("offer.published", "offerPublished", {"offer": offer})

# A collective need: three structures of the CU Caen la Mer ask, the same
# morning, for the same training (first aid at work, SST), which no offer
# answers: the matcher signals a pooled answer (collective_need.detected),
# the kind of opportunity the chamber is there to spot.
COLLECTIVE_NEEDS = [
    ("need-spc-sst", "saveurs-partagees-caen", "formation", ["secourisme", "sst", "cuisine"],
     "Former l'équipe au sauvetage secourisme du travail",
     "Obtenir le certificat SST pour les salariés en insertion de la cuisine.", 20, "8 personnes", 2, "2027-06-30"),
    ("need-grand-parc-sst", "centre-social-grand-parc", "formation", ["secourisme", "sst", "animateurs"],
     "Formation aux premiers secours pour les animateurs",
     "Former les animateurs de l'accueil de loisirs au sauvetage secourisme du travail (SST).",
     20, "6 personnes", 2, "2027-06-30"),
    ("need-scic-numerique-sst", "scic-numerique-solidaire", "formation", ["secourisme", "sst", "atelier"],
     "Sauveteurs secouristes pour l'atelier de reconditionnement",
     "Avoir deux sauveteurs secouristes du travail formés dans l'atelier.", 20, "2 personnes", 1, "2027-06-30"),
]
for item in COLLECTIVE_NEEDS:
    emit_need(item)

# Cooperation between structures.
emit("cooperation.proposed", "cooperationProposed", {
    "proposalId": "coop-froid-cotentin", "fromStructureId": "scic-restau-bio-normand",
    "toStructureId": "coop-laitiere-val-de-saire", "kind": "COOPERATION_KIND_POOLING",
    "category": "logistique", "title": "Mutualiser la chaîne du froid dans le Cotentin",
    "description": "Partager chambre froide et tournées réfrigérées entre la cuisine "
                   "centrale et la coopérative laitière.", "validUntil": "2027-06-30"})
emit("cooperation.proposed", "cooperationProposed", {
    "proposalId": "coop-marche-nettoyage-76", "fromStructureId": "scop-nettoyage-havre",
    "territory": ["dep:76", "dep:27"], "kind": "COOPERATION_KIND_JOINT_BID",
    "category": "achats", "title": "Réponse commune aux marchés de nettoyage avec clause sociale",
    "description": "Constituer un groupement d'entreprises de l'ESS pour répondre aux "
                   "marchés publics de nettoyage de l'axe Seine.", "validUntil": "2027-03-31"})
emit("cooperation.proposed", "cooperationProposed", {
    "proposalId": "coop-traiteur-caen", "fromStructureId": "traiteur-lemoine",
    "toStructureId": "saveurs-partagees-caen", "kind": "COOPERATION_KIND_PARTNERSHIP",
    "category": "locaux", "title": "Partager notre cuisine avec un traiteur d'insertion",
    "description": "Mettre notre cuisine à disposition l'après-midi et sous-traiter une "
                   "partie des buffets.", "validUntil": "2027-12-31"})
emit("cooperation.answered", "cooperationAnswered", {
    "proposalId": "coop-traiteur-caen", "structureId": "saveurs-partagees-caen",
    "answer": "COOPERATION_ANSWER_ACCEPTED",
    "comment": "Visite de la cuisine prévue la semaine prochaine."})
emit("cooperation.answered", "cooperationAnswered", {
    "proposalId": "coop-froid-cotentin", "structureId": "coop-laitiere-val-de-saire",
    "answer": "COOPERATION_ANSWER_UNDER_DISCUSSION",
    "comment": "À étudier en conseil d'administration de janvier."})

# Life goes on: a record changes, a need is met, an offer ends.
radio = dict(BY_ID["radio-bocage"])
radio["employees"] = 5
radio["volunteers"] = 34
radio["description"] = ("Radio associative locale du bocage ornais : information de proximité, "
                        "émissions faites par les habitants, nouvelle fréquence à Vire.")
st = structure_msg_existing = {
    "structureId": radio["sid"], "name": radio["name"], "siren": radio["siren"],
    "siret": radio["siret"], "family": radio["family"], "legalCategory": radio["cj"],
    "nafCode": radio["naf"], "commune": commune(radio["town"]), "employees": 5,
    "volunteers": 34, "website": "https://%s.example.org" % radio["sid"],
    "description": radio["description"],
    "contact": {"name": radio["contact_name"], "email": email_of(radio), "role": radio["role"]},
}
emit("member.updated", "memberUpdated", {"structure": st})
emit("need.closed", "needClosed", {
    "needId": "need-epicerie-benevoles", "structureId": "epicerie-solidaire-bessin",
    "reason": "CLOSURE_SATISFIED", "comment": "Quatre bénévoles trouvés par la plateforme d'orientation de la fédération."})
emit("offer.withdrawn", "offerWithdrawn", {
    "offerId": "offer-cuma-chauffeur", "providerId": "cuma-trois-vallees",
    "reason": "CLOSURE_CANCELLED", "comment": "Le mécanicien reste à plein temps à la CUMA."})

# Check every line with an independent implementation and write canonical JSON.
out = []
for env in EVENTS:
    msg = envelope_pb2.Envelope()
    json_format.Parse(json.dumps(env), msg)
    d = json_format.MessageToDict(msg)
    assert d == env, (d, env)
    out.append(json.dumps(d, ensure_ascii=False, separators=(",", ":")))

path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "normandie.ndjson")
with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(out) + "\n")

NEEDS += COLLECTIVE_NEEDS
cats_need = sorted({n[2] for n in NEEDS})
cats_offer = sorted({o[2] for o in OFFERS})
deps = sorted({COMMUNES[s["town"]]["dep_code"] for s in S})
print("%d events, %d structures, %d needs (%d categories), %d offers (%d categories), departments %s"
      % (len(EVENTS), len(S), len(NEEDS), len(cats_need), len(OFFERS), len(cats_offer), deps),
      file=sys.stderr)
