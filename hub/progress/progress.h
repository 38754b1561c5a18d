// Per-patient progress from scored repetitions: pure functions over plain
// structs, no storage and no protobuf.
#ifndef STEPHUB_HUB_PROGRESS_PROGRESS_H_
#define STEPHUB_HUB_PROGRESS_PROGRESS_H_

#include <cstdint>

#include "absl/types/span.h"

namespace stephub::progress {

struct RepetitionOutcome {
  double peak_pelvic_drop_deg = 0;
  bool clean = false;
};

struct SetSummary {
  uint32_t repetitions = 0;
  uint32_t clean_repetitions = 0;
  double clean_percent = 0;          // 0 when there are no repetitions
  double mean_pelvic_drop_deg = 0;   // mean of the signed per-rep peaks
  double worst_pelvic_drop_deg = 0;  // the peak with the largest magnitude
};

SetSummary SummariseSet(absl::Span<const RepetitionOutcome> repetitions);

}  // namespace stephub::progress

#endif  // STEPHUB_HUB_PROGRESS_PROGRESS_H_
