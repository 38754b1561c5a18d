// Where `stephub login` keeps the signed-in session between commands: a
// file only its owner can read, naming the hub it belongs to so that the
// token is never sent to another hub.
#ifndef STEPHUB_TOOLS_STAFF_SESSION_H_
#define STEPHUB_TOOLS_STAFF_SESSION_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace stephub::cli {

struct StaffSession {
  std::string hub;  // the address it was signed in at
  std::string username;
  std::string token;
  absl::Time expires_at;
};

// $STEPHUB_SESSION_FILE, else $XDG_CONFIG_HOME/stephub/session, else
// ~/.config/stephub/session.
std::string StaffSessionPath();

// The session saved for `hub`, if any and not expired.
std::optional<StaffSession> LoadStaffSession(const std::string& path,
                                             const std::string& hub,
                                             absl::Time now);
// Written 0600 (its directory 0700), replacing any other.
absl::Status SaveStaffSession(const std::string& path,
                              const StaffSession& session);
void RemoveStaffSession(const std::string& path);

}  // namespace stephub::cli

#endif  // STEPHUB_TOOLS_STAFF_SESSION_H_
