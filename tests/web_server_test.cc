// The web dashboard's HTTP side against an in-process hub on loopback:
// pages and API answers, every kind of bad request with a clear status and
// message, the connection cap, and a hub that shuts down with a live page
// open.
#include "hub/web/web_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "hub/api/hub_server.h"
#include "tests/test_hub.h"
#include "tests/testing.h"

namespace stephub {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class WebServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api::HubOptions options;
    options.listen_address = "127.0.0.1:0";
    options.web_listen_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    testing::UseTestTls(&options);
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    port_ = hub_->web_port();
    ASSERT_GT(port_, 0);
    session_ = testing::WebSignIn(port_);
    ASSERT_FALSE(session_.cookie.empty());
  }

  testing::HttpReply Get(const std::string& target) {
    return testing::HttpExchange(port_, "GET", target, "", "",
                                 session_.headers());
  }
  testing::HttpReply Post(const std::string& target, const std::string& body) {
    return testing::HttpExchange(port_, "POST", target, body, "",
                                 session_.headers());
  }

  testing::TempDir dir_;
  std::unique_ptr<api::HubServer> hub_;
  int port_ = 0;
  testing::WebSession session_;
};

TEST_F(WebServerTest, PagesAndApiAnswer) {
  auto clinic = Get("/");
  EXPECT_EQ(clinic.status, 200);
  EXPECT_THAT(clinic.content_type, StartsWith("text/html"));
  EXPECT_THAT(clinic.body, HasSubstr("every bay"));
  EXPECT_THAT(Get("/bay/bay-1").body, HasSubstr("Keep your hip bones level"));
  EXPECT_THAT(Get("/patient/3").body, HasSubstr("Sessions per week"));
  auto chart_library = Get("/uPlot.iife.min.js");
  EXPECT_EQ(chart_library.status, 200);
  EXPECT_THAT(chart_library.content_type, StartsWith("text/javascript"));
  EXPECT_GT(chart_library.body.size(), 10'000u);

  EXPECT_EQ(Get("/api/stations").body, R"({"stations":[]})");
  EXPECT_EQ(Get("/api/patients").body, R"({"patients":[]})");
  auto snapshot = Get("/api/clinic");
  EXPECT_EQ(snapshot.status, 200);
  EXPECT_THAT(snapshot.body, HasSubstr(R"("activeSets":[])"));
  auto versions = Get("/api/scoring-versions");
  EXPECT_EQ(versions.status, 200);
  EXPECT_THAT(versions.body, HasSubstr(R"("hubScoresWithIt":true)"));
}

TEST_F(WebServerTest, BadRequestsGetAStatusAndAReason) {
  auto no_patient = Get("/api/patients/77/progress");
  EXPECT_EQ(no_patient.status, 404);
  EXPECT_THAT(no_patient.body, HasSubstr("no patient 77"));
  EXPECT_THAT(no_patient.content_type, StartsWith("application/json"));
  EXPECT_EQ(Get("/api/patients/abc/progress").status, 404);
  EXPECT_EQ(Get("/api/nothing").status, 404);
  EXPECT_EQ(Get("/nothing.html").status, 404);

  auto garbage = Post("/api/sets/start", "garbage");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_THAT(garbage.body, HasSubstr("not a StartSetRequest in JSON"));
  auto unknown_field = Post("/api/sets/start", R"({"bay":"bay-1"})");
  EXPECT_EQ(unknown_field.status, 400);
  auto no_station =
      Post("/api/sets/start", R"({"stationId":"bay-9","patientId":"1",)"
                              R"("stanceSide":"STANCE_SIDE_LEFT"})");
  EXPECT_EQ(no_station.status, 404);
  EXPECT_THAT(no_station.body, HasSubstr("no station \\\"bay-9\\\""));
  auto no_side = Post("/api/sets/start", R"({"stationId":"bay-9"})");
  EXPECT_EQ(no_side.status, 400);
  EXPECT_EQ(Post("/api/sets/end", "{}").status, 400);
  EXPECT_EQ(testing::HttpExchange(port_, "DELETE", "/api/stations").status,
            405);

  auto malformed =
      testing::HttpExchange(port_, "", "", "", "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.body, HasSubstr("bad HTTP request"));
  auto oversized = Post("/api/sets/start", std::string(100'000, 'x'));
  EXPECT_EQ(oversized.status, 413) << oversized.body;
  // A cookie whose token is not ASCII once aborted the hub inside gRPC
  // (invalid metadata); it is no session.
  auto not_ascii =
      testing::HttpExchange(port_, "", "", "",
                            "GET /api/patients HTTP/1.1\r\nHost: hub\r\n"
                            "Cookie: stephub_session=ab\xba\xba\r\n\r\n");
  EXPECT_EQ(not_ascii.status, 401);

  // Nothing the pages were sent has harmed the hub.
  EXPECT_EQ(Get("/api/stations").status, 200);
}

// The socket-free entry point the HTTP fuzz target drives answers as a
// connection does: same routing, same limits, same hub behind it.
TEST_F(WebServerTest, RequestHandlerAnswersAsAConnectionDoes) {
  web::WebRequestHandler handler(
      {}, grpc::CreateChannel(absl::StrCat("127.0.0.1:", hub_->port()),
                              testing::StaffCredentials()));
  const std::string stations = handler.Answer(absl::StrCat(
      "GET /api/stations HTTP/1.1\r\nHost: hub\r\nCookie: ", session_.cookie,
      "\r\n\r\n"));
  EXPECT_THAT(stations, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(stations, HasSubstr(Get("/api/stations").body));

  const std::string signed_out =
      handler.Answer("GET /api/patients HTTP/1.1\r\nHost: hub\r\n\r\n");
  EXPECT_THAT(signed_out, StartsWith("HTTP/1.1 401"));

  // Nothing at all (the fuzzer's first find: Beast asserts on an end of
  // input before any byte).
  EXPECT_THAT(handler.Answer(""), StartsWith("HTTP/1.1 400"));
  const std::string garbage = handler.Answer("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_THAT(garbage, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(garbage, HasSubstr("bad HTTP request"));
  const std::string cut_short =
      handler.Answer("GET /api/stations HTTP/1.1\r\nHost: hu");
  EXPECT_THAT(cut_short, StartsWith("HTTP/1.1 400"));
  const std::string huge_header = handler.Answer(absl::StrCat(
      "GET / HTTP/1.1\r\nX-Pad: ", std::string(70'000, 'x'), "\r\n\r\n"));
  EXPECT_THAT(huge_header, StartsWith("HTTP/1.1 413"));
}

TEST_F(WebServerTest, SignInIsNeededAndPostsNeedTheCsrfToken) {
  auto anonymous = testing::HttpExchange(port_, "GET", "/api/patients");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_THAT(anonymous.body, HasSubstr("UNAUTHENTICATED"));
  EXPECT_EQ(testing::HttpExchange(port_, "GET", "/api/events").status, 401);
  EXPECT_EQ(testing::HttpExchange(port_, "GET", "/api/session").status, 401);
  // The pages themselves hold no data; the sign-in page is one of them.
  EXPECT_EQ(testing::HttpExchange(port_, "GET", "/").status, 200);
  EXPECT_THAT(testing::HttpExchange(port_, "GET", "/login").body,
              HasSubstr("Sign in"));

  auto wrong = testing::HttpExchange(
      port_, "POST", "/api/login",
      R"({"username":"test-staff","password":"not the password"})");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_TRUE(wrong.set_cookie.empty());
  EXPECT_EQ(
      testing::HttpExchange(port_, "POST", "/api/login", "garbage").status,
      400);

  const testing::WebSession fresh = testing::WebSignIn(port_);
  auto login = testing::HttpExchange(
      port_, "POST", "/api/login",
      R"({"username":"test-staff","password":"test staff password"})");
  EXPECT_EQ(login.status, 200);
  EXPECT_THAT(login.set_cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(login.set_cookie, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(login.body, HasSubstr("\"username\":\"test-staff\""));
  EXPECT_THAT(login.body,
              Not(HasSubstr("sth_")));  // the token stays in the cookie
  auto who = testing::HttpExchange(port_, "GET", "/api/session", "", "",
                                   fresh.headers());
  EXPECT_EQ(who.status, 200);
  EXPECT_THAT(who.body, HasSubstr(fresh.csrf));

  const std::string start =
      R"({"stationId":"bay-9","patientId":"1","stanceSide":"STANCE_SIDE_LEFT"})";
  // A POST from another site carries the cookie but cannot know the token.
  auto forged = testing::HttpExchange(port_, "POST", "/api/sets/start", start,
                                      "", {{"Cookie", fresh.cookie}});
  EXPECT_EQ(forged.status, 403);
  EXPECT_THAT(forged.body, HasSubstr("X-CSRF-Token"));
  auto other_token = testing::HttpExchange(
      port_, "POST", "/api/sets/start", start, "",
      {{"Cookie", fresh.cookie}, {"X-CSRF-Token", session_.csrf}});
  EXPECT_EQ(other_token.status, 403);
  // With it, the request reaches the hub (which has no bay-9).
  EXPECT_EQ(testing::HttpExchange(port_, "POST", "/api/sets/start", start, "",
                                  fresh.headers())
                .status,
            404);

  auto logout = testing::HttpExchange(port_, "POST", "/api/logout", "{}", "",
                                      fresh.headers());
  EXPECT_EQ(logout.status, 200);
  EXPECT_THAT(logout.set_cookie, HasSubstr("Max-Age=0"));
  EXPECT_EQ(testing::HttpExchange(port_, "GET", "/api/patients", "", "",
                                  fresh.headers())
                .status,
            401);
  // Another session of the same person is untouched.
  EXPECT_EQ(Get("/api/patients").status, 200);
}

TEST_F(WebServerTest, AnAdminWithoutTheTherapistRoleSeesNoPatients) {
  ASSERT_TRUE(api::AddStaffAccount(dir_.path(), "it-admin", "", auth::kAdmin,
                                   "it admin password")
                  .ok());
  const testing::WebSession admin =
      testing::WebSignIn(port_, "it-admin", "it admin password");
  auto patients = testing::HttpExchange(port_, "GET", "/api/patients", "", "",
                                        admin.headers());
  EXPECT_EQ(patients.status, 403);
  EXPECT_THAT(patients.body, HasSubstr("needs therapist"));
  EXPECT_EQ(testing::HttpExchange(port_, "GET", "/api/stations", "", "",
                                  admin.headers())
                .status,
            200);
}

TEST_F(WebServerTest, ConnectionsBeyondTheCapGet503AndTheRestCarryOn) {
  // 64 pages open at once (the default cap), each a live event stream.
  std::vector<std::unique_ptr<testing::OpenWebPage>> open;
  for (int i = 0; i < 64; ++i) {
    open.push_back(std::make_unique<testing::OpenWebPage>(
        port_, "GET /api/events HTTP/1.1\r\nHost: x\r\nCookie: " + session_.cookie +
            "\r\n\r\n"));
    ASSERT_THAT(open.back()->head(), HasSubstr("200 OK"));
  }
  auto refused = Get("/api/stations");
  EXPECT_EQ(refused.status, 503);
  EXPECT_THAT(refused.body, HasSubstr("too many dashboard connections"));
  open.pop_back();  // one page closes: room again
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Get("/api/stations").status == 200; }, absl::Seconds(30)));
  // The hub stops with the other 63 live pages still open.
  hub_.reset();
}

}  // namespace
}  // namespace stephub
