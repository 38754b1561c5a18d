// The `stephub` staff CLI as a library, so that tests can run it in-process.
#ifndef STEPHUB_TOOLS_CLI_H_
#define STEPHUB_TOOLS_CLI_H_

#include <ostream>
#include <string>
#include <vector>

namespace stephub::cli {

// Runs one command (argv without the program name). Returns the exit code:
// 0 success, 1 the hub refused or failed, 2 a usage error.
int Run(const std::vector<std::string>& argv, std::ostream& out,
        std::ostream& err);

}  // namespace stephub::cli

#endif  // STEPHUB_TOOLS_CLI_H_
