// Reports.Export: the repetitions and sets CSVs, the FHIR R4 bundle, the
// clinic summary (CSV, PDF, HTML; docs/REPORTS.md), and the patient
// progress report through progress_report_export.h. The CSVs and FHIR go
// patient by patient and set by set, handing text to a ReportWriter that
// sends it on in chunks, so that a long history never sits in memory
// whole; the clinic summary (a row per patient seen, station and gap) and
// the progress report are built whole, then sent in chunks.
#ifndef STEPHUB_HUB_API_REPORT_EXPORT_H_
#define STEPHUB_HUB_API_REPORT_EXPORT_H_

#include <cstddef>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hub/store/store.h"
#include "stephub/v1/reports.pb.h"

namespace stephub::api {

// Collects report text and sends it in chunks of about `chunk_bytes`; the
// first chunk carries the content type and file name.
class ReportWriter {
 public:
  // `send` returns false once the client has gone.
  ReportWriter(std::function<bool(v1::ReportChunk&)> send,
               size_t chunk_bytes = 32 * 1024)
      : send_(std::move(send)), chunk_bytes_(chunk_bytes) {}

  void Start(const std::string& content_type, const std::string& file_name);
  // False once the client has gone (the export should stop).
  bool Append(absl::string_view text);
  bool Finish();
  size_t chunk_bytes() const { return chunk_bytes_; }

 private:
  bool Flush();

  std::function<bool(v1::ReportChunk&)> send_;
  const size_t chunk_bytes_;
  v1::ReportChunk chunk_;
  std::string buffer_;
};

// A report rendered whole (PDF, HTML, the clinic summary) handed to `out`
// in slices of its chunk size; CANCELLED once the client has gone.
absl::Status WriteWhole(const std::string& content_type,
                        const std::string& file_name, absl::string_view bytes,
                        ReportWriter& out);

struct ExportEnvironment {
  store::ClinicStore* store = nullptr;
  absl::TimeZone zone;  // the clinic's days and weeks
  absl::Time now;
  // True once the client has cancelled the call.
  std::function<bool()> cancelled = [] { return false; };
};

// The clinic summary's default for ExportRequest.review_after_weeks.
inline constexpr int kDefaultReviewAfterWeeks = 4;

// Checks `request` (nothing is written when it is refused: INVALID_ARGUMENT
// for a bad format, kind or date, NOT_FOUND for an unknown patient) and
// writes the report. CANCELLED when the client went away part way.
absl::Status ExportReport(const v1::ExportRequest& request,
                          const ExportEnvironment& env, ReportWriter& out);

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_REPORT_EXPORT_H_
