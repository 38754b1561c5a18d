// Structured logging for the daemons: one line per event, logfmt
// (key=value, values quoted when they hold spaces), with a level filter, so
// that journald and log shippers can parse it without guessing.
//
//   Log(LogLevel::kInfo, "connected").With("hub", address).With("seq", 12);
//   -> ts=2026-11-23T10:00:00.123456Z level=info event=connected hub=... seq=12
#ifndef STEPHUB_COMMON_LOG_H_
#define STEPHUB_COMMON_LOG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace stephub {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "debug", "info", "warning" (or "warn"), "error".
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// Fields added to every line (e.g. station=bay-1). Set once at start-up.
void SetLogContext(std::string key, std::string value);

// One log line; written (atomically, one write) when it goes out of scope.
class Log {
 public:
  Log(LogLevel level, absl::string_view event);
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  template <typename T>
  Log& With(absl::string_view key, const T& value) {
    if (enabled_) Field(key, absl::StrCat(value));
    return *this;
  }
  Log& With(absl::string_view key, const absl::Status& status) {
    if (enabled_) Field(key, status.ToString());
    return *this;
  }

 private:
  void Field(absl::string_view key, absl::string_view value);

  const bool enabled_;
  std::string line_;
};

}  // namespace stephub

#endif  // STEPHUB_COMMON_LOG_H_
