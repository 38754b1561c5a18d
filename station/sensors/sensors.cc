// Simulated and replayed sensor sources; see sensors.h.
#include "station/sensors/sensors.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/recording.h"
#include "common/simulator.h"

namespace stephub::station {

int64_t MonotonicMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr uint32_t kForcePlateId = 1;
constexpr uint32_t kFirstImuId = 10;

v1::Placement ToProto(Placement p) {
  switch (p) {
    case Placement::kSacrum:
      return v1::PLACEMENT_SACRUM;
    case Placement::kSternum:
      return v1::PLACEMENT_STERNUM;
    case Placement::kThigh:
      return v1::PLACEMENT_THIGH;
    case Placement::kShank:
      return v1::PLACEMENT_SHANK;
    case Placement::kWrist:
      return v1::PLACEMENT_WRIST;
  }
  return v1::PLACEMENT_UNSPECIFIED;
}

v1::SensorInfo Imu(uint32_t id, Placement placement, double rate_hz,
                   const std::string& model) {
  v1::SensorInfo s;
  s.set_sensor_id(id);
  s.set_kind(v1::SENSOR_KIND_IMU);
  s.set_placement(ToProto(placement));
  s.set_rate_hz(rate_hz);
  s.set_model(model);
  return s;
}

v1::SensorInfo ForcePlate(double rate_hz, const std::string& model) {
  v1::SensorInfo s;
  s.set_sensor_id(kForcePlateId);
  s.set_kind(v1::SENSOR_KIND_FORCE_PLATE);
  s.set_placement(v1::PLACEMENT_STANCE_FOOT);
  s.set_rate_hz(rate_hz);
  s.set_model(model);
  return s;
}

// Simulated and recorded sensors never fail.
std::vector<v1::SensorHealth> AllOk(
    const std::vector<v1::SensorInfo>& sensors) {
  std::vector<v1::SensorHealth> out;
  for (const auto& sensor : sensors) {
    v1::SensorHealth h;
    h.set_sensor_id(sensor.sensor_id());
    h.set_state(v1::SENSOR_STATE_OK);
    out.push_back(std::move(h));
  }
  return out;
}

// A simulated patient on the bay: stands quietly until the set starts.
class SimulatedSource : public SensorSource {
 public:
  SimulatedSource(PatientProfile profile, uint64_t seed, int64_t start_us)
      : profile_(profile),
        seed_(seed),
        simulator_(
            std::make_unique<StepDownSimulator>(profile, seed, start_us)),
        polled_until_(start_us),
        last_imu_t_us_(start_us) {}

  std::optional<bool> CalibrationMovement() const override {
    return profile_.calibration_movement;
  }

  // A whole station: the plate and four IMUs (sacrum, sternum, thigh and
  // shank of the stance leg), and a wrist IMU when the profile has one.
  std::vector<v1::SensorInfo> Sensors() const override {
    std::vector<v1::SensorInfo> out = {
        ForcePlate(profile_.force_rate_hz, "stephub-sim"),
        Imu(kFirstImuId, Placement::kSacrum, profile_.imu_rate_hz,
            "stephub-sim"),
        Imu(kFirstImuId + 1, Placement::kSternum, profile_.imu_rate_hz,
            "stephub-sim"),
        Imu(kFirstImuId + 2, Placement::kThigh, profile_.imu_rate_hz,
            "stephub-sim"),
        Imu(kFirstImuId + 3, Placement::kShank, profile_.imu_rate_hz,
            "stephub-sim")};
    if (profile_.wrist_imu) {
      out.push_back(Imu(kFirstImuId + 4, Placement::kWrist,
                        profile_.imu_rate_hz, "stephub-sim"));
    }
    for (auto& sensor : out) {
      sensor.set_driver("sim");
      sensor.set_device(
          absl::StrCat("profile ", profile_.name, ", seed ", seed_));
    }
    return out;
  }

  absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) override {
    SimulatedSamples samples;
    simulator_->GenerateUntil(now_us, &samples);
    polled_until_ = std::max(polled_until_, now_us);
    if (!samples.sacrum.empty()) last_imu_t_us_ = samples.sacrum.back().t_us;
    AppendForceSamples(kForcePlateId, samples.force, 0, samples.force.size(), 0,
                       batch);
    AppendImuSamples(kFirstImuId, samples.sacrum, 0, samples.sacrum.size(), 0,
                     batch);
    AppendImuSamples(kFirstImuId + 1, samples.sternum, 0,
                     samples.sternum.size(), 0, batch);
    AppendImuSamples(kFirstImuId + 2, samples.thigh, 0, samples.thigh.size(), 0,
                     batch);
    AppendImuSamples(kFirstImuId + 3, samples.shank, 0, samples.shank.size(), 0,
                     batch);
    AppendImuSamples(kFirstImuId + 4, samples.wrist, 0, samples.wrist.size(), 0,
                     batch);
    return absl::OkStatus();
  }

  void OnSetStarted(int64_t set_start_us, StanceSide stance_side) override {
    if (started_) return;  // one set per simulated patient
    started_ = true;
    // The patient stands on the leg the therapist asked for. A fresh
    // simulator per set makes the set a function of (profile, seed, start)
    // alone: a station restarted mid-set resumes the very same repetitions
    // (generated silently up to the samples already handed out), and tests
    // can recompute the truth.
    profile_.stance_side = stance_side;
    // Built from the last sample handed out, so that the sampling grid runs
    // on without a hole (the grids of every sensor meet there).
    const int64_t from = std::min(set_start_us, last_imu_t_us_);
    simulator_ = std::make_unique<StepDownSimulator>(profile_, seed_, from);
    simulator_->BeginSet(set_start_us);
    SimulatedSamples skipped;
    simulator_->GenerateUntil(polled_until_, &skipped);
  }

  bool SetPlayed() const override {
    return started_ && simulator_->set_finished();
  }

  std::vector<v1::SensorHealth> Health(int64_t) const override {
    return AllOk(Sensors());
  }

 private:
  PatientProfile profile_;
  const uint64_t seed_;
  std::unique_ptr<StepDownSimulator> simulator_;
  int64_t polled_until_ = INT64_MIN;
  int64_t last_imu_t_us_;
  bool started_ = false;
};

// Plays a recording once the set starts, its clock moved onto the station's.
class ReplaySource : public SensorSource {
 public:
  explicit ReplaySource(Recording recording)
      : recording_(std::move(recording)) {
    uint32_t id = kFirstImuId;
    for (const auto& [placement, samples] : recording_.imu) {
      imu_ids_[placement] = id++;
      first_t_us_ = std::min(
          first_t_us_, samples.empty() ? first_t_us_ : samples.front().t_us);
    }
    if (!recording_.force.empty()) {
      first_t_us_ = std::min(first_t_us_, recording_.force.front().t_us);
    }
  }

  std::optional<bool> CalibrationMovement() const override {
    return recording_.meta.calibration_movement;
  }

  std::vector<v1::SensorInfo> Sensors() const override {
    std::vector<v1::SensorInfo> out;
    if (!recording_.force.empty()) {
      out.push_back(ForcePlate(RateOf(recording_.force), "replay"));
    }
    for (const auto& [placement, samples] : recording_.imu) {
      out.push_back(
          Imu(imu_ids_.at(placement), placement, RateOf(samples), "replay"));
    }
    for (auto& sensor : out) {
      sensor.set_driver("replay");
      sensor.set_device(recording_.meta.source);
    }
    return out;
  }

  absl::Status Poll(int64_t now_us, v1::SampleBatch* batch) override {
    polled_until_ = std::max(polled_until_, now_us);
    if (!offset_us_) return absl::OkStatus();
    const int64_t until = now_us - *offset_us_;  // on the recording's clock
    auto upto = [until](const auto& samples, size_t from) {
      size_t i = from;
      while (i < samples.size() && samples[i].t_us <= until) ++i;
      return i;
    };
    const size_t force_end = upto(recording_.force, force_next_);
    AppendForceSamples(kForcePlateId, recording_.force, force_next_, force_end,
                       *offset_us_, batch);
    force_next_ = force_end;
    for (const auto& [placement, samples] : recording_.imu) {
      size_t& next = imu_next_[placement];
      const size_t end = upto(samples, next);
      AppendImuSamples(imu_ids_.at(placement), samples, next, end, *offset_us_,
                       batch);
      next = end;
    }
    return absl::OkStatus();
  }

  // A recording's stance side is fixed by its meta.json.
  void OnSetStarted(int64_t set_start_us, StanceSide) override {
    if (offset_us_) return;
    offset_us_ = set_start_us - first_t_us_;
    if (set_start_us >= polled_until_) return;
    // Resuming after a station restart: what the recording played while
    // the station was down is gone, as it would be with a real patient.
    const int64_t skip_until = polled_until_ - *offset_us_;
    auto skip = [skip_until](const auto& samples, size_t& next) {
      while (next < samples.size() && samples[next].t_us <= skip_until) ++next;
    };
    skip(recording_.force, force_next_);
    for (const auto& [placement, samples] : recording_.imu) {
      skip(samples, imu_next_[placement]);
    }
  }

  bool SetPlayed() const override {
    if (!offset_us_) return false;
    if (force_next_ < recording_.force.size()) return false;
    for (const auto& [placement, samples] : recording_.imu) {
      auto it = imu_next_.find(placement);
      if ((it == imu_next_.end() ? 0 : it->second) < samples.size()) {
        return false;
      }
    }
    return true;
  }

  std::vector<v1::SensorHealth> Health(int64_t) const override {
    return AllOk(Sensors());
  }

 private:
  template <typename Samples>
  static double RateOf(const Samples& samples) {
    if (samples.size() < 2) return 1;
    const double span_s = (samples.back().t_us - samples.front().t_us) / 1e6;
    return span_s > 0 ? (samples.size() - 1) / span_s : 1;
  }

  Recording recording_;
  std::map<Placement, uint32_t> imu_ids_;
  std::map<Placement, size_t> imu_next_;
  size_t force_next_ = 0;
  int64_t first_t_us_ = INT64_MAX;
  int64_t polled_until_ = INT64_MIN;
  std::optional<int64_t> offset_us_;
};

}  // namespace

void AppendImuSamples(uint32_t sensor_id, const std::vector<ImuSample>& samples,
                      size_t begin, size_t end, int64_t offset_us,
                      v1::SampleBatch* batch) {
  if (begin >= end) return;
  v1::ImuSamples* out = batch->add_imu();
  out->set_sensor_id(sensor_id);
  for (size_t i = begin; i < end; ++i) {
    const ImuSample& s = samples[i];
    out->add_t_us(s.t_us + offset_us);
    out->add_ax_mps2(static_cast<float>(s.ax_mps2));
    out->add_ay_mps2(static_cast<float>(s.ay_mps2));
    out->add_az_mps2(static_cast<float>(s.az_mps2));
    out->add_gx_radps(static_cast<float>(s.gx_radps));
    out->add_gy_radps(static_cast<float>(s.gy_radps));
    out->add_gz_radps(static_cast<float>(s.gz_radps));
  }
}

void AppendForceSamples(uint32_t sensor_id,
                        const std::vector<ForceSample>& samples, size_t begin,
                        size_t end, int64_t offset_us, v1::SampleBatch* batch) {
  if (begin >= end) return;
  v1::ForceSamples* out = batch->add_force();
  out->set_sensor_id(sensor_id);
  for (size_t i = begin; i < end; ++i) {
    const ForceSample& s = samples[i];
    out->add_t_us(s.t_us + offset_us);
    out->add_fz_n(static_cast<float>(s.fz_n));
    out->add_cop_x_mm(static_cast<float>(s.cop_x_mm));
    out->add_cop_y_mm(static_cast<float>(s.cop_y_mm));
  }
}

std::unique_ptr<SensorSource> MakeSimulatedSource(const PatientProfile& profile,
                                                  uint64_t seed,
                                                  int64_t start_us) {
  return std::make_unique<SimulatedSource>(profile, seed, start_us);
}

absl::StatusOr<std::unique_ptr<SensorSource>> MakeSensorSource(
    const std::string& spec, uint64_t seed, int64_t start_us) {
  if (spec == "sim" || absl::StartsWith(spec, "sim:")) {
    const std::string name = spec == "sim" ? "moderate" : spec.substr(4);
    auto profile = ProfileByName(name);
    if (!profile.ok()) return profile.status();
    return MakeSimulatedSource(*profile, seed, start_us);
  }
  if (absl::StartsWith(spec, "replay:")) {
    auto recording = ReadRecording(spec.substr(7));
    if (!recording.ok()) return recording.status();
    if (recording->imu.empty() && recording->force.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("recording ", spec.substr(7), " has no sensor files"));
    }
    return std::make_unique<ReplaySource>(*std::move(recording));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown sensors \"", spec,
                   "\": use sim, sim:<profile> or replay:<recording dir>"));
}

}  // namespace stephub::station
