// Clinic, Dashboard and Reports services; see services.h.
#include "hub/api/services.h"

#include <google/protobuf/util/time_util.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/text.h"
#include "hub/api/auth_service.h"
#include "hub/api/progress_view.h"
#include "hub/api/report_export.h"

namespace stephub::api {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

}  // namespace

grpc::Status ClinicService::CreatePatient(
    grpc::ServerContext* context, const v1::CreatePatientRequest* request,
    v1::Patient* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckText(request->display_name(), "display_name", 1, 100);
      !s.ok()) {
    return ToGrpc(s);
  }
  if (auto s = CheckText(request->external_ref(), "external_ref", 0, 64);
      !s.ok()) {
    return ToGrpc(s);
  }
  auto patient =
      store_.CreatePatient(request->display_name(), request->external_ref());
  if (!patient.ok()) return ToGrpc(patient.status());
  *response = *patient;
  return ToGrpc(
      accounts_.Audit(caller, "patient_added", patient->patient_id(), ""));
}

grpc::Status ClinicService::ListPatients(grpc::ServerContext* context,
                                         const v1::ListPatientsRequest*,
                                         v1::ListPatientsResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  auto patients = store_.ListPatients();
  if (!patients.ok()) return ToGrpc(patients.status());
  for (auto& p : *patients) *response->add_patients() = std::move(p);
  return grpc::Status::OK;
}

grpc::Status ClinicService::GetPatient(grpc::ServerContext* context,
                                       const v1::GetPatientRequest* request,
                                       v1::Patient* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  auto patient = store_.GetPatient(request->patient_id());
  if (!patient.ok()) return ToGrpc(patient.status());
  *response = *patient;
  return grpc::Status::OK;
}

grpc::Status ClinicService::ListSessions(grpc::ServerContext* context,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  if (auto patient = store_.GetPatient(request->patient_id()); !patient.ok()) {
    return ToGrpc(patient.status());
  }
  if (auto s =
          accounts_.Audit(caller, "sessions_viewed", request->patient_id(), "");
      !s.ok()) {
    return ToGrpc(s);
  }
  auto sessions = store_.SessionsOfPatient(request->patient_id());
  if (!sessions.ok()) return ToGrpc(sessions.status());
  for (auto& s : *sessions) *response->add_sessions() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status ClinicService::SetSessionNote(
    grpc::ServerContext* context, const v1::SetSessionNoteRequest* request,
    v1::Session* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckText(request->note(), "note", 0, 2000); !s.ok()) {
    return ToGrpc(s);
  }
  auto session = store_.SetSessionNote(request->session_id(), request->note());
  if (!session.ok()) return ToGrpc(session.status());
  *response = *session;
  return ToGrpc(
      accounts_.Audit(caller, "session_note_set", session->patient_id(),
                      absl::StrCat("session ", session->session_id())));
}

grpc::Status ClinicService::CreateTherapist(
    grpc::ServerContext* context, const v1::CreateTherapistRequest* request,
    v1::Therapist* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckText(request->display_name(), "display_name", 1, 100);
      !s.ok()) {
    return ToGrpc(s);
  }
  auto therapist = store_.CreateTherapist(request->display_name());
  if (!therapist.ok()) return ToGrpc(therapist.status());
  *response = *therapist;
  return ToGrpc(
      accounts_.Audit(caller, "therapist_added", 0,
                      absl::StrCat("therapist ", therapist->therapist_id())));
}

grpc::Status ClinicService::ListTherapists(
    grpc::ServerContext* context, const v1::ListTherapistsRequest*,
    v1::ListTherapistsResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAnyStaff, &caller);
      !s.ok()) {
    return s;
  }
  auto therapists = store_.ListTherapists();
  if (!therapists.ok()) return ToGrpc(therapists.status());
  for (auto& t : *therapists) *response->add_therapists() = std::move(t);
  return grpc::Status::OK;
}

grpc::Status ClinicService::ListStations(grpc::ServerContext* context,
                                         const v1::ListStationsRequest*,
                                         v1::ListStationsResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAnyStaff, &caller);
      !s.ok()) {
    return s;
  }
  std::map<std::string, absl::Time> revoked = access_.Revocations();
  const auto stamp = [](absl::Time t) {
    return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
        absl::ToUnixMicros(t));
  };
  for (auto& s : bays_.Stations()) {
    if (auto it = revoked.find(s.station_id()); it != revoked.end()) {
      *s.mutable_revoked_at() = stamp(it->second);
      revoked.erase(it);
    }
    *response->add_stations() = std::move(s);
  }
  // Revoked before it ever connected (a Pi lost on its way to the bay).
  for (const auto& [station_id, at] : revoked) {
    v1::StationStatus* s = response->add_stations();
    s->set_station_id(station_id);
    *s->mutable_revoked_at() = stamp(at);
  }
  return grpc::Status::OK;
}

grpc::Status ClinicService::RevokeStation(
    grpc::ServerContext* context, const v1::RevokeStationRequest* request,
    v1::RevokeStationResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  auto revoked = access_.Revoke(request->station_id(), absl::Now());
  if (!revoked.ok()) return ToGrpc(revoked.status());
  if (auto s = accounts_.Audit(caller, "station_revoked", 0,
                               request->station_id());
      !s.ok()) {
    return ToGrpc(s);
  }
  response->set_station_id(request->station_id());
  *response->mutable_revoked_at() =
      google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
          absl::ToUnixMicros(revoked->revoked_at));
  response->set_streams_cut(revoked->streams_cut);
  return grpc::Status::OK;
}

grpc::Status ClinicService::StartSet(grpc::ServerContext* context,
                                     const v1::StartSetRequest* request,
                                     v1::ExerciseSet* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  auto set = bays_.StartSet(*request);
  if (!set.ok()) return ToGrpc(set.status());
  *response = *set;
  return ToGrpc(accounts_.Audit(
      caller, "set_started", set->patient_id(),
      absl::StrCat("set ", set->set_id(), " on ", set->station_id())));
}

grpc::Status ClinicService::ListScoringVersions(
    grpc::ServerContext* context, const v1::ListScoringVersionsRequest*,
    v1::ListScoringVersionsResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAnyStaff, &caller);
      !s.ok()) {
    return s;
  }
  auto versions = store_.ListScoringVersions();
  if (!versions.ok()) return ToGrpc(versions.status());
  const std::string current = bays_.scoring_version();
  bool listed = false;
  for (v1::ScoringVersion& v : *versions) {
    v.set_hub_scores_with_it(v.version() == current);
    listed |= v.hub_scores_with_it();
    *response->add_versions() = std::move(v);
  }
  // A hub started with new settings scores with them before any result is
  // stored: list it too, so that the answer says what the hub uses.
  if (!listed) {
    v1::ScoringVersion* v = response->add_versions();
    v->set_version(current);
    v->set_hub_scores_with_it(true);
  }
  return grpc::Status::OK;
}

grpc::Status ClinicService::Rescore(grpc::ServerContext* context,
                                    const v1::RescoreRequest* request,
                                    v1::RescoreResponse* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  std::vector<int64_t> set_ids;
  if (request->has_since()) {
    // Seconds past year 9999 would overflow the conversion to microseconds.
    using google::protobuf::util::TimeUtil;
    const google::protobuf::Timestamp& since = request->since();
    if (since.seconds() < TimeUtil::kTimestampMinSeconds ||
        since.seconds() > TimeUtil::kTimestampMaxSeconds || since.nanos() < 0 ||
        since.nanos() > 999'999'999) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "since must be a time between the years 1 and 9999");
    }
    auto sets = store_.SetsStartedSince(absl::FromUnixMicros(
        google::protobuf::util::TimeUtil::TimestampToMicroseconds(
            request->since())));
    if (!sets.ok()) return ToGrpc(sets.status());
    for (const v1::ExerciseSet& set : *sets) set_ids.push_back(set.set_id());
  } else if (request->set_id() > 0) {
    set_ids.push_back(request->set_id());
  } else {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "give set_id (> 0) or since");
  }
  if (auto s = accounts_.Audit(
          caller, "rescored", 0,
          request->has_since()
              ? absl::StrCat(set_ids.size(), " sets since ",
                             google::protobuf::util::TimeUtil::ToString(
                                 request->since()))
              : absl::StrCat("set ", request->set_id()));
      !s.ok()) {
    return ToGrpc(s);
  }
  for (int64_t id : set_ids) {
    auto rescored = bays_.Rescore(id);
    if (!rescored.ok()) return ToGrpc(rescored.status());
    *response->add_sets() = *rescored;
  }
  return grpc::Status::OK;
}

grpc::Status ClinicService::EndSet(grpc::ServerContext* context,
                                   const v1::EndSetRequest* request,
                                   v1::ExerciseSet* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  auto set = bays_.EndSet(*request);
  if (!set.ok()) return ToGrpc(set.status());
  *response = *set;
  return ToGrpc(accounts_.Audit(
      caller, "set_ended", set->patient_id(),
      absl::StrCat("set ", set->set_id(), " on ", set->station_id())));
}

namespace {

// One WatchClinic call. The live bus's notification may arrive after gRPC
// is done with the reactor, so the state it touches lives in a shared Watch.
class ClinicWatch;

// A WatchClinic call turned away before it starts.
class Refused : public grpc::ServerWriteReactor<v1::ClinicEvent> {
 public:
  explicit Refused(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

struct Watch {
  std::mutex mu;
  ClinicWatch* reactor = nullptr;  // null once gRPC is done with the call
  bool writing = false;
  bool finished = false;
  bool cancelled = false;
  bool need_snapshot = true;  // first thing written, and after a miss
};

class ClinicWatch : public grpc::ServerWriteReactor<v1::ClinicEvent> {
 public:
  // `session_live` says whether the watcher's session still stands: one
  // ended (signed out, account disabled, expired) ends the watch at its next
  // event.
  ClinicWatch(ingest::Bays& bays, live::LiveBus& bus, size_t queue,
              std::function<bool()> session_live)
      : bays_(bays),
        session_live_(std::move(session_live)),
        watch_(std::make_shared<Watch>()) {
    watch_->reactor = this;
    // Subscribe before the snapshot: an event may then appear in both, but
    // none is lost between them.
    subscription_ = bus.Subscribe(queue, [weak = std::weak_ptr<Watch>(watch_)] {
      if (auto w = weak.lock()) Pump(w);
    });
    Pump(watch_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(watch_->mu);
      watch_->writing = false;
      if (!ok) watch_->cancelled = true;
    }
    Pump(watch_);
  }

  void OnCancel() override {
    {
      std::lock_guard<std::mutex> lock(watch_->mu);
      watch_->cancelled = true;
    }
    Pump(watch_);
  }

  void OnDone() override {
    subscription_->Close();
    {
      std::lock_guard<std::mutex> lock(watch_->mu);
      watch_->reactor = nullptr;
    }
    delete this;
  }

  // Writes the next event if none is in flight, or finishes a cancelled call.
  static void Pump(const std::shared_ptr<Watch>& w) {
    ClinicWatch* reactor;
    bool snapshot = false;
    std::optional<grpc::Status> finish;
    {
      std::lock_guard<std::mutex> lock(w->mu);
      if (w->reactor == nullptr || w->finished || w->writing) return;
      reactor = w->reactor;
      if (w->cancelled) {
        w->finished = true;
        finish = grpc::Status::CANCELLED;
      } else if (!reactor->session_live_()) {
        w->finished = true;
        finish = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                              "the session has ended: sign in again");
      } else {
        snapshot = w->need_snapshot;
        w->need_snapshot = false;
        w->writing = true;  // claimed; released below if nothing to write
      }
    }
    if (finish) {
      reactor->Finish(*finish);
      return;
    }
    // Build the event outside the lock: a snapshot takes the bays' locks.
    v1::ClinicEvent& out = reactor->out_;
    out.Clear();
    bool have = true;
    if (snapshot) {
      *out.mutable_snapshot() = reactor->bays_.Snapshot();
    } else {
      live::Subscription::Item item;
      if (!reactor->subscription_->Next(&item)) {
        have = false;
      } else if (item.missed > 0) {
        out.mutable_missed()->set_count(item.missed);
        std::lock_guard<std::mutex> lock(w->mu);
        w->need_snapshot = true;
      } else {
        out = std::move(item.event);
      }
    }
    if (!have) {
      bool again;
      {
        std::lock_guard<std::mutex> lock(w->mu);
        w->writing = false;
        // An event may have been queued while we looked: look once more.
        again = reactor->subscription_->queued() > 0 || w->need_snapshot ||
                w->cancelled;
      }
      if (again) Pump(w);
      return;
    }
    if (!out.has_time()) {
      *out.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
    }
    reactor->StartWrite(&out);
  }

 private:
  ingest::Bays& bays_;
  const std::function<bool()> session_live_;
  std::shared_ptr<Watch> watch_;
  std::shared_ptr<live::Subscription> subscription_;
  v1::ClinicEvent out_;
};

}  // namespace

grpc::ServerWriteReactor<v1::ClinicEvent>* DashboardService::WatchClinic(
    grpc::CallbackServerContext* context, const v1::WatchClinicRequest*) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return new Refused(s);
  }
  return new ClinicWatch(
      bays_, bus_, subscriber_queue_,
      [&accounts = accounts_, session = caller.token_sha256] {
        return accounts.SessionLive(session);
      });
}

grpc::Status DashboardService::GetPatientProgress(
    grpc::ServerContext* context, const v1::GetPatientProgressRequest* request,
    v1::PatientProgress* response) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  auto progress =
      PatientProgressOf(store_, request->patient_id(), clock_(), time_zone_);
  if (!progress.ok()) return ToGrpc(progress.status());
  if (auto s =
          accounts_.Audit(caller, "progress_viewed", request->patient_id(), "");
      !s.ok()) {
    return ToGrpc(s);
  }
  *response = std::move(*progress);
  return grpc::Status::OK;
}

grpc::Status ReportsService::Export(
    grpc::ServerContext* context, const v1::ExportRequest* request,
    grpc::ServerWriter<v1::ReportChunk>* writer) {
  // A patient's report is a therapist's; the clinic summary (every
  // patient, stations) an admin's.
  const bool clinic = request->kind() == v1::REPORT_KIND_CLINIC;
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context,
                             clinic ? auth::kAdmin : auth::kTherapist, &caller);
      !s.ok()) {
    return s;
  }
  if (auto s = accounts_.Audit(
          caller, clinic ? "clinic_report_exported" : "report_exported",
          clinic ? 0 : request->patient_id(),
          clinic ? absl::StrCat(v1::ReportFormat_Name(request->format()), " ",
                                request->from(), " to ", request->to())
                 : v1::ReportFormat_Name(request->format()));
      !s.ok()) {
    return ToGrpc(s);
  }
  ExportEnvironment env;
  env.store = &store_;
  env.zone = time_zone_;
  env.now = clock_();
  env.cancelled = [context] { return context->IsCancelled(); };
  ReportWriter out(
      [writer](v1::ReportChunk& chunk) { return writer->Write(chunk); });
  return ToGrpc(ExportReport(*request, env, out));
}

namespace {
constexpr size_t kChunkBytes = 32 * 1024;
}  // namespace

grpc::Status MaintenanceService::Backup(
    grpc::ServerContext* context, const v1::BackupRequest*,
    grpc::ServerWriter<v1::BackupChunk>* writer) {
  auth::Caller caller;
  if (auto s = AuthorizeCall(accounts_, *context, auth::kAdmin, &caller);
      !s.ok()) {
    return s;
  }
  // Written beside the database first (same disk, so space is known to be
  // what the database needs), streamed, then removed.
  const absl::Time now = absl::Now();
  const std::string name = absl::StrCat(
      "stephub-backup-",
      absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()), ".db");
  const std::filesystem::path temp =
      std::filesystem::path(data_dir_) /
      absl::StrCat(".", name, ".", absl::ToUnixNanos(now), ".partial");
  auto remove_temp = absl::MakeCleanup([&] {
    std::error_code ec;
    std::filesystem::remove(temp, ec);
  });
  if (auto s = accounts_.Audit(caller, "backup_taken", 0, name); !s.ok()) {
    return ToGrpc(s);
  }
  if (auto s = store_.BackupTo(temp.string()); !s.ok()) return ToGrpc(s);
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(temp, ec);
  if (ec) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("backup file: ", ec.message()));
  }
  std::ifstream in(temp, std::ios::binary);
  v1::BackupChunk chunk;
  chunk.set_total_bytes(size);
  chunk.set_file_name(name);
  chunk.set_schema_version(static_cast<uint32_t>(store::SqliteSchemaVersion()));
  std::string buffer(kChunkBytes * 2, '\0');
  uint64_t sent = 0;
  do {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0 && sent > 0) break;
    chunk.set_data(buffer.data(), n);
    if (context->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
    sent += n;
    chunk.Clear();
  } while (in);
  if (sent != size) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("backup file: read ", sent, " of ", size, " bytes"));
  }
  return grpc::Status::OK;
}

}  // namespace stephub::api
