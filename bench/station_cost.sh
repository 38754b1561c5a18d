#!/usr/bin/env bash
# The station daemon's own CPU cost per second of recorded data at full rates
# (force plate 1 kHz, four IMUs at 200 Hz), counted in instructions by
# valgrind's callgrind (this machine has no hardware counters for perf).
#
# A real hub runs; one station replays a simulated patient's set on its
# virtual clock (as fast as the hub acknowledges) through the whole path:
# poll, serialize, spool append + fsync, stream, acknowledgement, release.
# The simulator's own instructions are subtracted: on a bay, drivers decoding
# sensor bytes take its place (bench/driver_cost.sh counts them).
#
# usage: bench/station_cost.sh [build dir]   (needs valgrind)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$ROOT/build}"
command -v valgrind >/dev/null || { echo "station_cost: needs valgrind (apt-get install valgrind)"; exit 2; }
TMP="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

# shellcheck source=bench/bench_hub.sh
. "$ROOT/bench/bench_hub.sh"

valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out" \
  "$BIN/station/stephub-station" --hub="$STEPHUB_HUB" --station_id=bench-1 \
  --sensors=sim:moderate --seed=1 --spool_dir="$TMP/spool" --insecure-dev \
  --exit_after_set --as_fast_as_possible --quiet --log_level=warning \
  >"$TMP/station.log" 2>&1 &
STATION=$!
for _ in $(seq 1 600); do
  cli stations 2>/dev/null | grep -q 'bench-1.*online' && break
  sleep 0.1
done
PATIENT=$(cli patients add "Bench Patient" | awk '{print $3}')
cli set start --station bench-1 --patient "$PATIENT" --side left >/dev/null
wait "$STATION"

TOTAL=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$TMP/callgrind.out" | head -1)
SIM=$(callgrind_annotate --inclusive=yes "$TMP/callgrind.out" 2>/dev/null |
  grep 'StepDownSimulator::GenerateUntil' | head -1 | awk '{gsub(",","",$1); print $1}')
BATCHES=$(sqlite3 "$TMP/hub/stephub.db" "SELECT COUNT(*) FROM sample_batches WHERE station_id='bench-1'")
SAMPLES=$(sqlite3 "$TMP/hub/stephub.db" "SELECT SUM(sample_count) FROM sample_batches WHERE station_id='bench-1'")
python3 - "$TOTAL" "${SIM:-0}" "$BATCHES" "$SAMPLES" <<'PY'
import sys
total, sim, batches, samples = (int(x) for x in sys.argv[1:])
seconds = batches * 0.025  # one batch per 25 ms of station clock
own = total - sim
per_s = own / seconds
# Raspberry Pi 4: Cortex-A72 at 1.5 GHz. Assume one instruction per cycle,
# conservative for this integer/memcpy-heavy code (the A72 issues up to 3).
pi_core = 1.5e9
print(f"recorded data:            {seconds:.1f} s ({batches} batches, {samples} samples)")
print(f"instructions, all:        {total:,}")
print(f"  of which simulator:     {sim:,}")
print(f"station's own:            {own:,}")
print(f"per second of data:       {per_s/1e6:.1f} M instructions")
print(f"share of one Pi 4 core:   {100*per_s/pi_core:.1f} % (at 1 instruction/cycle, 1.5 GHz)")
PY
