// Reading a password for the command-line tools: from the terminal without
// echo (asked twice when it is being set), or the first line of standard
// input when that is a pipe, so that scripts and installers can feed it.
#ifndef STEPHUB_COMMON_PASSWORD_PROMPT_H_
#define STEPHUB_COMMON_PASSWORD_PROMPT_H_

#include <string>

#include "absl/status/statusor.h"

namespace stephub {

// `confirm`: ask twice on a terminal and refuse a mismatch.
absl::StatusOr<std::string> ReadPassword(const std::string& prompt,
                                         bool confirm);

}  // namespace stephub

#endif  // STEPHUB_COMMON_PASSWORD_PROMPT_H_
