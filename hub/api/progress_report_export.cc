#include "hub/api/progress_report_export.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_format.h"
#include "hub/api/progress_view.h"
#include "hub/reports/patient_report.h"
#include "stephub/v1/reports.grpc.pb.h"

namespace stephub::api {
namespace {

// As the CSV export's chunks: well under gRPC's 4 MiB message limit.
constexpr size_t kChunkBytes = 32 * 1024;

grpc::Status FromStatus(const absl::Status& s) {
  const grpc::StatusCode code = s.code() == absl::StatusCode::kNotFound
                                    ? grpc::StatusCode::NOT_FOUND
                                : s.code() == absl::StatusCode::kInvalidArgument
                                    ? grpc::StatusCode::INVALID_ARGUMENT
                                    : grpc::StatusCode::INTERNAL;
  return grpc::Status(code, std::string(s.message()));
}

}  // namespace

grpc::Status ExportPatientReport(store::ClinicStore& store, int64_t patient_id,
                                 v1::ReportFormat format, absl::TimeZone zone,
                                 absl::Time now,
                                 grpc::ServerWriter<v1::ReportChunk>* writer) {
  auto progress = PatientProgressOf(store, patient_id, now, zone);
  if (!progress.ok()) return FromStatus(progress.status());
  auto sessions = store.SessionsOfPatient(patient_id);
  if (!sessions.ok()) return FromStatus(sessions.status());
  const reports::PatientReport report =
      reports::BuildPatientReport(*progress, *sessions);
  reports::RenderOptions options;
  options.generated_at = now;
  options.zone = zone;
  std::string bytes;
  const bool pdf = format == v1::REPORT_FORMAT_PDF;
  if (pdf) {
    auto rendered = reports::RenderPatientReportPdf(report, options);
    if (!rendered.ok()) return FromStatus(rendered.status());
    bytes = std::move(*rendered);
  } else {
    bytes = reports::RenderPatientReportHtml(report, options);
  }
  // The report is a few pages: rendered whole, then sent in chunks.
  for (size_t at = 0; at == 0 || at < bytes.size(); at += kChunkBytes) {
    v1::ReportChunk chunk;
    if (at == 0) {
      chunk.set_content_type(pdf ? "application/pdf"
                                 : "text/html; charset=utf-8");
      chunk.set_file_name(absl::StrFormat("patient-%d-progress.%s", patient_id,
                                          pdf ? "pdf" : "html"));
    }
    chunk.set_data(bytes.substr(at, std::min(kChunkBytes, bytes.size() - at)));
    if (!writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
  }
  return grpc::Status::OK;
}

}  // namespace stephub::api
