// Reports.Export's patient progress report (PDF or HTML): the patient's
// progress from the store, rendered by hub/reports, streamed in chunks.
#ifndef STEPHUB_HUB_API_PROGRESS_REPORT_EXPORT_H_
#define STEPHUB_HUB_API_PROGRESS_REPORT_EXPORT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>

#include "absl/time/time.h"
#include "hub/store/store.h"
#include "stephub/v1/reports.grpc.pb.h"

namespace stephub::api {

grpc::Status ExportPatientReport(store::ClinicStore& store, int64_t patient_id,
                                 v1::ReportFormat format, absl::TimeZone zone,
                                 absl::Time now,
                                 grpc::ServerWriter<v1::ReportChunk>* writer);

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_PROGRESS_REPORT_EXPORT_H_
