// Force-plate measures; see force_plate.h.
#include "hub/scoring/force_plate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace stephub::scoring {
namespace {

constexpr double kGravity = 9.81;
constexpr double kPi = 3.14159265358979323846;
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
// Quick reps reach 0.3-0.5 m/s; a foot's load of a tenth of body weight
// integrated as the body's adds 1 m/s per second, half the weight 1 m/s in
// 0.2 s.
constexpr double kMaxBodySpeedMps = 0.8;
// Deep: past the segmenter's entry into a repetition (15 mm). Not rising:
// a rise slowing down at 3% of g or more moves at >= 0.04 m/s.
constexpr double kTouchMinDepthM = 0.015;
constexpr double kTouchMaxRiseMps = 0.03;
// The foot is off once the force has regained this share of what it lost
// (from the highest force of the 0.3 s before the fall was judged, which
// covers a foot that landed while the body braked hard enough to keep the
// force above the judging threshold, to the lowest point), or has risen
// back to body weight faster than a body's force rises (kFallShare within
// kFastFallUs). Where exactly it lifted, and with how much load, is then
// read off the force (see FootLoadIn).
constexpr double kRegainShare = 0.75;
// Detection and bridging run on 10 ms means of the force: the load cells'
// noise falls to a tenth of a percent of body weight, while a foot loads
// over tens of ms; a mean (unlike an exponential smoother) settles exactly
// one window after a foot's loading ends, so the load is read in full.
constexpr int64_t kForceMeanUs = 10'000;
// How far back a fall's start is looked for: a foot taking half the weight
// loads over up to a few tenths of a second.
constexpr int64_t kLookbackUs = 300'000;
// How far back a load taken for the body is undone (see IsBodySpeed): the
// calibration movement's foot takes 0.6 s to carry half the weight.
constexpr int64_t kHistoryUs = 1'000'000;
// Longer load sharing is standing on both feet, not a touch-down.
constexpr int64_t kMaxBridgeUs = 1'000'000;
// The foot's steps (see FootLoadIn): each fitted over this either side of
// where the force changes fastest over kSteepSpanUs (a foot's ramp), its
// centre within kStepSearchUs of that, its length one of kStepRampsUs (a
// foot loads within tens of ms, a body's force changes over hundreds).
constexpr int64_t kSteepSpanUs = 20'000;
constexpr int64_t kStepFitHalfUs = 150'000;
constexpr int64_t kStepSearchUs = 40'000;
constexpr int64_t kStepSearchStrideUs = 2'000;
constexpr std::array<int64_t, 9> kStepRampsUs = {
    20'000, 30'000, 40'000, 50'000, 60'000, 70'000, 80'000, 90'000, 100'000};
// The plate's force is kept from this long before a load sharing, and the
// interval ends this long after the force has regained most of the load:
// the body's own force either side of the foot's steps.
constexpr int64_t kFitContextUs = 150'000;
// A rise pushes the body up and then slows it by more than this share of
// body weight (the slowest reps reach 2-3%); quiet standing sways the force
// by well under 1%.
constexpr double kRiseShare = 0.015;
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

// Whether a window's running sums (of fz and fz^2) put it well outside
// SteadyOver's limits. Patients who shift their weight at the start of a
// set would otherwise cost a pass over up to 1.5 s of samples for every
// sample. The margin is orders of magnitude above the sums' rounding, so
// a window this passes is one SteadyOver refuses too.
bool ClearlyUnsteady(const WindowSums<2>& sums, size_t n) {
  if (n < 10) return false;
  constexpr double kMargin = 1.02;
  const size_t half = n / 2;
  const auto all = sums.Sum(0, n);
  const double mean = all[0] / static_cast<double>(n);
  const double variance = all[1] / static_cast<double>(n) - mean * mean;
  const double first = sums.Sum(0, half)[0] / static_cast<double>(half);
  const double second = sums.Sum(half, n)[0] / static_cast<double>(n - half);
  const double scatter_limit = kMaxForceScatterShare * mean;
  return variance > scatter_limit * scatter_limit * kMargin * kMargin ||
         std::abs(second - first) > kMaxForceDriftShare * mean * kMargin;
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
// extreme of the last stride is taken. `force(i)` and `t_us(i)` read
// reading i.
template <typename Force, typename Time>
size_t RampEnd(size_t from, size_t count, int step, bool lowest,
               double weight_n, Force force, Time t_us) {
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
  for (auto j = stride(i); j && steep(i, *j); j = stride(i)) i = *j;
  size_t best = i;
  for (size_t k = i;; k += step) {
    if (std::abs(t_us(k) - t_us(i)) > kRampStrideUs) break;
    if (further(best, k) > 0) best = k;
    if (step < 0 ? k == 0 : k + 1 >= count) break;
  }
  return best;
}

// 0 before a raised-cosine step of ramp_us centred on centre_us, 1 after.
double StepAt(int64_t t_us, int64_t centre_us, int64_t ramp_us) {
  if (ramp_us <= 0) return t_us >= centre_us ? 1 : 0;
  const double x =
      static_cast<double>(t_us - centre_us) / static_cast<double>(ramp_us) +
      0.5;
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  return 0.5 * (1 - std::cos(kPi * x));
}

// Solves the n x n system a x = b (row-major a) by Gaussian elimination with
// partial pivoting; false when it is singular.
template <size_t n>
bool Solve(std::array<double, n * n> a, std::array<double, n> b,
           std::array<double, n>* x) {
  for (size_t c = 0; c < n; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < n; ++r) {
      if (std::abs(a[r * n + c]) > std::abs(a[pivot * n + c])) pivot = r;
    }
    if (std::abs(a[pivot * n + c]) < 1e-12) return false;
    if (pivot != c) {
      for (size_t k = 0; k < n; ++k) std::swap(a[c * n + k], a[pivot * n + k]);
      std::swap(b[c], b[pivot]);
    }
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r * n + c] / a[c * n + c];
      for (size_t k = c; k < n; ++k) a[r * n + k] -= f * a[c * n + k];
      b[r] -= f * b[c];
    }
  }
  for (size_t c = n; c-- > 0;) {
    double v = b[c];
    for (size_t k = c + 1; k < n; ++k) v -= a[c * n + k] * (*x)[k];
    (*x)[c] = v / a[c * n + c];
  }
  return true;
}

// A step of the force on top of the body's smooth force (see FootLoadIn).
struct StepFit {
  int64_t t_us = 0;
  int64_t ramp_us = 0;
  double height_n = 0;  // + = the force steps up
};

// The step that, with a cubic for the body, best fits the readings in
// [from_us, to_us] (least squares), centred within kStepSearchUs of
// near_us.
StepFit FitStep(absl::Span<const PlateForce> plate, int64_t near_us,
                int64_t from_us, int64_t to_us) {
  std::vector<PlateForce> window;
  for (const PlateForce& p : plate) {
    if (p.t_us >= from_us && p.t_us <= to_us) window.push_back(p);
  }
  StepFit best{near_us, 0, 0};
  if (window.size() < 10) return best;
  double least_residual = std::numeric_limits<double>::infinity();
  // Time in tenths of a second around near_us, for a well-conditioned fit.
  const auto tau = [&](int64_t t_us) { return (t_us - near_us) * 1e-5; };
  for (int64_t ramp_us : kStepRampsUs) {
    for (int64_t centre_us = near_us - kStepSearchUs;
         centre_us <= near_us + kStepSearchUs;
         centre_us += kStepSearchStrideUs) {
      constexpr size_t kTerms = 5;
      std::array<double, kTerms * kTerms> ata{};
      std::array<double, kTerms> atb{};
      for (const PlateForce& p : window) {
        const double x = tau(p.t_us);
        const std::array<double, kTerms> row = {
            1, x, x * x, x * x * x, StepAt(p.t_us, centre_us, ramp_us)};
        for (size_t i = 0; i < kTerms; ++i) {
          for (size_t j = 0; j < kTerms; ++j)
            ata[i * kTerms + j] += row[i] * row[j];
          atb[i] += row[i] * p.fz_n;
        }
      }
      std::array<double, kTerms> c{};
      if (!Solve<kTerms>(ata, atb, &c)) continue;
      double residual = 0;
      for (const PlateForce& p : window) {
        const double x = tau(p.t_us);
        const double e = c[0] + c[1] * x + c[2] * x * x + c[3] * x * x * x +
                         c[4] * StepAt(p.t_us, centre_us, ramp_us) - p.fz_n;
        residual += e * e;
      }
      if (residual < least_residual) {
        least_residual = residual;
        best = {centre_us, ramp_us, c[4]};
      }
    }
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
    sums_.Clear();
    return std::nullopt;
  }
  window_.push_back(sample);
  sums_.PushBack({sample.fz_n, sample.fz_n * sample.fz_n});
  while (window_.back().t_us - window_.front().t_us > kMaxStillWindowUs) {
    PopFront();
  }
  if (window_.back().t_us - window_.front().t_us < kMinStillUs) {
    return std::nullopt;
  }
  if (!ClearlyUnsteady(sums_, window_.size())) {
    if (auto w = SteadyOver(window_.begin(), window_.end())) return w;
  }
  PopFront();
  return std::nullopt;
}

void PlateStillnessDetector::PopFront() {
  window_.pop_front();
  sums_.PopFront();
}

double FootLoad::At(int64_t t_us) const {
  const double landed = on_n * StepAt(t_us, on_us, on_ramp_us);
  const double lifted = off_n * (1 - StepAt(t_us, off_us, off_ramp_us));
  const int64_t on_end_us = on_us + on_ramp_us / 2;
  const int64_t off_start_us = off_us - off_ramp_us / 2;
  if (off_start_us <= on_end_us) return std::min(landed, lifted);
  if (t_us <= on_end_us) return landed;
  if (t_us >= off_start_us) return lifted;
  const double s = static_cast<double>(t_us - on_end_us) /
                   static_cast<double>(off_start_us - on_end_us);
  return on_n + s * (off_n - on_n);
}

int64_t SteepestChange(absl::Span<const PlateForce> plate, int64_t from_us,
                       int64_t to_us, bool falling) {
  int64_t best_us = from_us;
  double steepest = -std::numeric_limits<double>::infinity();
  size_t j = 0;
  for (size_t i = 0; i < plate.size(); ++i) {
    if (plate[i].t_us < from_us || plate[i].t_us > to_us) continue;
    while (j < i && plate[i].t_us - plate[j].t_us > kSteepSpanUs) ++j;
    if (plate[i].t_us - plate[j].t_us < kSteepSpanUs / 2) continue;
    const double change =
        falling ? plate[j].fz_n - plate[i].fz_n : plate[i].fz_n - plate[j].fz_n;
    if (change > steepest) {
      steepest = change;
      best_us = plate[j].t_us + (plate[i].t_us - plate[j].t_us) / 2;
    }
  }
  return best_us;
}

FootLoad FootLoadIn(absl::Span<const PlateForce> plate, int64_t landing_near_us,
                    int64_t lift_near_us) {
  FootLoad load;
  // Each step's window stays clear of the other step.
  const int64_t half_gap_us =
      std::max<int64_t>(0, (lift_near_us - landing_near_us) / 2);
  const int64_t reach_us = std::min(kStepFitHalfUs, half_gap_us);
  const StepFit on =
      FitStep(plate, landing_near_us, landing_near_us - kStepFitHalfUs,
              landing_near_us + reach_us);
  const StepFit off = FitStep(plate, lift_near_us, lift_near_us - reach_us,
                              lift_near_us + kStepFitHalfUs);
  load.on_us = on.t_us;
  load.on_ramp_us = on.ramp_us;
  load.on_n = std::max(0.0, -on.height_n);
  load.off_us = off.t_us;
  load.off_ramp_us = off.ramp_us;
  load.off_n = std::max(0.0, off.height_n);
  return load;
}

std::vector<double> BodyForceAcross(absl::Span<const PlateForce> plate,
                                    const FootLoad& load) {
  std::vector<double> body;
  body.reserve(plate.size());
  for (const PlateForce& p : plate) body.push_back(p.fz_n + load.At(p.t_us));
  return body;
}

bool IsFreeFootLoad(double dip_share, const BodyMotion& body) {
  return dip_share > kArmShare && -body.height_m >= kTouchMinDepthM &&
         body.speed_mps <= kTouchMaxRiseMps;
}

bool IsBodySpeed(double speed_mps) {
  return std::abs(speed_mps) <= kMaxBodySpeedMps;
}

double HeightAtRest(double height_m, double speed_mps, int64_t error_from_us,
                    int64_t t_us) {
  return height_m -
         speed_mps *
             static_cast<double>(std::max<int64_t>(0, t_us - error_from_us)) *
             1e-6;
}

ComDepthTracker::ComDepthTracker(double weight_n, int64_t t_us)
    : weight_n_(weight_n),
      last_t_us_(t_us),
      quiet_since_us_(t_us),
      smoothed_force_n_(weight_n),
      rested_us_(t_us) {}

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
    rested_us_ = t_us;
    shared_since_rest_us_.reset();
    return -1000 * body_.height_m;
  }
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
              sharing_->least_force_n + kRegainShare * lost_n ||
          (smoothed_force_n_ >= (1 - kArmShare) * weight_n_ && RoseFast())) {
        sharing_->back_since_us = t_us;
      }
    } else if (t_us - *sharing_->back_since_us >= kFitContextUs) {
      EndSharing(t_us);
    }
  } else {
    Integrate(t_us, fz_n, dt_s);
    const double dip = 1 - smoothed_force_n_ / weight_n_;
    if (dip <= kArmShare) armed_ = true;
    if (body_.speed_mps < 0 && !IsBodySpeed(body_.speed_mps)) {
      // What was taken for the body's lowering was load.
      armed_ = false;
      BeginSharing(LastAtBodyWeight());
    } else if (armed_ &&
               (dip > kFallShare || (dip > kArmShare && FellFast()))) {
      // Judged once per fall, where it starts.
      armed_ = false;
      // Once the body has pushed up after a touch-down, a fall is the rise
      // slowing, wherever the estimate has the body (its bridge may be off).
      const bool rising_after_touch = shared_since_rest_us_ && pushed_up_;
      if (IsFreeFootLoad(dip, body_) && !rising_after_touch) {
        BeginSharing(FallStart());
      }
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
  // The force's own sign of a rise, which no bridge can get wrong: pushed
  // up (above body weight), then slowed (below it).
  const double share = smoothed_force_n_ / weight_n_;
  if (share > 1 + kRiseShare) pushed_up_ = true;
  if (pushed_up_ && share < 1 - kRiseShare) slowed_rise_ = true;
  // After a load sharing the speed is not trusted to tell rest from a slow
  // lowering's middle (see ComDepthTracker): that is what the update fixes.
  if (std::abs(smoothed_accel_mps2_) > kQuietAccelMps2 ||
      (!shared_since_rest_us_ && std::abs(body_.speed_mps) > kQuietSpeedMps)) {
    quiet_since_us_ = t_us;
  } else if (t_us - quiet_since_us_ >= kQuietUs) {
    UpdateAtRest(t_us);
  }
  history_.push_back(
      {t_us, body_, smoothed_accel_mps2_, quiet_since_us_, smoothed_force_n_});
  while (t_us - history_.front().t_us > kHistoryUs) history_.pop_front();
}

void ComDepthTracker::UpdateAtRest(int64_t t_us) {
  body_.height_m = HeightAtRest(
      body_.height_m, body_.speed_mps,
      shared_since_rest_us_.value_or(rested_us_ + (t_us - rested_us_) / 2),
      t_us);
  body_.speed_mps = 0;
  // At rest after rising, the patient stands again, at standing height,
  // whatever the integration says (what the correction missed). After a
  // load sharing the speed estimate may not have shown the rise, the force
  // has.
  if (rising_ || (shared_since_rest_us_ && slowed_rise_)) body_.height_m = 0;
  rising_ = false;
  pushed_up_ = slowed_rise_ = false;
  rested_us_ = t_us;
  shared_since_rest_us_.reset();
}

bool ComDepthTracker::RoseFast() const {
  double low_n = smoothed_force_n_;
  for (auto it = sharing_->readings.rbegin();
       it != sharing_->readings.rend() && last_t_us_ - it->t_us <= kFastFallUs;
       ++it) {
    low_n = std::min(low_n, it->fz_n);
  }
  return smoothed_force_n_ - low_n > kFallShare * weight_n_;
}

bool ComDepthTracker::FellFast() const {
  double high_n = smoothed_force_n_;
  for (auto it = history_.rbegin();
       it != history_.rend() && last_t_us_ - it->t_us <= kFastFallUs; ++it) {
    high_n = std::max(high_n, it->smoothed_force_n);
  }
  return high_n - smoothed_force_n_ > kFallShare * weight_n_;
}

size_t ComDepthTracker::FallStart() const {
  size_t first = history_.size() - 1;
  while (first > 0 && last_t_us_ - history_[first - 1].t_us <= kLookbackUs) {
    --first;
  }
  return first +
         RampEnd(
             history_.size() - 1 - first, history_.size() - first, -1, false,
             weight_n_,
             [&](size_t k) { return history_[first + k].smoothed_force_n; },
             [&](size_t k) { return history_[first + k].t_us; });
}

size_t ComDepthTracker::LastAtBodyWeight() const {
  size_t k = history_.size() - 1;
  while (k > 0 && history_[k].smoothed_force_n < (1 - kArmShare) * weight_n_) {
    --k;
  }
  return k;
}

void ComDepthTracker::BeginSharing(size_t start) {
  double high_n = smoothed_force_n_;
  for (size_t k = 0; k < history_.size(); ++k) {
    if (k == start || last_t_us_ - history_[k].t_us <= kLookbackUs) {
      high_n = std::max(high_n, history_[k].smoothed_force_n);
    }
  }
  sharing_ = Sharing{history_[start], high_n, smoothed_force_n_,
                     last_t_us_,      {},     std::nullopt};
  for (const Snapshot& s : history_) {
    if (s.t_us >= history_[start].t_us - kFitContextUs) {
      sharing_->readings.push_back({s.t_us, s.smoothed_force_n});
    }
  }
  history_.clear();
}

void ComDepthTracker::EndSharing(int64_t t_us) {
  const Snapshot& before = sharing_->before;
  const std::vector<PlateForce>& plate = sharing_->readings;
  if (plate.empty() || t_us - before.t_us > kMaxBridgeUs) {
    // Long on both feet: standing (the calibration movement is this); if
    // not, the next rest puts the estimate right.
    body_ = {};
  } else {
    const int64_t landing_near_us = SteepestChange(
        plate, before.t_us - kSteepSpanUs, sharing_->judged_us + kSteepSpanUs,
        /*falling=*/true);
    const int64_t lift_near_us =
        SteepestChange(plate, landing_near_us + kSteepSpanUs, t_us,
                       /*falling=*/false);
    const std::vector<double> force = BodyForceAcross(
        plate, FootLoadIn(plate, landing_near_us, lift_near_us));
    body_ = before.body;
    for (size_t i = 1; i < plate.size(); ++i) {
      if (plate[i].t_us <= before.t_us) continue;
      const double dt_s = (plate[i].t_us - plate[i - 1].t_us) * 1e-6;
      const double previous_speed = body_.speed_mps;
      body_.speed_mps += kGravity * (force[i] / weight_n_ - 1) * dt_s;
      body_.height_m += 0.5 * (previous_speed + body_.speed_mps) * dt_s;
    }
  }
  smoothed_accel_mps2_ = kGravity * (smoothed_force_n_ / weight_n_ - 1);
  quiet_since_us_ = t_us;
  shared_since_rest_us_ = before.t_us + (t_us - before.t_us) / 2;
  // A rise is looked for after the foot's lift: the braking before it is
  // no push up.
  pushed_up_ = slowed_rise_ = false;
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
