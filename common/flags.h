// Command-line parsing shared by the StepHub binaries: Abseil flags, with
// dashes in flag names taken as underscores (--log-level = --log_level),
// which is what most daemons accept and what an IT person will type.
#ifndef STEPHUB_COMMON_FLAGS_H_
#define STEPHUB_COMMON_FLAGS_H_

#include <vector>

namespace stephub {

// Like absl::ParseCommandLine; the returned positional arguments (the
// program name first) stay valid for the life of the process.
std::vector<char*> ParseFlagsAcceptingDashes(int argc, char** argv);

}  // namespace stephub

#endif  // STEPHUB_COMMON_FLAGS_H_
