// A patient's progress as the Dashboard serves it: the stored sets and
// repetitions through hub/progress, onto the wire.
#ifndef STEPHUB_HUB_API_PROGRESS_VIEW_H_
#define STEPHUB_HUB_API_PROGRESS_VIEW_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hub/progress/progress.h"
#include "hub/store/store.h"
#include "stephub/v1/dashboard.pb.h"

namespace stephub::api {

// A stored repetition as hub/progress sees it (reports summarise sets with
// the same arithmetic as the progress view through it).
progress::RepetitionOutcome OutcomeOf(const v1::Repetition& rep);

// A set and its current repetitions.
struct SetResults {
  v1::ExerciseSet set;
  std::vector<v1::Repetition> repetitions;
};

// The patient's progress from its sets, oldest first. Pure: the sample
// report (tools/) builds a programme's history without a store.
v1::PatientProgress ProgressOf(const v1::Patient& patient,
                               const std::vector<SetResults>& sets,
                               absl::Time as_of, absl::TimeZone zone);

// The same, read from the store.
absl::StatusOr<v1::PatientProgress> PatientProgressOf(store::ClinicStore& store,
                                                      int64_t patient_id,
                                                      absl::Time as_of,
                                                      absl::TimeZone zone);

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_PROGRESS_VIEW_H_
