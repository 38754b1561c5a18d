// Cost of the hub's scoring pipeline (hub/scoring), alone: per IMU sample,
// per force sample, and how many stations at full rates one core can score
// in real time. Google Benchmark; results in docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "common/recording.h"
#include "common/simulator.h"
#include "hub/scoring/force_plate.h"
#include "hub/scoring/scoring.h"

namespace stephub {
namespace {

// One simulated set of ten repetitions with every sensor, at full rates
// (four IMUs at 200 Hz, the plate at 1 kHz), about 40 s of data.
const Recording& FullSet() {
  static const Recording* recording = [] {
    PatientProfile profile = *ProfileByName("moderate");
    return new Recording(SimulateRecording(profile, 1));
  }();
  return *recording;
}

Recording Only(bool imus, bool sacrum_only, bool plate) {
  Recording r = FullSet();
  if (!imus) r.imu.clear();
  if (sacrum_only) {
    for (auto it = r.imu.begin(); it != r.imu.end();) {
      it = it->first == Placement::kSacrum ? std::next(it) : r.imu.erase(it);
    }
  }
  if (!plate) r.force.clear();
  return r;
}

double DataSeconds(const Recording& r) {
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (const auto& [placement, samples] : r.imu) {
    first = std::min(first, samples.front().t_us);
    last = std::max(last, samples.back().t_us);
  }
  if (!r.force.empty()) {
    first = std::min(first, r.force.front().t_us);
    last = std::max(last, r.force.back().t_us);
  }
  return (last - first) * 1e-6;
}

int64_t Samples(const Recording& r, bool count_imu, bool count_force) {
  int64_t n = 0;
  if (count_imu) {
    for (const auto& [placement, samples] : r.imu) n += samples.size();
  }
  if (count_force) n += r.force.size();
  return n;
}

void Score(benchmark::State& state, const Recording& r, int64_t items) {
  for (auto _ : state) {
    auto reps = scoring::ScoreRecording(r);
    benchmark::DoNotOptimize(reps);
  }
  state.SetItemsProcessed(state.iterations() * items);
  // Seconds of data scored per second of CPU: stations one core keeps up
  // with in real time.
  state.counters["stations_per_core"] = benchmark::Counter(
      DataSeconds(r) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// Per IMU sample: the sacral IMU alone (attitude, calibration, pelvic
// angles, segmentation on sacral tilt, metrics).
void BM_SacralImuSample(benchmark::State& state) {
  static const Recording r = Only(true, true, false);
  Score(state, r, Samples(r, true, false));
}
BENCHMARK(BM_SacralImuSample)->Unit(benchmark::kMillisecond);

// Per force sample: the plate alone (weight, COP, plate segmentation).
void BM_ForcePlateSample(benchmark::State& state) {
  static const Recording r = Only(false, false, true);
  Score(state, r, Samples(r, false, true));
}
BENCHMARK(BM_ForcePlateSample)->Unit(benchmark::kMillisecond);

// A full station: four IMUs and the plate, knee-flexion segmentation and
// every metric; items are all samples.
void BM_FullStation(benchmark::State& state) {
  static const Recording r = FullSet();
  Score(state, r, Samples(r, true, true));
}
BENCHMARK(BM_FullStation)->Unit(benchmark::kMillisecond);

// Many stations scored side by side, batch by batch, as the hub's
// callback threads do: each 25 ms batch of every station in turn, so that
// a station's scorer state has left the caches by its next batch. Against
// one station alone (the argument 1) this is what the hub's number of
// stations costs scoring per sample. Items are all samples.
void BM_InterleavedStations(benchmark::State& state) {
  const auto stations = static_cast<size_t>(state.range(0));
  // Distinct recordings, so that the stations' data is not one copy that
  // stays cached either; each about 4 MB.
  constexpr uint64_t kRecordings = 8;
  static const std::vector<Recording> recordings = [] {
    std::vector<Recording> out;
    const PatientProfile profile = *ProfileByName("moderate");
    for (uint64_t seed = 1; seed <= kRecordings; ++seed) {
      out.push_back(SimulateRecording(profile, seed));
    }
    return out;
  }();
  static const std::vector<std::vector<scoring::RecordingBatch>> batches = [] {
    std::vector<std::vector<scoring::RecordingBatch>> out;
    for (const Recording& r : recordings) {
      out.push_back(scoring::BatchesOf(r));
    }
    return out;
  }();
  size_t most_batches = 0;
  for (const auto& cut : batches) {
    most_batches = std::max(most_batches, cut.size());
  }
  int64_t samples = 0;
  double seconds = 0;
  for (size_t s = 0; s < stations; ++s) {
    const Recording& r = recordings[s % kRecordings];
    samples += Samples(r, true, true);
    seconds += DataSeconds(r);
  }
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::unique_ptr<scoring::SetScorer>> scorers;
    for (size_t s = 0; s < stations; ++s) {
      const Recording& r = recordings[s % kRecordings];
      scorers.push_back(std::make_unique<scoring::SetScorer>(
          r.meta.stance_side, scoring::SensorsOf(r)));
    }
    state.ResumeTiming();
    size_t repetitions = 0;
    for (size_t b = 0; b < most_batches; ++b) {
      for (size_t s = 0; s < stations; ++s) {
        const auto& cut = batches[s % kRecordings];
        if (b >= cut.size()) continue;
        scoring::SetScorer& scorer = *scorers[s];
        for (const auto& [placement, imu] : cut[b].imus) {
          repetitions += scorer.AddImuSamples(placement, imu).size();
        }
        repetitions += scorer.AddForceSamples(cut[b].force).size();
        repetitions += scorer.EndBatch().size();
      }
    }
    for (auto& scorer : scorers) repetitions += scorer->FinishSet().size();
    benchmark::DoNotOptimize(repetitions);
    state.PauseTiming();
    scorers.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * samples);
  state.counters["stations_per_core"] =
      benchmark::Counter(seconds * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_InterleavedStations)
    ->Arg(1)
    ->Arg(8)
    ->Arg(300)
    ->Unit(benchmark::kMillisecond);

// Per force sample while the patient stands on the plate but shifts their
// weight (never steady): what the standing-window search costs before a
// set calibrates, for as long as the patient does not stand still.
void BM_PlateStillnessWhileShifting(benchmark::State& state) {
  std::vector<ForceSample> samples;
  for (int64_t t = 0; t < 10'000'000; t += 1'000) {
    // 700 N, swaying +-30 N at 0.5 Hz: within what one leg holds, never
    // steady.
    samples.push_back({t, 700 + 30 * std::sin(t * 1e-6 * 3.14159), 0, 0});
  }
  for (auto _ : state) {
    scoring::PlateStillnessDetector detector;
    for (const ForceSample& s : samples) {
      benchmark::DoNotOptimize(detector.Add(s));
    }
  }
  state.SetItemsProcessed(state.iterations() *
                          static_cast<int64_t>(samples.size()));
}
BENCHMARK(BM_PlateStillnessWhileShifting)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace stephub

BENCHMARK_MAIN();
