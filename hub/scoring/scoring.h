// The hub's scoring of lateral step-downs: pure functions and an online
// per-set scorer over sensor samples. No I/O, no protobuf, no threads.
#ifndef STEPHUB_HUB_SCORING_SCORING_H_
#define STEPHUB_HUB_SCORING_SCORING_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/recording.h"
#include "common/samples.h"

namespace stephub::scoring {

// Stored with every result so that stored data can be re-scored later.
inline constexpr char kScoringVersion[] = "stephub-scoring/0.1";

enum class Verdict {
  kClean,       // pelvis stayed within the threshold of level
  kPelvicDrop,  // free-leg side dropped beyond the threshold (Trendelenburg)
  kPelvicHike,  // free-leg side hiked beyond the threshold
};

struct ScoringConfig {
  // |peak pelvic drop| above this is a compensated repetition.
  double pelvic_compensation_threshold_deg = 5.0;
};

struct Repetition {
  int number = 0;          // counts from 1 within the set; 0 for a partial rep
  int64_t start_us = 0;    // start of lowering
  int64_t deepest_us = 0;  // deepest point
  int64_t end_us = 0;      // end of rising
  // Extreme pelvic drop relative to standing: of the largest and the most
  // negative value during the rep, the one with larger magnitude.
  double peak_pelvic_drop_deg = 0;
  Verdict verdict = Verdict::kClean;
  bool partial = false;  // the set ended before the rep did; not counted
};

Verdict ClassifyPelvicDrop(double peak_pelvic_drop_deg,
                           const ScoringConfig& config);

// Scores one set online. Feed samples in time order as they arrive; the first
// >= 1 s of stillness calibrates the standing posture.
class SetScorer {
 public:
  SetScorer(StanceSide stance_side, ScoringConfig config = {});
  ~SetScorer();
  SetScorer(const SetScorer&) = delete;
  SetScorer& operator=(const SetScorer&) = delete;

  // Returns the repetitions these samples completed, in order.
  std::vector<Repetition> AddSacrumSamples(absl::Span<const ImuSample> samples);
  // Ends the set: a rep still in progress comes back with partial = true.
  std::optional<Repetition> Finish();

  bool calibrated() const;
  int repetitions_counted() const;
  // Latest pelvic drop (deg, relative to standing) for live feedback; nullopt
  // before calibration.
  std::optional<double> current_pelvic_drop_deg() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Offline: scores a whole recording with exactly the online code. Returns the
// counted repetitions; one cut off by the end of the recording is left out.
std::vector<Repetition> ScoreRecording(const Recording& recording,
                                       const ScoringConfig& config = {});

}  // namespace stephub::scoring

#endif  // STEPHUB_HUB_SCORING_SCORING_H_
