// Force-plate measures; see force_plate.h.
#include "hub/scoring/force_plate.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace stephub::scoring {
namespace {

constexpr double kGravity = 9.81;
constexpr int64_t kMinStillUs = 1'000'000;
// See StillnessDetector: bounded work per sample during long standing.
constexpr int64_t kMaxStillWindowUs = 1'500'000;
// One-leg standing on a plate: well above any noise, and steady. Quiet
// standing sways the centre of mass by millimetres, i.e. well under 1% of
// body weight of vertical force; load-cell noise is a few newtons.
constexpr double kMinStandingForceN = 200;
constexpr double kMaxForceScatterShare = 0.015;
constexpr double kMaxForceDriftShare = 0.01;
// Zero-velocity updates (see ComDepthTracker).
constexpr double kQuietAccelMps2 = 0.05;
constexpr double kQuietSpeedMps = 0.05;
constexpr int64_t kQuietUs = 300'000;
constexpr double kAccelSmoothingS = 0.05;
constexpr double kFootTouchShare = 0.12;
constexpr double kStandingBleedS = 1.0;
constexpr double kMaxGapS = 0.1;
// COP speed is taken over 50 ms means: balance corrections are slower than
// 5 Hz, while the load cells' sample-to-sample noise summed at 1 kHz would
// dominate any path length.
constexpr int64_t kCopBinUs = 50'000;
// The free foot's load is judged on 20 ms means of the force.
constexpr int64_t kForceBinUs = 20'000;

bool Finite(double v) { return std::isfinite(v); }

struct Spread {
  double mean = 0, scatter = 0;
};

template <typename It>
Spread SpreadOf(It begin, It end) {
  Spread s;
  const double n = static_cast<double>(end - begin);
  for (It it = begin; it != end; ++it) s.mean += it->fz_n / n;
  for (It it = begin; it != end; ++it) {
    s.scatter += (it->fz_n - s.mean) * (it->fz_n - s.mean) / n;
  }
  s.scatter = std::sqrt(s.scatter);
  return s;
}

template <typename It>
std::optional<PlateStillWindow> SteadyOver(It begin, It end) {
  if (end - begin < 10) return std::nullopt;
  const auto last = end - 1;
  if (last->t_us - begin->t_us < kMinStillUs) return std::nullopt;
  const Spread all = SpreadOf(begin, end);
  const auto middle = begin + (end - begin) / 2;
  const Spread first = SpreadOf(begin, middle);
  const Spread second = SpreadOf(middle, end);
  if (all.mean < kMinStandingForceN ||
      all.scatter > kMaxForceScatterShare * all.mean ||
      std::abs(second.mean - first.mean) > kMaxForceDriftShare * all.mean) {
    return std::nullopt;
  }
  return PlateStillWindow{begin->t_us, last->t_us, all.mean};
}

// Means of `value` over consecutive bins of `bin_us`, skipping non-finite
// values; returns (bin centre time, mean) pairs.
template <typename F>
std::vector<std::pair<int64_t, double>> BinMeans(
    absl::Span<const ForceSample> samples, int64_t bin_us, F value) {
  std::vector<std::pair<int64_t, double>> out;
  if (samples.empty()) return out;
  int64_t bin_start = samples.front().t_us;
  double sum = 0;
  int n = 0;
  for (const ForceSample& s : samples) {
    if (s.t_us >= bin_start + bin_us) {
      if (n > 0) out.push_back({bin_start + bin_us / 2, sum / n});
      bin_start += (s.t_us - bin_start) / bin_us * bin_us;
      sum = 0;
      n = 0;
    }
    const double v = value(s);
    if (!Finite(v)) continue;
    sum += v;
    ++n;
  }
  if (n > 0) out.push_back({bin_start + bin_us / 2, sum / n});
  return out;
}

}  // namespace

std::optional<PlateStillWindow> SteadyPlateWindowOf(
    absl::Span<const ForceSample> samples) {
  return SteadyOver(samples.begin(), samples.end());
}

std::optional<PlateStillWindow> PlateStillnessDetector::Add(
    const ForceSample& sample) {
  if (!Finite(sample.fz_n) || sample.fz_n < kMinStandingForceN ||
      (!window_.empty() && sample.t_us <= window_.back().t_us)) {
    window_.clear();
    return std::nullopt;
  }
  window_.push_back(sample);
  while (window_.back().t_us - window_.front().t_us > kMaxStillWindowUs) {
    window_.pop_front();
  }
  if (window_.back().t_us - window_.front().t_us < kMinStillUs) {
    return std::nullopt;
  }
  if (auto w = SteadyOver(window_.begin(), window_.end())) return w;
  window_.pop_front();
  return std::nullopt;
}

ComDepthTracker::ComDepthTracker(double weight_n, int64_t t_us)
    : weight_n_(weight_n), last_t_us_(t_us), quiet_since_us_(t_us) {}

double ComDepthTracker::Add(int64_t t_us, double fz_n, bool standing) {
  const double dt_s = (t_us - last_t_us_) * 1e-6;
  last_t_us_ = t_us;
  if (dt_s > kMaxGapS) {
    // Nothing is known about the motion across a gap.
    speed_mps_ = 0;
    quiet_since_us_ = t_us;
    return -1000 * height_m_;
  }
  const double share = fz_n / weight_n_ - 1;
  const double accel = share < -kFootTouchShare ? 0 : kGravity * share;
  smoothed_accel_mps2_ +=
      (accel - smoothed_accel_mps2_) * dt_s / (kAccelSmoothingS + dt_s);
  // Trapezoidal rule for the position, rectangle for the speed: at 1 kHz
  // the difference is far below the drift the updates remove.
  const double previous_speed = speed_mps_;
  speed_mps_ += accel * dt_s;
  height_m_ += 0.5 * (previous_speed + speed_mps_) * dt_s;
  if (std::abs(smoothed_accel_mps2_) > kQuietAccelMps2 ||
      std::abs(speed_mps_) > kQuietSpeedMps) {
    quiet_since_us_ = t_us;
  } else if (t_us - quiet_since_us_ >= kQuietUs) {
    speed_mps_ = 0;
  }
  if (standing) {
    // Between repetitions the body is back at its standing height: what is
    // left is integration drift, bled off smoothly so that the segmenter's
    // baseline is not jolted.
    const double bleed = dt_s / (kStandingBleedS + dt_s);
    speed_mps_ -= speed_mps_ * bleed;
    height_m_ -= height_m_ * bleed;
  }
  return -1000 * height_m_;
}

PlateRepMetrics PlateMetricsOf(absl::Span<const ForceSample> samples,
                               double weight_n) {
  PlateRepMetrics m;
  double lo = INFINITY, hi = -INFINITY;
  for (const ForceSample& s : samples) {
    if (!Finite(s.cop_x_mm) || !(s.fz_n >= 20)) continue;
    lo = std::min(lo, s.cop_x_mm);
    hi = std::max(hi, s.cop_x_mm);
  }
  if (hi >= lo) m.cop_ml_range_mm = hi - lo;
  const auto cop = BinMeans(samples, kCopBinUs, [](const ForceSample& s) {
    return s.fz_n >= 20 ? s.cop_x_mm : NAN;
  });
  if (cop.size() >= 2 && cop.back().first > cop.front().first) {
    double path = 0;
    for (size_t i = 1; i < cop.size(); ++i) {
      path += std::abs(cop[i].second - cop[i - 1].second);
    }
    m.cop_ml_mean_speed_mm_s =
        path / ((cop.back().first - cop.front().first) * 1e-6);
  }
  const auto force = BinMeans(samples, kForceBinUs,
                              [](const ForceSample& s) { return s.fz_n; });
  if (!force.empty() && weight_n > 0) {
    double dip = 0;
    for (const auto& [t, fz] : force) dip = std::max(dip, weight_n - fz);
    m.free_foot_load_fraction = dip / weight_n;
  }
  return m;
}

}  // namespace stephub::scoring
