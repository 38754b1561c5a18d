#!/usr/bin/env python3
"""Writes the station-message fuzz target's seeds (corpus/station_message):
streams of length-delimited StationMessages, encoded from text format by
protoc, as a station would send them. Run from the repository root:
  python3 fuzz/make_station_seeds.py"""
import math
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus" / "station_message"

HELLO = """hello {
  station_id: "bay-1" boot_id: "boot-a" software_version: "seed"
  sensors { sensor_id: 10 kind: SENSOR_KIND_IMU placement: PLACEMENT_SACRUM rate_hz: 100 }
  sensors { sensor_id: 11 kind: SENSOR_KIND_IMU placement: PLACEMENT_THIGH rate_hz: 100 }
  sensors { sensor_id: 20 kind: SENSOR_KIND_FORCE_PLATE placement: PLACEMENT_STANCE_FOOT rate_hz: 100 }
}"""


def encode(text):
    data = subprocess.run(
        ["protoc", f"-I{ROOT / 'proto'}", "--encode=stephub.v1.StationMessage",
         "stephub/v1/station_link.proto"],
        input=text.encode(), capture_output=True, check=True).stdout
    return varint(len(data)) + data


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def imu(sensor, t0, n, tilt):
    ts = " ".join(f"t_us: {t0 + i * 10000}" for i in range(n))
    ax = " ".join(f"ax_mps2: {9.81 * math.sin(tilt * math.sin(i / 8)):.3f}"
                  for i in range(n))
    ay = " ".join("ay_mps2: 0.1" for _ in range(n))
    az = " ".join(f"az_mps2: {9.81 * math.cos(tilt * math.sin(i / 8)):.3f}"
                  for i in range(n))
    gx = " ".join(f"gx_radps: {tilt * math.cos(i / 8) / 8 * 100:.3f}"
                  for i in range(n))
    gy = " ".join("gy_radps: 0" for _ in range(n))
    gz = " ".join("gz_radps: 0.01" for _ in range(n))
    return f"imu {{ sensor_id: {sensor} {ts} {ax} {ay} {az} {gx} {gy} {gz} }}"


def force(t0, n):
    ts = " ".join(f"t_us: {t0 + i * 10000}" for i in range(n))
    fz = " ".join(f"fz_n: {700 + 50 * math.sin(i / 8):.1f}" for i in range(n))
    cx = " ".join(f"cop_x_mm: {5 * math.sin(i / 8):.2f}" for i in range(n))
    cy = " ".join("cop_y_mm: nan" if i % 7 == 0 else "cop_y_mm: 1"
                  for i in range(n))
    return f"force {{ sensor_id: 20 {ts} {fz} {cx} {cy} }}"


def batch(seq, t0, n, tilt, extra=""):
    return (f"batch {{ seq: {seq} {extra} {imu(10, t0, n, tilt)} "
            f"{imu(11, t0, n, tilt * 2)} {force(t0, n)} }}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    streams = {
        "hello_only": [HELLO],
        "three_batches": [HELLO] + [batch(s, 1_000_000 + (s - 1) * 400_000, 40,
                                          0.05 * s) for s in (1, 2, 3)],
        "health_clock_ping": [
            HELLO,
            "clock_ping { ping_id: 1 station_send_us: 5 }",
            "clock_offset { offset_us: -1200 round_trip_us: 900 "
            "uncertainty_us: 450 }",
            "health { sensors { sensor_id: 10 state: SENSOR_STATE_OK "
            "detail: \"fine\" } }",
            batch(1, 2_000_000, 20, 0.1),
        ],
        "spool_loss_and_clock_back": [
            HELLO, batch(1, 5_000_000, 20, 0.1),
            batch(4, 1_000_000, 20, 0.2, "follows_spool_loss: true"),
        ],
    }
    for name, messages in streams.items():
        (OUT / name).write_bytes(b"".join(encode(m) for m in messages))


if __name__ == "__main__":
    main()
