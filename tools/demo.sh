#!/usr/bin/env bash
# The StepHub demo: a hub with its SQLite record, three simulated bays
# (level pelvis, moderate drop, marked Trendelenburg), a set on each, the
# live results of all bays in this terminal, then each patient's progress
# and reports (CSV, progress PDF, FHIR; today's clinic summary as PDF and
# CSV). Stops by itself; Ctrl-C ends everything cleanly.
# Everything runs over TLS with a demo clinic CA made once in demo-data/tls
# (kept between runs): stations with their own certificates, the CLI
# trusting the CA, the dashboard on https.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/tools/build.sh" >/dev/null
BIN="${STEPHUB_BUILD_DIR:-$ROOT/build}"
HUB_BIN="$BIN/hub/stephub-hub"
STATION_BIN="$BIN/station/stephub-station"
CLI_BIN="$BIN/tools/stephub"

DATA="${STEPHUB_DEMO_DIR:-$ROOT/demo-data}"
# A fresh record each run; the certificates are kept.
mkdir -p "$DATA"
find "$DATA" -mindepth 1 -maxdepth 1 ! -name tls -exec rm -rf {} +
mkdir -p "$DATA/reports" "$DATA/logs"

BAYS=(bay-1 bay-2 bay-3)
TLS="$DATA/tls"
if [ ! -f "$TLS/ca.crt" ]; then
  "$CLI_BIN" certs init --dir "$TLS" --clinic "Demo clinic" >/dev/null
fi
[ -f "$TLS/hub.crt" ] || "$CLI_BIN" certs hub --dir "$TLS" >/dev/null
for bay in "${BAYS[@]}"; do
  [ -f "$TLS/stations/$bay.crt" ] ||
    "$CLI_BIN" certs station "$bay" --dir "$TLS" >/dev/null
done
export STEPHUB_CA="$TLS/ca.crt"

children=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, stopping"; exit 130' INT TERM

# One staff account, therapist and admin, for the CLI below and for
# signing in to the dashboard; a fresh password each run.
DEMO_USER=demo
DEMO_PASSWORD="$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 16)"
echo "$DEMO_PASSWORD" | "$HUB_BIN" --data_dir="$DATA" --add_staff="$DEMO_USER" \
  --roles=therapist,admin --display_name="Demo Therapist" >"$DATA/logs/staff.log" 2>&1 \
  || { cat "$DATA/logs/staff.log"; exit 1; }

# The hub picks a free loopback port for gRPC and says which; the dashboard
# is on STEPHUB_WEB (default 127.0.0.1:8080).
WEB="${STEPHUB_WEB:-127.0.0.1:8080}"
"$HUB_BIN" --listen=127.0.0.1:0 --web_listen="$WEB" --data_dir="$DATA" \
  >"$DATA/logs/hub.log" 2>&1 &
HUB_PID=$!
children+=("$HUB_PID")
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$DATA/logs/hub.log")
  [ -n "$PORT" ] && break
  kill -0 "$HUB_PID" 2>/dev/null || { cat "$DATA/logs/hub.log"; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "demo: hub did not start"; exit 1; }
export STEPHUB_HUB="127.0.0.1:$PORT"
# The CLI's session stays with the demo, not in ~/.config.
export STEPHUB_SESSION_FILE="$DATA/cli-session"
cli() { "$CLI_BIN" "$@"; }
echo "$DEMO_PASSWORD" | cli login "$DEMO_USER" >/dev/null
WEB_PORT=$(sed -n 's/.*dashboard on https port \([0-9]*\).*/\1/p' "$DATA/logs/hub.log")
DASHBOARD="https://${WEB%:*}:$WEB_PORT/"

echo "StepHub demo: hub on $STEPHUB_HUB, record in $DATA/stephub.db"
echo "Dashboard:    $DASHBOARD (every bay live; /bay/bay-3 is bay-3's screen)"
echo "              (the browser does not know the demo CA $STEPHUB_CA:"
echo "              import it, or accept the warning once)"
echo "Sign in as:   $DEMO_USER, password $DEMO_PASSWORD"

PROFILES=(level moderate trendelenburg)
NAMES=("Anna Berg" "Ben Okafor" "Carla Ruiz")
SIDES=(left right left)
station_pids=()
for i in 0 1 2; do
  "$STATION_BIN" --hub="$STEPHUB_HUB" --station_id="${BAYS[$i]}" \
    --sensors="sim:${PROFILES[$i]}" --seed=$((i + 11)) --exit_after_set \
    --spool_dir="$DATA/spool-${BAYS[$i]}" --tls_ca_file="$TLS/ca.crt" \
    --tls_cert_file="$TLS/stations/${BAYS[$i]}.crt" \
    --tls_key_file="$TLS/stations/${BAYS[$i]}.key" \
    --quiet >"$DATA/logs/${BAYS[$i]}.log" 2>&1 &
  station_pids+=($!)
  children+=($!)
done
for _ in $(seq 1 100); do
  [ "$(cli stations | grep -c ' online ')" -eq 3 ] && break
  sleep 0.1
done

patient_ids=()
for i in 0 1 2; do
  id=$(cli patients add "${NAMES[$i]}" | awk '{print $3}')
  patient_ids+=("$id")
done

# Watch every bay live until the three sets have ended.
cli watch --until-sets-ended 3 --lines &
WATCH_PID=$!
children+=("$WATCH_PID")
sleep 0.3
for i in 0 1 2; do
  cli set start --station "${BAYS[$i]}" --patient "${patient_ids[$i]}" \
    --side "${SIDES[$i]}" --load bodyweight >/dev/null
done

# Each simulated patient finishes its set; the station exits once the hub
# has stored all of it. The therapist then ends the set.
for i in 0 1 2; do
  if ! wait "${station_pids[$i]}"; then
    echo "demo: station ${BAYS[$i]} failed:"; cat "$DATA/logs/${BAYS[$i]}.log"; exit 1
  fi
  cli set end --station "${BAYS[$i]}" >/dev/null
done
wait "$WATCH_PID"

echo
echo "== Progress =="
for i in 0 1 2; do
  id="${patient_ids[$i]}"
  cli progress "$id"
  cli report "$id" --format csv -o "$DATA/reports/patient-$id.csv" 2>/dev/null
  cli report patient "$id" --format pdf \
    -o "$DATA/reports/patient-$id-progress.pdf" 2>/dev/null
  cli report patient "$id" --format fhir \
    -o "$DATA/reports/patient-$id-fhir.json" 2>/dev/null
done
# Today's clinic summary: the hub's days are this machine's local days.
TODAY=$(date +%F)
for format in pdf csv; do
  cli report clinic --from "$TODAY" --to "$TODAY" --format "$format" \
    -o "$DATA/reports/clinic-summary-$TODAY.$format" 2>/dev/null
done

if [ -t 0 ] && [ -t 1 ]; then
  echo
  echo "The hub keeps serving the dashboard at $DASHBOARD"
  echo "(patients: ${DASHBOARD}patient/${patient_ids[2]} and so on). Ctrl-C stops it."
  wait "$HUB_PID" || true
else
  kill -TERM "$HUB_PID"
  wait "$HUB_PID" || true
fi
echo
echo "SQLite record:  $DATA/stephub.db"
echo "Reports:        $DATA/reports/"
ls -1 "$DATA/reports" | sed 's/^/                /'
echo "Logs:           $DATA/logs/"
