// Kinematic model of a patient doing lateral step-downs and the sacral IMU
// and force plate it drives; see simulator.h.
#include "common/simulator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/geometry.h"

namespace stephub {
namespace {

constexpr double kGravity = 9.81;
// Central-difference steps: far shorter than any motion time scale (> 0.1 s)
// yet long enough that rounding stays below 1e-9 of the result.
constexpr double kPositionStepS = 1e-3;
constexpr double kRotationStepS = 1e-4;
// The truth's extreme is searched on this grid (finer than any IMU).
constexpr int64_t kTruthGridUs = 1000;
// Exponent of depth in the drop profile: the pelvis starts dropping a little
// after the knee starts bending, and the profile stays smooth at depth 0.
constexpr double kDropDepthExponent = 1.5;
// Rep-to-rep variability of tempo (fraction) and of pelvic turning (deg).
constexpr double kTempoVariation = 0.1;
constexpr double kHoldVariation = 0.2;
constexpr double kHeadingAtDepthMaxDeg = 4;
// The hips move back as the knee bends; a dropping free side carries the
// pelvis (and the centre of mass) medially, toward the free side.
constexpr double kBackwardShiftM = 0.03;
constexpr double kLateralShiftPerDropM = 0.002;
// Quiet-standing micro-sway amplitudes.
constexpr double kRollSwayDeg = 0.1;
constexpr double kTiltSwayDeg = 0.15;
constexpr double kHeadingSwayDeg = 0.2;
constexpr double kHorizontalSwayM = 0.002;
constexpr double kVerticalSwayM = 0.0003;
constexpr double kCopSwayXMm = 2;
constexpr double kCopSwayYMm = 3;
// The stance foot's COP follows the centre of mass medially as the pelvis
// drops, and sways more at depth, where balance is hardest.
constexpr double kCopShiftPerDropMm = 1.5;
constexpr double kCopForwardAtDepthMm = 5;
// Force plate noise (load cells) and the COP validity limit of the format.
constexpr double kForceNoiseN = 2;
constexpr double kCopNoiseMm = 0.3;
constexpr double kCopMinForceN = 20;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Independent streams per purpose keep the output identical however the
// caller slices time into GenerateUntil calls.
enum class Stream : uint64_t { kBody = 1, kImu = 2, kForce = 3, kSet = 4 };

std::mt19937_64 MakeRng(uint64_t seed, Stream stream, uint64_t index = 0) {
  return std::mt19937_64(SplitMix64(
      SplitMix64(seed) ^ (static_cast<uint64_t>(stream) << 32) ^ index));
}

double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

double Gaussian(std::mt19937_64& rng, double mean, double sd) {
  if (sd <= 0) return mean;
  return std::normal_distribution<double>(mean, sd)(rng);
}

Vec3 GaussianVec(std::mt19937_64& rng, double sd) {
  const double x = Gaussian(rng, 0, sd);
  const double y = Gaussian(rng, 0, sd);
  return {x, y, Gaussian(rng, 0, sd)};
}

// Physiological sway: a sum of slow sinusoids, smooth so that its
// derivatives (which the sensors see) are well defined.
class Sway {
 public:
  Sway() = default;
  Sway(std::mt19937_64& rng, double amplitude) {
    for (Wave& w : waves_) {
      w.amplitude = amplitude * Uniform(rng, 0.3, 0.6);
      w.omega = 2 * kPi * Uniform(rng, 0.1, 0.8);
      w.phase = Uniform(rng, 0, 2 * kPi);
    }
  }
  double At(double t) const {
    double sum = 0;
    for (const Wave& w : waves_) {
      sum += w.amplitude * std::sin(w.omega * t + w.phase);
    }
    return sum;
  }

 private:
  struct Wave {
    double amplitude = 0, omega = 0, phase = 0;
  };
  std::array<Wave, 3> waves_;
};

struct RepPlan {
  int64_t start_us = 0;    // lowering starts
  int64_t bottom_us = 0;   // deepest point reached, hold starts
  int64_t rise_us = 0;     // rising starts
  int64_t end_us = 0;      // standing again
  double drop_deg = 0;     // drop toward the free side at full depth
  double heading_deg = 0;  // pelvis turn at full depth
};

// Where one moment falls in the set.
struct Phase {
  double depth = 0;  // 0 standing .. 1 deepest
  double drop_deg = 0;
  double heading_deg = 0;
};

// Raised cosine from 0 to 1 over s in [0, 1].
double RaisedCosine(double s) { return 0.5 * (1 - std::cos(kPi * s)); }

// The pelvis (and with it the body's centre of mass) as a function of time,
// in seconds since the simulator's first sample.
class Kinematics {
 public:
  Kinematics(const PatientProfile& profile, int64_t start_us, uint64_t seed)
      : profile_(profile),
        start_us_(start_us),
        free_side_x_(profile.stance_side == StanceSide::kLeft ? 1.0 : -1.0) {
    std::mt19937_64 rng = MakeRng(seed, Stream::kBody);
    roll_ = Sway(rng, kRollSwayDeg);
    tilt_ = Sway(rng, kTiltSwayDeg);
    heading_ = Sway(rng, kHeadingSwayDeg);
    x_ = Sway(rng, kHorizontalSwayM);
    y_ = Sway(rng, kHorizontalSwayM);
    z_ = Sway(rng, kVerticalSwayM);
    cop_x_ = Sway(rng, kCopSwayXMm);
    cop_y_ = Sway(rng, kCopSwayYMm);
  }

  double Seconds(int64_t t_us) const { return (t_us - start_us_) * 1e-6; }
  void SetReps(std::vector<RepPlan> reps) { reps_ = std::move(reps); }

  // Pelvis to world: Rz(heading) Ry(roll) Rx(-forward tilt). In this order
  // the mediolateral axis's vertical component is -sin(roll) whatever the
  // tilt and heading, so roll alone sets the obliquity.
  Mat3 Rotation(double t) const {
    const Phase ph = PhaseAt(t);
    const double roll = free_side_x_ * ph.drop_deg + roll_.At(t);
    const double tilt =
        ph.depth * profile_.pelvic_forward_tilt_deg + tilt_.At(t);
    const double heading = ph.heading_deg + heading_.At(t);
    return RotZ(DegToRad(heading)) * RotY(DegToRad(roll)) *
           RotX(-DegToRad(tilt));
  }

  Vec3 Position(double t) const {
    const Phase ph = PhaseAt(t);
    return {x_.At(t) + free_side_x_ * kLateralShiftPerDropM * ph.drop_deg,
            y_.At(t) - kBackwardShiftM * ph.depth,
            z_.At(t) - profile_.com_lowering_m * ph.depth};
  }

  Vec3 Acceleration(double t) const {
    constexpr double h = kPositionStepS;
    return (Position(t + h) - 2.0 * Position(t) + Position(t - h)) / (h * h);
  }

  // Angular velocity in the pelvis frame: the rotation vector of
  // R(t-h)^T R(t+h), divided by its duration.
  Vec3 BodyRate(double t) const {
    constexpr double h = kRotationStepS;
    const Mat3 relative = Transpose(Rotation(t - h)) * Rotation(t + h);
    return ToRotationVector(FromMatrix(relative)) / (2 * h);
  }

  // Exactly the truth definition of RECORDING_FORMAT.md: the elevation of
  // the mediolateral axis, signed so that the free side going down is
  // positive; the standing posture is level by construction.
  double PelvicDropDeg(double t) const {
    const Vec3 right_axis = Rotation(t).Column(0);
    return -free_side_x_ * RadToDeg(Elevation(right_axis));
  }

  // Noise-free centre of pressure (x, y) in millimetres.
  std::pair<double, double> CopMm(double t) const {
    const Phase ph = PhaseAt(t);
    const double sway_gain = 1 + ph.depth;
    return {sway_gain * cop_x_.At(t) +
                free_side_x_ * kCopShiftPerDropMm * ph.drop_deg,
            sway_gain * cop_y_.At(t) + kCopForwardAtDepthMm * ph.depth};
  }

 private:
  Phase PhaseAt(double t) const {
    const auto it = std::upper_bound(
        reps_.begin(), reps_.end(), t,
        [this](double v, const RepPlan& r) { return v < Seconds(r.start_us); });
    if (it == reps_.begin()) return {};
    const RepPlan& r = *(it - 1);
    if (t >= Seconds(r.end_us)) return {};
    double depth = 1;
    if (t < Seconds(r.bottom_us)) {
      depth = RaisedCosine((t - Seconds(r.start_us)) /
                           (Seconds(r.bottom_us) - Seconds(r.start_us)));
    } else if (t > Seconds(r.rise_us)) {
      depth = 1 - RaisedCosine((t - Seconds(r.rise_us)) /
                               (Seconds(r.end_us) - Seconds(r.rise_us)));
    }
    return {depth, r.drop_deg * std::pow(depth, kDropDepthExponent),
            r.heading_deg * depth};
  }

  const PatientProfile profile_;
  const int64_t start_us_;
  const double free_side_x_;  // +1 when the free side is the right (+x)
  std::vector<RepPlan> reps_;
  Sway roll_, tilt_, heading_, x_, y_, z_, cop_x_, cop_y_;
};

int64_t Micros(double seconds) { return std::llround(seconds * 1e6); }

// Sensor-to-pelvis rotation: a tilt about a random horizontal axis, then a
// small heading error, fixed for the simulated patient.
Mat3 RandomMount(const PatientProfile& profile, std::mt19937_64& rng) {
  const double axis_angle = Uniform(rng, 0, 2 * kPi);
  const double tilt = DegToRad(Uniform(rng, 0, profile.mount_tilt_max_deg));
  const double heading = DegToRad(Uniform(rng, -profile.mount_heading_max_deg,
                                          profile.mount_heading_max_deg));
  const Vec3 axis{std::cos(axis_angle), std::sin(axis_angle), 0};
  return RotZ(heading) * ToMatrix(FromRotationVector(axis * tilt));
}

std::vector<RepPlan> PlanSet(const PatientProfile& p, int64_t first_start_us,
                             std::mt19937_64& rng) {
  std::vector<RepPlan> reps;
  int64_t t = first_start_us;
  const double v = kTempoVariation;
  for (int i = 0; i < p.repetitions; ++i) {
    RepPlan r;
    r.start_us = t;
    r.bottom_us = r.start_us + Micros(p.lower_s * Uniform(rng, 1 - v, 1 + v));
    r.rise_us = r.bottom_us + Micros(p.hold_s * Uniform(rng, 1 - kHoldVariation,
                                                        1 + kHoldVariation));
    r.end_us = r.rise_us + Micros(p.rise_s * Uniform(rng, 1 - v, 1 + v));
    r.drop_deg = Gaussian(rng, p.pelvic_drop_mean_deg, p.pelvic_drop_sd_deg);
    r.heading_deg = Uniform(rng, -kHeadingAtDepthMaxDeg, kHeadingAtDepthMaxDeg);
    reps.push_back(r);
    t = r.end_us + Micros(p.pause_s * Uniform(rng, 1 - v, 1 + v));
  }
  return reps;
}

// Of the largest and the most negative drop, the one with larger magnitude.
double ExtremeDropDeg(const Kinematics& k, const RepPlan& rep) {
  double hi = -std::numeric_limits<double>::infinity();
  double lo = std::numeric_limits<double>::infinity();
  for (int64_t t = rep.start_us;; t = std::min(t + kTruthGridUs, rep.end_us)) {
    const double drop = k.PelvicDropDeg(k.Seconds(t));
    hi = std::max(hi, drop);
    lo = std::min(lo, drop);
    if (t == rep.end_us) break;
  }
  return std::abs(hi) >= std::abs(lo) ? hi : lo;
}

struct CopRange {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  bool done = false;
};

}  // namespace

struct StepDownSimulator::State {
  State(PatientProfile p, uint64_t s, int64_t start)
      : profile(std::move(p)),
        seed(s),
        start_us(start),
        kinematics(profile, start, s),
        imu_rng(MakeRng(s, Stream::kImu)),
        force_rng(MakeRng(s, Stream::kForce)),
        generated_until_us(start - 1) {
    std::mt19937_64 body = MakeRng(s, Stream::kBody, 1);
    mount = RandomMount(profile, body);
    const double b = profile.gyro_bias_radps;
    gyro_bias = {Uniform(body, -b, b), Uniform(body, -b, b),
                 Uniform(body, -b, b)};
  }

  int64_t SampleTime(int64_t index, double rate_hz) const {
    return start_us + Micros(static_cast<double>(index) / rate_hz);
  }

  ImuSample SampleImu(int64_t t_us);
  ForceSample SampleForce(int64_t t_us);
  void FinishCopTruth();

  const PatientProfile profile;
  const uint64_t seed;
  const int64_t start_us;
  Kinematics kinematics;
  std::mt19937_64 imu_rng;
  std::mt19937_64 force_rng;
  Mat3 mount;  // sensor to pelvis
  Vec3 gyro_bias;
  int sets_begun = 0;
  std::vector<RepPlan> reps;
  std::vector<TruthRepetition> truth;
  std::vector<CopRange> cop_ranges;
  std::optional<int64_t> set_end_us;
  int64_t imu_count = 0;
  int64_t force_count = 0;
  int64_t generated_until_us;
};

ImuSample StepDownSimulator::State::SampleImu(int64_t t_us) {
  const double t = kinematics.Seconds(t_us);
  const Mat3 sensor_to_world = kinematics.Rotation(t) * mount;
  const Vec3 specific_force =
      Transpose(sensor_to_world) *
      (kinematics.Acceleration(t) + Vec3{0, 0, kGravity});
  // R_s = R_p M, so the sensor's body rate is M^T times the pelvis's.
  const Vec3 rate = Transpose(mount) * kinematics.BodyRate(t);
  const double dt = 1.0 / profile.imu_rate_hz;
  gyro_bias +=
      GaussianVec(imu_rng, profile.gyro_bias_walk_radps_per_s * std::sqrt(dt));
  const Vec3 accel =
      specific_force + GaussianVec(imu_rng, profile.accel_noise_mps2);
  const Vec3 gyro =
      rate + gyro_bias + GaussianVec(imu_rng, profile.gyro_noise_radps);
  return {t_us, accel.x, accel.y, accel.z, gyro.x, gyro.y, gyro.z};
}

ForceSample StepDownSimulator::State::SampleForce(int64_t t_us) {
  const double t = kinematics.Seconds(t_us);
  const double fz =
      profile.body_mass_kg * (kGravity + kinematics.Acceleration(t).z) +
      Gaussian(force_rng, 0, kForceNoiseN);
  auto [cop_x, cop_y] = kinematics.CopMm(t);
  cop_x += Gaussian(force_rng, 0, kCopNoiseMm);
  cop_y += Gaussian(force_rng, 0, kCopNoiseMm);
  if (fz < kCopMinForceN) {
    cop_x = cop_y = std::numeric_limits<double>::quiet_NaN();
  } else {
    for (size_t i = 0; i < reps.size(); ++i) {
      if (t_us < reps[i].start_us || t_us > reps[i].end_us) continue;
      cop_ranges[i].lo = std::min(cop_ranges[i].lo, cop_x);
      cop_ranges[i].hi = std::max(cop_ranges[i].hi, cop_x);
    }
  }
  return {t_us, fz, cop_x, cop_y};
}

// A rep's COP range is known once every force sample of it exists.
void StepDownSimulator::State::FinishCopTruth() {
  for (size_t i = 0; i < reps.size(); ++i) {
    CopRange& range = cop_ranges[i];
    if (range.done || reps[i].end_us > generated_until_us) continue;
    range.done = true;
    if (range.hi >= range.lo) truth[i].cop_ml_range_mm = range.hi - range.lo;
  }
}

StepDownSimulator::StepDownSimulator(PatientProfile profile, uint64_t seed,
                                     int64_t start_us)
    : state_(std::make_unique<State>(std::move(profile), seed, start_us)) {}

StepDownSimulator::~StepDownSimulator() = default;

void StepDownSimulator::BeginSet(int64_t t_us) {
  State& s = *state_;
  // One set at a time; a set already under way keeps going.
  if (s.set_end_us.has_value() && !set_finished()) return;
  std::mt19937_64 rng = MakeRng(s.seed, Stream::kSet, s.sets_begun++);
  // Samples already emitted cannot be rewritten: the set starts no earlier.
  const int64_t set_start = std::max(t_us, s.generated_until_us);
  s.reps =
      PlanSet(s.profile, set_start + Micros(s.profile.standing_lead_s), rng);
  s.kinematics.SetReps(s.reps);
  s.truth.clear();
  s.cop_ranges.assign(s.reps.size(), CopRange{});
  for (size_t i = 0; i < s.reps.size(); ++i) {
    const RepPlan& r = s.reps[i];
    TruthRepetition truth;
    truth.rep = static_cast<int>(i) + 1;
    truth.start_us = r.start_us;
    truth.end_us = r.end_us;
    truth.peak_pelvic_drop_deg = ExtremeDropDeg(s.kinematics, r);
    s.truth.push_back(truth);
  }
  const int64_t last_end = s.reps.empty() ? set_start : s.reps.back().end_us;
  s.set_end_us = last_end + Micros(s.profile.standing_tail_s);
}

bool StepDownSimulator::set_finished() const {
  return state_->set_end_us.has_value() &&
         state_->generated_until_us >= *state_->set_end_us;
}

void StepDownSimulator::GenerateUntil(int64_t t_us, SimulatedSamples* out) {
  State& s = *state_;
  if (t_us <= s.generated_until_us) return;
  for (int64_t t;
       (t = s.SampleTime(s.imu_count, s.profile.imu_rate_hz)) <= t_us;
       ++s.imu_count) {
    out->sacrum.push_back(s.SampleImu(t));
  }
  for (int64_t t;
       (t = s.SampleTime(s.force_count, s.profile.force_rate_hz)) <= t_us;
       ++s.force_count) {
    out->force.push_back(s.SampleForce(t));
  }
  s.generated_until_us = t_us;
  s.FinishCopTruth();
}

const std::vector<TruthRepetition>& StepDownSimulator::truth() const {
  return state_->truth;
}

const PatientProfile& StepDownSimulator::profile() const {
  return state_->profile;
}

absl::StatusOr<PatientProfile> ProfileByName(absl::string_view name) {
  PatientProfile p;
  p.name = std::string(name);
  if (name == "level") {
    p.pelvic_drop_mean_deg = 1.0;
    p.pelvic_drop_sd_deg = 0.6;
  } else if (name == "moderate") {
    p.pelvic_drop_mean_deg = 5.5;
    p.pelvic_drop_sd_deg = 1.2;
  } else if (name == "trendelenburg") {
    p.pelvic_drop_mean_deg = 11;
    p.pelvic_drop_sd_deg = 1.5;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown patient profile '", name,
        "'; valid profiles: ", absl::StrJoin(ProfileNames(), ", ")));
  }
  return p;
}

std::vector<std::string> ProfileNames() {
  return {"level", "moderate", "trendelenburg"};
}

Recording SimulateRecording(const PatientProfile& profile, uint64_t seed) {
  StepDownSimulator sim(profile, seed, 0);
  sim.BeginSet(0);
  SimulatedSamples samples;
  // 10 ms steps: the recording ends at most one step after the tail.
  constexpr int64_t kStepUs = 10'000;
  for (int64_t t = 0; !sim.set_finished(); t += kStepUs) {
    sim.GenerateUntil(t, &samples);
  }
  Recording rec;
  rec.meta.stance_side = profile.stance_side;
  rec.meta.exercise = "lateral_step_down";
  rec.meta.body_mass_kg = profile.body_mass_kg;
  rec.meta.load = "bodyweight";
  rec.meta.source = absl::StrCat("stephub simulator, profile ", profile.name,
                                 ", seed ", seed);
  rec.force = std::move(samples.force);
  rec.imu[Placement::kSacrum] = std::move(samples.sacrum);
  rec.truth = sim.truth();
  return rec;
}

}  // namespace stephub
