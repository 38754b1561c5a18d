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
constexpr double kStandingBleedS = 1.0;
constexpr double kMaxGapS = 0.1;
// The free foot's load (see ComDepthTracker and IsFreeFootLoad). A fall is
// judged once the force is this share of body weight below it: well above
// the load cells' noise and the 1-2% that balance corrections move it ...
constexpr double kFallShare = 0.03;
// ... or once it has fallen that much within kFastFallUs to at least
// kArmShare below body weight: a foot landing while the body brakes hard at
// the bottom may never take the force kFallShare below body weight, but it
// takes it down faster than the body's own force changes. (Only below body
// weight: the body's force may drop fast to it when braking ends.)
constexpr int64_t kFastFallUs = 50'000;
// A fall is judged after the force has been this close to body weight (so
// each fall is judged once, where it starts, and not again on the way back
// up).
constexpr double kArmShare = 0.01;
// No controlled step-down accelerates down at a quarter of g.
constexpr double kMaxBodyFallShare = 0.25;
// Deep: past the segmenter's entry into a repetition (15 mm). Not rising:
// a rise slowing down at 3% of g or more moves at >= 0.04 m/s.
constexpr double kTouchMinDepthM = 0.015;
constexpr double kTouchMaxRiseMps = 0.03;
// The foot is off once the force has regained this share of what it lost
// (from the highest force of the 0.3 s before the fall was judged, which
// covers a foot that landed while the body braked hard enough to keep the
// force above the judging threshold, to the lowest point), and its
// unloading is over once the force stops rising (at most this long after).
// The body's own force also steps within an interval (braking, a hold, the
// push up), which a lower share could take for the foot lifting: the load
// still on would then be integrated as the body sinking, and the estimate
// would never come back up. Waiting instead for most of the load to come
// off errs the safe way: a rise of the body's force is then counted as load
// and the estimate comes up early, which a repetition survives.
constexpr double kRegainShare = 0.75;
constexpr int64_t kMaxUnloadUs = 100'000;
// Detection and bridging run on 10 ms means of the force: the load cells'
// noise falls to a tenth of a percent of body weight, while a foot loads
// over tens of ms; a mean (unlike an exponential smoother) settles exactly
// one window after a foot's loading ends, so the load is read in full.
constexpr int64_t kForceMeanUs = 10'000;
// How far back a fall's start is looked for: a foot taking half the weight
// loads over up to a few tenths of a second.
constexpr int64_t kLookbackUs = 300'000;
// Longer load sharing is standing on both feet, not a touch-down.
constexpr int64_t kMaxBridgeUs = 1'000'000;
// Ramps of the force are followed in strides of this (see RampEnd).
constexpr int64_t kRampStrideUs = 10'000;
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

// Where a ramp of the force (a foot loading or unloading) that starts at
// index `from` of `count` readings ends, following it in the direction
// `step` (+1: forward in time, -1: back) toward lower (`lowest`) or higher
// force: it is followed in 10 ms strides while it is steeper than the
// body's own force changes (kFallShare of body weight per kFastFallUs;
// slower changes are the body braking or pushing, not the foot), then the
// extreme of the last stride is taken; with `skip_to_steep`, readings up
// to where it first gets that steep are passed over. `force(i)` and
// `t_us(i)` read reading i.
template <typename Force, typename Time>
size_t RampEnd(size_t from, size_t count, int step, bool lowest,
               bool skip_to_steep, double weight_n, Force force, Time t_us) {
  const double steep_n_per_us = kFallShare * weight_n / kFastFallUs;
  const auto further = [&](size_t i, size_t j) {
    return lowest ? force(i) - force(j) : force(j) - force(i);
  };
  // The reading one stride along from i, if there is one.
  const auto stride = [&](size_t i) -> std::optional<size_t> {
    for (size_t j = i;;) {
      if (step < 0 ? j == 0 : j + 1 >= count) return std::nullopt;
      j += step;
      if (std::abs(t_us(j) - t_us(i)) >= kRampStrideUs) return j;
    }
  };
  const auto steep = [&](size_t i, size_t j) {
    return further(i, j) > steep_n_per_us * std::abs(t_us(j) - t_us(i));
  };
  size_t i = from;
  if (skip_to_steep) {
    // Past the body's own slower change at the end of the readings.
    for (auto j = stride(i); j && !steep(i, *j); j = stride(i)) i += step;
  }
  for (auto j = stride(i); j && steep(i, *j); j = stride(i)) i = *j;
  size_t best = i;
  for (size_t k = i;; k += step) {
    if (std::abs(t_us(k) - t_us(i)) > kRampStrideUs) break;
    if (further(best, k) > 0) best = k;
    if (step < 0 ? k == 0 : k + 1 >= count) break;
  }
  return best;
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

std::vector<double> BodyForceAcross(absl::Span<const PlateForce> plate,
                                    double weight_n) {
  std::vector<double> body(plate.size());
  if (plate.empty()) return body;
  const size_t last = plate.size() - 1;
  const auto force = [&](size_t i) { return plate[i].fz_n; };
  const auto t_us = [&](size_t i) { return plate[i].t_us; };
  const size_t landed =
      RampEnd(0, plate.size(), 1, true, true, weight_n, force, t_us);
  const size_t lifting = std::max(landed, RampEnd(last, plate.size(), -1, true,
                                                  true, weight_n, force, t_us));
  const double load_on = plate[0].fz_n - plate[landed].fz_n;
  const double load_off = plate[last].fz_n - plate[lifting].fz_n;
  const int64_t on_us = plate[landed].t_us;
  const int64_t off_us = plate[lifting].t_us;
  for (size_t i = 0; i <= last; ++i) {
    if (i <= landed) {
      body[i] = plate[0].fz_n;
    } else if (i >= lifting) {
      body[i] = plate[last].fz_n;
    } else {
      const double s = static_cast<double>(plate[i].t_us - on_us) /
                       static_cast<double>(off_us - on_us);
      body[i] = plate[i].fz_n + load_on + s * (load_off - load_on);
    }
  }
  return body;
}

bool IsFreeFootLoad(double dip_share, const BodyMotion& body) {
  if (dip_share > kMaxBodyFallShare) return true;
  return dip_share > kArmShare && -body.height_m >= kTouchMinDepthM &&
         body.speed_mps <= kTouchMaxRiseMps;
}

ComDepthTracker::ComDepthTracker(double weight_n, int64_t t_us)
    : weight_n_(weight_n),
      last_t_us_(t_us),
      quiet_since_us_(t_us),
      smoothed_force_n_(weight_n) {}

double ComDepthTracker::Add(int64_t t_us, double fz_n, bool standing) {
  ended_sharing_.reset();
  const double dt_s = (t_us - last_t_us_) * 1e-6;
  last_t_us_ = t_us;
  if (dt_s > kMaxGapS) {
    // Nothing is known about the motion across a gap (nor about the end of
    // a load sharing in it).
    if (sharing_) body_ = sharing_->before.body;
    sharing_.reset();
    history_.clear();
    body_.speed_mps = 0;
    quiet_since_us_ = t_us;
    recent_ = {{t_us, fz_n}};
    recent_sum_n_ = fz_n;
    smoothed_force_n_ = fz_n;
    armed_ = false;
    return -1000 * body_.height_m;
  }
  const double previous_force_n = smoothed_force_n_;
  recent_.push_back({t_us, fz_n});
  recent_sum_n_ += fz_n;
  while (t_us - recent_.front().t_us >= kForceMeanUs) {
    recent_sum_n_ -= recent_.front().fz_n;
    recent_.pop_front();
  }
  smoothed_force_n_ = recent_sum_n_ / static_cast<double>(recent_.size());
  if (sharing_) {
    sharing_->least_force_n =
        std::min(sharing_->least_force_n, smoothed_force_n_);
    if (t_us - sharing_->before.t_us <= kMaxBridgeUs) {
      sharing_->readings.push_back({t_us, smoothed_force_n_});
    } else {
      sharing_->readings.clear();
    }
    if (!sharing_->back_since_us) {
      const double lost_n = sharing_->high_n - sharing_->least_force_n;
      if (smoothed_force_n_ >=
          sharing_->least_force_n + kRegainShare * lost_n) {
        sharing_->back_since_us = t_us;
      }
    } else if (smoothed_force_n_ <= previous_force_n ||
               t_us - *sharing_->back_since_us >= kMaxUnloadUs) {
      EndSharing(t_us);
    }
  } else {
    Integrate(t_us, fz_n, dt_s);
    const double dip = 1 - smoothed_force_n_ / weight_n_;
    if (dip <= kArmShare) armed_ = true;
    if (dip > kMaxBodyFallShare ||
        (armed_ && (dip > kFallShare || (dip > kArmShare && FellFast())))) {
      // Judged once per fall, where it starts.
      armed_ = false;
      if (IsFreeFootLoad(dip, body_)) BeginSharing();
    }
  }
  BodyMotion& body = sharing_ ? sharing_->before.body : body_;
  if (standing) {
    // Between repetitions the body is back at its standing height: what is
    // left is integration drift, bled off smoothly so that the segmenter's
    // baseline is not jolted.
    const double bleed = dt_s / (kStandingBleedS + dt_s);
    body.speed_mps -= body.speed_mps * bleed;
    body.height_m -= body.height_m * bleed;
  }
  return -1000 * body.height_m;
}

void ComDepthTracker::Integrate(int64_t t_us, double fz_n, double dt_s) {
  const double accel = kGravity * (fz_n / weight_n_ - 1);
  smoothed_accel_mps2_ +=
      (accel - smoothed_accel_mps2_) * dt_s / (kAccelSmoothingS + dt_s);
  // Trapezoidal rule for the position, rectangle for the speed: at 1 kHz
  // the difference is far below the drift the updates remove.
  const double previous_speed = body_.speed_mps;
  body_.speed_mps += accel * dt_s;
  body_.height_m += 0.5 * (previous_speed + body_.speed_mps) * dt_s;
  if (body_.speed_mps > kQuietSpeedMps) rising_ = true;
  if (body_.speed_mps < -kQuietSpeedMps) rising_ = false;
  if (std::abs(smoothed_accel_mps2_) > kQuietAccelMps2 ||
      std::abs(body_.speed_mps) > kQuietSpeedMps) {
    quiet_since_us_ = t_us;
  } else if (t_us - quiet_since_us_ >= kQuietUs) {
    body_.speed_mps = 0;
    // At rest after rising, the patient stands again, at standing height,
    // whatever the integration says (what a touch-down's bridge or the body
    // weight's error left in it).
    if (rising_) body_.height_m = 0;
    rising_ = false;
  }
  history_.push_back(
      {t_us, body_, smoothed_accel_mps2_, quiet_since_us_, smoothed_force_n_});
  while (t_us - history_.front().t_us > kLookbackUs) history_.pop_front();
}

bool ComDepthTracker::FellFast() const {
  double high_n = smoothed_force_n_;
  for (auto it = history_.rbegin();
       it != history_.rend() && last_t_us_ - it->t_us <= kFastFallUs; ++it) {
    high_n = std::max(high_n, it->smoothed_force_n);
  }
  return high_n - smoothed_force_n_ > kFallShare * weight_n_;
}

void ComDepthTracker::BeginSharing() {
  // The fall began where the force, followed back in time, stops rising
  // faster than the body's own force can.
  const size_t start = RampEnd(
      history_.size() - 1, history_.size(), -1, false, false, weight_n_,
      [&](size_t k) { return history_[k].smoothed_force_n; },
      [&](size_t k) { return history_[k].t_us; });
  double high_n = smoothed_force_n_;
  for (const Snapshot& s : history_) {
    high_n = std::max(high_n, s.smoothed_force_n);
  }
  sharing_ =
      Sharing{history_[start], high_n, smoothed_force_n_, {}, std::nullopt};
  for (size_t k = start; k < history_.size(); ++k) {
    sharing_->readings.push_back(
        {history_[k].t_us, history_[k].smoothed_force_n});
  }
  history_.clear();
}

void ComDepthTracker::EndSharing(int64_t t_us) {
  const Snapshot& before = sharing_->before;
  const std::vector<PlateForce>& plate = sharing_->readings;
  if (plate.empty() || t_us - before.t_us > kMaxBridgeUs) {
    // Long on both feet: standing (the calibration movement is this); if
    // not, the estimate is high, the safe side (see kRegainShare).
    body_ = {};
  } else {
    const std::vector<double> force = BodyForceAcross(plate, weight_n_);
    body_ = before.body;
    for (size_t i = 1; i < plate.size(); ++i) {
      const double dt_s = (plate[i].t_us - plate[i - 1].t_us) * 1e-6;
      const double previous_speed = body_.speed_mps;
      body_.speed_mps += kGravity * (force[i] / weight_n_ - 1) * dt_s;
      body_.height_m += 0.5 * (previous_speed + body_.speed_mps) * dt_s;
    }
  }
  smoothed_accel_mps2_ = kGravity * (smoothed_force_n_ / weight_n_ - 1);
  quiet_since_us_ = t_us;
  ended_sharing_ = LoadSharing{before.t_us, t_us, sharing_->least_force_n};
  sharing_.reset();
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
