// Reports.Export's patient progress report: see progress_report_export.h.
#include "hub/api/progress_report_export.h"

#include <string>

#include "absl/strings/str_format.h"
#include "hub/api/progress_view.h"
#include "hub/reports/patient_report.h"

namespace stephub::api {

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
  return WriteWhole(pdf ? "application/pdf" : "text/html; charset=utf-8",
                    absl::StrFormat("patient-%d-progress.%s", patient_id,
                                    pdf ? "pdf" : "html"),
                    bytes, out);
}

}  // namespace stephub::api
