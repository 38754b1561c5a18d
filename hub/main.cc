// stephub-hub: the clinic's hub. Serves the StepHub contract and keeps the
// clinic record in one SQLite file under --data_dir.
#include <csignal>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/flags.h"
#include "common/password_prompt.h"
#include "common/process_setup.h"
#include "hub/api/hub_server.h"
#include "hub/scoring/scoring_config.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "gRPC listen address (host:port; port 0 picks a free one)");
ABSL_FLAG(std::string, data_dir, "stephub-data",
          "directory holding the clinic database stephub.db");
ABSL_FLAG(std::string, scoring, "",
          "scoring settings over the defaults, name=value,... (e.g. "
          "pelvic_compensation_threshold_deg=4); results carry them in their "
          "scoring version");
ABSL_FLAG(std::string, time_zone, "localtime",
          "the clinic's time zone for the days and weeks of progress (an IANA "
          "name such as Europe/Berlin)");
ABSL_FLAG(std::string, web_listen, "127.0.0.1:8080",
          "address of the web dashboard, served over HTTPS (HOST:PORT; port 0 "
          "picks one; empty: no dashboard). Loopback by default; 0.0.0.0:8080 "
          "serves the clinic's network");
ABSL_FLAG(std::string, tls_ca_file, "",
          "the clinic CA's certificate, which stations' certificates must "
          "come from (default DATA_DIR/tls/ca.crt; `stephub certs init`)");
ABSL_FLAG(std::string, tls_cert_file, "",
          "the hub's certificate, for gRPC and the dashboard (default "
          "DATA_DIR/tls/hub.crt; `stephub certs hub`)");
ABSL_FLAG(std::string, tls_key_file, "",
          "the hub's private key (default DATA_DIR/tls/hub.key)");
ABSL_FLAG(bool, insecure_dev, false,
          "serve plaintext gRPC and HTTP and accept any station: for "
          "development only (logs a warning)");
ABSL_FLAG(absl::Duration, fold_samples_after, absl::Minutes(5),
          "how long sample batches stay raw before they are folded into "
          "compressed blocks, a minute of a station's at a time (\"inf\": "
          "never)");
ABSL_FLAG(absl::Duration, stream_commit_delay, absl::Milliseconds(100),
          "how long stations' sample batches may wait for company before "
          "they are committed (0 to 1s): longer writes less to disk with "
          "many stations, and acknowledges batches later");

ABSL_FLAG(std::string, add_staff, "",
          "add this staff account to the database under --data_dir and exit "
          "(the first admin; the password is asked for, or read from the "
          "first line of standard input)");
ABSL_FLAG(std::string, roles, "therapist",
          "with --add_staff: therapist, admin, or therapist,admin");
ABSL_FLAG(std::string, display_name, "",
          "with --add_staff: the name shown for the account");

namespace {

// stephub-hub --add_staff=NAME: works on the database file, so it needs no
// running hub and no account already (the hub may be running meanwhile).
int AddStaff() {
  const std::string username = absl::GetFlag(FLAGS_add_staff);
  stephub::auth::RoleSet roles = 0;
  for (absl::string_view role :
       absl::StrSplit(absl::GetFlag(FLAGS_roles), ',', absl::SkipEmpty())) {
    if (role == "therapist") {
      roles |= stephub::auth::kTherapist;
    } else if (role == "admin") {
      roles |= stephub::auth::kAdmin;
    } else {
      std::cerr << "stephub-hub: --roles: unknown role \"" << role
                << "\" (therapist, admin)\n";
      return 2;
    }
  }
  auto password = stephub::ReadPassword(
      "password for " + username + " (at least 10 characters): ", true);
  if (!password.ok()) {
    std::cerr << "stephub-hub: " << password.status().message() << "\n";
    return 2;
  }
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  if (auto s = stephub::api::AddStaffAccount(data_dir, username,
                                             absl::GetFlag(FLAGS_display_name),
                                             roles, *password);
      !s.ok()) {
    std::cerr << "stephub-hub: --add_staff: " << s.message() << "\n";
    return s.code() == absl::StatusCode::kInvalidArgument ||
                   s.code() == absl::StatusCode::kAlreadyExists
               ? 2
               : 1;
  }
  std::cout << "stephub-hub: added " << username << " ("
            << stephub::auth::RoleNames(roles) << ") to " << data_dir
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "StepHub hub: serves stations, staff tools and the dashboard.\n"
      "usage: stephub-hub [--listen=HOST:PORT] [--data_dir=DIR] "
      "[--time_zone=ZONE] [--insecure-dev]\n"
      "       stephub-hub --data_dir=DIR --add_staff=NAME "
      "[--roles=therapist,admin] [--display_name=NAME]");
  stephub::ConfigureServingProcess();
  stephub::ParseFlagsAcceptingDashes(argc, argv);
  if (!absl::GetFlag(FLAGS_add_staff).empty()) return AddStaff();

  // Block the stop signals in every thread; one thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A closed stdout (a supervisor that stopped reading its pipe) must not
  // kill the hub at its next log line: the write fails and it carries on.
  signal(SIGPIPE, SIG_IGN);

  stephub::api::HubOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.time_zone = absl::GetFlag(FLAGS_time_zone);
  options.fold_samples_after = absl::GetFlag(FLAGS_fold_samples_after);
  options.stream_commit_delay = absl::GetFlag(FLAGS_stream_commit_delay);
  options.web_listen_address = absl::GetFlag(FLAGS_web_listen);
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.insecure_dev = absl::GetFlag(FLAGS_insecure_dev);
  if (options.fold_samples_after < absl::ZeroDuration()) {
    std::cerr << "stephub-hub: --fold_samples_after must not be negative\n";
    return 2;
  }
  auto scoring =
      stephub::scoring::ParseScoringOverrides(absl::GetFlag(FLAGS_scoring));
  if (!scoring.ok()) {
    std::cerr << "stephub-hub: --scoring: " << scoring.status().message()
              << "\n";
    return 2;
  }
  options.scoring = *scoring;
  auto hub = stephub::api::HubServer::Start(options);
  if (!hub.ok()) {
    std::cerr << "stephub-hub: " << hub.status().message() << "\n";
    return 1;
  }
  std::cout << "stephub-hub: listening on port " << (*hub)->port()
            << ((*hub)->tls() ? " (TLS)" : " (PLAINTEXT, --insecure-dev)")
            << ", database " << (*hub)->database_path() << std::endl;
  if ((*hub)->web_port() != 0) {
    std::cout << "stephub-hub: dashboard on "
              << ((*hub)->tls() ? "https" : "http") << " port "
              << (*hub)->web_port() << std::endl;
  }

  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::cout << "stephub-hub: stopping (signal " << sig << ")" << std::endl;
    (*hub)->Shutdown();
  });
  (*hub)->Wait();
  stopper.join();
  hub->reset();
  std::cout << "stephub-hub: stopped" << std::endl;
  return 0;
}
