// A minute of one simulated station's batches at full rates (four IMUs at
// 200 Hz, the plate at 1 kHz, 25 ms batches), shared by the benchmarks that
// store or fold sample batches.
#ifndef STEPHUB_BENCH_SIMULATED_MINUTE_H_
#define STEPHUB_BENCH_SIMULATED_MINUTE_H_

#include <cstdint>
#include <vector>

#include "common/simulator.h"
#include "station/sensors/sensors.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::bench {

constexpr int64_t kBatchUs = 25'000;

// The batches a "moderate" patient's station sends in its first minute of a
// set; benchmarks replay them with shifted times.
inline std::vector<v1::SampleBatch> OneMinute(uint64_t seed) {
  PatientProfile profile = *ProfileByName("moderate");
  auto source = station::MakeSimulatedSource(profile, seed, 0);
  source->OnSetStarted(0, profile.stance_side);
  std::vector<v1::SampleBatch> batches;
  for (int64_t t = kBatchUs; t <= 60'000'000; t += kBatchUs) {
    v1::SampleBatch batch;
    if (!source->Poll(t, &batch).ok()) break;
    batches.push_back(std::move(batch));
  }
  return batches;
}

}  // namespace stephub::bench

#endif  // STEPHUB_BENCH_SIMULATED_MINUTE_H_
