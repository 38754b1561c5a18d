// Who may use the hub: staff accounts, sign-in with bearer tokens that
// expire, roles, per-person request limits and the audit log. No gRPC or
// HTTP here; hub/api and hub/web read the token from their own headers and
// ask this class.
#ifndef STEPHUB_HUB_AUTH_STAFF_ACCOUNTS_H_
#define STEPHUB_HUB_AUTH_STAFF_ACCOUNTS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "hub/auth/password.h"
#include "hub/store/store.h"

namespace stephub::auth {

// Roles as bits, so that one person may hold both.
using RoleSet = uint32_t;
inline constexpr RoleSet kTherapist = 1;  // patients, sets, patient reports
inline constexpr RoleSet kAdmin = 2;      // stations, staff, clinic reports
inline constexpr RoleSet kAnyStaff = kTherapist | kAdmin;

// "therapist", "admin", "therapist+admin".
std::string RoleNames(RoleSet roles);

struct StaffAuthOptions {
  // A working day: a token from the morning's sign-in lasts the day.
  absl::Duration session_lifetime = absl::Hours(12);
  // After this many wrong passwords in a row for a name, sign-in for it
  // waits first_lockout, doubling with each further failure up to
  // max_lockout.
  int failures_before_lockout = 5;
  absl::Duration first_lockout = absl::Minutes(1);
  absl::Duration max_lockout = absl::Minutes(15);
  // Each person's calls: a bucket of `request_burst` refilled at
  // `requests_per_second`. A dashboard page makes a handful of calls, a
  // script a few hundred in a burst; a runaway loop is slowed down.
  double requests_per_second = 50;
  double request_burst = 300;
  ScryptCost scrypt;  // tests lower it
  std::function<absl::Time()> clock = &absl::Now;
};

// The person behind a call.
struct Caller {
  std::string username;
  RoleSet roles = 0;
  std::string token_sha256;  // the session, for Logout
};

struct SignedIn {
  std::string token;  // secret; only its hash is kept
  absl::Time expires_at;
  store::StaffUserRecord user;
};

class StaffAccounts {
 public:
  StaffAccounts(store::ClinicStore& store, StaffAuthOptions options = {});

  // Sessions still valid (the hub restarted: signed-in staff stay so).
  absl::Status Load();

  // INVALID_ARGUMENT for a bad name, no roles or a weak password;
  // ALREADY_EXISTS for a taken name.
  absl::StatusOr<store::StaffUserRecord> AddUser(
      const std::string& username, const std::string& display_name,
      RoleSet roles, const std::string& password);
  absl::StatusOr<std::vector<store::StaffUserRecord>> ListUsers();
  absl::StatusOr<store::StaffUserRecord> GetUser(const std::string& username) {
    return store_.GetStaffUser(username);
  }
  // Disabling ends the account's sessions at once.
  absl::StatusOr<store::StaffUserRecord> SetDisabled(
      const std::string& username, bool disabled);
  // Ends every session of the account (the one changing it signs in again).
  absl::Status SetPassword(const std::string& username,
                           const std::string& new_password);
  // UNAUTHENTICATED unless `password` is the account's.
  absl::Status CheckPassword(const std::string& username,
                             const std::string& password);

  // UNAUTHENTICATED for an unknown name, a wrong password or a disabled
  // account, without saying which; RESOURCE_EXHAUSTED while the name is
  // locked out after repeated failures. Failures and successes are audited.
  absl::StatusOr<SignedIn> Login(const std::string& username,
                                 const std::string& password,
                                 const std::string& client);
  absl::Status Logout(const Caller& caller);
  // Whether the session (Caller::token_sha256) still stands: not signed
  // out, expired, or ended by disabling or a new password. For calls that
  // outlive their check (a live watch).
  bool SessionLive(const std::string& token_sha256);

  // `authorization` is the header's value, "Bearer <token>".
  // UNAUTHENTICATED when missing, malformed, unknown or expired;
  // PERMISSION_DENIED when the person holds none of `allowed`;
  // RESOURCE_EXHAUSTED over the person's request rate.
  absl::StatusOr<Caller> Authorize(absl::string_view authorization,
                                   RoleSet allowed);

  // Records that `caller` did `action` (to `patient_id`'s record, 0 for
  // none). Committed before it returns.
  absl::Status Audit(const Caller& caller, const std::string& action,
                     int64_t patient_id, const std::string& detail);
  // Newest first; see ClinicStore::AuditPage.
  absl::StatusOr<std::vector<store::AuditRecord>> AuditPage(int64_t patient_id,
                                                            int64_t before_id,
                                                            int limit) {
    return store_.AuditPage(patient_id, before_id, limit);
  }

 private:
  struct Session {
    std::string username;
    RoleSet roles = 0;
    absl::Time expires_at;
  };
  struct Failures {
    int in_a_row = 0;
    absl::Time locked_until = absl::InfinitePast();
  };
  struct Bucket {
    double tokens = 0;
    absl::Time updated = absl::InfinitePast();
  };

  absl::Status AuditAs(const std::string& username, const std::string& action,
                       const std::string& detail);
  void ForgetSessionsOf(const std::string& username);             // mu_ held
  bool TakeRequest(const std::string& username, absl::Time now);  // mu_ held
  const std::string& DecoyHash();

  store::ClinicStore& store_;
  const StaffAuthOptions options_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;   // by token SHA-256
  std::map<std::string, Failures> failures_;  // by username tried
  std::map<std::string, Bucket> buckets_;     // by username
  std::once_flag decoy_once_;
  std::string decoy_hash_;
};

// SHA-256 of `text`, hex.
std::string Sha256Hex(absl::string_view text);

}  // namespace stephub::auth

#endif  // STEPHUB_HUB_AUTH_STAFF_ACCOUNTS_H_
