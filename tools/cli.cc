// The `stephub` staff CLI: patients, stations, sets, live watch, progress
// and reports over the hub's gRPC contract.
#include "tools/cli.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/password_prompt.h"
#include "common/staff_channel.h"
#include "common/tls.h"
#include "hub/store/store.h"
#include "stephub/v1/auth.grpc.pb.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "stephub/v1/dashboard.grpc.pb.h"
#include "stephub/v1/maintenance.grpc.pb.h"
#include "stephub/v1/reports.grpc.pb.h"
#include "tools/staff_session.h"
#include "tools/certs.h"
#include "tools/cli_args.h"
#include "tools/watch_board.h"

namespace stephub::cli {
namespace {

constexpr char kUsage[] =
    R"(usage: stephub [--hub HOST:PORT] [--ca_file FILE | --insecure-dev] COMMAND

commands:
  login USER                          sign in (asks for the password, or
                                      reads it from a pipe); the session is
                                      kept for this hub in
                                      ~/.config/stephub/session (0600)
  logout | whoami
  users add NAME --roles therapist|admin|therapist,admin [--display NAME]
  users list | users disable NAME | users enable NAME
  users password [NAME]               your own (asks the current one too),
                                      or, as an admin, anyone's
  audit [--patient ID] [--limit N] [--before AUDIT_ID]
                                      who did what to which patient's record
  patients add NAME [--ref REF]       register a patient; prints its id
  patients list                       list patients
  therapists add NAME | therapists list
  sessions PATIENT_ID                 the patient's visits (one per clinic day)
  session note SESSION_ID TEXT        the therapist's note on a visit
  stations                            list stations: online, last seen, backlog
  stations revoke ID                  a lost or stolen bay: refuse its
                                      certificates issued until now and cut
                                      its open streams (a new certificate,
                                      stephub certs station ID, is accepted)
  set start --station ID --patient ID --side left|right [--load TEXT] [--level N]
            [--therapist ID]
  set end (--station ID | --set ID)
  watch [--until-sets-ended N] [--lines | --board]
                                      every bay live: a board redrawn in
                                      place on a terminal, else (or with
                                      --lines) one event per line
  progress PATIENT_ID                 sets, sessions, weeks, trends, readiness
  rescore (--set ID | --since YYYY-MM-DD)
                                      score ended sets again with the hub's
                                      current scoring (old results are kept)
  scoring-versions                    every scoring version with stored
                                      results; * marks the hub's own
  backup FILE                         copy the clinic database while the hub
                                      runs (verified before it is named FILE)
  report patient PATIENT_ID --format csv|sets-csv|fhir|pdf|html
         [--from YYYY-MM-DD] [--to YYYY-MM-DD] [-o FILE]
                                      a patient's repetitions (csv), sets
                                      (sets-csv), FHIR R4 bundle (fhir),
                                      optionally of the days from-to; or the
                                      progress report for referrers (pdf,
                                      which needs -o, or html)
  report clinic --from YYYY-MM-DD --to YYYY-MM-DD --format pdf|html|csv
         [--review-after-weeks N] [-o FILE]
                                      the clinic summary of those days
                                      (patients, adherence, readiness, who
                                      is not improving after N weeks,
                                      default 4; station uptime and gaps);
                                      pdf needs -o
  report PATIENT_ID --format ...      the same as report patient
                                      Reports go to stdout without -o; FILE
                                      appears only once the report is whole

  certs init|hub|station ...          the clinic's certificates, offline
                                      (stephub certs --help)

The hub address defaults to $STEPHUB_HUB or 127.0.0.1:50051. The hub is
reached over TLS, trusting the clinic CA in --ca_file, else $STEPHUB_CA,
else stephub-data/tls/ca.crt; --insecure-dev for a hub run with it. Every
command but login and certs needs a signed-in session: from `stephub
login`, or a token in $STEPHUB_TOKEN.
)";

// A file written as FILE.partial and given its name only once whole: a FILE
// that exists is never one cut short. Removed unless kept.
class PartialFile {
 public:
  explicit PartialFile(const std::string& path)
      : path_(path),
        partial_(path + ".partial"),
        file_(partial_, std::ios::binary | std::ios::trunc) {}
  ~PartialFile() {
    if (kept_) return;
    file_.close();
    std::remove(partial_.c_str());
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  // An error naming the file when it cannot be written.
  absl::Status opened() const {
    if (file_.is_open()) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(partial_, ": cannot write"));
  }
  std::ostream& stream() { return file_; }
  const std::string& partial() const { return partial_; }
  absl::Status Close() {
    file_.close();
    if (!file_) {
      return absl::DataLossError(absl::StrCat(partial_, ": write failed"));
    }
    return absl::OkStatus();
  }
  // Gives it its name.
  absl::Status Keep() {
    if (std::rename(partial_.c_str(), path_.c_str()) != 0) {
      return absl::UnavailableError(
          absl::StrCat(path_, ": cannot rename ", partial_));
    }
    kept_ = true;
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const std::string partial_;
  std::ofstream file_;
  bool kept_ = false;
};

absl::StatusOr<int64_t> ParseId(const std::string& text, const char* what) {
  int64_t id;
  if (!absl::SimpleAtoi(text, &id) || id <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must be a positive number, not \"", text, "\""));
  }
  return id;
}

std::string Describe(const grpc::Status& s) {
  return absl::StrCat(s.error_message().empty() ? "error" : s.error_message(),
                      " (",
                      s.error_code() == grpc::StatusCode::UNAVAILABLE
                          ? "hub unreachable"
                          : "gRPC code " + std::to_string(s.error_code()),
                      ")");
}

absl::StatusOr<std::vector<v1::Role>> ParseRoles(const std::string& text) {
  std::vector<v1::Role> roles;
  for (absl::string_view role : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    if (role == "therapist") {
      roles.push_back(v1::ROLE_THERAPIST);
    } else if (role == "admin") {
      roles.push_back(v1::ROLE_ADMIN);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown role \"", role, "\": therapist, admin or therapist,admin"));
    }
  }
  if (roles.empty()) {
    return absl::InvalidArgumentError(
        "--roles therapist, admin or therapist,admin");
  }
  return roles;
}

std::string RolesText(const v1::StaffUser& user) {
  std::vector<std::string> names;
  for (int role : user.roles()) {
    names.push_back(role == v1::ROLE_ADMIN ? "admin" : "therapist");
  }
  return absl::StrJoin(names, "+");
}

std::string Clock(const google::protobuf::Timestamp& t) {
  const absl::Time time = absl::FromUnixSeconds(t.seconds());
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::LocalTimeZone());
}

const char* AdherenceText(v1::Adherence a) {
  switch (a) {
    case v1::ADHERENCE_BELOW_TARGET:
      return "below the 3-4 a week target";
    case v1::ADHERENCE_ON_TARGET:
      return "on target";
    case v1::ADHERENCE_ABOVE_TARGET:
      return "above the 3-4 a week target";
    case v1::ADHERENCE_IN_PROGRESS:
      return "this week, so far";
    default:
      return "";
  }
}

const char* Side(v1::StanceSide side) {
  return side == v1::STANCE_SIDE_RIGHT ? "right" : "left";
}

const char* VerdictText(v1::Verdict verdict) {
  switch (verdict) {
    case v1::VERDICT_CLEAN:
      return "clean";
    case v1::VERDICT_PELVIC_DROP:
      return "PELVIC DROP";
    case v1::VERDICT_PELVIC_HIKE:
      return "PELVIC HIKE";
    case v1::VERDICT_NOT_ASSESSED:
      return "pelvis not assessed";
    default:
      return "?";
  }
}

class Cli {
 public:
  Cli(std::string hub, std::shared_ptr<grpc::ChannelCredentials> credentials,
      std::string token, std::ostream& out, std::ostream& err)
      : out_(out), err_(err), hub_(std::move(hub)) {
    channel_ = CreateStaffChannel(hub_, credentials, token);
    auth_ = v1::Auth::NewStub(channel_);
    clinic_ = v1::Clinic::NewStub(channel_);
    dashboard_ = v1::Dashboard::NewStub(channel_);
    reports_ = v1::Reports::NewStub(channel_);
    maintenance_ = v1::Maintenance::NewStub(channel_);
  }

  int Fail(const std::string& message) {
    err_ << "stephub: " << message << "\n";
    return 1;
  }
  int Fail(const grpc::Status& s) {
    if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      return Fail(absl::StrCat(Describe(s), "; stephub login USER first"));
    }
    return Fail(Describe(s));
  }

  int Login(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.size() != 1) return Usage("login takes one USER");
    auto password =
        ReadPassword("password for " + args->positional[0] + ": ", false);
    if (!password.ok()) return Usage(std::string(password.status().message()));
    v1::LoginRequest req;
    req.set_username(args->positional[0]);
    req.set_password(*password);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    req.set_client(absl::StrCat("stephub CLI on ", host));
    v1::LoginResponse resp;
    grpc::ClientContext ctx;
    if (auto s = auth_->Login(&ctx, req, &resp); !s.ok()) return Fail(s);
    StaffSession session;
    session.hub = hub_;
    session.username = resp.user().username();
    session.token = resp.token();
    session.expires_at = absl::FromUnixSeconds(resp.expires_at().seconds());
    const std::string path = StaffSessionPath();
    if (auto s = SaveStaffSession(path, session); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    out_ << "signed in as " << session.username << " ("
         << RolesText(resp.user()) << ") until " << Clock(resp.expires_at())
         << "\n";
    return 0;
  }

  int Logout() {
    v1::LogoutResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status s = auth_->Logout(&ctx, {}, &resp);
    RemoveStaffSession(StaffSessionPath());
    if (!s.ok() && s.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
      return Fail(s);
    }
    out_ << "signed out\n";
    return 0;
  }

  int WhoAmI() {
    v1::StaffUser user;
    grpc::ClientContext ctx;
    if (auto s = auth_->WhoAmI(&ctx, {}, &user); !s.ok()) return Fail(s);
    out_ << user.username() << " (" << RolesText(user) << ")\n";
    return 0;
  }

  int Users(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {"roles", "display"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    const std::vector<std::string>& pos = args->positional;
    if (pos.empty())
      return Usage("users: add, list, disable, enable or password?");
    const std::string& verb = pos[0];
    if (verb == "list" && pos.size() == 1) {
      v1::ListUsersResponse resp;
      grpc::ClientContext ctx;
      if (auto s = auth_->ListUsers(&ctx, {}, &resp); !s.ok()) return Fail(s);
      for (const v1::StaffUser& u : resp.users()) {
        out_ << absl::StrFormat("%-20s %-16s %s%s\n", u.username(),
                                RolesText(u), u.display_name(),
                                u.disabled() ? "  (disabled)" : "");
      }
      return 0;
    }
    if (verb == "add" && pos.size() == 2) {
      auto roles = ParseRoles(args->options["roles"]);
      if (!roles.ok()) return Usage(std::string(roles.status().message()));
      auto password = ReadPassword(
          "password for " + pos[1] + " (at least 10 characters): ", true);
      if (!password.ok()) {
        return Usage(std::string(password.status().message()));
      }
      v1::AddUserRequest req;
      req.set_username(pos[1]);
      req.set_display_name(args->options["display"]);
      for (v1::Role r : *roles) req.add_roles(r);
      req.set_password(*password);
      v1::StaffUser user;
      grpc::ClientContext ctx;
      if (auto s = auth_->AddUser(&ctx, req, &user); !s.ok()) return Fail(s);
      out_ << "added " << user.username() << " (" << RolesText(user) << ")\n";
      return 0;
    }
    if ((verb == "disable" || verb == "enable") && pos.size() == 2) {
      v1::SetUserDisabledRequest req;
      req.set_username(pos[1]);
      req.set_disabled(verb == "disable");
      v1::StaffUser user;
      grpc::ClientContext ctx;
      if (auto s = auth_->SetUserDisabled(&ctx, req, &user); !s.ok()) {
        return Fail(s);
      }
      out_ << user.username() << (user.disabled() ? " disabled" : " enabled")
           << "\n";
      return 0;
    }
    if (verb == "password" && pos.size() <= 2) {
      v1::ChangePasswordRequest req;
      if (pos.size() == 2) req.set_username(pos[1]);
      if (pos.size() == 1) {
        auto current = ReadPassword("current password: ", false);
        if (!current.ok())
          return Usage(std::string(current.status().message()));
        req.set_current_password(*current);
      }
      auto password =
          ReadPassword("new password (at least 10 characters): ", true);
      if (!password.ok()) {
        return Usage(std::string(password.status().message()));
      }
      req.set_new_password(*password);
      v1::ChangePasswordResponse resp;
      grpc::ClientContext ctx;
      if (auto s = auth_->ChangePassword(&ctx, req, &resp); !s.ok()) {
        return Fail(s);
      }
      out_ << "password changed; that account's sessions have ended\n";
      return 0;
    }
    return Usage(
        "users add NAME --roles R | list | disable NAME | enable "
        "NAME | password [NAME]");
  }

  int Audit(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {"patient", "limit", "before"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (!args->positional.empty()) return Usage("audit takes only options");
    v1::ListAuditRequest req;
    int64_t patient = 0, before = 0;
    int limit = 0;
    if ((args->options.count("patient") &&
         !absl::SimpleAtoi(args->options["patient"], &patient)) ||
        (args->options.count("before") &&
         !absl::SimpleAtoi(args->options["before"], &before)) ||
        (args->options.count("limit") &&
         !absl::SimpleAtoi(args->options["limit"], &limit))) {
      return Usage("--patient, --limit and --before take numbers");
    }
    req.set_patient_id(patient);
    req.set_before_id(before);
    req.set_limit(limit);
    v1::ListAuditResponse resp;
    grpc::ClientContext ctx;
    if (auto s = auth_->ListAudit(&ctx, req, &resp); !s.ok()) return Fail(s);
    for (const v1::AuditEntry& e : resp.entries()) {
      out_ << absl::StrFormat(
          "%6d  %s  %-16s %-22s %s%s\n", e.audit_id(), Clock(e.time()),
          e.username(), e.action(),
          e.patient_id() ? absl::StrCat("patient ", e.patient_id(), "  ") : "",
          e.detail());
    }
    return 0;
  }
  int Usage(const std::string& message) {
    err_ << "stephub: " << message << "\n" << kUsage;
    return 2;
  }

  int Patients(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {"ref"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.empty()) return Usage("patients: add or list?");
    const std::string& verb = args->positional[0];
    if (verb == "add") {
      if (args->positional.size() != 2) {
        return Usage("patients add takes one NAME (quote it if it has spaces)");
      }
      v1::CreatePatientRequest req;
      req.set_display_name(args->positional[1]);
      req.set_external_ref(args->options["ref"]);
      v1::Patient patient;
      grpc::ClientContext ctx;
      auto s = clinic_->CreatePatient(&ctx, req, &patient);
      if (!s.ok()) return Fail(s);
      out_ << "created patient " << patient.patient_id() << " ("
           << patient.display_name() << ")\n";
      return 0;
    }
    if (verb == "list") {
      v1::ListPatientsResponse resp;
      grpc::ClientContext ctx;
      auto s = clinic_->ListPatients(&ctx, {}, &resp);
      if (!s.ok()) return Fail(s);
      for (const auto& p : resp.patients()) {
        out_ << absl::StrFormat("%6d  %-30s %s\n", p.patient_id(),
                                p.display_name(), p.external_ref());
      }
      return 0;
    }
    return Usage(absl::StrCat("patients: unknown verb \"", verb, "\""));
  }

  int Sessions(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.size() != 1) return Usage("sessions PATIENT_ID");
    auto id = ParseId(args->positional[0], "PATIENT_ID");
    if (!id.ok()) return Usage(std::string(id.status().message()));
    v1::ListSessionsRequest req;
    req.set_patient_id(*id);
    v1::ListSessionsResponse resp;
    grpc::ClientContext ctx;
    auto s = clinic_->ListSessions(&ctx, req, &resp);
    if (!s.ok()) return Fail(s);
    if (resp.sessions().empty()) out_ << "no sessions yet\n";
    for (const auto& session : resp.sessions()) {
      out_ << absl::StrFormat(
          "%6d  %s  sets %s%s\n", session.session_id(), session.day(),
          absl::StrJoin(session.set_ids(), ","),
          session.note().empty() ? ""
                                 : absl::StrCat("  note: ", session.note()));
    }
    return 0;
  }

  int Session(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.size() != 3 || args->positional[0] != "note") {
      return Usage("session note SESSION_ID TEXT (quote the text)");
    }
    auto id = ParseId(args->positional[1], "SESSION_ID");
    if (!id.ok()) return Usage(std::string(id.status().message()));
    v1::SetSessionNoteRequest req;
    req.set_session_id(*id);
    req.set_note(args->positional[2]);
    v1::Session session;
    grpc::ClientContext ctx;
    auto s = clinic_->SetSessionNote(&ctx, req, &session);
    if (!s.ok()) return Fail(s);
    out_ << "session " << session.session_id() << " (" << session.day()
         << "): note saved\n";
    return 0;
  }

  int Therapists(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.empty()) return Usage("therapists: add or list?");
    const std::string& verb = args->positional[0];
    if (verb == "add") {
      if (args->positional.size() != 2) {
        return Usage(
            "therapists add takes one NAME (quote it if it has spaces)");
      }
      v1::CreateTherapistRequest req;
      req.set_display_name(args->positional[1]);
      v1::Therapist therapist;
      grpc::ClientContext ctx;
      auto s = clinic_->CreateTherapist(&ctx, req, &therapist);
      if (!s.ok()) return Fail(s);
      out_ << "created therapist " << therapist.therapist_id() << " ("
           << therapist.display_name() << ")\n";
      return 0;
    }
    if (verb == "list") {
      v1::ListTherapistsResponse resp;
      grpc::ClientContext ctx;
      auto s = clinic_->ListTherapists(&ctx, {}, &resp);
      if (!s.ok()) return Fail(s);
      for (const auto& t : resp.therapists()) {
        out_ << absl::StrFormat("%6d  %s\n", t.therapist_id(),
                                t.display_name());
      }
      return 0;
    }
    return Usage(absl::StrCat("therapists: unknown verb \"", verb, "\""));
  }

  int ScoringVersions(const std::vector<std::string>& words) {
    if (!words.empty()) return Usage("scoring-versions takes no arguments");
    v1::ListScoringVersionsResponse resp;
    grpc::ClientContext ctx;
    auto s = clinic_->ListScoringVersions(&ctx, {}, &resp);
    if (!s.ok()) return Fail(s);
    for (const v1::ScoringVersion& v : resp.versions()) {
      out_ << absl::StrFormat(
          "%s %-20s %7d repetitions  current for %d sets  %s\n",
          v.hub_scores_with_it() ? "*" : " ",
          v.has_first_used() ? Clock(v.first_used()) : "not used yet",
          v.repetitions(), v.current_sets(), v.version());
    }
    return 0;
  }

  int Stations(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (!args->positional.empty()) {
      if (args->positional[0] != "revoke" || args->positional.size() != 2) {
        return Usage("stations, or stations revoke ID");
      }
      v1::RevokeStationRequest req;
      req.set_station_id(args->positional[1]);
      v1::RevokeStationResponse resp;
      grpc::ClientContext ctx;
      auto s = clinic_->RevokeStation(&ctx, req, &resp);
      if (!s.ok()) return Fail(Describe(s));
      out_ << "station " << resp.station_id() << " revoked at "
           << Clock(resp.revoked_at()) << ": its certificates issued until "
           << "then are refused; " << resp.streams_cut()
           << " open stream(s) cut. A replacement Pi needs a new "
           << "certificate: stephub certs station " << resp.station_id()
           << " --force\n";
      return 0;
    }
    v1::ListStationsResponse resp;
    grpc::ClientContext ctx;
    auto s = clinic_->ListStations(&ctx, {}, &resp);
    if (!s.ok()) return Fail(s);
    for (const auto& st : resp.stations()) {
      out_ << absl::StrFormat(
          "%-12s %-8s last seen %s  stored seq %d  backlog %d  set %s%s\n",
          st.station_id(), st.online() ? "online" : "offline",
          st.has_last_seen() ? Clock(st.last_seen()) : "never",
          st.durable_seq(), st.backlog_batches(),
          st.active_set_id() ? std::to_string(st.active_set_id()) : "-",
          st.has_revoked_at()
              ? absl::StrCat("  REVOKED ", Clock(st.revoked_at()),
                             " (older certificates refused)")
              : "");
    }
    return 0;
  }

  int Set(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {"station", "patient", "side", "load", "level",
                                  "set", "exercise", "therapist"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.size() != 1) return Usage("set: start or end?");
    auto& o = args->options;
    v1::ExerciseSet set;
    grpc::ClientContext ctx;
    if (args->positional[0] == "start") {
      v1::StartSetRequest req;
      if (o["station"].empty()) return Usage("set start needs --station");
      req.set_station_id(o["station"]);
      auto patient = ParseId(o["patient"], "--patient");
      if (!patient.ok()) return Usage(std::string(patient.status().message()));
      req.set_patient_id(*patient);
      if (o["side"] == "left") {
        req.set_stance_side(v1::STANCE_SIDE_LEFT);
      } else if (o["side"] == "right") {
        req.set_stance_side(v1::STANCE_SIDE_RIGHT);
      } else {
        return Usage("set start needs --side left or --side right");
      }
      req.set_load(o["load"]);
      req.set_exercise(o["exercise"]);
      if (!o["therapist"].empty()) {
        auto therapist = ParseId(o["therapist"], "--therapist");
        if (!therapist.ok()) {
          return Usage(std::string(therapist.status().message()));
        }
        req.set_therapist_id(*therapist);
      }
      if (!o["level"].empty()) {
        uint32_t level;
        if (!absl::SimpleAtoi(o["level"], &level)) {
          return Usage("--level must be 1, 2 or 3");
        }
        req.set_level(level);
      }
      auto s = clinic_->StartSet(&ctx, req, &set);
      if (!s.ok()) return Fail(s);
      out_ << "started set " << set.set_id() << " on " << set.station_id()
           << " for " << set.patient_display_name() << "\n";
      return 0;
    }
    if (args->positional[0] == "end") {
      v1::EndSetRequest req;
      if (!o["set"].empty()) {
        auto id = ParseId(o["set"], "--set");
        if (!id.ok()) return Usage(std::string(id.status().message()));
        req.set_set_id(*id);
      } else if (!o["station"].empty()) {
        req.set_station_id(o["station"]);
      } else {
        return Usage("set end needs --station or --set");
      }
      auto s = clinic_->EndSet(&ctx, req, &set);
      if (!s.ok()) return Fail(s);
      out_ << "ended set " << set.set_id() << " on " << set.station_id()
           << "\n";
      return 0;
    }
    return Usage("set: start or end?");
  }

  int Watch(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {"until-sets-ended"}, {"lines", "board"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    int until_ended = 0;
    if (auto it = args->options.find("until-sets-ended");
        it != args->options.end() &&
        (!absl::SimpleAtoi(it->second, &until_ended) || until_ended < 1)) {
      return Usage("--until-sets-ended must be a positive number");
    }
    // A board redrawn in place on a terminal; lines for pipes and logs.
    const bool board = args->options.count("board") > 0 ||
                       (args->options.count("lines") == 0 &&
                        &out_ == &std::cout && isatty(STDOUT_FILENO));
    if (board) return WatchBoardView(until_ended);
    grpc::ClientContext ctx;
    auto reader = dashboard_->WatchClinic(&ctx, {});
    v1::ClinicEvent event;
    int ended = 0;
    std::map<int64_t, std::string> patient_of_set;
    while (reader->Read(&event)) {
      const std::string time = Clock(event.time());
      if (event.has_snapshot()) {
        for (const auto& set : event.snapshot().active_sets()) {
          patient_of_set[set.set_id()] = set.patient_display_name();
        }
        out_ << time << " watching " << event.snapshot().stations_size()
             << " stations, " << event.snapshot().active_sets_size()
             << " sets running" << std::endl;
      } else if (event.has_station()) {
        out_ << time << " " << event.station().station_id() << " "
             << (event.station().online() ? "online" : "OFFLINE") << std::endl;
      } else if (event.has_set_started()) {
        const auto& set = event.set_started();
        patient_of_set[set.set_id()] = set.patient_display_name();
        out_ << time << " " << set.station_id() << " set " << set.set_id()
             << " started: " << set.patient_display_name() << ", "
             << Side(set.stance_side()) << " stance, " << set.load()
             << std::endl;
      } else if (event.has_set_ended()) {
        const auto& set = event.set_ended();
        out_ << time << " " << set.station_id() << " set " << set.set_id()
             << " ended" << std::endl;
        if (until_ended > 0 && ++ended >= until_ended) {
          ctx.TryCancel();
          break;
        }
      } else if (event.has_repetition()) {
        const auto& rep = event.repetition();
        out_ << time << " "
             << absl::StrFormat(
                    "%-8s %-16s rep %2d  pelvic drop %+5.1f deg  %s",
                    rep.station_id(), patient_of_set[rep.set_id()],
                    rep.number(), rep.peak_pelvic_drop_deg(),
                    VerdictText(rep.verdict()))
             << std::endl;
      } else if (event.has_missed()) {
        out_ << time << " (missed " << event.missed().count()
             << " events; resynchronising)" << std::endl;
      }
    }
    auto s = reader->Finish();
    if (until_ended > 0 && ended >= until_ended) return 0;
    if (!s.ok()) return Fail(s);
    return 0;
  }

  // `until_ended`: stop after that many sets end (0: never).
  int WatchBoardView(int until_ended) {
    int width = 0;
    winsize size{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0) width = size.ws_col;
    grpc::ClientContext ctx;
    auto reader = dashboard_->WatchClinic(&ctx, {});
    v1::ClinicEvent event;
    WatchBoard view;
    int ended = 0;
    absl::Time drawn = absl::InfinitePast();
    while (reader->Read(&event)) {
      view.Apply(event);
      ended += event.has_set_ended();
      const absl::Time now = absl::Now();
      // Traces come ten times a second per bay: redraw at most five times
      // a second for them, at once for anything else.
      if (!event.has_pelvis_trace() || now - drawn > absl::Milliseconds(200)) {
        out_ << "\x1b[H\x1b[J" << view.Render(now, absl::LocalTimeZone(), width)
             << std::flush;
        drawn = now;
      }
      if (until_ended > 0 && ended >= until_ended) {
        ctx.TryCancel();
        break;
      }
    }
    auto s = reader->Finish();
    if (until_ended > 0 && ended >= until_ended) return 0;
    if (!s.ok()) return Fail(s);
    return 0;
  }

  int Progress(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.size() != 1) return Usage("progress PATIENT_ID");
    auto id = ParseId(args->positional[0], "PATIENT_ID");
    if (!id.ok()) return Usage(std::string(id.status().message()));
    v1::GetPatientProgressRequest req;
    req.set_patient_id(*id);
    v1::PatientProgress progress;
    grpc::ClientContext ctx;
    auto s = dashboard_->GetPatientProgress(&ctx, req, &progress);
    if (!s.ok()) return Fail(s);
    out_ << "Patient " << progress.patient().patient_id() << ": "
         << progress.patient().display_name() << "\n";
    if (progress.sets().empty()) out_ << "  no sets yet\n";
    for (const auto& sum : progress.sets()) {
      const auto& set = sum.set();
      out_ << absl::StrFormat(
          "  set %d  %s  %s  %s stance  %s  reps %d  clean %d (%.0f%%)  "
          "mean drop %+.1f deg  worst %+.1f deg%s\n",
          set.set_id(), Clock(set.started_at()), set.station_id(),
          Side(set.stance_side()), set.load(), sum.repetitions(),
          sum.clean_repetitions(), sum.clean_percent(),
          sum.mean_pelvic_drop_deg(), sum.worst_pelvic_drop_deg(),
          sum.repetitions() > 0 && sum.clean_repetitions() < sum.repetitions()
              ? "  << Trendelenburg compensation: keep the load"
              : (sum.repetitions() > 0 ? "  (every rep clean)" : ""));
    }
    if (progress.sessions().empty()) return 0;
    out_ << "Programme: " << progress.horizon() << " (days in "
         << progress.time_zone() << ")\n";
    for (const auto& week : progress.weeks()) {
      out_ << absl::StrFormat(
          "  week of %s  %d session%s  %s%s\n", week.monday(), week.sessions(),
          week.sessions() == 1 ? "" : "s", AdherenceText(week.adherence()),
          week.sessions_too_soon() > 0
              ? absl::StrFormat("  (%d less than 24 h after the "
                                "previous one)",
                                week.sessions_too_soon())
              : "");
    }
    for (const auto& side : progress.sides()) {
      out_ << Side(side.side()) << " stance:\n";
      const auto& trend = side.pelvic_drop_trend();
      if (trend.has_slope_per_week()) {
        out_ << absl::StrFormat(
            "  mean pelvic drop %+.2f deg/week%s over %d weeks; clean share "
            "%+.1f points/week\n",
            trend.slope_per_week(),
            trend.has_slope_stderr()
                ? absl::StrFormat(" (+/- %.2f)", trend.slope_stderr())
                : "",
            trend.weeks(), side.clean_trend().slope_per_week());
      }
      const auto& r = side.readiness();
      out_ << "  " << (r.ready() ? "READY to progress: " : "not ready: ")
           << r.reason() << "\n  next: " << r.next_step() << "\n";
    }
    if (progress.has_asymmetry()) {
      const auto& a = progress.asymmetry();
      out_ << absl::StrFormat(
          "Asymmetry: mean drop left %+.1f deg, right %+.1f deg (left - right "
          "%+.1f deg); clean left %.0f%%, right %.0f%%\n",
          a.left_mean_pelvic_drop_deg(), a.right_mean_pelvic_drop_deg(),
          a.pelvic_drop_difference_deg(), a.left_clean_percent(),
          a.right_clean_percent());
    }
    return 0;
  }

  int Rescore(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {"set", "since"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    auto& o = args->options;
    v1::RescoreRequest req;
    if (!o["set"].empty() && o["since"].empty()) {
      auto id = ParseId(o["set"], "--set");
      if (!id.ok()) return Usage(std::string(id.status().message()));
      req.set_set_id(*id);
    } else if (!o["since"].empty() && o["set"].empty()) {
      absl::CivilDay day;
      if (!absl::ParseCivilTime(o["since"], &day)) {
        return Usage(absl::StrCat("--since \"", o["since"],
                                  "\" is not a date (YYYY-MM-DD)"));
      }
      // Midnight where the command runs: the staff's own day.
      *req.mutable_since() =
          google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
              absl::ToUnixMicros(absl::FromCivil(day, absl::LocalTimeZone())));
    } else {
      return Usage("rescore needs --set ID or --since YYYY-MM-DD");
    }
    v1::RescoreResponse resp;
    grpc::ClientContext ctx;
    auto s = clinic_->Rescore(&ctx, req, &resp);
    if (!s.ok()) return Fail(s);
    if (resp.sets().empty()) out_ << "no sets to re-score\n";
    for (const auto& r : resp.sets()) {
      if (!r.skipped().empty()) {
        out_ << "set " << r.set_id() << ": skipped, " << r.skipped() << "\n";
        continue;
      }
      out_ << absl::StrFormat(
          "set %d: %s %d reps, %d clean -> %s %d reps, %d clean\n", r.set_id(),
          r.old_scoring_version(), r.old_repetitions(),
          r.old_clean_repetitions(), r.new_scoring_version(),
          r.new_repetitions(), r.new_clean_repetitions());
    }
    return 0;
  }

  int Backup(const std::vector<std::string>& words) {
    auto args = ParseArgs(words, {});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    if (args->positional.size() != 1) return Usage("backup FILE");
    const std::string path = args->positional[0];
    // Checked before it takes the name: a FILE that exists is a whole,
    // verified backup.
    PartialFile file(path);
    if (auto s = file.opened(); !s.ok()) return Fail(std::string(s.message()));
    grpc::ClientContext ctx;
    auto reader = maintenance_->Backup(&ctx, v1::BackupRequest{});
    v1::BackupChunk chunk;
    uint64_t total = 0, received = 0;
    bool first = true;
    while (reader->Read(&chunk)) {
      if (first) total = chunk.total_bytes();
      first = false;
      file.stream().write(chunk.data().data(),
                          static_cast<std::streamsize>(chunk.data().size()));
      received += chunk.data().size();
    }
    auto s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (auto c = file.Close(); !c.ok()) return Fail(std::string(c.message()));
    if (received != total) {
      return Fail(absl::StrCat("backup cut short: ", received, " of ", total,
                               " bytes"));
    }
    auto info = store::VerifyClinicDatabase(file.partial());
    if (!info.ok()) return Fail(std::string(info.status().message()));
    if (auto k = file.Keep(); !k.ok()) return Fail(std::string(k.message()));
    out_ << absl::StrFormat(
        "backup %s: %d bytes, schema %d, integrity ok; %d patients, %d sets, "
        "%d repetitions, %d sample batches\n",
        path, received, info->schema_version, info->patients, info->sets,
        info->repetitions, info->sample_batches);
    return 0;
  }

  // The formats `report --format` takes, by the word for them.
  static std::optional<v1::ReportFormat> ReportFormatNamed(
      const std::string& word) {
    static const auto* const kFormats =
        new std::map<std::string, v1::ReportFormat>{
            {"csv", v1::REPORT_FORMAT_CSV},
            {"sets-csv", v1::REPORT_FORMAT_SETS_CSV},
            {"fhir", v1::REPORT_FORMAT_FHIR},
            {"pdf", v1::REPORT_FORMAT_PDF},
            {"html", v1::REPORT_FORMAT_HTML}};
    const auto it = kFormats->find(word);
    if (it == kFormats->end()) return std::nullopt;
    return it->second;
  }

  // report patient ID ... | report clinic ... | report ID (the form from
  // before clinic summaries, which tools/demo.sh and scripts use).
  int Report(const std::vector<std::string>& words) {
    auto args =
        ParseArgs(words, {"format", "o", "from", "to", "review-after-weeks"});
    if (!args.ok()) return Usage(std::string(args.status().message()));
    std::map<std::string, std::string>& o = args->options;
    std::vector<std::string>& pos = args->positional;
    v1::ExportRequest req;
    const std::string format = o["format"];
    if (!pos.empty() && pos[0] == "clinic") {
      if (pos.size() != 1) {
        return Usage("report clinic takes no PATIENT_ID: --from and --to");
      }
      if (o["from"].empty() || o["to"].empty()) {
        return Usage("report clinic needs --from YYYY-MM-DD --to YYYY-MM-DD");
      }
      if (format == "fhir" || format == "sets-csv") {
        return Usage(absl::StrCat(
            "report clinic --format ", format,
            " is not a clinic report: FHIR bundles and sets CSVs describe one "
            "patient (report patient PATIENT_ID); the clinic summary comes as "
            "pdf, html or csv"));
      }
      req.set_kind(v1::REPORT_KIND_CLINIC);
      const auto named = ReportFormatNamed(format);
      if (!named) {
        return Usage(absl::StrCat(
            "report clinic --format must be pdf, html or csv (got \"", format,
            "\")"));
      }
      req.set_format(*named);
      if (!o["review-after-weeks"].empty()) {
        uint32_t weeks;
        if (!absl::SimpleAtoi(o["review-after-weeks"], &weeks) || weeks < 1 ||
            weeks > 52) {
          return Usage("--review-after-weeks must be a number of weeks, 1-52");
        }
        req.set_review_after_weeks(weeks);
      }
    } else {
      if (!pos.empty() && pos[0] == "patient") pos.erase(pos.begin());
      if (pos.size() != 1) {
        return Usage(
            "report patient PATIENT_ID --format csv|sets-csv|fhir|pdf|html");
      }
      auto id = ParseId(pos[0], "PATIENT_ID");
      if (!id.ok()) return Usage(std::string(id.status().message()));
      if (!o["review-after-weeks"].empty()) {
        return Usage("--review-after-weeks belongs to report clinic");
      }
      req.set_kind(v1::REPORT_KIND_PATIENT);
      req.set_patient_id(*id);
      const auto named = ReportFormatNamed(format);
      if (!named) {
        return Usage(absl::StrCat(
            "report patient --format must be csv, sets-csv, fhir, pdf or html "
            "(got \"",
            format, "\")"));
      }
      req.set_format(*named);
    }
    // PDF bytes are no use on a terminal.
    if (format == "pdf" && o["o"].empty()) {
      return Usage("report --format pdf needs -o FILE");
    }
    // The hub checks the days too; checking here gives a usage message.
    for (const char* name : {"from", "to"}) {
      absl::CivilDay day;
      if (!o[name].empty() &&
          (o[name].size() != 10 || !absl::ParseCivilTime(o[name], &day))) {
        return Usage(absl::StrCat(
            "--", name, " must be a day YYYY-MM-DD, not \"", o[name], "\""));
      }
    }
    req.set_from(o["from"]);
    req.set_to(o["to"]);

    // Written aside and renamed once whole, as backup does: a FILE that
    // exists is a complete report, never one cut short by the hub.
    const std::string path = o["o"];
    std::optional<PartialFile> file;
    if (!path.empty()) {
      file.emplace(path);
      if (auto s = file->opened(); !s.ok()) {
        return Fail(std::string(s.message()));
      }
    }
    std::ostream& sink = file ? file->stream() : out_;
    grpc::ClientContext ctx;
    auto reader = reports_->Export(&ctx, req);
    v1::ReportChunk chunk;
    size_t bytes = 0;
    while (reader->Read(&chunk)) {
      sink << chunk.data();
      bytes += chunk.data().size();
    }
    auto s = reader->Finish();
    if (!s.ok()) return Fail(s);
    if (!file) return 0;
    if (auto c = file->Close(); !c.ok()) return Fail(std::string(c.message()));
    if (auto k = file->Keep(); !k.ok()) return Fail(std::string(k.message()));
    err_ << "wrote " << bytes << " bytes to " << path << "\n";
    return 0;
  }

 private:
  std::ostream& out_;
  std::ostream& err_;
  const std::string hub_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Auth::Stub> auth_;
  std::unique_ptr<v1::Clinic::Stub> clinic_;
  std::unique_ptr<v1::Dashboard::Stub> dashboard_;
  std::unique_ptr<v1::Reports::Stub> reports_;
  std::unique_ptr<v1::Maintenance::Stub> maintenance_;
};

}  // namespace

int Run(const std::vector<std::string>& argv, std::ostream& out,
        std::ostream& err) {
  std::string hub = std::getenv("STEPHUB_HUB") ? std::getenv("STEPHUB_HUB")
                                               : "127.0.0.1:50051";
  std::string ca_file =
      std::getenv("STEPHUB_CA") ? std::getenv("STEPHUB_CA") : "";
  bool insecure_dev = false;
  size_t i = 0;
  while (i < argv.size() && argv[i].rfind("--", 0) == 0) {
    if (argv[i] == "--help" || argv[i] == "-h") {
      out << kUsage;
      return 0;
    }
    if (argv[i] == "--hub" && i + 1 < argv.size()) {
      hub = argv[i + 1];
      i += 2;
    } else if (argv[i].rfind("--hub=", 0) == 0) {
      hub = argv[i].substr(6);
      ++i;
    } else if ((argv[i] == "--ca_file" || argv[i] == "--ca-file") &&
               i + 1 < argv.size()) {
      ca_file = argv[i + 1];
      i += 2;
    } else if (argv[i].rfind("--ca_file=", 0) == 0 ||
               argv[i].rfind("--ca-file=", 0) == 0) {
      ca_file = argv[i].substr(10);
      ++i;
    } else if (argv[i] == "--insecure-dev" || argv[i] == "--insecure_dev") {
      insecure_dev = true;
      ++i;
    } else {
      err << "stephub: unknown option " << argv[i] << "\n" << kUsage;
      return 2;
    }
  }
  if (i >= argv.size()) {
    err << kUsage;
    return 2;
  }
  const std::string command = argv[i];
  const std::vector<std::string> rest(argv.begin() + i + 1, argv.end());
  if (command == "help") {
    out << kUsage;
    return 0;
  }
  if (command == "certs") return RunCerts(rest, out, err);
  tls::Pems pems;
  if (!insecure_dev) {
    auto loaded = tls::LoadFiles(
        {ca_file.empty() ? absl::StrCat(kDefaultCertsDir, "/ca.crt") : ca_file,
         "", ""},
        "give the clinic CA's certificate with --ca_file FILE or STEPHUB_CA "
        "(stephub certs init makes it), or --insecure-dev for a hub run "
        "with --insecure-dev");
    if (!loaded.ok()) {
      err << "stephub: " << loaded.status().message() << "\n";
      return 2;
    }
    pems = *std::move(loaded);
  }
  // The session saved by `stephub login` for this hub, unless a token is
  // given outright (scripts, tests).
  std::string token;
  if (const char* t = std::getenv("STEPHUB_TOKEN"); t != nullptr && *t) {
    token = t;
  } else if (auto saved =
                 LoadStaffSession(StaffSessionPath(), hub, absl::Now())) {
    token = saved->token;
  }
  Cli cli(hub, tls::ChannelCredentials(pems, insecure_dev),
          command == "login" ? "" : token, out, err);
  if (command == "login") return cli.Login(rest);
  if (command == "logout") return cli.Logout();
  if (command == "whoami") return cli.WhoAmI();
  if (command == "users") return cli.Users(rest);
  if (command == "audit") return cli.Audit(rest);
  if (command == "patients") return cli.Patients(rest);
  if (command == "stations") return cli.Stations(rest);
  if (command == "therapists") return cli.Therapists(rest);
  if (command == "sessions") return cli.Sessions(rest);
  if (command == "session") return cli.Session(rest);
  if (command == "set") return cli.Set(rest);
  if (command == "watch") return cli.Watch(rest);
  if (command == "progress") return cli.Progress(rest);
  if (command == "report") return cli.Report(rest);
  if (command == "rescore") return cli.Rescore(rest);
  if (command == "backup") return cli.Backup(rest);
  if (command == "scoring-versions") return cli.ScoringVersions(rest);
  return cli.Usage(absl::StrCat("unknown command \"", command, "\""));
}

}  // namespace stephub::cli
