// A batch fed to a set's scorer; see batch_scoring.h.
#include "hub/ingest/batch_scoring.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "hub/ingest/validate.h"

namespace stephub::ingest {
namespace {

std::optional<Placement> ImuPlacement(v1::Placement placement) {
  switch (placement) {
    case v1::PLACEMENT_SACRUM:
      return Placement::kSacrum;
    case v1::PLACEMENT_STERNUM:
      return Placement::kSternum;
    case v1::PLACEMENT_THIGH:
      return Placement::kThigh;
    case v1::PLACEMENT_SHANK:
      return Placement::kShank;
    case v1::PLACEMENT_WRIST:
      return Placement::kWrist;
    default:
      return std::nullopt;
  }
}

// The station's sensors that scoring uses, by sensor id.
struct ScoredSensors {
  std::vector<std::pair<uint32_t, Placement>> imus;
  std::optional<uint32_t> force_plate;
};

ScoredSensors ScoredSensorsOf(const v1::StationHello& hello) {
  ScoredSensors out;
  // Runs for every batch: growing one IMU at a time was three allocations
  // a batch, 1 % of the callback threads' time at 300 stations.
  out.imus.reserve(static_cast<size_t>(hello.sensors_size()));
  for (const v1::SensorInfo& s : hello.sensors()) {
    if (s.kind() == v1::SENSOR_KIND_IMU) {
      const auto placement = ImuPlacement(s.placement());
      if (!placement) continue;
      const bool seen = std::any_of(
          out.imus.begin(), out.imus.end(),
          [&](const auto& imu) { return imu.second == *placement; });
      if (!seen) out.imus.push_back({s.sensor_id(), *placement});
    } else if (s.kind() == v1::SENSOR_KIND_FORCE_PLATE && !out.force_plate) {
      out.force_plate = s.sensor_id();
    }
  }
  return out;
}

}  // namespace

scoring::StationSensors StationSensorsOf(const v1::StationHello& hello) {
  const ScoredSensors scored = ScoredSensorsOf(hello);
  scoring::StationSensors sensors;
  for (const auto& [id, placement] : scored.imus) {
    sensors.imus.push_back(placement);
  }
  sensors.force_plate = scored.force_plate.has_value();
  sensors.calibration_movement = hello.calibration_movement();
  return sensors;
}

std::vector<scoring::Repetition> ScoreBatchSamples(
    scoring::SetScorer& scorer, const v1::StationHello& hello,
    const v1::SampleBatch& batch, int64_t from_us, int64_t until_us) {
  auto within = [&](auto samples) {
    std::erase_if(samples, [&](const auto& sample) {
      return sample.t_us < from_us || sample.t_us > until_us;
    });
    return samples;
  };
  // Every sensor's share of the batch, then its end; a repetition comes
  // back from the call that completed its last sensor's data, or from
  // EndBatch if it gave up waiting for a sensor that stopped.
  std::vector<scoring::Repetition> scored;
  auto keep = [&scored](std::vector<scoring::Repetition> reps) {
    scored.insert(scored.end(), reps.begin(), reps.end());
  };
  const ScoredSensors sensors = ScoredSensorsOf(hello);
  for (const auto& [id, placement] : sensors.imus) {
    keep(scorer.AddImuSamples(placement, within(ImuSamplesOf(batch, id))));
  }
  if (sensors.force_plate) {
    keep(scorer.AddForceSamples(
        within(ForceSamplesOf(batch, *sensors.force_plate))));
  }
  keep(scorer.EndBatch());
  return scored;
}

}  // namespace stephub::ingest
