// Structured logging; see log.h.
#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace stephub {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_context_mu;
std::string g_context;  // " key=value ..." appended after the event

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendValue(absl::string_view value, std::string* out) {
  bool quote = value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' ||
        static_cast<unsigned char>(c) < 0x20) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out->append(value.data(), value.size());
    return;
  }
  out->push_back('"');
  for (char c : value) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out->push_back(' ');
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "debug") return LogLevel::kDebug;
  if (n == "info") return LogLevel::kInfo;
  if (n == "warning" || n == "warn") return LogLevel::kWarning;
  if (n == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level \"", name, "\": use debug, info, warning or error"));
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level; }

void SetLogContext(std::string key, std::string value) {
  std::lock_guard<std::mutex> lock(g_context_mu);
  g_context.append(" ").append(key).append("=");
  AppendValue(value, &g_context);
}

Log::Log(LogLevel level, absl::string_view event)
    : enabled_(LogEnabled(level)) {
  if (!enabled_) return;
  line_ = absl::StrCat("ts=",
                       absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(),
                                        absl::UTCTimeZone()),
                       " level=", LevelName(level), " event=");
  AppendValue(event, &line_);
  std::lock_guard<std::mutex> lock(g_context_mu);
  line_.append(g_context);
}

void Log::Field(absl::string_view key, absl::string_view value) {
  line_.push_back(' ');
  line_.append(key.data(), key.size());
  line_.push_back('=');
  AppendValue(value, &line_);
}

Log::~Log() {
  if (!enabled_) return;
  line_.push_back('\n');
  // One write(2) per line keeps lines from different threads whole.
  const char* p = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace stephub
