// Helpers shared by the integration tests; see testing.h.
#include "tests/testing.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/tls.h"
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

TestPki& TestPki::Get() {
  static TestPki* pki = new TestPki();
  return *pki;
}

TestPki::TestPki() {
  const char* base = std::getenv("TEST_TMPDIR");
  dir_ = absl::StrCat(base ? base : "/tmp", "/stephub-test-pki-", getpid());
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_ + "/stations");
  const absl::Time now = absl::Now();
  ca_ = *pki::MakeCa("Test clinic", pki::CaValidity(now));
  const pki::KeyAndCert hub =
      *pki::MakeHubCert(ca_, {"localhost", "127.0.0.1"}, pki::HubValidity(now));
  for (const auto& [path, text, mode] :
       {std::tuple{ca_file(), ca_.cert_pem, 0644},
        std::tuple{dir_ + "/ca.key", ca_.key_pem, 0600},
        std::tuple{hub_cert_file(), hub.cert_pem, 0644},
        std::tuple{hub_key_file(), hub.key_pem, 0600}}) {
    const absl::Status s = pki::WriteFile(path, text, mode, true);
    if (!s.ok()) std::cerr << "test PKI: " << s << "\n";
  }
  // Gone with the test binary; a crashed run leaves a directory in /tmp.
  std::atexit([] { std::filesystem::remove_all(TestPki::Get().dir()); });
}

const pki::KeyAndCert& TestPki::Station(const std::string& station_id) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto it = stations_.find(station_id);
  if (it != stations_.end()) return it->second;
  // A second early, so that a hub started in the same second as the
  // certificate never sees it as not yet valid.
  const pki::KeyAndCert made = *pki::MakeStationCert(
      ca_, station_id, pki::StationValidity(absl::Now() - absl::Seconds(1)));
  pki::WriteFile(StationPath(station_id, ".crt"), made.cert_pem, 0644, true)
      .IgnoreError();
  pki::WriteFile(StationPath(station_id, ".key"), made.key_pem, 0600, true)
      .IgnoreError();
  return stations_.emplace(station_id, made).first->second;
}

std::string TestPki::station_cert_file(const std::string& station_id) {
  Station(station_id);  // written on first use
  return StationPath(station_id, ".crt");
}
std::string TestPki::station_key_file(const std::string& station_id) {
  Station(station_id);
  return StationPath(station_id, ".key");
}
std::string TestPki::StationPath(const std::string& station_id,
                                 const char* extension) const {
  return absl::StrCat(dir_, "/stations/", station_id, extension);
}

grpc::Status RevokeStation(int port, const std::string& station_id,
                           v1::RevokeStationResponse* response) {
  v1::RevokeStationRequest request;
  request.set_station_id(station_id);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return v1::Clinic::NewStub(StaffChannel(port))
      ->RevokeStation(&ctx, request, response);
}

pki::KeyAndCert ReplacementCertificate(const std::string& station_id,
                                       int64_t revoked_at_seconds) {
  const absl::Time issued = absl::FromUnixSeconds(revoked_at_seconds + 1);
  WaitFor([&] { return absl::Now() > issued; });
  return *pki::MakeStationCert(TestPki::Get().ca(), station_id,
                               {issued, issued + pki::kLeafLifetime});
}

std::vector<std::string> HubTlsFlags() {
  TestPki& pki = TestPki::Get();
  return {"--tls_ca_file=" + pki.ca_file(),
          "--tls_cert_file=" + pki.hub_cert_file(),
          "--tls_key_file=" + pki.hub_key_file()};
}

std::vector<std::string> Concat(std::vector<std::string> a,
                                const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> CliHubArgs(int port) {
  return {"--hub", absl::StrCat("127.0.0.1:", port), "--ca_file",
          TestPki::Get().ca_file()};
}

std::shared_ptr<grpc::ChannelCredentials> StaffCredentials() {
  return tls::ChannelCredentials({TestPki::Get().ca().cert_pem, "", ""},
                                 /*insecure_dev=*/false);
}

std::string SignIn(int port, const std::string& user,
                   const std::string& password) {
  auto auth = v1::Auth::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), StaffCredentials()));
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

std::shared_ptr<grpc::Channel> StaffChannel(int port, const std::string& user,
                                            const std::string& password,
                                            const grpc::ChannelArguments& args) {
  return CreateStaffChannel(absl::StrCat("127.0.0.1:", port),
                            StaffCredentials(), SignIn(port, user, password),
                            args);
}

std::shared_ptr<grpc::ChannelCredentials> StationCredentials(
    const std::string& station_id) {
  const pki::KeyAndCert& station = TestPki::Get().Station(station_id);
  return tls::ChannelCredentials(
      {TestPki::Get().ca().cert_pem, station.cert_pem, station.key_pem},
      /*insecure_dev=*/false);
}

std::shared_ptr<grpc::Channel> StationChannel(
    int port, const std::string& station_id,
    const grpc::ChannelArguments& args) {
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   StationCredentials(station_id), args);
}

StationCall OpenStationCall(
    int port, std::shared_ptr<grpc::ChannelCredentials> credentials) {
  StationCall call;
  call.stub = v1::StationLink::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), credentials));
  call.context = std::make_unique<grpc::ClientContext>();
  call.context->set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(20));
  call.stream = call.stub->Stream(call.context.get());
  return call;
}

bool Send(StationCall& call, const v1::StationHello& hello) {
  v1::StationMessage m;
  *m.mutable_hello() = hello;
  return call.stream->Write(m);
}

bool Send(StationCall& call, const v1::SampleBatch& batch) {
  v1::StationMessage m;
  *m.mutable_batch() = batch;
  return call.stream->Write(m);
}

bool AwaitAck(StationCall& call, uint64_t seq) {
  v1::HubMessage msg;
  while (call.stream->Read(&msg)) {
    if (msg.has_ack() && msg.ack().durable_seq() >= seq) return true;
  }
  return false;
}

grpc::Status Drain(StationCall& call) {
  v1::HubMessage msg;
  while (call.stream->Read(&msg)) {
  }
  return call.stream->Finish();
}

v1::ListStationsResponse ListStations(int port) {
  auto clinic = v1::Clinic::NewStub(StaffChannel(port));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListStationsResponse resp;
  if (!clinic->ListStations(&ctx, {}, &resp).ok()) return {};
  return resp;
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// The exchange itself, over a connected `stream`.
template <typename Stream>
void Exchange(Stream& stream, const std::string& method,
              const std::string& target, const std::string& body,
              const std::string& raw,
              const std::vector<std::pair<std::string, std::string>>& headers,
              HttpReply* reply) {
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
  reply->status = static_cast<int>(response.result_int());
  reply->content_type = std::string(response[http::field::content_type]);
  reply->set_cookie = std::string(response[http::field::set_cookie]);
  reply->body = response.body();
}

}  // namespace

HttpReply HttpExchange(
    int port, const std::string& method, const std::string& target,
    const std::string& body, const std::string& raw,
    const std::vector<std::pair<std::string, std::string>>& headers,
    Transport transport) {
  HttpReply reply;
  try {
    asio::io_context io;
    beast::tcp_stream tcp(io);
    tcp.expires_after(std::chrono::seconds(60));
    tcp.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                        static_cast<uint16_t>(port)));
    if (transport == Transport::kHttp) {
      Exchange(tcp, method, target, body, raw, headers, &reply);
    } else {
      asio::ssl::context tls(asio::ssl::context::tls_client);
      tls.add_certificate_authority(asio::buffer(TestPki::Get().ca().cert_pem));
      tls.set_verify_mode(asio::ssl::verify_peer);
      tls.set_verify_callback(asio::ssl::host_name_verification("127.0.0.1"));
      beast::ssl_stream<beast::tcp_stream&> stream(tcp, tls);
      stream.handshake(asio::ssl::stream_base::client);
      Exchange(stream, method, target, body, raw, headers, &reply);
    }
    beast::error_code ignored;
    tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  } catch (const std::exception& e) {
    reply.status = 0;
    reply.body = e.what();
  }
  return reply;
}

struct OpenWebPage::Connection {
  asio::io_context io;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  beast::ssl_stream<beast::tcp_stream> stream{io, tls};
};

OpenWebPage::OpenWebPage(int port, const std::string& request)
    : connection_(std::make_unique<Connection>()) {
  Connection& c = *connection_;
  try {
    c.tls.add_certificate_authority(asio::buffer(TestPki::Get().ca().cert_pem));
    c.tls.set_verify_mode(asio::ssl::verify_peer);
    beast::tcp_stream& tcp = beast::get_lowest_layer(c.stream);
    tcp.expires_after(std::chrono::seconds(60));
    tcp.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                        static_cast<uint16_t>(port)));
    c.stream.handshake(asio::ssl::stream_base::client);
    asio::write(c.stream, asio::buffer(request));
    asio::streambuf head;
    const size_t n = asio::read_until(c.stream, head, "\r\n\r\n");
    head_.assign(asio::buffers_begin(head.data()),
                 asio::buffers_begin(head.data()) + n);
    tcp.expires_never();
  } catch (const std::exception&) {
    head_.clear();
  }
}

OpenWebPage::~OpenWebPage() = default;

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
