// stephub-loadgen: N simulated full-rate stations against a hub (or the
// bare sink), for the capacity, latency and scale benchmarks in
// docs/BENCHMARKS.md. Prints one JSON line of results; with --server_pid
// also the server's CPU and memory over the run.
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/load/load_fleet.h"
#include "bench/proc_cpu.h"
#include "common/flags.h"
#include "common/pki.h"
#include "common/process_setup.h"
#include "common/tls.h"
#include "stephub/v1/auth.grpc.pb.h"

ABSL_FLAG(std::string, hub, "127.0.0.1:50051", "the hub (or stephub-sink)");
ABSL_FLAG(int, stations, 10, "simulated stations, each on its own connection");
ABSL_FLAG(absl::Duration, duration, absl::Minutes(5), "how long to stream");
ABSL_FLAG(std::string, profile, "moderate", "the simulated patient");
ABSL_FLAG(absl::Duration, batch_period, absl::Milliseconds(25),
          "a station's batch period (as stephub-station's)");
ABSL_FLAG(std::string, staff, "",
          "staff accounts to run sets with, NAME,NAME,... (password from "
          "--staff_password); empty: stream only, no sets (the sink)");
ABSL_FLAG(std::string, staff_password, "", "the staff accounts' password");
ABSL_FLAG(int, server_pid, 0,
          "the server's pid: its CPU time and memory over the run are "
          "reported");
ABSL_FLAG(int, io_threads, 2, "threads for the streams' callbacks");
ABSL_FLAG(absl::Duration, sample_every, absl::ZeroDuration(),
          "with --server_pid: also record the server's RSS and CPU this "
          "often (a soak's memory over time); 0: only over the whole run");
ABSL_FLAG(std::string, tls_dir, "",
          "a clinic CA's directory (stephub certs init: ca.crt, ca.key): "
          "connect over TLS, each station with its own certificate made "
          "from the CA; empty: plaintext (a hub with --insecure-dev)");

namespace {

struct ProcessUsage {
  double cpu_s = 0;     // user + system
  int64_t rss_kib = 0;  // now
  int64_t hwm_kib = 0;  // peak
};

ProcessUsage UsageOf(int pid) {
  ProcessUsage u;
  u.cpu_s = absl::ToDoubleSeconds(
      stephub::bench::CpuTimeOf(absl::StrCat("/proc/", pid, "/stat")));
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t kib = 0;
    if (line.rfind("VmRSS:", 0) == 0 &&
        absl::SimpleAtoi(
            absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)),
            &kib)) {
      u.rss_kib = kib;
    }
    if (line.rfind("VmHWM:", 0) == 0 &&
        absl::SimpleAtoi(
            absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)),
            &kib)) {
      u.hwm_kib = kib;
    }
  }
  return u;
}

// The server's live threads by id (the hub names its store writer and
// folder; gRPC names its own).
using ServerThreads = std::map<std::string, stephub::bench::ThreadCpu>;
ServerThreads ThreadsOf(int pid) {
  return stephub::bench::ThreadCpuTimes(absl::StrCat("/proc/", pid));
}

// {"name":cores,...} over `seconds`: each thread's CPU since `before`
// (all of it for a thread started since), summed by name, for names that
// used any. A thread that ended in between is missing from both.
std::string ThreadCoresJson(const ServerThreads& before,
                            const ServerThreads& after, double seconds) {
  std::map<std::string, double> by_name;
  for (const auto& [tid, thread] : after) {
    const auto was = before.find(tid);
    by_name[thread.name] += absl::ToDoubleSeconds(
        thread.cpu -
        (was == before.end() ? absl::ZeroDuration() : was->second.cpu));
  }
  std::vector<std::string> parts;
  for (const auto& [name, used] : by_name) {
    // Names are the server's own; one that would need escaping is left out.
    if (used <= 0 || name.find_first_of("\"\\") != std::string::npos) {
      continue;
    }
    parts.push_back(absl::StrFormat("\"%s\":%.3f", name, used / seconds));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

// TLS as the clinic's stations have it: the CA in `dir` signs a certificate
// for each station as it connects (a P-256 signature: well under a
// millisecond each).
absl::Status UseClinicTls(const std::string& dir,
                          stephub::bench::FleetOptions* options) {
  namespace pki = stephub::pki;
  pki::KeyAndCert ca;
  for (auto [name, out] : {std::pair{"/ca.crt", &ca.cert_pem},
                           std::pair{"/ca.key", &ca.key_pem}}) {
    auto pem = pki::ReadFile(dir + name);
    if (!pem.ok()) return pem.status();
    *out = *std::move(pem);
  }
  options->credentials = stephub::tls::ChannelCredentials(
      {ca.cert_pem, "", ""}, /*insecure_dev=*/false);
  options->station_credentials = [ca](const std::string& station_id) {
    auto cert =
        pki::MakeStationCert(ca, station_id, pki::StationValidity(absl::Now()));
    if (!cert.ok()) {
      std::cerr << "stephub-loadgen: certificate for " << station_id << ": "
                << cert.status().message() << "\n";
      std::exit(1);
    }
    return stephub::tls::ChannelCredentials(
        {ca.cert_pem, cert->cert_pem, cert->key_pem}, /*insecure_dev=*/false);
  };
  return absl::OkStatus();
}

std::string SignIn(const std::string& hub,
                   const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                   const std::string& user, const std::string& password) {
  auto auth = stephub::v1::Auth::NewStub(grpc::CreateChannel(hub, credentials));
  grpc::ClientContext ctx;
  stephub::v1::LoginRequest req;
  req.set_username(user);
  req.set_password(password);
  req.set_client("stephub-loadgen");
  stephub::v1::LoginResponse resp;
  if (auto s = auth->Login(&ctx, req, &resp); !s.ok()) {
    std::cerr << "stephub-loadgen: sign-in as " << user << ": "
              << s.error_message() << "\n";
    return "";
  }
  return resp.token();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "stephub-loadgen --hub=HOST:PORT --stations=N --duration=5m "
      "[--staff=NAME,... --staff_password=PW] [--server_pid=PID]");
  stephub::ConfigureServingProcess();
  stephub::ParseFlagsAcceptingDashes(argc, argv);
  auto set = stephub::bench::PregenerateSet(absl::GetFlag(FLAGS_profile), 7,
                                            absl::GetFlag(FLAGS_batch_period));
  if (!set.ok()) {
    std::cerr << "stephub-loadgen: " << set.status().message() << "\n";
    return 2;
  }
  stephub::bench::FleetOptions options;
  options.hub_address = absl::GetFlag(FLAGS_hub);
  options.stations = absl::GetFlag(FLAGS_stations);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.io_threads = absl::GetFlag(FLAGS_io_threads);
  if (const std::string dir = absl::GetFlag(FLAGS_tls_dir); !dir.empty()) {
    if (auto s = UseClinicTls(dir, &options); !s.ok()) {
      std::cerr << "stephub-loadgen: " << s.message() << "\n";
      return 2;
    }
  }
  for (absl::string_view user :
       absl::StrSplit(absl::GetFlag(FLAGS_staff), ',', absl::SkipEmpty())) {
    const std::string token =
        SignIn(options.hub_address, options.credentials, std::string(user),
               absl::GetFlag(FLAGS_staff_password));
    if (token.empty()) return 1;
    options.staff_tokens.push_back(token);
  }
  const int pid = absl::GetFlag(FLAGS_server_pid);
  const ProcessUsage before = pid > 0 ? UsageOf(pid) : ProcessUsage{};
  const ServerThreads threads_before =
      pid > 0 ? ThreadsOf(pid) : ServerThreads{};
  // [minutes since the start, RSS MiB, CPU cores over the interval]
  std::vector<std::array<double, 3>> samples;
  // The same intervals' CPU by thread name, as JSON objects.
  std::vector<std::string> thread_samples;
  std::mutex sampling_mu;
  std::condition_variable sampling_cv;
  bool sampling_done = false;
  std::thread sampler;
  if (const absl::Duration every = absl::GetFlag(FLAGS_sample_every);
      pid > 0 && every > absl::ZeroDuration()) {
    sampler = std::thread([&, every] {
      const absl::Time start = absl::Now();
      ProcessUsage last = before;
      ServerThreads last_threads = threads_before;
      absl::Time last_at = start;
      std::unique_lock<std::mutex> lock(sampling_mu);
      while (!sampling_cv.wait_for(lock, absl::ToChronoMilliseconds(every),
                                   [&] { return sampling_done; })) {
        const ProcessUsage now = UsageOf(pid);
        ServerThreads now_threads = ThreadsOf(pid);
        const absl::Time at = absl::Now();
        const double seconds = absl::ToDoubleSeconds(at - last_at);
        samples.push_back({absl::ToDoubleMinutes(at - start),
                           now.rss_kib / 1024.0,
                           (now.cpu_s - last.cpu_s) / seconds});
        thread_samples.push_back(
            ThreadCoresJson(last_threads, now_threads, seconds));
        last = now;
        last_threads = std::move(now_threads);
        last_at = at;
      }
    });
  }
  auto result = stephub::bench::RunFleet(*set, options);
  if (sampler.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sampling_mu);
      sampling_done = true;
    }
    sampling_cv.notify_all();
    sampler.join();
  }
  if (!result.ok()) {
    std::cerr << "stephub-loadgen: " << result.status().message() << "\n";
    return 1;
  }
  std::string json = stephub::bench::ResultJson(*result);
  if (pid > 0) {
    const ProcessUsage after = UsageOf(pid);
    const double cpu =
        (after.cpu_s - before.cpu_s) / absl::ToDoubleSeconds(result->ran);
    json.pop_back();
    absl::StrAppend(
        &json,
        absl::StrFormat(",\"server_cpu_cores\":%.3f,\"server_rss_mib\":%.1f,"
                        "\"server_peak_rss_mib\":%.1f,"
                        "\"server_rss_kib_per_station\":%.0f}",
                        cpu, after.rss_kib / 1024.0, after.hwm_kib / 1024.0,
                        static_cast<double>(after.rss_kib) / options.stations));
    json.pop_back();
    absl::StrAppend(&json, ",\"server_threads_cores\":",
                    ThreadCoresJson(threads_before, ThreadsOf(pid),
                                    absl::ToDoubleSeconds(result->ran)),
                    "}");
    if (!samples.empty()) {
      json.pop_back();
      absl::StrAppend(
          &json, ",\"server_over_time\":[",
          absl::StrJoin(samples, ",",
                        [](std::string* out, const std::array<double, 3>& s) {
                          absl::StrAppend(
                              out, absl::StrFormat("[%.2f,%.1f,%.3f]", s[0],
                                                   s[1], s[2]));
                        }),
          "],\"server_threads_over_time\":[",
          absl::StrJoin(thread_samples, ","), "]}");
    }
  }
  std::cout << json << std::endl;
  return result->batches_lost == 0 ? 0 : 3;
}
