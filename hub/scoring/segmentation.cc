// Hysteresis segmentation of step-down repetitions; see segmentation.h.
#include "hub/scoring/segmentation.h"

#include <algorithm>
#include <cmath>

namespace stephub::scoring {

double RepSpan::PeakDropDeg() const {
  return std::abs(max_drop_deg) >= std::abs(min_drop_deg) ? max_drop_deg
                                                          : min_drop_deg;
}

RepSegmenter::RepSegmenter(SegmentationConfig config) : config_(config) {}

void RepSegmenter::Restart(int64_t t_us, double depth_deg, double drop_deg) {
  span_ = RepSpan{t_us, t_us, t_us, depth_deg, drop_deg, drop_deg};
}

void RepSegmenter::Extend(int64_t t_us, double depth_deg, double drop_deg) {
  span_.end_us = t_us;
  if (depth_deg > span_.peak_depth_deg) {
    span_.peak_depth_deg = depth_deg;
    span_.deepest_us = t_us;
  }
  span_.max_drop_deg = std::max(span_.max_drop_deg, drop_deg);
  span_.min_drop_deg = std::min(span_.min_drop_deg, drop_deg);
}

void RepSegmenter::TrackBaseline(int64_t t_us, double depth_deg,
                                 double drop_deg) {
  // Follows the standing posture slowly; the short climb from the baseline
  // to the entry threshold (a few tenths of a second) barely moves it.
  if (depth_deg < config_.enter_deg) {
    const double dt_s = (t_us - last_t_us_) * 1e-6;
    baseline_deg_ += (depth_deg - baseline_deg_) * dt_s /
                     (config_.baseline_time_constant_s + dt_s);
  }
  if (depth_deg > baseline_deg_ + config_.baseline_margin_deg) {
    Extend(t_us, depth_deg, drop_deg);
  } else {
    Restart(t_us, depth_deg, drop_deg);
  }
}

std::optional<RepSpan> RepSegmenter::Add(int64_t t_us, double depth_deg,
                                         double drop_deg) {
  if (!started_) {
    started_ = true;
    Restart(t_us, depth_deg, drop_deg);
    last_t_us_ = t_us;
    return std::nullopt;
  }
  std::optional<RepSpan> done;
  if (!in_rep_) {
    TrackBaseline(t_us, depth_deg, drop_deg);
    in_rep_ = depth_deg > config_.enter_deg;
  } else {
    Extend(t_us, depth_deg, drop_deg);
    if (depth_deg < config_.leave_deg) {
      in_rep_ = false;
      if (span_.peak_depth_deg >= config_.min_peak_deg &&
          span_.end_us - span_.start_us >= config_.min_duration_us) {
        done = span_;
      }
      // The next repetition cannot start before this one ended.
      Restart(t_us, depth_deg, drop_deg);
    }
  }
  last_t_us_ = t_us;
  return done;
}

void RepSegmenter::Reset() {
  in_rep_ = false;
  started_ = false;
}

std::optional<RepSpan> RepSegmenter::InProgress() const {
  if (!in_rep_) return std::nullopt;
  return span_;
}

}  // namespace stephub::scoring
