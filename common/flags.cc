// Command-line parsing; see flags.h.
#include "common/flags.h"

#include <algorithm>
#include <string>

#include "absl/flags/parse.h"

namespace stephub {

std::vector<char*> ParseFlagsAcceptingDashes(int argc, char** argv) {
  // Kept for the whole run: the positional results point into it.
  static auto* args = new std::vector<std::string>(argv, argv + argc);
  for (auto& arg : *args) {
    if (arg.rfind("--", 0) != 0) continue;
    const size_t end = std::min(arg.find('='), arg.size());
    std::replace(arg.begin() + 2, arg.begin() + end, '-', '_');
  }
  std::vector<char*> pointers;
  for (auto& arg : *args) pointers.push_back(arg.data());
  return absl::ParseCommandLine(static_cast<int>(pointers.size()),
                                pointers.data());
}

}  // namespace stephub
