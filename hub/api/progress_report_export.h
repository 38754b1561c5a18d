// Reports.Export's patient progress report (PDF or HTML): the patient's
// progress from the store, rendered by hub/reports. ExportReport
// (report_export.h) checks the request and calls it.
#ifndef STEPHUB_HUB_API_PROGRESS_REPORT_EXPORT_H_
#define STEPHUB_HUB_API_PROGRESS_REPORT_EXPORT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "hub/api/report_export.h"
#include "stephub/v1/reports.pb.h"

namespace stephub::api {

// `format` is REPORT_FORMAT_PDF or REPORT_FORMAT_HTML. The report covers
// the whole programme; it is a few pages, rendered whole and then sent in
// chunks.
absl::Status WriteProgressReport(int64_t patient_id, v1::ReportFormat format,
                                 const ExportEnvironment& env,
                                 ReportWriter& out);

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_PROGRESS_REPORT_EXPORT_H_
