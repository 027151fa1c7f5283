#!/usr/bin/env bash
# `make demo`: start the embedded stack, emit the Normandy dataset through the
# public protocol, show what flowed (live feed, territory summary, dead
# letters) in French, and stop everything, even on error or Ctrl-C.
# One network speaks HTTP to the gateway; the staff page is shown at the end.
# Usage: scripts/demo.sh [BUILD_DIR]   (default: build)
# DEMO_KEEP=1 (make demo KEEP=1) leaves the stack running to browse the page.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
cli="$build/bin/maillage"
run="$build/demo-run"
data="$root/demo/normandie.ndjson"
tail_pid=""
keep="${DEMO_KEEP:-}"
py=/usr/bin/python3

if [ ! -x "$cli" ]; then
  echo "Erreur : $cli introuvable ; compilez d'abord (make demo le fait)." >&2
  exit 1
fi

cleanup() {
  local rc=$?
  if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; wait "$tail_pid" 2>/dev/null || true; fi
  if [ -n "$keep" ] && [ "$rc" -eq 0 ]; then exit 0; fi
  "$cli" down --dir "$run" >"$run/down.txt" 2>&1 || cat "$run/down.txt" >&2
  exit "$rc"
}

# POST an NDJSON file to /v1/events and say, in French, what became of each event.
http_emit() {
  local token=$1 file=$2 label=$3 code
  code=$(curl -sS -o "$run/http.json" -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $token" -H "Content-Type: application/x-ndjson" \
    --data-binary @"$file" "$MAILLAGE_HTTP/v1/events") || code=000
  "$py" - "$run/http.json" "$code" "$label" <<'PY'
import json, sys
path, code, label = sys.argv[1:]
try:
    body = json.load(open(path))
except Exception:
    body = {}
print("  %s : HTTP %s" % (label, code))
for r in body.get("results", []):
    what = "journalisé" if r.get("status") == "accepted" else "déjà journalisé, rien de plus"
    print("    %-16s %s (séquence %s)" % (r.get("eventId"), what, r.get("sequence")))
if "error" in body:
    print("    erreur : %s" % body["error"].get("message"))
PY
}

# Copy an NDJSON file of the dataset into the run directory with every date
# moved by `days` days: the dataset is written for one day (demo/make-dataset.py
# BASE), and the matcher scores freshness and closes expired items against the
# real date, so the demo would show fewer matches each week.
shift_dates() {
  "$py" - "$1" "$2" "$3" <<'PY'
import datetime, json, re, sys
src, dst, days = sys.argv[1], sys.argv[2], int(sys.argv[3])
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
def move(v, key=""):
    if isinstance(v, dict):
        return {k: move(x, k) for k, x in v.items()}
    if isinstance(v, list):
        return [move(x) for x in v]
    if key == "occurredAtMs":
        return str(int(v) + days * 86400000)
    if isinstance(v, str) and (key in ("validFrom", "validUntil") or key.endswith("On")) and DATE.fullmatch(v):
        return (datetime.date.fromisoformat(v) + datetime.timedelta(days)).isoformat()
    return v
with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
    for line in f:
        if line.strip():
            out.write(json.dumps(move(json.loads(line)), ensure_ascii=False, separators=(",", ":")) + "\n")
PY
}

# A clean run directory each time: a fresh Redis, a journal starting at 1.
if [ -d "$run" ]; then "$cli" down --dir "$run" >/dev/null 2>&1 || true; fi
rm -rf "$run"
mkdir -p "$run"
trap cleanup EXIT
trap 'exit 130' INT TERM

rule() { printf '\n── %s %s\n' "$1" "$(printf '─%.0s' $(seq 1 $((70 - ${#1}))))"; }

printf '\n══ Maillage · démonstration : une journée d'\''échanges entre acteurs de l'\''ESS normande ══\n'

rule "Démarrage de la pile"
if ! "$cli" up --dir "$run" --with "$root/demo/staff.conf" >"$run/up.txt" 2>&1; then
  cat "$run/up.txt" >&2
  exit 1
fi
set -a
# shellcheck disable=SC1091
. "$run/endpoints.env"
set +a
for name in redis broker matcher notifier gateway; do
  [ -f "$run/$name.pid" ] || continue
  case "$name" in
    redis) echo "  ✓ redis-server      journal durable (AOF, fsync toutes les secondes)  ${MAILLAGE_REDIS_URL}" ;;
    broker) echo "  ✓ maillage-broker   réception ${MAILLAGE_INGEST} · diffusion ${MAILLAGE_FANOUT}" ;;
    gateway) echo "  ✓ maillage-gateway  ${MAILLAGE_HTTP:-}" ;;
    *) echo "  ✓ maillage-$name" ;;
  esac
done
echo "  Répertoire : $run (journaux *.log, configuration maillage.conf)"

# The live feed, as a staff member watching would see it.
"$cli" tail --format text >"$run/fil.txt" 2>"$run/tail.err" &
tail_pid=$!
sleep 0.5

# The dataset's day (its first event's, in Paris) becomes today (in Paris).
read -r dataset_day days < <("$py" -c 'import datetime, json, sys, zoneinfo
paris = zoneinfo.ZoneInfo("Europe/Paris")
ms = int(json.loads(open(sys.argv[1], encoding="utf-8").readline())["occurredAtMs"])
day = datetime.datetime.fromtimestamp(ms / 1000, paris).date()
print(day.strftime("%d/%m/%Y"), (datetime.datetime.now(paris).date() - day).days)' "$data")
shift_dates "$data" "$run/normandie.ndjson" "$days"
shift_dates "$root/demo/http-events.ndjson" "$run/http-events.ndjson" "$days"
total=$(grep -c . "$data")
rule "Envoi des événements"
echo "  $total événements de demo/normandie.ndjson, envoyés par le protocole public (ZeroMQ + protobuf)"
if [ "$days" -ne 0 ]; then
  moved=$([ "$days" -gt 0 ] && echo "avancées" || echo "reculées")
  n=${days#-}
  echo "  (jeu de données daté du $dataset_day : ses dates sont $moved de $n jour$([ "$n" -gt 1 ] && echo s) pour tomber aujourd'hui)"
fi
data="$run/normandie.ndjson"
emit_rc=0
"$cli" emit --quiet "$data" 2>"$run/emit.txt" || emit_rc=$?
sed 's/^/  /' "$run/emit.txt"

# Let the feed catch up: stop waiting once it has not grown for a second.
last=-1
for _ in $(seq 1 40); do
  now=$(wc -l <"$run/fil.txt")
  [ "$now" -eq "$last" ] && break
  last=$now
  sleep 0.5
done

if [ -n "${MAILLAGE_HTTP:-}" ]; then
  rule "Un réseau qui parle HTTP : POST /v1/events"
  net_token=$("$cli" token issue --network fondation-bocage-avenir --label "démo" 2>/dev/null)
  echo "  La Fondation Bocage Avenir publie par HTTP/JSON, avec son jeton (maillage token issue) ;"
  echo "  la passerelle n'en garde que l'empreinte et répond une fois l'événement journalisé."
  http_emit "$net_token" "$run/http-events.ndjson" "Envoi de demo/http-events.ndjson"
  http_emit "$net_token" "$run/http-events.ndjson" "Le même lot renvoyé (un réessai)"
fi

rule "Le fil en direct (maillage tail --format text)"
lines=$(wc -l <"$run/fil.txt")
shown=18
head -n "$shown" "$run/fil.txt" | sed 's/^/  /'
if [ "$lines" -gt "$shown" ]; then
  echo "  …"
  tail -n 6 "$run/fil.txt" | sed 's/^/  /'
  echo "  ($lines événements reçus en direct, dans l'ordre du journal)"
fi

if [ -x "$(dirname "$cli")/maillage-matcher" ]; then
  rule "Mises en relation trouvées par Maillage (maillage journal --type match.)"
  matches=$("$cli" journal --type match. --format text)
  if [ -n "$matches" ]; then
    echo "$matches" | sed 's/^/  /'
  else
    echo "  Aucune mise en relation proposée."
  fi
  collective=$("$cli" journal --type collective_need. --format text)
  if [ -n "$collective" ]; then
    rule "Besoins collectifs : opportunités de mutualisation"
    echo "$collective" | sed 's/^/  /'
  fi
fi

if [ -x "$(dirname "$cli")/maillage-notifier" ]; then
  # The notifier works from the journal too: wait until its inboxes stop growing.
  last=-1
  for _ in $(seq 1 40); do
    now=$("$cli" inbox accueil --count 1000 2>/dev/null | wc -l)
    for who in claire yann sofia; do now=$((now + $("$cli" inbox "$who" --count 1000 2>/dev/null | wc -l))); done
    [ "$now" -eq "$last" ] && break
    last=$now
    sleep 0.5
  done
  rule "Ce que reçoivent les chargé·e·s de mission (maillage inbox)"
  "$cli" staff list | sed 's/^/  /'
  for who in claire yann sofia accueil; do
    echo
    "$cli" inbox "$who" --count 2 --full | sed 's/^/  /'
  done
fi

rule "Le territoire en un coup d'œil (maillage journal --summary)"
"$cli" journal --summary | sed 's/^/  /'

if [ -n "${MAILLAGE_HTTP:-}" ]; then
  staff_token=$("$cli" token issue --staff claire --label "démo" 2>/dev/null)
  rule "Les chiffres de l'observatoire (GET /v1/figures)"
  curl -sS -H "Authorization: Bearer $staff_token" "$MAILLAGE_HTTP/v1/figures" >"$run/figures.json" || true
  "$py" - "$run/figures.json" <<'PY'
import json, sys
try:
    f = json.load(open(sys.argv[1]))
except Exception as e:
    print("  (chiffres indisponibles : %s)" % e)
    sys.exit(0)
cols = [("openNeeds", "besoins ouverts"), ("openOffers", "offres ouvertes"),
        ("matchesProposed", "mises en relation"), ("unmetNeeds", "besoins sans réponse")]
print("  %-22s" % "" + "".join("%22s" % c[1] for c in cols))
for d in f.get("byDepartment", []):
    print("  %-22s" % d.get("name", d.get("code")) + "".join("%22s" % d.get(c[0], 0) for c in cols))
t = f.get("totals", {})
print("  %-22s" % "Normandie" + "".join("%22s" % t.get(c[0], 0) for c in cols))
PY
fi

rule "Messages rejetés (maillage dlq list)"
"$cli" dlq list | sed 's/^/  /'

kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
tail_pid=""

if [ -n "${MAILLAGE_HTTP:-}" ]; then
  rule "La page des chargé·e·s de mission"
  echo "  $MAILLAGE_HTTP/  (jeton de Claire : $staff_token)"
  if [ -n "$keep" ]; then
    echo "  La pile reste démarrée (DEMO_KEEP). Pour l'arrêter : $cli down --dir $run"
    echo
    exit "$emit_rc"
  fi
  echo "  (make demo KEEP=1 laisse la pile démarrée pour la parcourir)"
fi

rule "Arrêt"
"$cli" down --dir "$run" >"$run/down.txt" 2>&1 || { cat "$run/down.txt" >&2; exit 1; }
stopped=$(sed -n 's/^\([^ ]*\) arrêté (pid .*/\1/p' "$run/down.txt" | paste -sd, - | sed 's/,/, /g')
echo "  ✓ Arrêtés proprement : $stopped"
echo "  Journaux et données conservés dans $run"
echo

if [ "$emit_rc" -ne 0 ]; then
  echo "Attention : des événements n'ont pas été acceptés (voir ci-dessus)." >&2
  exit 1
fi
