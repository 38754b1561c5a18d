// Staff accounts on a real clinic database: sign-in, roles, expiry,
// lockout, request limits, disabling and the audit trail.
#include "hub/auth/staff_accounts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace stephub::auth {
namespace {

class StaffAccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat(
               "staff_accounts_",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    accounts_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Open() {
    accounts_.reset();
    store_.reset();
    auto store = store::OpenSqliteStore((dir_ / "stephub.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    StaffAuthOptions options;
    options.scrypt = {uint64_t{1} << 10, 8, 1};
    options.clock = [this] { return now_; };
    options.request_burst = 20;
    options.requests_per_second = 2;
    accounts_ = std::make_unique<StaffAccounts>(*store_, options);
    ASSERT_TRUE(accounts_->Load().ok());
  }

  std::string SignIn(const std::string& user, const std::string& password) {
    auto signed_in = accounts_->Login(user, password, "test");
    EXPECT_TRUE(signed_in.ok()) << signed_in.status();
    return signed_in.ok() ? "Bearer " + signed_in->token : "";
  }

  std::vector<std::string> AuditActions() {
    auto page = store_->AuditPage(0, 0, 100);
    EXPECT_TRUE(page.ok());
    std::vector<std::string> actions;
    for (auto it = page->rbegin(); it != page->rend(); ++it) {
      actions.push_back(it->username + ":" + it->action);
    }
    return actions;
  }

  std::filesystem::path dir_;
  absl::Time now_ = absl::FromUnixSeconds(1'790'000'000);
  std::unique_ptr<store::ClinicStore> store_;
  std::unique_ptr<StaffAccounts> accounts_;
};

TEST_F(StaffAccountsTest, AddUserChecksWhatItIsGiven) {
  EXPECT_TRUE(
      accounts_->AddUser("anna", "Anna K", kTherapist, "long enough pw").ok());
  EXPECT_EQ(
      accounts_->AddUser("anna", "", kAdmin, "long enough pw").status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      accounts_->AddUser("an na", "", kAdmin, "long enough pw").status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      accounts_->AddUser("", "", kAdmin, "long enough pw").status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accounts_->AddUser("bob", "", 0, "long enough pw").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accounts_->AddUser("bob", "", 4, "long enough pw").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accounts_->AddUser("bob", "", kAdmin, "short").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accounts_->AddUser("bob", "a\nb", kAdmin, "long enough pw")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  auto users = accounts_->ListUsers();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ((*users)[0].display_name, "Anna K");
  EXPECT_EQ((*users)[0].roles, kTherapist);
}

TEST_F(StaffAccountsTest, TokenCarriesTheRoles) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  ASSERT_TRUE(
      accounts_->AddUser("root", "", kAdmin | kTherapist, "admin password")
          .ok());
  const std::string anna = SignIn("anna", "anna's password");
  const std::string root = SignIn("root", "admin password");

  auto caller = accounts_->Authorize(anna, kTherapist);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->username, "anna");
  auto denied = accounts_->Authorize(anna, kAdmin);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(denied.status().message().find("anna is therapist"),
            std::string::npos)
      << denied.status();
  EXPECT_TRUE(accounts_->Authorize(root, kAdmin).ok());
  EXPECT_TRUE(accounts_->Authorize(root, kTherapist).ok());
  // The scheme's case does not matter; the token's does.
  std::string lower = anna;
  lower.replace(0, 6, "bearer");
  EXPECT_TRUE(accounts_->Authorize(lower, kTherapist).ok());
  std::string changed = anna;
  changed.back() = changed.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(accounts_->Authorize(changed, kTherapist).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(StaffAccountsTest, MissingOrMalformedTokensAreUnauthenticated) {
  for (const char* header : {"", "Bearer", "Basic YW5uYTpwdw==", "sth_abc",
                             "Bearer sth_not_a_session"}) {
    auto r = accounts_->Authorize(header, kAnyStaff);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << header;
  }
  EXPECT_EQ(accounts_->Authorize("Bearer " + std::string(1000, 'x'), kAnyStaff)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(StaffAccountsTest, TokensExpire) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  const std::string anna = SignIn("anna", "anna's password");
  now_ += absl::Hours(12) - absl::Seconds(1);
  EXPECT_TRUE(accounts_->Authorize(anna, kTherapist).ok());
  now_ += absl::Seconds(1);
  auto expired = accounts_->Authorize(anna, kTherapist);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
}

TEST_F(StaffAccountsTest, WrongPasswordsLockTheNameOutForAWhile) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  auto unknown = accounts_->Login("nobody", "anna's password", "test");
  auto wrong = accounts_->Login("anna", "not her password", "test");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  // Which of the two was wrong is not told.
  EXPECT_EQ(unknown.status().message(), wrong.status().message());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(accounts_->Login("anna", "guess", "test").status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  // Five in a row: even the right password waits a minute.
  auto locked = accounts_->Login("anna", "anna's password", "test");
  EXPECT_EQ(locked.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(locked.status().message().find("60 s"), std::string::npos)
      << locked.status();
  now_ += absl::Minutes(1);
  EXPECT_TRUE(accounts_->Login("anna", "anna's password", "test").ok());
}

TEST_F(StaffAccountsTest, LockoutDoublesUpToItsLimit) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  absl::Duration expected = absl::Minutes(1);
  for (int i = 0; i < 5; ++i) (void)accounts_->Login("anna", "guess", "t");
  for (int round = 0; round < 6; ++round) {
    now_ += expected - absl::Seconds(1);
    EXPECT_EQ(accounts_->Login("anna", "anna's password", "t").status().code(),
              absl::StatusCode::kResourceExhausted)
        << round;
    now_ += absl::Seconds(1);
    (void)accounts_->Login("anna", "guess", "t");
    expected = std::min(expected * 2, absl::Minutes(15));
  }
}

TEST_F(StaffAccountsTest, DisablingEndsSessionsAndSignIn) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  const std::string anna = SignIn("anna", "anna's password");
  ASSERT_TRUE(accounts_->SetDisabled("anna", true).ok());
  EXPECT_EQ(accounts_->Authorize(anna, kTherapist).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(accounts_->Login("anna", "anna's password", "t").status().code(),
            absl::StatusCode::kUnauthenticated);
  ASSERT_TRUE(accounts_->SetDisabled("anna", false).ok());
  EXPECT_TRUE(accounts_->Login("anna", "anna's password", "t").ok());
  EXPECT_EQ(accounts_->SetDisabled("nobody", true).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StaffAccountsTest, NewPasswordEndsSessions) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  const std::string anna = SignIn("anna", "anna's password");
  ASSERT_TRUE(accounts_->SetPassword("anna", "a new password").ok());
  EXPECT_EQ(accounts_->Authorize(anna, kTherapist).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_FALSE(accounts_->Login("anna", "anna's password", "t").ok());
  EXPECT_TRUE(accounts_->Login("anna", "a new password", "t").ok());
  EXPECT_TRUE(accounts_->CheckPassword("anna", "a new password").ok());
  EXPECT_EQ(accounts_->CheckPassword("anna", "anna's password").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(accounts_->SetPassword("anna", "short").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(StaffAccountsTest, LogoutEndsTheSessionOnly) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  const std::string phone = SignIn("anna", "anna's password");
  const std::string desk = SignIn("anna", "anna's password");
  auto caller = accounts_->Authorize(phone, kTherapist);
  ASSERT_TRUE(caller.ok());
  ASSERT_TRUE(accounts_->Logout(*caller).ok());
  EXPECT_EQ(accounts_->Authorize(phone, kTherapist).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(accounts_->Authorize(desk, kTherapist).ok());
}

TEST_F(StaffAccountsTest, SessionsOutliveARestartButNotTheirExpiry) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  const std::string anna = SignIn("anna", "anna's password");
  Open();
  EXPECT_TRUE(accounts_->Authorize(anna, kTherapist).ok());
  now_ += absl::Hours(13);
  Open();
  EXPECT_EQ(accounts_->Authorize(anna, kTherapist).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(StaffAccountsTest, TheDatabaseHoldsNoUsableSecret) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  const std::string anna = SignIn("anna", "anna's password");
  accounts_.reset();
  store_.reset();
  std::string bytes;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    std::ifstream in(entry.path(), std::ios::binary);
    bytes.append(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(bytes.find(anna.substr(7)), std::string::npos);
  EXPECT_EQ(bytes.find("anna's password"), std::string::npos);
  EXPECT_NE(bytes.find(Sha256Hex(anna.substr(7))), std::string::npos);
}

TEST_F(StaffAccountsTest, RequestRateIsLimitedPerPerson) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  ASSERT_TRUE(
      accounts_->AddUser("ben", "", kTherapist, "ben's password!").ok());
  const std::string anna = SignIn("anna", "anna's password");
  const std::string ben = SignIn("ben", "ben's password!");
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(accounts_->Authorize(anna, kTherapist).ok()) << i;
  }
  EXPECT_EQ(accounts_->Authorize(anna, kTherapist).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(accounts_->Authorize(ben, kTherapist).ok());
  now_ += absl::Seconds(1);  // two more at 2 per second
  EXPECT_TRUE(accounts_->Authorize(anna, kTherapist).ok());
  EXPECT_TRUE(accounts_->Authorize(anna, kTherapist).ok());
  EXPECT_FALSE(accounts_->Authorize(anna, kTherapist).ok());
}

TEST_F(StaffAccountsTest, AuditsSignInsAndWhatIsDone) {
  ASSERT_TRUE(
      accounts_->AddUser("anna", "", kTherapist, "anna's password").ok());
  (void)accounts_->Login("anna", "wrong password", "t");
  const std::string anna = SignIn("anna", "anna's password");
  auto caller = accounts_->Authorize(anna, kTherapist);
  ASSERT_TRUE(caller.ok());
  ASSERT_TRUE(accounts_->Audit(*caller, "set_started", 7, "bay-1").ok());
  ASSERT_TRUE(accounts_->Logout(*caller).ok());
  EXPECT_EQ(AuditActions(),
            (std::vector<std::string>{"anna:login_failed", "anna:login",
                                      "anna:set_started", "anna:logout"}));
  auto of_patient = store_->AuditPage(7, 0, 10);
  ASSERT_TRUE(of_patient.ok());
  ASSERT_EQ(of_patient->size(), 1u);
  EXPECT_EQ((*of_patient)[0].detail, "bay-1");
  EXPECT_EQ((*of_patient)[0].time, now_);
}

}  // namespace
}  // namespace stephub::auth
