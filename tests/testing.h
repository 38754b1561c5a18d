// Helpers shared by the integration tests.
#ifndef STEPHUB_TESTS_TESTING_H_
#define STEPHUB_TESTS_TESTING_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "stephub/v1/clinic.pb.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::testing {

// A fresh directory under the test's temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A hello announcing a sacral IMU (sensor 10, 200 Hz).
v1::StationHello SacrumHello(const std::string& station_id,
                             const std::string& boot_id);

// `n` quiet-standing samples of sensor 10 from t0_us at 200 Hz.
v1::SampleBatch StandingBatch(uint64_t seq, int64_t t0_us, int n);

// A child process (a real stephub binary) with its stdout and stderr in a
// log file. Killed with SIGKILL on destruction if still running.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  void Signal(int signal);
  // Waits for the exit; returns the exit code, or 128 + signal number.
  int Wait();
  // True if it exited within `timeout` (its code then in *exit_code).
  bool WaitFor(absl::Duration timeout, int* exit_code);
  std::string Log() const;

 private:
  int pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string log_file_;
};

// The staff account every test hub has (test_hub.h AddTestStaff): a
// therapist and an admin.
inline constexpr char kTestStaffUser[] = "test-staff";
inline constexpr char kTestStaffPassword[] = "test staff password";

// Signs in at 127.0.0.1:port and returns the bearer token; empty when the
// hub refuses (the test's calls then fail with UNAUTHENTICATED).
std::string SignIn(int port, const std::string& user = kTestStaffUser,
                   const std::string& password = kTestStaffPassword);

// A channel to 127.0.0.1:port whose calls carry a fresh sign-in's token.
std::shared_ptr<grpc::Channel> StaffChannel(
    int port, const std::string& user = kTestStaffUser,
    const std::string& password = kTestStaffPassword,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

// The hub's station list (Clinic.ListStations) at 127.0.0.1:port; empty
// when the hub does not answer within 5 s.
v1::ListStationsResponse ListStations(int port);

// One HTTP/1.1 exchange with 127.0.0.1:port (the hub's web dashboard, or
// ChromeDriver). `raw`, when given, is sent as is instead of a request
// built from the rest. Bounded to 60 s.
struct HttpReply {
  int status = 0;  // 0: no answer (the message says why)
  std::string content_type;
  std::string body;
  std::string set_cookie;
};
HttpReply HttpExchange(
    int port, const std::string& method, const std::string& target,
    const std::string& body = "", const std::string& raw = "",
    const std::vector<std::pair<std::string, std::string>>& headers = {});

// A dashboard sign-in (POST /api/login): the session cookie to send back
// and the CSRF token its POSTs carry. Empty on failure.
struct WebSession {
  std::string cookie;  // "stephub_session=..."
  std::string csrf;
  std::vector<std::pair<std::string, std::string>> headers() const;
};
WebSession WebSignIn(int port, const std::string& user = kTestStaffUser,
                     const std::string& password = kTestStaffPassword);

// What `command` (run by the shell) writes to its standard output; empty if
// it cannot run. For reading reports back with poppler's tools.
std::string CommandOutput(const std::string& command);

// A PDF as poppler reads it back: its text (pdftotext -layout; pages end
// in a form feed), pdfinfo, pdffonts, its page count by pdfinfo, and how
// many pages pdftoppm rendered to an image of some substance.
struct PdfReadBack {
  std::string text, info, fonts;
  int pages = 0;
  int pages_rendered = 0;
};
// Works in a directory of its own, removed afterwards unless
// STEPHUB_KEEP_TEST_DIRS is set (for a look at the pages).
PdfReadBack ReadPdf(const std::string& pdf);

// Polls `done` until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& done,
             absl::Duration timeout = absl::Seconds(20));

}  // namespace stephub::testing

#endif  // STEPHUB_TESTS_TESTING_H_
