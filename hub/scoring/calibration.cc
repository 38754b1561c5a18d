// Stillness detection and the standing frame; see calibration.h.
#include "hub/scoring/calibration.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "hub/scoring/attitude.h"

namespace stephub::scoring {
namespace {

constexpr int64_t kMinStillUs = 1'000'000;
// The detector's window never spans more: a window is judged when it first
// reaches kMinStillUs (well within this), so the first one found is the
// same, and later ones need no older samples.
constexpr int64_t kMaxWindowUs = 1'500'000;
constexpr double kNominalGravity = 9.81;
// Per sample, only clear movement breaks a window: the checks that matter
// are on the window as a whole, where sensor noise averages out.
constexpr double kMaxSampleRateRadps = 0.4;
constexpr double kMaxSampleGravityErrorMps2 = 1.0;
// Over the window: an uncalibrated gyroscope may read several deg/s at
// rest; the accelerometer's scale may be off by a few percent.
constexpr double kMaxMeanRateRadps = 0.2;
constexpr double kMaxMeanGravityErrorMps2 = 0.5;
// Scatter around the window's means: noise and micro-sway, not movement.
constexpr double kMaxAccelScatterMps2 = 0.4;
constexpr double kMaxRateScatterRadps = 0.05;
// Drift between the window's halves: 0.1 m/s^2 is about 0.6 deg of tilt;
// 0.04 rad/s lets a standing trunk sway (about 2 deg/s) and still calibrate.
constexpr double kMaxAccelDriftMps2 = 0.1;
constexpr double kMaxRateDriftRadps = 0.04;

Vec3 Accel(const ImuSample& s) { return {s.ax_mps2, s.ay_mps2, s.az_mps2}; }
Vec3 Gyro(const ImuSample& s) { return {s.gx_radps, s.gy_radps, s.gz_radps}; }

bool StillSample(const ImuSample& s) {
  return Norm(Gyro(s)) < kMaxSampleRateRadps &&
         std::abs(Norm(Accel(s)) - kNominalGravity) <
             kMaxSampleGravityErrorMps2;
}

// Means and root-mean-square scatter of a run of samples.
struct Moments {
  Vec3 accel, gyro;
  double accel_scatter = 0, gyro_scatter = 0;
};

template <typename It>
Moments MomentsOf(It begin, It end) {
  Moments m;
  const double n = static_cast<double>(end - begin);
  for (It it = begin; it != end; ++it) {
    m.accel += Accel(*it) / n;
    m.gyro += Gyro(*it) / n;
  }
  for (It it = begin; it != end; ++it) {
    const Vec3 da = Accel(*it) - m.accel, dg = Gyro(*it) - m.gyro;
    m.accel_scatter += Dot(da, da) / n;
    m.gyro_scatter += Dot(dg, dg) / n;
  }
  m.accel_scatter = std::sqrt(m.accel_scatter);
  m.gyro_scatter = std::sqrt(m.gyro_scatter);
  return m;
}

template <typename It>
bool SteadyOver(It begin, It end) {
  const Moments all = MomentsOf(begin, end);
  const It middle = begin + (end - begin) / 2;
  const Moments first = MomentsOf(begin, middle);
  const Moments second = MomentsOf(middle, end);
  return Norm(all.gyro) < kMaxMeanRateRadps &&
         std::abs(Norm(all.accel) - kNominalGravity) <
             kMaxMeanGravityErrorMps2 &&
         all.accel_scatter < kMaxAccelScatterMps2 &&
         all.gyro_scatter < kMaxRateScatterRadps &&
         Norm(second.accel - first.accel) < kMaxAccelDriftMps2 &&
         Norm(second.gyro - first.gyro) < kMaxRateDriftRadps;
}

// Whether a window's running sums put it well outside SteadyOver's limits,
// so that the exact pass over it can be skipped (see the plate's
// ClearlyUnsteady in force_plate.cc: the same margin over rounding).
bool ClearlyUnsteady(const WindowSums<8>& sums, size_t n) {
  if (n < 2) return false;
  constexpr double kMargin = 1.02;
  const size_t half = n / 2;
  const auto all = sums.Sum(0, n);
  const auto first = sums.Sum(0, half);
  const auto second = sums.Sum(half, n);
  auto mean = [](const auto& s, size_t from, size_t count) {
    const double c = static_cast<double>(count);
    return Vec3{s[from] / c, s[from + 1] / c, s[from + 2] / c};
  };
  const Vec3 accel = mean(all, 0, n), gyro = mean(all, 3, n);
  const double accel_variance =
      all[6] / static_cast<double>(n) - Dot(accel, accel);
  const double gyro_variance =
      all[7] / static_cast<double>(n) - Dot(gyro, gyro);
  const Vec3 accel_drift = mean(second, 0, n - half) - mean(first, 0, half);
  const Vec3 gyro_drift = mean(second, 3, n - half) - mean(first, 3, half);
  auto beyond = [&](double value, double limit) {
    return value >= limit * kMargin;
  };
  return beyond(Norm(gyro), kMaxMeanRateRadps) ||
         beyond(std::abs(Norm(accel) - kNominalGravity),
                kMaxMeanGravityErrorMps2) ||
         beyond(accel_variance,
                kMaxAccelScatterMps2 * kMaxAccelScatterMps2 * kMargin) ||
         beyond(gyro_variance,
                kMaxRateScatterRadps * kMaxRateScatterRadps * kMargin) ||
         beyond(Norm(accel_drift), kMaxAccelDriftMps2) ||
         beyond(Norm(gyro_drift), kMaxRateDriftRadps);
}

double Asin(double x) { return std::asin(std::clamp(x, -1.0, 1.0)); }

// `from` turned by angle_rad toward `toward` (a unit vector square to it).
Vec3 TurnedToward(const Vec3& from, const Vec3& toward, double angle_rad) {
  return std::cos(angle_rad) * from + std::sin(angle_rad) * toward;
}

}  // namespace

std::optional<StillWindow> StillnessDetector::Add(const ImuSample& sample) {
  const bool still = StillSample(sample);
  if (!still || (!window_.empty() && sample.t_us <= window_.back().t_us)) {
    window_.clear();
    sums_.Clear();
    if (!still) return std::nullopt;
  }
  window_.push_back(sample);
  const Vec3 a = Accel(sample), g = Gyro(sample);
  sums_.PushBack({a.x, a.y, a.z, g.x, g.y, g.z, Dot(a, a), Dot(g, g)});
  while (window_.back().t_us - window_.front().t_us > kMaxWindowUs) {
    PopFront();
  }
  if (window_.back().t_us - window_.front().t_us < kMinStillUs) {
    return std::nullopt;
  }
  if (!ClearlyUnsteady(sums_, window_.size()) && Steady()) return Summary();
  // Slow drift: slide on rather than restart, the tail may still qualify.
  PopFront();
  return std::nullopt;
}

void StillnessDetector::PopFront() {
  window_.pop_front();
  sums_.PopFront();
}

StillWindow StillnessDetector::Summary() const {
  const Moments m = MomentsOf(window_.begin(), window_.end());
  return {window_.front().t_us, window_.back().t_us, m.accel, m.gyro};
}

bool StillnessDetector::Steady() const {
  return SteadyOver(window_.begin(), window_.end());
}

std::optional<StillWindow> SteadyWindowOf(absl::Span<const ImuSample> samples) {
  if (samples.size() < 10 ||
      samples.back().t_us - samples.front().t_us < kMinStillUs ||
      !std::all_of(samples.begin(), samples.end(), StillSample) ||
      !SteadyOver(samples.begin(), samples.end())) {
    return std::nullopt;
  }
  const Moments m = MomentsOf(samples.begin(), samples.end());
  return StillWindow{samples.front().t_us, samples.back().t_us, m.accel,
                     m.gyro};
}

StandingPosture StandingPostureFrom(const StillWindow& window) {
  StandingPosture p;
  p.gravity_mps2 = Norm(window.mean_accel_mps2);
  p.gyro_bias_radps = window.mean_gyro_radps;
  const Vec3 up = window.mean_accel_mps2 / p.gravity_mps2;
  Vec3 right = Vec3{1, 0, 0} - up.x * up;
  // Only a sensor mounted nearly on its side would get here.
  if (Norm(right) < 0.1) right = Cross(Vec3{0, 1, 0}, up);
  p.pelvis_right = Normalized(right);
  p.pelvis_forward = Cross(up, p.pelvis_right);
  // The rows of sensor-to-world are the world axes in sensor coordinates.
  p.sensor_to_world =
      FromMatrix(Mat3::FromRows(p.pelvis_right, p.pelvis_forward, up));
  p.long_axis = up;
  return p;
}

Vec3 StandingUp(const StandingPosture& p) {
  return Cross(p.pelvis_right, p.pelvis_forward);
}

StandingPosture WithInclination(const StandingPosture& standing,
                                double inclination_deg) {
  StandingPosture p = standing;
  p.long_axis = TurnedToward(StandingUp(standing), standing.pelvis_right,
                             DegToRad(inclination_deg));
  return p;
}

absl::StatusOr<HeadingFit> HeadingFromHingeMovement(
    absl::Span<const RateSample> rates, const StandingPosture& standing) {
  // 2x2 second moments of the horizontal part of the rate.
  double saa = 0, sbb = 0, sab = 0;
  for (const RateSample& r : rates) {
    const double a = Dot(r.rate_radps, standing.pelvis_right);
    const double b = Dot(r.rate_radps, standing.pelvis_forward);
    saa += a * a;
    sbb += b * b;
    sab += a * b;
  }
  if (rates.size() < 10 || saa + sbb <= 0) {
    return absl::FailedPreconditionError("it did not move");
  }
  const double angle = 0.5 * std::atan2(2 * sab, saa - sbb);
  const double half_trace = 0.5 * (saa + sbb);
  const double spread = std::sqrt(0.25 * (saa - sbb) * (saa - sbb) + sab * sab);
  const double major = half_trace + spread;
  const double minor = std::max(half_trace - spread, 0.0);
  const Vec3 axis =
      TurnedToward(standing.pelvis_right, standing.pelvis_forward, angle);
  HeadingFit fit;
  fit.heading_deg = RadToDeg(angle);
  fit.off_axis_share = std::sqrt(minor / major);
  for (size_t i = 1; i < rates.size(); ++i) {
    const double dt = (rates[i].t_us - rates[i - 1].t_us) * 1e-6;
    fit.turned_deg += RadToDeg(std::abs(Dot(rates[i].rate_radps, axis)) * dt);
  }
  if (fit.turned_deg < kMinHeadingTurnDeg) {
    return absl::FailedPreconditionError(
        absl::StrFormat("it turned only %.0f deg (at least %.0f needed)",
                        fit.turned_deg, kMinHeadingTurnDeg));
  }
  if (fit.off_axis_share > kMaxOffAxisShare) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "it did not turn about one axis (%.0f%% of the rate off it)",
        100 * fit.off_axis_share));
  }
  if (std::abs(fit.heading_deg) > kMaxHeadingFitDeg) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "it turned about an axis %.0f deg from its mediolateral axis (more "
        "than %.0f: strapped crooked, or not a knee bend)",
        fit.heading_deg, kMaxHeadingFitDeg));
  }
  return fit;
}

StandingPosture WithHeading(const StandingPosture& standing,
                            double heading_deg) {
  StandingPosture p = standing;
  const double a = DegToRad(heading_deg);
  p.pelvis_right = Normalized(
      TurnedToward(standing.pelvis_right, standing.pelvis_forward, a));
  p.pelvis_forward = Cross(StandingUp(standing), p.pelvis_right);
  // World coordinates turn the other way so that world x stays the
  // segment's right.
  p.sensor_to_world =
      FromRotationVector(Vec3{0, 0, -a}) * standing.sensor_to_world;
  return p;
}

PelvisAngles PelvisAnglesOf(const Quaternion& sensor_to_world,
                            const StandingPosture& standing) {
  // The pelvis axis u in the world is R_s u_sensor, whose vertical component
  // is up_sensor . u_sensor.
  const Vec3 up = UpInSensorFrame(sensor_to_world);
  return {RadToDeg(Asin(Dot(up, standing.pelvis_right))),
          -RadToDeg(Asin(Dot(up, standing.pelvis_forward)))};
}

}  // namespace stephub::scoring
