// The CLI's saved sign-in; see staff_session.h.
#include "tools/staff_session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace stephub::cli {

std::string StaffSessionPath() {
  if (const char* f = std::getenv("STEPHUB_SESSION_FILE"); f && *f) return f;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) {
    return absl::StrCat(x, "/stephub/session");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home ? home : ".", "/.config/stephub/session");
}

std::optional<StaffSession> LoadStaffSession(const std::string& path,
                                             const std::string& hub,
                                             absl::Time now) {
  std::ifstream in(path);
  StaffSession s;
  int64_t expires = 0;
  if (!std::getline(in, s.hub) || !std::getline(in, s.username) ||
      !std::getline(in, s.token) || !(in >> expires)) {
    return std::nullopt;
  }
  s.expires_at = absl::FromUnixSeconds(expires);
  if (s.hub != hub || s.expires_at <= now || s.token.empty()) {
    return std::nullopt;
  }
  return s;
}

absl::Status SaveStaffSession(const std::string& path,
                              const StaffSession& session) {
  const std::filesystem::path file(path);
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create ", file.parent_path().string(), ": ", ec.message()));
    }
    ::chmod(file.parent_path().c_str(), 0700);
  }
  const std::string temp = path + ".partial";
  // Created 0600 from the start: the token is never readable by others,
  // not even for a moment.
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", temp, ": ", std::strerror(errno)));
  }
  const std::string text =
      absl::StrCat(session.hub, "\n", session.username, "\n", session.token,
                   "\n", absl::ToUnixSeconds(session.expires_at), "\n");
  const bool written = ::write(fd, text.data(), text.size()) ==
                           static_cast<ssize_t>(text.size()) &&
                       ::fchmod(fd, 0600) == 0;
  ::close(fd);
  if (!written || std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

void RemoveStaffSession(const std::string& path) { std::remove(path.c_str()); }

}  // namespace stephub::cli
