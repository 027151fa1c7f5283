#!/usr/bin/python3
"""Make config/communes-normandie.csv from the shared reference data.

Keeps only the columns the commune table (services/common/src/communes.c)
reads, in this order:
    code_insee,nom,dep_code,epci_siren,epci_nom,latitude,longitude,population_municipale,former_codes
and checks each row, so that a bad source fails here rather than in a daemon.
former_codes lists, space-separated, the codes of the former communes merged
into the commune (communes déléguées and associées) that are no current
commune's code.

Usage: scripts/make-communes.py SOURCE.csv FORMER.csv [OUTPUT.csv]
  SOURCE  communes-normandie-2026.csv (see config/DATA-SOURCES.md)
  FORMER  communes-deleguees-normandie-2026.csv (code_insee, chef_lieu)
  OUTPUT  defaults to config/communes-normandie.csv next to this script
"""
import csv
import os
import re
import sys

COLUMNS = ["code_insee", "nom", "dep_code", "epci_siren", "epci_nom",
           "latitude", "longitude", "population_municipale"]
FORMER_COLUMNS = ["code_insee", "chef_lieu"]
CODE = re.compile(r"^(\d{2}|2A|2B)\d{3}$")


def rows_by_code(source, columns):
    """Yield (line number, row, code_insee) of the CSV `source`, which must
    have `columns`, each code a valid INSEE code seen once."""
    seen = set()
    with open(source, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"{source}: missing columns: {', '.join(missing)}")
        for n, row in enumerate(reader, start=2):
            code = row["code_insee"]
            if not CODE.match(code) or code in seen:
                sys.exit(f"{source}:{n}: bad or repeated code_insee {code!r}")
            seen.add(code)
            yield n, row, code


def former_codes(source, current):
    """{current code: [former codes merged into it]}, leaving out a former
    code that is still a current commune's (the commune nouvelle kept it)."""
    merged = {}
    for n, row, code in rows_by_code(source, FORMER_COLUMNS):
        parent = row["chef_lieu"]
        if parent not in current:
            sys.exit(f"{source}:{n}: chef_lieu {parent!r} is no current commune")
        if code not in current:
            merged.setdefault(parent, []).append(code)
    return merged


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    source, former_source = argv[1], argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    output = argv[3] if len(argv) == 4 else os.path.join(here, "..", "config",
                                                         "communes-normandie.csv")
    rows = []
    seen = set()
    for n, row, code in rows_by_code(source, COLUMNS):
        if not row["dep_code"] or not code.startswith(row["dep_code"][:2]):
            sys.exit(f"{source}:{n}: dep_code {row['dep_code']!r} does not match {code}")
        if row["epci_siren"] and not re.fullmatch(r"\d{9}", row["epci_siren"]):
            sys.exit(f"{source}:{n}: bad epci_siren {row['epci_siren']!r}")
        lat, lon = float(row["latitude"]), float(row["longitude"])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            sys.exit(f"{source}:{n}: coordinates out of range")
        int(row["population_municipale"] or "0")
        seen.add(code)
        rows.append([row[c] for c in COLUMNS])
    former = former_codes(former_source, seen)
    for row in rows:
        row.append(" ".join(sorted(former.get(row[0], []))))
    rows.sort(key=lambda r: r[0])
    tmp = output + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS + ["former_codes"])
        writer.writerows(rows)
    os.replace(tmp, output)
    print(f"{os.path.normpath(output)}: {len(rows)} communes, "
          f"{sum(len(v) for v in former.values())} former codes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
