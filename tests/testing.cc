// Helpers shared by the integration tests; see testing.h.
#include "tests/testing.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/staff_channel.h"
#include "stephub/v1/auth.grpc.pb.h"
#include "stephub/v1/clinic.grpc.pb.h"

namespace stephub::testing {

TempDir::TempDir() {
  std::random_device rd;
  const char* base = std::getenv("TEST_TMPDIR");
  std::filesystem::path dir =
      base ? base : std::filesystem::temp_directory_path();
  path_ = (dir / absl::StrCat("stephub-test-", rd(), "-", rd())).string();
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  // For post-mortems of integration tests: logs and databases stay.
  if (std::getenv("STEPHUB_KEEP_TEST_DIRS") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

v1::StationHello SacrumHello(const std::string& station_id,
                             const std::string& boot_id) {
  v1::StationHello hello;
  hello.set_station_id(station_id);
  hello.set_boot_id(boot_id);
  v1::SensorInfo* imu = hello.add_sensors();
  imu->set_sensor_id(10);
  imu->set_kind(v1::SENSOR_KIND_IMU);
  imu->set_placement(v1::PLACEMENT_SACRUM);
  imu->set_rate_hz(200);
  return hello;
}

v1::SampleBatch StandingBatch(uint64_t seq, int64_t t0_us, int n) {
  v1::SampleBatch batch;
  batch.set_seq(seq);
  v1::ImuSamples* imu = batch.add_imu();
  imu->set_sensor_id(10);
  for (int i = 0; i < n; ++i) {
    imu->add_t_us(t0_us + i * 5000);
    imu->add_ax_mps2(0);
    imu->add_ay_mps2(0);
    imu->add_az_mps2(9.81f);
    imu->add_gx_radps(0);
    imu->add_gy_radps(0);
    imu->add_gz_radps(0);
  }
  return batch;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string log_file)
    : log_file_(std::move(log_file)) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    Wait();
  }
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0 && !reaped_) kill(pid_, signal);
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  if (!reaped_) {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    exit_code_ =
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return exit_code_;
}

bool ChildProcess::WaitFor(absl::Duration timeout, int* exit_code) {
  const bool exited = testing::WaitFor(
      [&] {
        if (reaped_) return true;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
        reaped_ = true;
        exit_code_ =
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      },
      timeout);
  if (exited && exit_code) *exit_code = exit_code_;
  return exited;
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_file_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string SignIn(int port, const std::string& user,
                   const std::string& password) {
  auto auth = v1::Auth::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::LoginRequest req;
  req.set_username(user);
  req.set_password(password);
  req.set_client("test");
  v1::LoginResponse resp;
  if (!auth->Login(&ctx, req, &resp).ok()) return "";
  return resp.token();
}

std::shared_ptr<grpc::Channel> StaffChannel(
    int port, const std::string& user, const std::string& password,
    const grpc::ChannelArguments& args) {
  return CreateStaffChannel(absl::StrCat("127.0.0.1:", port),
                            grpc::InsecureChannelCredentials(),
                            SignIn(port, user, password), args);
}

v1::ListStationsResponse ListStations(int port) {
  auto clinic = v1::Clinic::NewStub(StaffChannel(port));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListStationsResponse resp;
  if (!clinic->ListStations(&ctx, {}, &resp).ok()) return {};
  return resp;
}

HttpReply HttpExchange(
    int port, const std::string& method, const std::string& target,
    const std::string& body, const std::string& raw,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  HttpReply reply;
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(60));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                           static_cast<uint16_t>(port)));
    if (!raw.empty()) {
      asio::write(stream, asio::buffer(raw));
    } else {
      http::request<http::string_body> request(http::string_to_verb(method),
                                               target, 11);
      request.set(http::field::host, "127.0.0.1");
      for (const auto& [name, value] : headers) request.set(name, value);
      if (!body.empty()) {
        request.set(http::field::content_type, "application/json");
        request.body() = body;
      }
      request.prepare_payload();
      http::write(stream, request);
    }
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    reply.status = static_cast<int>(response.result_int());
    reply.content_type = std::string(response[http::field::content_type]);
    reply.set_cookie = std::string(response[http::field::set_cookie]);
    reply.body = response.body();
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  } catch (const std::exception& e) {
    reply.status = 0;
    reply.body = e.what();
  }
  return reply;
}

WebSession WebSignIn(int port, const std::string& user,
                     const std::string& password) {
  WebSession session;
  const HttpReply reply =
      HttpExchange(port, "POST", "/api/login",
                   absl::StrCat("{\"username\":\"", user, "\",\"password\":\"",
                                password, "\"}"));
  // "stephub_session=TOKEN; Path=/; ..." -> "stephub_session=TOKEN"
  session.cookie = reply.set_cookie.substr(0, reply.set_cookie.find(';'));
  const std::string key = "\"csrfToken\":\"";
  if (const size_t at = reply.body.find(key); at != std::string::npos) {
    const size_t from = at + key.size();
    session.csrf = reply.body.substr(from, reply.body.find('"', from) - from);
  }
  return session;
}

std::vector<std::pair<std::string, std::string>> WebSession::headers() const {
  return {{"Cookie", cookie}, {"X-CSRF-Token", csrf}};
}

std::string CommandOutput(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

PdfReadBack ReadPdf(const std::string& pdf) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      absl::StrCat("stephub-pdf-", std::random_device{}());
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "report.pdf").string();
  std::ofstream(file, std::ios::binary) << pdf;
  PdfReadBack r;
  r.text = CommandOutput("pdftotext -layout " + file + " -");
  r.info = CommandOutput("pdfinfo " + file);
  r.fonts = CommandOutput("pdffonts " + file);
  std::smatch pages;
  if (std::regex_search(r.info, pages, std::regex("Pages: +([0-9]+)\n"))) {
    r.pages = std::stoi(pages[1]);
  }
  CommandOutput("pdftoppm -png -r 30 " + file + " " + (dir / "page").string());
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    r.pages_rendered +=
        entry.path().extension() == ".png" && entry.file_size() > 500;
  }
  if (std::getenv("STEPHUB_KEEP_TEST_DIRS") == nullptr) {
    std::filesystem::remove_all(dir);
  } else {
    std::cout << "PDF kept in " << dir.string() << "\n";
  }
  return r;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

}  // namespace stephub::testing
