# Sourced by the benchmark scripts: starts a hub with its database in
# $TMP/hub, a staff account "bench" (therapist and admin; password in
# $BENCH_PASSWORD), the CLI (`cli`) signed in as it, and sets HUB_PID and
# STEPHUB_HUB. Needs BIN (the build dir) and TMP; extra hub flags in
# BENCH_HUB_FLAGS. The hub serves plaintext (--insecure-dev): the load
# generator's stations have no certificates, and what is measured here is
# the hub's own work, not TLS's.
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
# shellcheck disable=SC2086
"$BIN/hub/stephub-hub" --listen=127.0.0.1:0 --web_listen= --data_dir="$TMP/hub" \
  --insecure-dev ${BENCH_HUB_FLAGS:-} >"$TMP/hub.log" 2>&1 &
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
cli() { "$BIN/tools/stephub" --insecure-dev "$@"; }
echo "$BENCH_PASSWORD" | cli login bench >/dev/null
