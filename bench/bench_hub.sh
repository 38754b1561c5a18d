# Sourced by the benchmark scripts: starts a hub with its database in
# $TMP/hub, a staff account "bench" (therapist and admin; password in
# $BENCH_PASSWORD), the CLI signed in as it, and sets HUB_PID and
# STEPHUB_HUB. Needs BIN (the build dir) and TMP; extra hub flags in
# BENCH_HUB_FLAGS.
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
  ${BENCH_HUB_FLAGS:-} >"$TMP/hub.log" 2>&1 &
HUB_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$TMP/hub.log")
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "bench: the hub did not start:"; cat "$TMP/hub.log"; exit 1; }
export STEPHUB_HUB="127.0.0.1:$PORT"
export STEPHUB_SESSION_FILE="$TMP/cli-session"
echo "$BENCH_PASSWORD" | "$BIN/tools/stephub" login bench >/dev/null
