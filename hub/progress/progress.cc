// Set summaries for the progress view; see progress.h.
#include "hub/progress/progress.h"

#include <cmath>

namespace stephub::progress {

SetSummary SummariseSet(absl::Span<const RepetitionOutcome> repetitions) {
  SetSummary summary;
  if (repetitions.empty()) return summary;
  double sum = 0;
  for (const RepetitionOutcome& rep : repetitions) {
    ++summary.repetitions;
    if (rep.clean) ++summary.clean_repetitions;
    sum += rep.peak_pelvic_drop_deg;
    if (std::abs(rep.peak_pelvic_drop_deg) >
        std::abs(summary.worst_pelvic_drop_deg)) {
      summary.worst_pelvic_drop_deg = rep.peak_pelvic_drop_deg;
    }
  }
  summary.mean_pelvic_drop_deg = sum / summary.repetitions;
  summary.clean_percent =
      100.0 * summary.clean_repetitions / summary.repetitions;
  return summary;
}

}  // namespace stephub::progress
