// Wires the hub together; see hub_server.h.
#include "hub/api/hub_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/tls.h"
#include "hub/api/auth_service.h"
#include "hub/api/folding_backlog.h"
#include "hub/api/services.h"
#include "hub/ingest/bays.h"
#include "hub/ingest/station_access.h"
#include "hub/ingest/station_link_service.h"
#include "hub/live/live_bus.h"
#include "hub/store/store.h"
#include "hub/web/web_server.h"

namespace stephub::api {
namespace {

// Folds each station's batches into sample blocks once they are
// `fold_after` old, in the background: every 30 s, a few blocks at a time
// so that stopping never waits long.
class SampleFolder {
 public:
  SampleFolder(store::ClinicStore& store, absl::Duration fold_after)
      : store_(store), fold_after_(fold_after), thread_([this] { Run(); }) {}
  ~SampleFolder() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  static constexpr int kBlocksAtOnce = 10;
  static constexpr int kFoldingNice = 10;
  // A folder with minutes due this long without a pass that ran out of
  // them is behind: in steady state it runs out every 30 s.
  static constexpr absl::Duration kToleratedBacklog = absl::Minutes(5);

  // For the backlog: a clock that a time step cannot make look behind.
  static absl::Time MonotonicNow() {
    return absl::UnixEpoch() +
           absl::FromChrono(
               std::chrono::steady_clock::now().time_since_epoch());
  }

  void Run() {
    pthread_setname_np(pthread_self(), "stephub-fold");
    // Folding is deferrable and costs a good part of what ingest does per
    // station (on the bench machine, per station-minute: 26 ms to encode
    // and read back a block, 24 ms of the writer's with 100 stations
    // interleaved): at a lower priority it takes what live stations leave
    // and catches up when the clinic is quieter, instead of making
    // acknowledgements late. (Linux: a thread's own nice value.)
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kFoldingNice);
    std::string last_failure;
    for (;;) {
      for (;;) {
        auto folded =
            store_.CompactSamples(absl::Now() - fold_after_, kBlocksAtOnce);
        if (!folded.ok()) {
          // Batches that cannot be folded stay raw and readable; say so
          // once, not every 30 s.
          const std::string failure(folded.status().message());
          if (failure != last_failure) {
            std::cerr << "stephub-hub: folding samples: " << failure << "\n";
            store_.AddEvent("sample_folding_failed", "", failure);
            last_failure = failure;
          }
          backlog_.PassFailed(MonotonicNow());
          break;
        }
        const bool more_due = folded->blocks == kBlocksAtOnce;
        const absl::Time now = MonotonicNow();
        const absl::Duration behind = backlog_.BehindFor(now);
        switch (backlog_.PassDone(now, more_due)) {
          case FoldingBacklog::Change::kFellBehind:
            Log(LogLevel::kWarning, "sample_folding_behind")
                .With("minutes", absl::ToInt64Minutes(behind));
            store_.AddEvent(
                "sample_folding_behind", "",
                absl::StrCat("for ", absl::ToInt64Minutes(behind),
                             " min the sample folder has not caught up: the "
                             "hub is short of CPU for its stations; raw "
                             "batches stay on disk, and the database grows, "
                             "until it does (nothing is lost)"));
            break;
          case FoldingBacklog::Change::kCaughtUp:
            Log(LogLevel::kInfo, "sample_folding_caught_up")
                .With("minutes", absl::ToInt64Minutes(behind));
            store_.AddEvent(
                "sample_folding_caught_up", "",
                absl::StrCat("the sample folder caught up after ",
                             absl::ToInt64Minutes(behind), " min behind"));
            break;
          case FoldingBacklog::Change::kNone:
            break;
        }
        std::lock_guard<std::mutex> lock(mu_);
        if (!more_due || stopping_) break;
      }
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::seconds(30),
                       [this] { return stopping_; })) {
        return;
      }
    }
  }

  store::ClinicStore& store_;
  const absl::Duration fold_after_;
  FoldingBacklog backlog_{MonotonicNow(), kToleratedBacklog};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace

struct HubServer::Parts {
  std::string database_path;
  std::unique_ptr<store::ClinicStore> store;
  std::unique_ptr<SampleFolder> sample_folder;
  std::unique_ptr<auth::StaffAccounts> accounts;
  live::LiveBus bus;
  std::unique_ptr<ingest::Bays> bays;
  std::unique_ptr<ingest::StationAccess> station_access;
  std::unique_ptr<ingest::StationLinkService> station_link;
  std::unique_ptr<ClinicService> clinic;
  std::unique_ptr<DashboardService> dashboard;
  std::unique_ptr<ReportsService> reports;
  std::unique_ptr<MaintenanceService> maintenance;
  std::unique_ptr<AuthService> auth;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<web::WebServer> web;
  int port = 0;
  bool tls = false;
  bool shut_down = false;
};

namespace {

// "localtime" by the name it links to (/etc/localtime ->
// .../zoneinfo/Europe/Berlin), so that progress says which zone it used.
std::string DatabasePath(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "stephub.db").string();
}

std::string ZoneName(const std::string& requested) {
  if (requested != "localtime") return requested;
  if (const char* tz = std::getenv("TZ"); tz != nullptr && *tz != '\0') {
    return *tz == ':' ? tz + 1 : tz;
  }
  std::error_code ec;
  const std::string target =
      std::filesystem::read_symlink("/etc/localtime", ec).string();
  const std::string marker = "zoneinfo/";
  if (const auto at = target.rfind(marker); !ec && at != std::string::npos) {
    return target.substr(at + marker.size());
  }
  return requested;
}

// The TLS files `options` names, defaults filled in.
tls::Files TlsFilesOf(const HubOptions& options) {
  const std::filesystem::path dir =
      std::filesystem::path(options.data_dir) / "tls";
  const auto or_default = [&](const std::string& given, const char* name) {
    return given.empty() ? (dir / name).string() : given;
  };
  return {or_default(options.tls_ca_file, "ca.crt"),
          or_default(options.tls_cert_file, "hub.crt"),
          or_default(options.tls_key_file, "hub.key")};
}

// The hub's certificate, its key and the clinic CA, or an error that says
// which file is missing and how to make it.
absl::StatusOr<tls::Pems> LoadHubTls(const HubOptions& options) {
  const tls::Files files = TlsFilesOf(options);
  const std::string dir =
      (std::filesystem::path(options.data_dir) / "tls").string();
  auto pems = tls::LoadFiles(
      files,
      absl::StrCat("create the clinic CA and the hub's certificate with "
                   "`stephub certs init --dir ",
                   dir, "` and `stephub certs hub --dir ", dir,
                   " --name HOSTNAME`, or give --tls_ca_file, "
                   "--tls_cert_file and --tls_key_file (docs/DEPLOY.md); "
                   "--insecure-dev serves plaintext for development"));
  if (!pems.ok()) return pems.status();
  // A CA made again without remaking the hub's certificate, or an expired
  // one, would only show as stations failing their handshakes.
  if (auto s = pki::VerifyCert(pems->cert, pems->ca_cert, absl::Now());
      !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        files.cert_file, " and ", files.ca_file, ": ", s.message(),
        "; make the hub's certificate again with `stephub certs hub --dir ",
        dir, " --force`"));
  }
  return pems;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HubServer>> HubServer::Start(
    const HubOptions& options) {
  auto parts = std::make_unique<Parts>();
  tls::Pems pems;
  if (options.insecure_dev) {
    Log(LogLevel::kWarning, "insecure_dev")
        .With("warning",
              "PLAINTEXT gRPC and HTTP, stations not authenticated: "
              "development only, never on a clinic network");
  } else {
    auto loaded = LoadHubTls(options);
    if (!loaded.ok()) return loaded.status();
    pems = *std::move(loaded);
    parts->tls = true;
  }
  if (options.stream_commit_delay < absl::ZeroDuration() ||
      options.stream_commit_delay > absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream commit delay ",
                     absl::FormatDuration(options.stream_commit_delay),
                     " is outside 0 to 1s"));
  }
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(ZoneName(options.time_zone), &zone)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown time zone \"", options.time_zone,
        "\": give an IANA name such as Europe/Berlin (is tzdata installed?)"));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data directory ", options.data_dir, ": ", ec.message()));
  }
  parts->database_path = DatabasePath(options.data_dir);
  auto store = store::OpenSqliteStore(
      parts->database_path,
      {.stream_commit_delay = options.stream_commit_delay});
  if (!store.ok()) return store.status();
  parts->store = std::move(*store);
  if (options.fold_samples_after != absl::InfiniteDuration()) {
    parts->sample_folder = std::make_unique<SampleFolder>(
        *parts->store, options.fold_samples_after);
  }
  parts->bays = std::make_unique<ingest::Bays>(
      *parts->store, parts->bus, options.scoring, options.clock, zone);
  if (auto s = parts->bays->Load(); !s.ok()) return s;
  parts->station_access = std::make_unique<ingest::StationAccess>(
      *parts->store, /*require_certificates=*/!options.insecure_dev);
  if (auto s = parts->station_access->Load(); !s.ok()) return s;

  parts->accounts =
      std::make_unique<auth::StaffAccounts>(*parts->store, options.staff_auth);
  if (auto s = parts->accounts->Load(); !s.ok()) return s;
  if (auto users = parts->accounts->ListUsers(); users.ok() && users->empty()) {
    std::cerr << "stephub-hub: no staff accounts yet: nobody can sign in. Add "
                 "the first admin with stephub-hub --data_dir="
              << options.data_dir << " --add_staff=NAME --roles=admin\n";
  }

  ingest::StationLinkOptions link_options;
  link_options.max_stations = options.max_stations;
  parts->station_link = std::make_unique<ingest::StationLinkService>(
      *parts->store, *parts->bays, *parts->station_access, link_options);
  auth::StaffAccounts& accounts = *parts->accounts;
  parts->clinic = std::make_unique<ClinicService>(
      accounts, *parts->store, *parts->bays, *parts->station_access);
  parts->dashboard = std::make_unique<DashboardService>(
      accounts, *parts->store, *parts->bays, parts->bus, zone, options.clock);
  parts->reports = std::make_unique<ReportsService>(accounts, *parts->store,
                                                    zone, options.clock);
  parts->maintenance = std::make_unique<MaintenanceService>(
      accounts, *parts->store, options.data_dir);
  parts->auth = std::make_unique<AuthService>(accounts);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address,
                           tls::ServerCredentials(pems, options.insecure_dev),
                           &parts->port);
  // Deliberately 1 MiB (HubOptions): a station's batch is 10-40 KiB and
  // the validator's own limits (16 sensors, 5000 samples each) stay near
  // it, staff requests are far smaller; a larger message is refused by
  // gRPC with RESOURCE_EXHAUSTED before the hub allocates for it.
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // Calls at once on one connection: a station needs one, the staff CLI a
  // few; the web dashboard's in-process channel holds up to its 64 live
  // pages' watches. A client opening more waits for its own calls to end
  // instead of growing the hub's per-call state.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 100);
  // All connections' transport buffers together; past it gRPC shrinks
  // flow-control windows and refuses new calls rather than allocate.
  grpc::ResourceQuota quota("stephub-hub");
  quota.Resize(512u << 20);
  builder.SetResourceQuota(quota);
  // Stations ping every 10 s (station LinkConfig.keepalive_time_ms) to find
  // a dead Wi-Fi link quickly. gRPC servers by default refuse pings closer
  // than 5 minutes and close the connection with too_many_pings; accept one
  // every 5 s, with or without a call in flight.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // The hub pings too, so that a station that vanished (power cut, Wi-Fi
  // gone) is shown offline within about 30 s rather than at the next write.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  // No bandwidth probing: gRPC would ping a station's connection as it
  // reads, to grow the flow-control window, which a station's 50 KB/s
  // never needs; the pings and their answers were a third of the hub's
  // sends at 200 stations.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.RegisterService(parts->station_link.get());
  builder.RegisterService(parts->clinic.get());
  builder.RegisterService(parts->dashboard.get());
  builder.RegisterService(parts->reports.get());
  builder.RegisterService(parts->maintenance.get());
  builder.RegisterService(parts->auth.get());
  parts->server = builder.BuildAndStart();
  if (!parts->server || parts->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use or invalid?)"));
  }
  parts->server->GetHealthCheckService()->SetServingStatus(true);
  if (!options.web_listen_address.empty()) {
    web::WebOptions web_options;
    web_options.listen_address = options.web_listen_address;
    web_options.tls_cert_pem = pems.cert;
    web_options.tls_key_pem = pems.key;
    // Over HTTPS the session cookie is never sent in the clear; over
    // --insecure-dev HTTP a Secure cookie would never come back.
    web_options.secure_cookies = !options.insecure_dev;
    // The dashboard is a client of the services above, in process.
    auto web = web::WebServer::Start(
        web_options, parts->server->InProcessChannel(grpc::ChannelArguments()));
    if (!web.ok()) {
      parts->server->Shutdown();
      return web.status();
    }
    parts->web = std::move(*web);
  }
  return std::unique_ptr<HubServer>(new HubServer(std::move(parts)));
}

absl::Status AddStaffAccount(const std::string& data_dir,
                             const std::string& username,
                             const std::string& display_name,
                             auth::RoleSet roles, const std::string& password) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data directory ", data_dir, ": ", ec.message()));
  }
  auto store = store::OpenSqliteStore(DatabasePath(data_dir));
  if (!store.ok()) return store.status();
  auth::StaffAccounts accounts(**store);
  auto user = accounts.AddUser(username, display_name, roles, password);
  if (!user.ok()) return user.status();
  return accounts.Audit(auth::Caller{"stephub-hub --add_staff", 0, ""},
                        "user_added", 0,
                        absl::StrCat(username, " as ", auth::RoleNames(roles)));
}

HubServer::HubServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

HubServer::~HubServer() {
  Shutdown();
  parts_->server->Wait();
  parts_->server.reset();
  parts_->sample_folder.reset();
  // Drain the writer while the bays its commit callbacks touch still exist.
  parts_->store.reset();
}

int HubServer::port() const { return parts_->port; }
int HubServer::web_port() const {
  return parts_->web ? parts_->web->port() : 0;
}
live::LiveBus::Stats HubServer::live_stats() const {
  return parts_->bus.stats();
}
bool HubServer::tls() const { return parts_->tls; }
std::string HubServer::database_path() const { return parts_->database_path; }

void HubServer::Shutdown() {
  if (parts_->shut_down) return;
  parts_->shut_down = true;
  // Pages first: their live streams are calls to the server below.
  if (parts_->web) parts_->web->Shutdown();
  parts_->server->GetHealthCheckService()->SetServingStatus(false);
  // Live watchers and station streams never end by themselves: give calls a
  // moment, then cancel them.
  parts_->server->Shutdown(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
}

void HubServer::Wait() { parts_->server->Wait(); }

}  // namespace stephub::api
