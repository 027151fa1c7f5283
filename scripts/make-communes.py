#!/usr/bin/python3
"""Make config/communes-normandie.csv from the shared reference data.

Keeps only the columns the commune table (services/common/src/communes.c)
reads, in this order:
    code_insee,nom,dep_code,epci_siren,epci_nom,latitude,longitude,population_municipale
and checks each row, so that a bad source fails here rather than in a daemon.

Usage: scripts/make-communes.py SOURCE.csv [OUTPUT.csv]
  SOURCE  communes-normandie-2026.csv (see config/DATA-SOURCES.md)
  OUTPUT  defaults to config/communes-normandie.csv next to this script
"""
import csv
import os
import re
import sys

COLUMNS = ["code_insee", "nom", "dep_code", "epci_siren", "epci_nom",
           "latitude", "longitude", "population_municipale"]
CODE = re.compile(r"^(\d{2}|2A|2B)\d{3}$")


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    source = argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    output = argv[2] if len(argv) == 3 else os.path.join(here, "..", "config",
                                                         "communes-normandie.csv")
    rows = []
    seen = set()
    with open(source, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"{source}: missing columns: {', '.join(missing)}")
        for n, row in enumerate(reader, start=2):
            code = row["code_insee"]
            if not CODE.match(code) or code in seen:
                sys.exit(f"{source}:{n}: bad or repeated code_insee {code!r}")
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
    rows.sort(key=lambda r: r[0])
    tmp = output + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    os.replace(tmp, output)
    print(f"{os.path.normpath(output)}: {len(rows)} communes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
