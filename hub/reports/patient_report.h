// The patient progress report a referring doctor or insurer reads: built
// once from the patient's progress (hub/progress, as Dashboard serves it)
// and rendered as HTML or as an A4 PDF (cairo, fonts embedded, numbered
// pages). Pure: no store, no I/O beyond the bytes returned.
#ifndef STEPHUB_HUB_REPORTS_PATIENT_REPORT_H_
#define STEPHUB_HUB_REPORTS_PATIENT_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hub/reports/page_layout.h"
#include "stephub/v1/common.pb.h"
#include "stephub/v1/dashboard.pb.h"

namespace stephub::reports {

// One visit's line in the report.
struct SessionRow {
  std::string day;  // YYYY-MM-DD, the clinic's
  int sets = 0;
  int repetitions = 0;
  int clean = 0;
  double clean_percent = 0;
  double mean_pelvic_drop_deg = 0;
  double worst_pelvic_drop_deg = 0;  // largest magnitude, signed
  std::string loads;                 // "bodyweight, band"
  std::string note;                  // the therapist's note on the visit
};

struct WeekRow {
  int index = 0;  // 1 = the programme's first week
  std::string monday;
  int sessions = 0;
  std::string adherence;  // "on target", "below target", ...
  int repetitions = 0;
  double clean_percent = 0;
};

// How often a quality-scale item scored a fault, of the repetitions where
// it was assessed.
struct QualityFrequency {
  std::string item;  // "pelvis", "trunk", ...
  int faulted = 0;
  int assessed = 0;
};

struct ReadinessLine {
  std::string side;  // "left leg"
  bool ready = false;
  std::string reason;
  std::string next_step;
};

struct PatientReport {
  std::string patient;
  std::string external_ref;
  std::string horizon;  // "week 3 of the 8-12 week programme"
  std::string time_zone;
  std::string first_day, last_day;  // the period covered
  int weeks_on_target = 0;          // complete weeks with 3-4 sessions
  int complete_weeks = 0;
  std::vector<SessionRow> sessions;
  std::vector<WeekRow> weeks;
  // Least-squares line through the sessions' mean pelvic drops, by session
  // number from 0; nullopt below two sessions.
  std::optional<double> drop_trend_per_session;
  std::optional<double> drop_trend_at_first;
  std::vector<QualityFrequency> quality;
  std::vector<ReadinessLine> readiness;
};

// `sessions` (Clinic.ListSessions) give the therapist's notes; may be empty.
PatientReport BuildPatientReport(const v1::PatientProgress& progress,
                                 const std::vector<v1::Session>& sessions);

std::string RenderPatientReportHtml(const PatientReport& report,
                                    const RenderOptions& options);
// A4, fonts embedded, "Page i of n" on every page.
absl::StatusOr<std::string> RenderPatientReportPdf(
    const PatientReport& report, const RenderOptions& options);

}  // namespace stephub::reports

#endif  // STEPHUB_HUB_REPORTS_PATIENT_REPORT_H_
