// Online segmentation of repetitions from the pelvis's forward tilt, which
// follows the depth of a step-down, with the pelvic drop extremes per rep.
#ifndef STEPHUB_HUB_SCORING_SEGMENTATION_H_
#define STEPHUB_HUB_SCORING_SEGMENTATION_H_

#include <cstdint>
#include <optional>

namespace stephub::scoring {

struct SegmentationConfig {
  // Hysteresis on the depth signal (deg of forward tilt over standing).
  double enter_deg = 3.0;
  double leave_deg = 1.5;
  // A repetition counts only if it went this deep and lasted this long.
  double min_peak_deg = 5.0;
  int64_t min_duration_us = 500'000;
  // The signal sits at its baseline while within this margin of it; the
  // baseline follows slow posture changes while standing.
  double baseline_margin_deg = 0.5;
  double baseline_time_constant_s = 2.0;
};

// One repetition's span and extremes.
struct RepSpan {
  int64_t start_us = 0;  // when the depth signal last left its baseline
  int64_t deepest_us = 0;
  int64_t end_us = 0;  // when it fell below leave_deg (or the last sample)
  double peak_depth_deg = 0;
  double max_drop_deg = 0;
  double min_drop_deg = 0;

  // Of the largest and the most negative drop, the one with larger magnitude.
  double PeakDropDeg() const;
};

class RepSegmenter {
 public:
  explicit RepSegmenter(SegmentationConfig config = {});

  // Feeds one sample (strictly increasing time); returns the repetition that
  // ended with it, if it counts. Shallow or brief dips are dropped.
  std::optional<RepSpan> Add(int64_t t_us, double depth_deg, double drop_deg);
  // The repetition under way (depth above enter_deg at some point and not
  // yet back below leave_deg), if any.
  std::optional<RepSpan> InProgress() const;
  // Forgets any repetition in progress (the data had a gap) and starts
  // afresh at the next sample.
  void Reset();

 private:
  void Restart(int64_t t_us, double depth_deg, double drop_deg);
  void Extend(int64_t t_us, double depth_deg, double drop_deg);
  void TrackBaseline(int64_t t_us, double depth_deg, double drop_deg);

  const SegmentationConfig config_;
  bool in_rep_ = false;
  bool started_ = false;
  int64_t last_t_us_ = 0;
  double baseline_deg_ = 0;  // calibration defines standing as zero tilt
  // While standing: everything since the signal last sat at its baseline, so
  // that a repetition's backdated start is covered. In a repetition: the
  // repetition so far.
  RepSpan span_;
};

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_SEGMENTATION_H_
