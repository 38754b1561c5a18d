// Browser test of the web dashboard: a hub with three simulated stations
// (bay-1 level, bay-2 moderate, bay-3 Trendelenburg), Debian's headless
// Chromium driven through ChromeDriver (WebDriver over HTTP on loopback).
// The clinic view is opened before the sets start and must show live
// repetitions on all three tiles and a pelvic-drop alert on bay-3's; bay-3's
// set is started from the page's own form. Then bay-3's screen and the
// patient view (charts drawn with data). Screenshots go to
// build/tests/screenshots/.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/simulator.h"
#include "hub/api/hub_server.h"
#include "station/sensors/sensors.h"
#include "station/station.h"
#include "stephub/v1/clinic.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"

namespace stephub {
namespace {

using json = nlohmann::json;

constexpr char kChromium[] = "/usr/bin/chromium";
constexpr char kChromeDriver[] = "/usr/bin/chromedriver";

// A port free on loopback just now, for ChromeDriver (which wants one).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// One HTTP exchange with a JSON body each way; JSON back on 200. Plain
// HTTP for ChromeDriver, HTTPS for the hub's dashboard.
absl::StatusOr<json> Exchange(
    int port, const std::string& method, const std::string& target,
    const json& body = nullptr,
    testing::Transport transport = testing::Transport::kHttp,
    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  const testing::HttpReply reply =
      testing::HttpExchange(port, method, target,
                            body.is_null() ? "" : body.dump(), "", headers,
                            transport);
  if (reply.status != 200) {
    return absl::InternalError(
        absl::StrCat(method, " ", target, ": ", reply.status, " ", reply.body));
  }
  json parsed = json::parse(reply.body, nullptr, false);
  if (parsed.is_discarded()) {
    return absl::InternalError(absl::StrCat("not JSON: ", reply.body));
  }
  return parsed;
}

// A Chromium session through ChromeDriver.
class Browser {
 public:
  explicit Browser(const std::string& log_dir)
      : port_(FreePort()),
        driver_({kChromeDriver, absl::StrCat("--port=", port_)},
                log_dir + "/chromedriver.log") {}
  ~Browser() {
    if (!session_.empty()) {
      Exchange(port_, "DELETE", "/session/" + session_).status().IgnoreError();
    }
    driver_.Signal(SIGTERM);
    int code = 0;
    if (!driver_.WaitFor(absl::Seconds(10), &code)) driver_.Signal(SIGKILL);
  }

  absl::Status Open() {
    // ChromeDriver listens within a moment of starting.
    absl::Status last = absl::UnavailableError("chromedriver did not start");
    for (int i = 0; i < 100 && session_.empty(); ++i) {
      auto created =
          Exchange(port_, "POST", "/session",
                   {{"capabilities",
                     {{"alwaysMatch",
                       {{"browserName", "chrome"},
                        {"goog:chromeOptions",
                         {{"binary", kChromium},
                          {"args",
                           {"--headless", "--no-sandbox", "--disable-gpu",
                            // The dashboard's certificate is from the
                            // test's own CA, which this browser does not
                            // know; the test only.
                            "--ignore-certificate-errors",
                            "--disable-background-networking",
                            "--window-size=1300,1000"}}}}}}}}});
      if (created.ok()) {
        session_ = (*created)["value"]["sessionId"].get<std::string>();
        return absl::OkStatus();
      }
      last = created.status();
      absl::SleepFor(absl::Milliseconds(100));
    }
    return last;
  }

  absl::Status Go(const std::string& url) {
    return Exchange(port_, "POST", Path("/url"), {{"url", url}}).status();
  }

  // Runs `script` (a function body) in the page; its return value.
  absl::StatusOr<json> Run(const std::string& script) {
    auto result = Exchange(port_, "POST", Path("/execute/sync"),
                           {{"script", script}, {"args", json::array()}});
    if (!result.ok()) return result.status();
    return (*result)["value"];
  }

  // Polls `script` until it returns true; bounded by `timeout`.
  bool WaitUntil(const std::string& script, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      auto value = Run(script);
      if (value.ok() && value->is_boolean() && value->get<bool>()) return true;
      absl::SleepFor(absl::Milliseconds(250));
    }
    return false;
  }

  absl::Status Screenshot(const std::string& file) {
    auto shot = Exchange(port_, "GET", Path("/screenshot"));
    if (!shot.ok()) return shot.status();
    std::string png;
    if (!absl::Base64Unescape((*shot)["value"].get<std::string>(), &png)) {
      return absl::InternalError("screenshot is not base64");
    }
    std::ofstream(file, std::ios::binary) << png;
    return absl::OkStatus();
  }

 private:
  std::string Path(const std::string& rest) const {
    return "/session/" + session_ + rest;
  }

  int port_;
  testing::ChildProcess driver_;
  std::string session_;
};

struct SimulatedBay {
  std::string station_id;
  PatientProfile profile;
  boost::asio::io_context io;
  std::unique_ptr<station::Station> station;
  std::thread thread;
};

TEST(BrowserDashboard, ClinicBayAndPatientViewsShowLiveScoring) {
  ASSERT_TRUE(std::filesystem::exists(kChromeDriver) &&
              std::filesystem::exists(kChromium))
      << "Debian's chromium and chromium-driver are needed: run "
         "tools/setup.sh --test (tools/test.sh does)";
  const std::string shots = STEPHUB_SCREENSHOT_DIR;
  std::filesystem::create_directories(shots);
  testing::TempDir dir;
  api::HubOptions options;
  options.listen_address = "127.0.0.1:0";
  options.web_listen_address = "127.0.0.1:0";
  options.data_dir = dir.path();
  testing::UseTestTls(&options);
  auto hub = testing::StartHub(options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  const std::string address = absl::StrCat("127.0.0.1:", (*hub)->port());
  const std::string web =
      absl::StrCat("https://127.0.0.1:", (*hub)->web_port());
  auto clinic = v1::Clinic::NewStub(testing::StaffChannel((*hub)->port()));

  // Three bays, the patients at real pace (the page must see them live).
  const char* kProfiles[] = {"level", "moderate", "trendelenburg"};
  std::vector<SimulatedBay> bays(3);
  std::vector<int64_t> patients;
  for (int i = 0; i < 3; ++i) {
    SimulatedBay& b = bays[i];
    b.station_id = absl::StrCat("bay-", i + 1);
    b.profile = *ProfileByName(kProfiles[i]);
    b.profile.repetitions = 4;
    b.profile.stance_side = StanceSide::kLeft;
    station::StationOptions so;
    so.hub_address = address;
    so.station_id = b.station_id;
    testing::UseTestTls(&so, b.station_id);
    so.exit_after_set = true;
    so.spool.dir = dir.path() + "/spool-" + b.station_id;
    b.station = std::make_unique<station::Station>(
        b.io, so,
        station::MakeSimulatedSource(b.profile, 21 + i,
                                     station::MonotonicMicros()));
    b.thread = std::thread([&b] { b.station->Run().IgnoreError(); });
    v1::CreatePatientRequest req;
    req.set_display_name(absl::StrCat("Patient ", i + 1));
    v1::Patient patient;
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic->CreatePatient(&ctx, req, &patient).ok());
    patients.push_back(patient.patient_id());
  }
  auto stop_bays = [&] {
    for (SimulatedBay& b : bays) {
      if (b.thread.joinable()) {
        b.station->Stop();
        b.thread.join();
      }
    }
  };
  ASSERT_TRUE(testing::WaitFor([&] {
    v1::ListStationsResponse resp;
    grpc::ClientContext ctx;
    clinic->ListStations(&ctx, {}, &resp);
    return resp.stations_size() == 3;
  }));

  Browser browser(dir.path());
  ASSERT_TRUE(browser.Open().ok()) << browser.Open();
  ASSERT_TRUE(browser.Go(web + "/").ok());
  // Not signed in: the page sends the browser to the sign-in page, which
  // brings it back.
  ASSERT_TRUE(browser.WaitUntil("return location.pathname === '/login';",
                                absl::Seconds(30)))
      << *browser.Run("return location.href;");
  ASSERT_TRUE(
      browser
          .Run(absl::StrCat("const f = document.getElementById('login');"
                            "f.username.value = '",
                            testing::kTestStaffUser,
                            "';"
                            "f.password.value = '",
                            testing::kTestStaffPassword,
                            "';"
                            "f.requestSubmit(); return true;"))
          .ok());
  ASSERT_TRUE(
      browser.WaitUntil("return location.pathname === '/';", absl::Seconds(30)))
      << *browser.Run("return document.body.innerHTML;");
  ASSERT_TRUE(browser.WaitUntil(
      "return document.getElementById('who') !== null;", absl::Seconds(30)));
  // All three tiles, before any set.
  ASSERT_TRUE(browser.WaitUntil(
      "return document.querySelectorAll('.tile').length === 3;",
      absl::Seconds(30)))
      << *browser.Run("return document.body.innerHTML;");

  // bay-1 and bay-2 from the API the form uses; bay-3 from the form itself.
  const testing::WebSession api_session =
      testing::WebSignIn((*hub)->web_port());
  for (int i = 0; i < 2; ++i) {
    auto started = Exchange((*hub)->web_port(), "POST", "/api/sets/start",
                            {{"stationId", bays[i].station_id},
                             {"patientId", std::to_string(patients[i])},
                             {"stanceSide", "STANCE_SIDE_LEFT"}},
                            testing::Transport::kHttps, api_session.headers());
    ASSERT_TRUE(started.ok()) << started.status();
  }
  ASSERT_TRUE(browser.WaitUntil(
      absl::StrCat("const f = document.getElementById('start');"
                   "if (f.patient.options.length < 3) return false;"
                   "f.station.value = 'bay-3'; f.patient.value = '",
                   patients[2],
                   "'; f.side.value = 'STANCE_SIDE_LEFT';"
                   "f.querySelector('button').click(); return true;"),
      absl::Seconds(30)));

  // Live repetitions on every tile, and bay-3's pelvis alert.
  const bool live = browser.WaitUntil(
      "const t = [...document.querySelectorAll('.tile')];"
      "return t.length === 3 && t.every(x => Number(x.dataset.reps) >= 2) &&"
      "  /pelvis dropping/.test("
      "    document.querySelector('[data-station=\"bay-3\"]').dataset.alert);",
      absl::Seconds(120));
  browser.Screenshot(shots + "/clinic.png").IgnoreError();
  ASSERT_TRUE(live) << *browser.Run(
      "return [...document.querySelectorAll('.tile')].map(t => "
      "t.dataset.station + ': ' + t.dataset.reps + ' reps, alert: ' + "
      "t.dataset.alert).join('\\n');");
  auto tiles = browser.Run(
      "return [...document.querySelectorAll('.tile')].map(t => ({"
      "station: t.dataset.station, alert: t.dataset.alert,"
      "  flagged: t.classList.contains('alert'),"
      "  trace: Number(t.querySelector('.trace').dataset.points || 0)}));");
  ASSERT_TRUE(tiles.ok());
  for (const json& tile : *tiles) {
    SCOPED_TRACE(tile.dump());
    // The live pelvic-drop trace is drawn on every tile.
    EXPECT_GT(tile["trace"].get<int>(), 10);
    if (tile["station"] == "bay-3") {
      EXPECT_TRUE(tile["flagged"].get<bool>());
    }
    if (tile["station"] == "bay-1") {
      EXPECT_FALSE(tile["flagged"].get<bool>());
    }
  }

  // The patient's screen on bay-3: the cue, the count, compensated reps.
  ASSERT_TRUE(browser.Go(web + "/bay/bay-3").ok());
  EXPECT_TRUE(browser.WaitUntil(
      "return /hip bones level/.test(document.getElementById('cue')"
      "  .textContent) && Number(document.body.dataset.reps) >= 2 &&"
      "  document.querySelectorAll('.history .compensated').length >= 2;",
      absl::Seconds(30)));
  browser.Screenshot(shots + "/bay-3.png").IgnoreError();

  // Once the sets are done and ended: bay-3's patient's progress, charted.
  for (SimulatedBay& b : bays) b.thread.join();
  for (const SimulatedBay& b : bays) {
    v1::EndSetRequest req;
    req.set_station_id(b.station_id);
    v1::ExerciseSet set;
    grpc::ClientContext ctx;
    ASSERT_TRUE(clinic->EndSet(&ctx, req, &set).ok());
  }
  ASSERT_TRUE(browser.Go(absl::StrCat(web, "/patient/", patients[2])).ok());
  const bool charted = browser.WaitUntil(
      "return document.body.dataset.loaded === 'true' &&"
      "  ['drops', 'clean', 'sessions'].every(id => {"
      "    const c = document.getElementById(id);"
      "    return c.querySelector('canvas') && Number(c.dataset.points) > 0;"
      "  });",
      absl::Seconds(30));
  browser.Screenshot(shots + "/patient.png").IgnoreError();
  ASSERT_TRUE(charted) << *browser.Run("return document.body.innerText;");
  auto summary = browser.Run(
      "return {drops: Number(document.getElementById('drops').dataset.points),"
      "  rows: document.querySelectorAll('#reps tbody tr').length,"
      "  readiness: document.getElementById('readiness').textContent};");
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ((*summary)["drops"].get<int>(), 4);
  EXPECT_EQ((*summary)["rows"].get<int>(), 4);
  EXPECT_NE((*summary)["readiness"].get<std::string>().find("not ready"),
            std::string::npos)
      << summary->dump();
  stop_bays();
}

}  // namespace
}  // namespace stephub
