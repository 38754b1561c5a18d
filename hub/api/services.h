// The staff-facing services: thin translations between gRPC and the bays,
// the store and the live bus.
#ifndef STEPHUB_HUB_API_SERVICES_H_
#define STEPHUB_HUB_API_SERVICES_H_

#include <cstddef>
#include <functional>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "hub/auth/staff_accounts.h"
#include "hub/ingest/bays.h"
#include "hub/ingest/station_access.h"
#include "hub/live/live_bus.h"
#include "hub/store/store.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"
#include "stephub/v1/maintenance.grpc.pb.h"
#include "stephub/v1/reports.grpc.pb.h"

namespace stephub::api {

class ClinicService final : public v1::Clinic::Service {
 public:
  ClinicService(auth::StaffAccounts& accounts, store::ClinicStore& store,
                ingest::Bays& bays, ingest::StationAccess& access)
      : accounts_(accounts), store_(store), bays_(bays), access_(access) {}

  grpc::Status CreatePatient(grpc::ServerContext* context,
                             const v1::CreatePatientRequest* request,
                             v1::Patient* response) override;
  grpc::Status ListPatients(grpc::ServerContext* context,
                            const v1::ListPatientsRequest* request,
                            v1::ListPatientsResponse* response) override;
  grpc::Status GetPatient(grpc::ServerContext* context,
                          const v1::GetPatientRequest* request,
                          v1::Patient* response) override;
  grpc::Status ListSessions(grpc::ServerContext* context,
                            const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override;
  grpc::Status SetSessionNote(grpc::ServerContext* context,
                              const v1::SetSessionNoteRequest* request,
                              v1::Session* response) override;
  grpc::Status CreateTherapist(grpc::ServerContext* context,
                               const v1::CreateTherapistRequest* request,
                               v1::Therapist* response) override;
  grpc::Status ListTherapists(grpc::ServerContext* context,
                              const v1::ListTherapistsRequest* request,
                              v1::ListTherapistsResponse* response) override;
  grpc::Status ListStations(grpc::ServerContext* context,
                            const v1::ListStationsRequest* request,
                            v1::ListStationsResponse* response) override;
  grpc::Status RevokeStation(grpc::ServerContext* context,
                             const v1::RevokeStationRequest* request,
                             v1::RevokeStationResponse* response) override;
  grpc::Status StartSet(grpc::ServerContext* context,
                        const v1::StartSetRequest* request,
                        v1::ExerciseSet* response) override;
  grpc::Status EndSet(grpc::ServerContext* context,
                      const v1::EndSetRequest* request,
                      v1::ExerciseSet* response) override;
  grpc::Status Rescore(grpc::ServerContext* context,
                       const v1::RescoreRequest* request,
                       v1::RescoreResponse* response) override;
  grpc::Status ListScoringVersions(
      grpc::ServerContext* context,
      const v1::ListScoringVersionsRequest* request,
      v1::ListScoringVersionsResponse* response) override;

 private:
  auth::StaffAccounts& accounts_;
  store::ClinicStore& store_;
  ingest::Bays& bays_;
  ingest::StationAccess& access_;
};

// WatchClinic runs on the callback API (a watcher holds no thread while it
// waits); GetPatientProgress reads the store on the sync thread pool.
class DashboardService final
    : public v1::Dashboard::WithCallbackMethod_WatchClinic<
          v1::Dashboard::Service> {
 public:
  // Days and weeks of progress are the clinic's, in `time_zone`.
  DashboardService(auth::StaffAccounts& accounts, store::ClinicStore& store,
                   ingest::Bays& bays, live::LiveBus& bus,
                   absl::TimeZone time_zone, std::function<absl::Time()> clock,
                   size_t subscriber_queue = 1024)
      : accounts_(accounts),
        store_(store),
        bays_(bays),
        bus_(bus),
        time_zone_(time_zone),
        clock_(std::move(clock)),
        subscriber_queue_(subscriber_queue) {}

  grpc::ServerWriteReactor<v1::ClinicEvent>* WatchClinic(
      grpc::CallbackServerContext* context,
      const v1::WatchClinicRequest* request) override;
  grpc::Status GetPatientProgress(grpc::ServerContext* context,
                                  const v1::GetPatientProgressRequest* request,
                                  v1::PatientProgress* response) override;

 private:
  auth::StaffAccounts& accounts_;
  store::ClinicStore& store_;
  ingest::Bays& bays_;
  live::LiveBus& bus_;
  const absl::TimeZone time_zone_;
  const std::function<absl::Time()> clock_;
  const size_t subscriber_queue_;
};

// Exports (report_export.h); days and weeks are the clinic's, in
// `time_zone`, and `clock` says what "now" is (tests fix it).
class ReportsService final : public v1::Reports::Service {
 public:
  ReportsService(auth::StaffAccounts& accounts, store::ClinicStore& store,
                 absl::TimeZone time_zone, std::function<absl::Time()> clock)
      : accounts_(accounts),
        store_(store),
        time_zone_(time_zone),
        clock_(std::move(clock)) {}
  grpc::Status Export(grpc::ServerContext* context,
                      const v1::ExportRequest* request,
                      grpc::ServerWriter<v1::ReportChunk>* writer) override;

 private:
  auth::StaffAccounts& accounts_;
  store::ClinicStore& store_;
  const absl::TimeZone time_zone_;
  const std::function<absl::Time()> clock_;
};

// A backup of the clinic database while the hub runs.
class MaintenanceService final : public v1::Maintenance::Service {
 public:
  MaintenanceService(auth::StaffAccounts& accounts, store::ClinicStore& store,
                     std::string data_dir)
      : accounts_(accounts), store_(store), data_dir_(std::move(data_dir)) {}
  grpc::Status Backup(grpc::ServerContext* context,
                      const v1::BackupRequest* request,
                      grpc::ServerWriter<v1::BackupChunk>* writer) override;

 private:
  auth::StaffAccounts& accounts_;
  store::ClinicStore& store_;
  const std::string data_dir_;
};

}  // namespace stephub::api

#endif  // STEPHUB_HUB_API_SERVICES_H_
