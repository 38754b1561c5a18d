// The clinic summary a clinic manager reads for a period: who was seen,
// adherence to the 3-4 sessions a week target, who is ready to progress,
// who is not improving and why, station uptime and data gaps. Built once
// (hub/api gathers it from the store) and rendered as the sectioned CSV,
// HTML or an A4 PDF from that one model, so the formats cannot disagree.
// Pure: no store, no I/O beyond the bytes returned.
#ifndef STEPHUB_HUB_REPORTS_CLINIC_SUMMARY_H_
#define STEPHUB_HUB_REPORTS_CLINIC_SUMMARY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hub/reports/page_layout.h"

namespace stephub::reports {

// Programme weeks by sessions in the week against the 3-4 target.
struct AdherenceWeeks {
  int below = 0;
  int on = 0;
  int above = 0;
  int in_progress = 0;  // the week holding as of, not yet at 3
};

// A patient with at least one session on a day of the period.
struct PatientSeen {
  int64_t patient_id = 0;
  std::string patient;
  std::string external_ref;
  int sessions = 0;           // on days of the period
  int sessions_too_soon = 0;  // < 24 h after the previous one ended
  std::string first_session_day;
  int weeks_since_start = 0;
  AdherenceWeeks weeks;  // programme weeks overlapping the period
  std::vector<std::string> ready_sides;    // "left", "right"
  std::vector<std::string> not_improving;  // sides flagged for review
  std::optional<double> left_trend_deg_per_week;
  std::optional<double> right_trend_deg_per_week;
  std::vector<std::string> review_reasons;  // one per flagged side
};

struct StationUptime {
  std::string station_id;
  absl::Duration observed;  // the period up to now, from its first log line
  absl::Duration connected;
  int disconnections = 0;
  absl::Duration longest_offline;
  int spool_losses = 0;
};

struct DataGap {
  std::string station_id;
  std::string kind;  // "offline", "spool_loss"
  absl::Time start;
  std::optional<absl::Time> end;           // none: still open, or an instant
  std::optional<absl::Duration> duration;  // offline stretches only
  std::string detail;
};

struct ClinicSummary {
  std::string from, to;  // clinic days, YYYY-MM-DD
  std::string time_zone;
  absl::Time as_of;  // progress as it stood then
  int review_after_weeks = 0;
  std::vector<PatientSeen> patients;  // in patient id order
  std::vector<StationUptime> stations;
  std::vector<DataGap> gaps;  // in the order they closed
};

struct ClinicTotals {
  int patients_seen = 0;
  int sessions = 0;
  AdherenceWeeks weeks;  // patient-weeks
  int patients_ready_to_progress = 0;
  int patients_not_improving = 0;
};

ClinicTotals TotalsOf(const ClinicSummary& summary);

// Connected share of the observed time, in %; nullopt when nothing was
// observed.
std::optional<double> UptimePercent(const StationUptime& station);

// docs/REPORTS.md documents its sections and columns.
std::string RenderClinicSummaryCsv(const ClinicSummary& summary);
std::string RenderClinicSummaryHtml(const ClinicSummary& summary,
                                    const RenderOptions& options);
// A4, fonts embedded, "Page i of n"; long tables repeat their header.
absl::StatusOr<std::string> RenderClinicSummaryPdf(
    const ClinicSummary& summary, const RenderOptions& options);

}  // namespace stephub::reports

#endif  // STEPHUB_HUB_REPORTS_CLINIC_SUMMARY_H_
