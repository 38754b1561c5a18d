// Password prompt without echo; see password_prompt.h.
#include "common/password_prompt.h"

#include <termios.h>
#include <unistd.h>

#include <iostream>

namespace stephub {
namespace {

// One line from the terminal with echo off; echo comes back even if
// reading fails.
absl::StatusOr<std::string> ReadHidden(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios saved{};
  const bool have_terminal = tcgetattr(STDIN_FILENO, &saved) == 0;
  if (have_terminal) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (have_terminal) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
  std::cerr << "\n";
  if (!got) return absl::CancelledError("no password given");
  return line;
}

}  // namespace

absl::StatusOr<std::string> ReadPassword(const std::string& prompt,
                                         bool confirm) {
  if (!isatty(STDIN_FILENO)) {
    std::string line;
    if (!std::getline(std::cin, line)) {
      return absl::InvalidArgumentError(
          "no password on standard input (give it as the first line)");
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  auto first = ReadHidden(prompt);
  if (!first.ok() || !confirm) return first;
  auto again = ReadHidden("again: ");
  if (!again.ok()) return again;
  if (*again != *first) {
    return absl::InvalidArgumentError("the two passwords differ");
  }
  return first;
}

}  // namespace stephub
