#!/usr/bin/env bash
# What the station's real hardware drivers cost per second of data at full
# rates (four LSM6DSOX IMUs through IIO at 208 Hz, the force plate at 1 kHz),
# counted in instructions by valgrind's callgrind: the figure to add to
# bench/station_cost.sh, which measures the station with the simulator in
# the drivers' place.
#
# bench/driver_cost.cc feeds the real drivers from fake devices (sysfs trees
# and FIFOs, a pseudo-terminal) in realistic bursts and polls them every
# 25 ms of data. How the instructions are attributed, by function name
# (callgrind_annotate --inclusive=yes, i.e. each function with everything
# it calls):
#   - IMU drivers   = DriveImus + PollImus
#   - plate driver  = DrivePlate + PollPlate
#   - fakes (left out of the figures) = WriteImuBurst + WritePlateChunk
# Drive* is one turn of the shared io_context: the fakes write before it,
# synchronously, and it runs until that data was read, so all it contains is
# driver work: asio's epoll_wait/read(2) wrappers and dispatch, and the
# driver's read handler (decoding). The benchmark writes one device's burst
# or chunk at a time and waits for it to be read, so the two drivers never
# share a turn. Poll* is the drivers' Poll() into the station's batch. What
# is in none of them (setup, Start(), the FIONREAD checks that wait for each
# read, counting) is the harness, also left out.
#
# Not counted: kernel work (the syscalls themselves, I2C and USB interrupt
# handling on the Pi), and instructions are x86-64's, not AArch64's.
#
# usage: bench/driver_cost.sh [seconds of data, default 30] [build dir]
#   (needs valgrind; builds the driver_cost target in the build dir, default
#   build/, configuring it first if needed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_SECONDS="${1:-30}"
BUILD="${2:-$ROOT/build}"
command -v valgrind >/dev/null || { echo "driver_cost: needs valgrind (apt-get install valgrind)"; exit 2; }
[ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j1 --target driver_cost >/dev/null
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The run fails (and so this script) unless Poll handed out every sample.
valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out" \
  "$BUILD/bench/driver_cost" --seconds="$DATA_SECONDS" >"$TMP/run.log" 2>"$TMP/valgrind.log" ||
  { cat "$TMP/run.log" "$TMP/valgrind.log"; exit 1; }
cat "$TMP/run.log"
callgrind_annotate --inclusive=yes --threshold=100 "$TMP/callgrind.out" \
  >"$TMP/inclusive.txt" 2>/dev/null

# Inclusive instructions of the benchmark's function NAME. Inlined code is
# listed again under the header it came from, always less than the whole:
# take the largest.
incl() {
  grep -F "::$1(" "$TMP/inclusive.txt" | awk '{gsub(",","",$1); print $1}' |
    sort -n | tail -1
}
TOTAL=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$TMP/callgrind.out" | head -1)
python3 - "$DATA_SECONDS" "$TOTAL" "$(incl DriveImus)" "$(incl PollImus)" \
  "$(incl DrivePlate)" "$(incl PollPlate)" "$(incl WriteImuBurst)" \
  "$(incl WritePlateChunk)" <<'PY'
import sys
seconds = int(sys.argv[1])
total, drive_imu, poll_imu, drive_plate, poll_plate, fake_imu, fake_plate = (
    int(x or 0) for x in sys.argv[2:])
imu = drive_imu + poll_imu
plate = drive_plate + poll_plate
# Raspberry Pi 4: Cortex-A72 at 1.5 GHz. Assume one instruction per cycle,
# conservative for this integer code (the A72 issues up to 3).
pi_core = 1.5e9
def row(name, instr, samples_per_s):
    per_s = instr / seconds
    print(f"{name:<26}{per_s/1e6:8.2f} M instr/s  {instr/(seconds*samples_per_s):7.0f} instr/sample"
          f"  {100*per_s/pi_core:5.2f} % of a Pi 4 core")
print(f"data: {seconds} s; instructions in all: {total:,}")
row("4 IIO IMUs (208 Hz)", imu, 4 * 208)
row("  read handlers + asio", drive_imu, 4 * 208)
row("  Poll", poll_imu, 4 * 208)
row("force plate (1 kHz)", plate, 1000)
row("  read handlers + asio", drive_plate, 1000)
row("  Poll", poll_plate, 1000)
row("drivers, all", imu + plate, 4 * 208 + 1000)
print(f"left out: fakes {(fake_imu + fake_plate)/seconds/1e6:.2f} M instr/s, "
      f"harness and setup {(total - imu - plate - fake_imu - fake_plate)/seconds/1e6:.2f} M instr/s")
print("(Pi 4 share at 1 instruction/cycle, 1.5 GHz)")
PY

# Where the drivers' instructions go: a second run collecting only inside
# the driver functions, by self cost.
valgrind --tool=callgrind --callgrind-out-file="$TMP/drivers.out" \
  --toggle-collect='*DriveImus*' --toggle-collect='*DrivePlate*' \
  --toggle-collect='*PollImus*' --toggle-collect='*PollPlate*' \
  "$BUILD/bench/driver_cost" --seconds="$DATA_SECONDS" >/dev/null 2>&1
COLLECTED=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$TMP/drivers.out" | head -1)
echo "driver hot spots, self instructions per second of data" \
  "(this run collected $((COLLECTED / DATA_SECONDS)) per second in all):"
callgrind_annotate --threshold=100 "$TMP/drivers.out" 2>/dev/null |
  awk -v s="$DATA_SECONDS" '/file:function/ {on=1; getline; next}
    on && NF >= 3 && n < 12 {
      c=$1; gsub(",","",c); $1=""; $2="";
      gsub(/\(anonymous namespace\)::/, "", $0); sub(/\(.*/, "", $0);
      sub(/ \[.*/, "", $0); sub(/^ +[^:]*:/, "", $0);
      printf "  %7.3f M  %s\n", c/s/1e6, $0; n++}'
