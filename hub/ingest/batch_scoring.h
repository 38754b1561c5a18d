// A validated batch fed to a set's scorer, as the hub's online scoring does
// it: the pure part of ingest, shared by the bays and the station-message
// fuzz target (fuzz/station_message_fuzzer.cc).
#ifndef STEPHUB_HUB_INGEST_BATCH_SCORING_H_
#define STEPHUB_HUB_INGEST_BATCH_SCORING_H_

#include <cstdint>
#include <vector>

#include "hub/scoring/scoring.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::ingest {

// The sensors a station's hello announces, as scoring sees them: one IMU
// per placement (the first the hello names) and the first force plate.
scoring::StationSensors StationSensorsOf(const v1::StationHello& hello);

// Feeds the samples of `batch` taken within [from_us, until_us] (station
// clock) to `scorer`, sensor by sensor as `hello` announced them, then ends
// the batch; returns the repetitions that completed.
std::vector<scoring::Repetition> ScoreBatchSamples(
    scoring::SetScorer& scorer, const v1::StationHello& hello,
    const v1::SampleBatch& batch, int64_t from_us, int64_t until_us);

}  // namespace stephub::ingest

#endif  // STEPHUB_HUB_INGEST_BATCH_SCORING_H_
