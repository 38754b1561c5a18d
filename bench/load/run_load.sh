#!/usr/bin/env bash
# One load run: N full-rate stations (stephub-loadgen) for DURATION against
# a fresh hub (sets started and ended on a schedule, a live subscriber
# timing repetitions) or against the bare sink (streams only). Prints the
# loadgen's JSON line with the server's CPU and memory, and "server".
#
# usage: bench/load/run_load.sh hub|sink N DURATION [build dir]
# BENCH_TLS=1: the hub with a clinic CA and every station with its own
# certificate (the sink is plaintext only). BENCH_HUB_FLAGS: more hub flags;
# LOADGEN_FLAGS: more stephub-loadgen flags (--sample_every=1m for a soak,
# --batch_period=100ms); HUB_LOG=path keeps the hub's log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVER="$1"
N="$2"
DURATION="$3"
BIN="${4:-$ROOT/build}"
TMP="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT

case "$SERVER" in
  hub)
    # shellcheck source=bench/bench_hub.sh
    . "$ROOT/bench/bench_hub.sh"
    STAFF=$(bench_staff $(( (N + 99) / 100 )))
    SERVER_PID=$HUB_PID
    ADDRESS=$STEPHUB_HUB
    SETS=(--staff="$STAFF" --staff_password="$BENCH_PASSWORD")
    [ "${BENCH_TLS:-0}" = 1 ] && SETS+=(--tls_dir="$BENCH_TLS_DIR")
    ;;
  sink)
    "$BIN/bench/stephub-sink" --listen=127.0.0.1:0 >"$TMP/sink.log" 2>&1 &
    SERVER_PID=$!
    PORT=""
    for _ in $(seq 1 100); do
      PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$TMP/sink.log" 2>/dev/null)
      [ -n "$PORT" ] && break
      sleep 0.1
    done
    ADDRESS="127.0.0.1:$PORT"
    SETS=()
    ;;
  *) echo "usage: $0 hub|sink N DURATION [build dir]" >&2; exit 2 ;;
esac

set +e
# shellcheck disable=SC2086
RESULT=$("$BIN/bench/stephub-loadgen" --hub="$ADDRESS" --stations="$N" \
  --duration="$DURATION" --server_pid="$SERVER_PID" "${SETS[@]}" ${LOADGEN_FLAGS:-})
CODE=$?
set -e
EXTRA=""
if [ "$SERVER" = hub ]; then
  # Whether the hub's folder fell behind the stations (and caught up):
  # only runs longer than 10 minutes can show it (5 before folding starts,
  # 5 more without catching up).
  BEHIND=$(grep -c "event=sample_folding_behind" "$TMP/hub.log" || true)
  CAUGHT_UP=$(grep -c "event=sample_folding_caught_up" "$TMP/hub.log" || true)
  # Set calls that kept a therapist waiting half a second or more; the
  # hub's log line names the phase that took the time.
  SLOW_SET_CALLS=$(grep -c "event=slow_set_call" "$TMP/hub.log" || true)
  EXTRA=",\"folding_behind\":$BEHIND,\"folding_caught_up\":$CAUGHT_UP"
  EXTRA="$EXTRA,\"slow_set_calls\":$SLOW_SET_CALLS"
  if [ -n "${HUB_LOG:-}" ]; then cp "$TMP/hub.log" "$HUB_LOG"; fi
fi
echo "${RESULT%\}}$EXTRA,\"server\":\"$SERVER\"}"
exit $CODE
