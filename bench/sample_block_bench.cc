// Cost of packing a station's minute of sample batches into one block
// (hub/store/sample_block.h) and of reading it back, alone: the CPU the hub's
// sample folder spends per station-minute before SQLite is involved.
// Google Benchmark; results in docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bench/simulated_minute.h"
#include "hub/store/sample_block.h"
#include "hub/store/store.h"

namespace stephub {
namespace {

// A minute of batches as the store keeps them (2,400 of 25 ms).
const std::vector<store::BatchRecord>& Minute() {
  static const auto* records = [] {
    auto* out = new std::vector<store::BatchRecord>;
    const absl::Time arrival0 = absl::FromUnixSeconds(1'790'000'000);
    uint64_t seq = 0;
    for (const v1::SampleBatch& proto : bench::OneMinute(1)) {
      v1::SampleBatch batch = proto;
      batch.set_seq(++seq);
      out->push_back(store::BatchRecordOf(
          batch, "bay-1", "bench",
          arrival0 +
              absl::Microseconds(bench::kBatchUs * static_cast<int64_t>(seq))));
    }
    return out;
  }();
  return *records;
}

int64_t PayloadBytes(const std::vector<store::BatchRecord>& batches) {
  int64_t bytes = 0;
  for (const auto& b : batches) bytes += static_cast<int64_t>(b.payload.size());
  return bytes;
}

void BM_EncodeMinute(benchmark::State& state) {
  const auto& minute = Minute();
  size_t block_bytes = 0;
  for (auto _ : state) {
    auto block = store::EncodeSampleBlock(minute);
    if (!block.ok()) {
      state.SkipWithError("encode failed");
      return;
    }
    block_bytes = block->size();
    benchmark::DoNotOptimize(block);
  }
  state.SetBytesProcessed(state.iterations() * PayloadBytes(minute));
  state.counters["block/batches"] = static_cast<double>(block_bytes) /
                                    static_cast<double>(PayloadBytes(minute));
}
BENCHMARK(BM_EncodeMinute)->Unit(benchmark::kMillisecond);

void BM_DecodeMinute(benchmark::State& state) {
  const auto& minute = Minute();
  const std::string block = *store::EncodeSampleBlock(minute);
  for (auto _ : state) {
    auto back = store::DecodeSampleBlock("bay-1", block);
    if (!back.ok()) {
      state.SkipWithError("decode failed");
      return;
    }
    benchmark::DoNotOptimize(back);
  }
  state.SetBytesProcessed(state.iterations() * PayloadBytes(minute));
}
BENCHMARK(BM_DecodeMinute)->Unit(benchmark::kMillisecond);

// What the folder does before it writes: pack, then check the block reads
// back as the batches.
void BM_FoldMinute(benchmark::State& state) {
  const auto& minute = Minute();
  for (auto _ : state) {
    auto block = store::EncodeSampleBlock(minute);
    auto back = store::DecodeSampleBlock("bay-1", *block);
    if (!back.ok() || *back != minute) {
      state.SkipWithError("block does not read back");
      return;
    }
  }
  state.SetBytesProcessed(state.iterations() * PayloadBytes(minute));
}
BENCHMARK(BM_FoldMinute)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace stephub

BENCHMARK_MAIN();
