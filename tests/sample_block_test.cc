// Sample blocks (hub/store/sample_block.h): a minute of a station's batches
// comes back byte for byte, smaller, and a damaged block is an error.
#include "hub/store/sample_block.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "absl/strings/escaping.h"
#include "common/simulator.h"
#include "station/sensors/sensors.h"

namespace stephub::store {
namespace {

constexpr int64_t kBatchUs = 25'000;

// `seconds` of a simulated full station's batches, as the hub stores them.
std::vector<BatchRecord> SimulatedBatches(double seconds, int64_t first_seq) {
  PatientProfile profile = *ProfileByName("trendelenburg");
  auto source = station::MakeSimulatedSource(profile, 7, 0);
  source->OnSetStarted(0, profile.stance_side);
  std::vector<BatchRecord> out;
  const absl::Time arrival = absl::FromUnixMicros(1'795'000'000'000'000);
  for (int64_t t = kBatchUs; t <= seconds * 1e6; t += kBatchUs) {
    v1::SampleBatch batch;
    EXPECT_TRUE(source->Poll(t, &batch).ok());
    batch.set_seq(static_cast<uint64_t>(first_seq++));
    // Arrival jitters by a few hundred microseconds, as it does on a LAN.
    out.push_back(
        BatchRecordOf(batch, "bay-1", "boot-a",
                      arrival + absl::Microseconds(t + (t * 7919) % 900)));
  }
  return out;
}

// Two small batches made by hand, for a block written by an older layout.
std::vector<BatchRecord> HandMadeBatches() {
  std::vector<BatchRecord> out;
  for (uint64_t seq : {1, 2}) {
    v1::SampleBatch batch;
    batch.set_seq(seq);
    const auto t0 = static_cast<int64_t>(seq) * 25'000;
    v1::ImuSamples* imu = batch.add_imu();
    imu->set_sensor_id(3);
    v1::ForceSamples* force = batch.add_force();
    force->set_sensor_id(1);
    for (int i = 0; i < 4; ++i) {
      const float x = static_cast<float>(seq * 10 + i);
      imu->add_t_us(t0 + i * 5'000);
      imu->add_ax_mps2(0.5f + x);
      imu->add_ay_mps2(-0.25f * x);
      imu->add_az_mps2(9.81f);
      imu->add_gx_radps(0.01f * x);
      imu->add_gy_radps(0.0f);
      imu->add_gz_radps(-x);
      force->add_t_us(t0 + i * 1'000);
      force->add_fz_n(700.0f + x);
      force->add_cop_x_mm(1.5f * x);
      force->add_cop_y_mm(-2.0f);
    }
    out.push_back(
        BatchRecordOf(batch, "bay-1", "boot-a",
                      absl::FromUnixMicros(1'795'000'000'000'000 + t0 + 700)));
  }
  return out;
}

void ExpectSameBatches(const std::vector<BatchRecord>& got,
                       const std::vector<BatchRecord>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(got[i] == want[i])
        << "batch " << i << " (seq " << want[i].seq << ") comes back changed";
  }
}

TEST(SampleBlock, AMinuteOfAStationComesBackByteForByteAndSmaller) {
  const std::vector<BatchRecord> batches = SimulatedBatches(60, 1);
  ASSERT_EQ(batches.size(), 2400u);
  size_t raw = 0;
  for (const BatchRecord& b : batches) raw += b.payload.size();
  auto block = EncodeSampleBlock(batches);
  ASSERT_TRUE(block.ok()) << block.status();
  auto back = DecodeSampleBlock("bay-1", *block);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameBatches(*back, batches);
  // 0.54 when written (simulated noise fills the floats' low bytes); the
  // protobuf batches under zlib one by one keep 0.93.
  EXPECT_LT(static_cast<double>(block->size()) / raw, 0.75)
      << block->size() << " of " << raw << " bytes";
}

TEST(SampleBlock, KeepsOddBatchesVerbatimAmongColumnarOnes) {
  std::vector<BatchRecord> batches = SimulatedBatches(1, 40);
  // A newer station's field the hub does not know (field 15, varint 1).
  batches[3].payload.append("\x78\x01", 2);
  // Not a protobuf at all.
  batches[5].payload = "\xff\xff\xff";
  // Channels of different lengths: cannot be columns.
  {
    v1::SampleBatch ragged;
    ragged.set_seq(batches[7].seq);
    v1::ImuSamples* imu = ragged.add_imu();
    imu->add_t_us(5);
    imu->add_ax_mps2(std::nanf(""));
    batches[7].payload = ragged.SerializeAsString();
  }
  // A station that restarted: another boot, seq from 1, spool loss flagged.
  {
    v1::SampleBatch after;
    ASSERT_TRUE(after.ParseFromString(batches[9].payload));
    after.set_seq(1);
    after.set_follows_spool_loss(true);
    batches[9].payload = after.SerializeAsString();
    batches[9].boot_id = "boot-b";
    batches[9].seq = 1;
  }
  // Extreme numbers survive the differences.
  batches[11].first_t_us = std::numeric_limits<int64_t>::min();
  batches[11].last_t_us = std::numeric_limits<int64_t>::max();
  batches[12].received_at = absl::FromUnixMicros(0);
  auto block = EncodeSampleBlock(batches);
  ASSERT_TRUE(block.ok()) << block.status();
  auto back = DecodeSampleBlock("bay-1", *block);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameBatches(*back, batches);
}

// The planes of sensor noise follow the zlib stream as they are, at the
// block's end: damage there is found by their own checksum.
TEST(SampleBlock, DamageToTheNoisePlanesIsFound) {
  const std::vector<BatchRecord> batches = SimulatedBatches(10, 1);
  auto block = EncodeSampleBlock(batches);
  ASSERT_TRUE(block.ok()) << block.status();
  for (size_t back = 1; back < 5000; back += 499) {
    std::string damaged = *block;
    damaged[damaged.size() - back] ^= 0x01;
    auto decoded = DecodeSampleBlock("bay-1", damaged);
    ASSERT_FALSE(decoded.ok()) << back << " bytes from the end";
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss)
        << decoded.status();
  }
  auto intact = DecodeSampleBlock("bay-1", *block);
  ASSERT_TRUE(intact.ok()) << intact.status();
  ExpectSameBatches(*intact, batches);
}

// Blocks written before the floats' noise planes were kept outside zlib
// (layout 1) read back as they did.
TEST(SampleBlock, ABlockOfTheFirstLayoutStillReadsBack) {
  const std::string block = absl::HexStringToBytes(
      "01f402780185c1af4a04411cc0f1ef6f6659063964c285050d67b35cb0681266"
      "c162f0dec1cb07b7e11ec0e214c31d882fe0136cb4b92ac8860da3d960beb482"
      "8ae1c03f8c69837e3e4ad2f1743a1b1ea3ea87d5c5f3659906afcba518417422"
      "92a082d7c1eb722946109d8824c1ebeb2b058bd17c0439d1b62decca64868e8a"
      "68600bdb9accd091136d12bd11dd11ed83e65b33ecb7871bbb6bcdd9e9d3e3fd"
      "d16d33deda9bbd9c97fce38668600bdb9accd011bcfe7c57b0a8d5bc567040b4"
      "8326054e5ce59cab1cbf727e688ad77e6fd2fb58a7a3e26f5f0b803726");
  auto back = DecodeSampleBlock("bay-1", block);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameBatches(*back, HandMadeBatches());
}

TEST(SampleBlock, NoBatchesIsAnEmptyBlock) {
  auto block = EncodeSampleBlock({});
  ASSERT_TRUE(block.ok());
  auto back = DecodeSampleBlock("bay-1", *block);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->empty());
}

TEST(SampleBlock, EveryCutAndEveryFlippedByteIsDamageNeverWrongSamples) {
  const std::vector<BatchRecord> batches = SimulatedBatches(0.2, 1);
  auto block = EncodeSampleBlock(batches);
  ASSERT_TRUE(block.ok());
  for (size_t n = 0; n < block->size(); ++n) {
    auto back = DecodeSampleBlock("bay-1", block->substr(0, n));
    ASSERT_FALSE(back.ok()) << "cut at " << n;
  }
  int intact = 0;
  for (size_t i = 0; i < block->size(); ++i) {
    std::string damaged = *block;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x10);
    auto back = DecodeSampleBlock("bay-1", damaged);
    if (back.ok()) {
      // Only bits zlib never reads (the padding before the checksum, the
      // level hint) may change unnoticed, and then nothing has changed.
      ++intact;
      ExpectSameBatches(*back, batches);
      continue;
    }
    EXPECT_TRUE(back.status().code() == absl::StatusCode::kDataLoss ||
                (i == 0 &&
                 back.status().code() == absl::StatusCode::kFailedPrecondition))
        << back.status();
  }
  EXPECT_LE(intact, 4);
}

}  // namespace
}  // namespace stephub::store
