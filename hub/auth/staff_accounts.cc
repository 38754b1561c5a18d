// Staff accounts, sessions, limits and the audit log; see staff_accounts.h.
#include "hub/auth/staff_accounts.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stephub::auth {
namespace {

constexpr size_t kTokenBytes = 32;
constexpr absl::string_view kTokenPrefix = "sth_";
// Names tried at sign-in that are remembered for lockout; beyond this the
// ones not locked out are forgotten, so a flood of made-up names cannot
// grow the hub's memory.
constexpr size_t kMaxRememberedFailures = 10000;

absl::Status CheckUsername(const std::string& username) {
  if (username.empty() || username.size() > 64) {
    return absl::InvalidArgumentError(
        "a user name must be 1 to 64 characters long");
  }
  for (char c : username) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          "a user name may only hold letters, digits, '.', '_' and '-'");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDisplayName(const std::string& name) {
  if (name.size() > 100) {
    return absl::InvalidArgumentError(
        "a display name may be at most 100 characters long");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "a display name must not contain control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(
      absl::StrCat(why,
                   ": sign in again (stephub login, or the dashboard's "
                   "sign-in page)"));
}

}  // namespace

std::string RoleNames(RoleSet roles) {
  std::string out;
  if (roles & kTherapist) out = "therapist";
  if (roles & kAdmin) absl::StrAppend(&out, out.empty() ? "" : "+", "admin");
  return out.empty() ? "no role" : out;
}

std::string Sha256Hex(absl::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), len));
}

StaffAccounts::StaffAccounts(store::ClinicStore& store,
                             StaffAuthOptions options)
    : store_(store), options_(std::move(options)) {}

absl::Status StaffAccounts::Load() {
  auto tokens = store_.LiveStaffTokens(options_.clock());
  if (!tokens.ok()) return tokens.status();
  auto users = store_.ListStaffUsers();
  if (!users.ok()) return users.status();
  std::map<std::string, RoleSet> roles;
  for (const auto& u : *users) {
    if (!u.disabled) roles[u.username] = u.roles;
  }
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.clear();
  for (const auto& t : *tokens) {
    if (auto it = roles.find(t.username); it != roles.end()) {
      sessions_[t.token_sha256] = {t.username, it->second, t.expires_at};
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<store::StaffUserRecord> StaffAccounts::AddUser(
    const std::string& username, const std::string& display_name, RoleSet roles,
    const std::string& password) {
  if (auto s = CheckUsername(username); !s.ok()) return s;
  if (auto s = CheckDisplayName(display_name); !s.ok()) return s;
  if ((roles & kAnyStaff) == 0 || (roles & ~kAnyStaff) != 0) {
    return absl::InvalidArgumentError(
        "give the user a role: therapist, admin or both");
  }
  if (auto s = CheckPasswordRules(password); !s.ok()) return s;
  auto hash = HashPassword(password, options_.scrypt);
  if (!hash.ok()) return hash.status();
  store::StaffUserRecord user;
  user.username = username;
  user.display_name = display_name.empty() ? username : display_name;
  user.roles = roles;
  user.password_hash = *hash;
  user.created_at = options_.clock();
  if (auto s = store_.CreateStaffUser(user); !s.ok()) return s;
  return user;
}

absl::StatusOr<std::vector<store::StaffUserRecord>> StaffAccounts::ListUsers() {
  return store_.ListStaffUsers();
}

absl::StatusOr<store::StaffUserRecord> StaffAccounts::SetDisabled(
    const std::string& username, bool disabled) {
  auto user = store_.GetStaffUser(username);
  if (!user.ok()) return user.status();
  user->disabled = disabled;
  if (auto s = store_.UpdateStaffUser(*user); !s.ok()) return s;
  if (disabled) {
    if (auto s = store_.DeleteStaffTokensOf(username); !s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    ForgetSessionsOf(username);
  }
  return user;
}

absl::Status StaffAccounts::SetPassword(const std::string& username,
                                        const std::string& new_password) {
  if (auto s = CheckPasswordRules(new_password); !s.ok()) return s;
  auto user = store_.GetStaffUser(username);
  if (!user.ok()) return user.status();
  auto hash = HashPassword(new_password, options_.scrypt);
  if (!hash.ok()) return hash.status();
  user->password_hash = *hash;
  if (auto s = store_.UpdateStaffUser(*user); !s.ok()) return s;
  if (auto s = store_.DeleteStaffTokensOf(username); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  ForgetSessionsOf(username);
  return absl::OkStatus();
}

absl::Status StaffAccounts::CheckPassword(const std::string& username,
                                          const std::string& password) {
  auto user = store_.GetStaffUser(username);
  if (!user.ok() && !absl::IsNotFound(user.status())) return user.status();
  const bool good = user.ok() ? VerifyPassword(password, user->password_hash)
                              : (VerifyPassword(password, DecoyHash()), false);
  if (!good) return absl::UnauthenticatedError("wrong password");
  return absl::OkStatus();
}

const std::string& StaffAccounts::DecoyHash() {
  std::call_once(decoy_once_, [this] {
    decoy_hash_ =
        HashPassword("no such user, no such password", options_.scrypt)
            .value_or("");
  });
  return decoy_hash_;
}

absl::StatusOr<SignedIn> StaffAccounts::Login(const std::string& username,
                                              const std::string& password,
                                              const std::string& client) {
  const absl::Time now = options_.clock();
  if (!CheckUsername(username).ok()) {
    return absl::UnauthenticatedError("wrong user name or password");
  }
  if (client.size() > 200) {
    return absl::InvalidArgumentError(
        "client may be at most 200 characters long");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = failures_.find(username);
        it != failures_.end() && it->second.locked_until > now) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "too many wrong passwords for %s: try again in %d s", username,
          static_cast<int64_t>(std::ceil(
              absl::ToDoubleSeconds(it->second.locked_until - now)))));
    }
  }
  auto user = store_.GetStaffUser(username);
  if (!user.ok() && !absl::IsNotFound(user.status())) return user.status();
  // The same work whether or not the name exists, so that timing does not
  // tell which names do.
  const bool good = user.ok() ? VerifyPassword(password, user->password_hash) &&
                                    !user->disabled
                              : (VerifyPassword(password, DecoyHash()), false);
  if (!good) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (failures_.size() >= kMaxRememberedFailures) {
        std::erase_if(failures_, [&](const auto& entry) {
          return entry.second.locked_until <= now;
        });
      }
      Failures& f = failures_[username];
      ++f.in_a_row;
      if (f.in_a_row >= options_.failures_before_lockout) {
        const int doublings =
            std::min(f.in_a_row - options_.failures_before_lockout, 20);
        f.locked_until =
            now + std::min(options_.first_lockout * (1 << doublings),
                           options_.max_lockout);
      }
    }
    if (user.ok()) {
      (void)AuditAs(username, "login_failed",
                    user->disabled ? "account disabled" : "wrong password");
    }
    return absl::UnauthenticatedError("wrong user name or password");
  }

  std::string secret(kTokenBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()),
                 static_cast<int>(secret.size())) != 1) {
    return absl::InternalError("no random bytes for a session token");
  }
  SignedIn signed_in;
  signed_in.token =
      absl::StrCat(kTokenPrefix, absl::WebSafeBase64Escape(secret));
  signed_in.expires_at = now + options_.session_lifetime;
  signed_in.user = *user;
  store::StaffTokenRecord record;
  record.token_sha256 = Sha256Hex(signed_in.token);
  record.username = username;
  record.issued_at = now;
  record.expires_at = signed_in.expires_at;
  record.client = client;
  if (auto s = store_.SaveStaffToken(record); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.erase(username);
    sessions_[record.token_sha256] = {username, user->roles,
                                      signed_in.expires_at};
  }
  if (auto s = AuditAs(username, "login", client); !s.ok()) return s;
  return signed_in;
}

absl::Status StaffAccounts::Logout(const Caller& caller) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_.erase(caller.token_sha256);
  }
  if (auto s = store_.DeleteStaffToken(caller.token_sha256); !s.ok()) {
    return s;
  }
  return AuditAs(caller.username, "logout", "");
}

bool StaffAccounts::SessionLive(const std::string& token_sha256) {
  const absl::Time now = options_.clock();
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = sessions_.find(token_sha256);
  return it != sessions_.end() && it->second.expires_at > now;
}

absl::StatusOr<Caller> StaffAccounts::Authorize(absl::string_view authorization,
                                                RoleSet allowed) {
  if (authorization.empty()) {
    return Unauthenticated("no sign-in token with the call");
  }
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() > 200 ||
      !absl::StartsWithIgnoreCase(authorization, kScheme)) {
    return Unauthenticated(
        "the authorization is not \"Bearer <token>\" from a sign-in");
  }
  const std::string hash = Sha256Hex(
      absl::StripAsciiWhitespace(authorization.substr(kScheme.size())));
  const absl::Time now = options_.clock();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(hash);
  if (it == sessions_.end()) {
    return Unauthenticated("unknown or ended session");
  }
  if (it->second.expires_at <= now) {
    sessions_.erase(it);
    return Unauthenticated("the session has expired");
  }
  Caller caller{it->second.username, it->second.roles, hash};
  if ((caller.roles & allowed) == 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        caller.username, " is ", RoleNames(caller.roles), "; this needs ",
        allowed == kAnyStaff ? "a staff role" : RoleNames(allowed)));
  }
  if (!TakeRequest(caller.username, now)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%s is making more than %.0f requests a second: slow down",
        caller.username, options_.requests_per_second));
  }
  return caller;
}

absl::Status StaffAccounts::Audit(const Caller& caller,
                                  const std::string& action, int64_t patient_id,
                                  const std::string& detail) {
  store::AuditRecord entry;
  entry.time = options_.clock();
  entry.username = caller.username;
  entry.action = action;
  entry.patient_id = patient_id;
  entry.detail = detail;
  auto id = store_.AddAudit(entry);
  return id.ok() ? absl::OkStatus() : id.status();
}

absl::Status StaffAccounts::AuditAs(const std::string& username,
                                    const std::string& action,
                                    const std::string& detail) {
  return Audit(Caller{username, 0, ""}, action, 0, detail);
}

void StaffAccounts::ForgetSessionsOf(const std::string& username) {
  std::erase_if(sessions_, [&](const auto& entry) {
    return entry.second.username == username;
  });
}

bool StaffAccounts::TakeRequest(const std::string& username, absl::Time now) {
  Bucket& b = buckets_[username];
  if (b.updated == absl::InfinitePast()) {
    b.tokens = options_.request_burst;
  } else {
    b.tokens = std::min(options_.request_burst,
                        b.tokens + absl::ToDoubleSeconds(now - b.updated) *
                                       options_.requests_per_second);
  }
  b.updated = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace stephub::auth
