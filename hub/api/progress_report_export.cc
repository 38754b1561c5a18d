#include "hub/api/progress_report_export.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "hub/api/progress_view.h"
#include "hub/reports/patient_report.h"

namespace stephub::api {
namespace {

// Slices handed to the writer: each becomes one chunk on the wire.
constexpr size_t kSliceBytes = 32 * 1024;

}  // namespace

absl::Status WriteProgressReport(int64_t patient_id, v1::ReportFormat format,
                                 const ExportEnvironment& env,
                                 ReportWriter& out) {
  auto progress = PatientProgressOf(*env.store, patient_id, env.now, env.zone);
  if (!progress.ok()) return progress.status();
  auto sessions = env.store->SessionsOfPatient(patient_id);
  if (!sessions.ok()) return sessions.status();
  const reports::PatientReport report =
      reports::BuildPatientReport(*progress, *sessions);
  reports::RenderOptions options;
  options.generated_at = env.now;
  options.zone = env.zone;
  std::string bytes;
  const bool pdf = format == v1::REPORT_FORMAT_PDF;
  if (pdf) {
    auto rendered = reports::RenderPatientReportPdf(report, options);
    if (!rendered.ok()) return rendered.status();
    bytes = std::move(*rendered);
  } else {
    bytes = reports::RenderPatientReportHtml(report, options);
  }
  out.Start(pdf ? "application/pdf" : "text/html; charset=utf-8",
            absl::StrFormat("patient-%d-progress.%s", patient_id,
                            pdf ? "pdf" : "html"));
  const absl::string_view view(bytes);
  for (size_t at = 0; at < view.size(); at += kSliceBytes) {
    if (!out.Append(view.substr(at, kSliceBytes))) {
      return absl::CancelledError("client went away");
    }
  }
  return out.Finish() ? absl::OkStatus()
                      : absl::CancelledError("client went away");
}

}  // namespace stephub::api
