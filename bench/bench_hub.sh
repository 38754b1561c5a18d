# Sourced by the benchmark scripts: starts a hub with its database in
# $TMP/hub, a staff account "bench" (therapist and admin; password in
# $BENCH_PASSWORD), the CLI (`cli`) signed in as it, and sets HUB_PID and
# STEPHUB_HUB. Needs BIN (the build dir) and TMP; extra hub flags in
# BENCH_HUB_FLAGS. The hub serves plaintext (--insecure-dev), unless
# BENCH_TLS=1: then it has a clinic CA and certificate in $TMP/hub/tls
# (BENCH_TLS_DIR), as in a clinic.
BENCH_PASSWORD="bench password $$"
echo "$BENCH_PASSWORD" | "$BIN/hub/stephub-hub" --data_dir="$TMP/hub" \
  --add_staff=bench --roles=therapist,admin >/dev/null
# Accounts for a load generator's therapists: one per 100 stations, as a
# clinic's would be (each person's calls are rate-limited).
bench_staff() {
  local n="$1" users=""
  for i in $(seq 1 "$n"); do
    echo "$BENCH_PASSWORD" | "$BIN/hub/stephub-hub" --data_dir="$TMP/hub" \
      --add_staff="bench-$i" --roles=therapist >/dev/null
    users="${users:+$users,}bench-$i"
  done
  echo "$users"
}
BENCH_TLS_DIR="$TMP/hub/tls"
if [ "${BENCH_TLS:-0}" = 1 ]; then
  "$BIN/tools/stephub" certs init --dir "$BENCH_TLS_DIR" --clinic Bench >/dev/null
  "$BIN/tools/stephub" certs hub --dir "$BENCH_TLS_DIR" >/dev/null
  TRANSPORT=()
  CLI_TRANSPORT=(--ca_file "$BENCH_TLS_DIR/ca.crt")
else
  TRANSPORT=(--insecure-dev)
  CLI_TRANSPORT=(--insecure-dev)
fi
# shellcheck disable=SC2086
"$BIN/hub/stephub-hub" --listen=127.0.0.1:0 --web_listen= --data_dir="$TMP/hub" \
  "${TRANSPORT[@]}" ${BENCH_HUB_FLAGS:-} >"$TMP/hub.log" 2>&1 &
HUB_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$TMP/hub.log" 2>/dev/null)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "bench: the hub did not start:"; cat "$TMP/hub.log"; exit 1; }
export STEPHUB_HUB="127.0.0.1:$PORT"
export STEPHUB_SESSION_FILE="$TMP/cli-session"
# The staff CLI, signed in as bench.
cli() { "$BIN/tools/stephub" "${CLI_TRANSPORT[@]}" "$@"; }
echo "$BENCH_PASSWORD" | cli login bench >/dev/null
