// Command-line words of the `stephub` CLI's commands, shared by the
// commands that talk to the hub (cli.cc) and the offline ones (certs.cc).
#ifndef STEPHUB_TOOLS_CLI_ARGS_H_
#define STEPHUB_TOOLS_CLI_ARGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stephub::cli {

// Command-line words after the command: positionals and --name value pairs.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
};

// `switches` are options without a value (--lines).
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& words,
                               const std::vector<std::string>& known,
                               const std::vector<std::string>& switches = {});

}  // namespace stephub::cli

#endif  // STEPHUB_TOOLS_CLI_ARGS_H_
