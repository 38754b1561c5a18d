// See cli_args.h.
#include "tools/cli_args.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace stephub::cli {

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& words,
                               const std::vector<std::string>& known,
                               const std::vector<std::string>& switches) {
  Args args;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.rfind("--", 0) == 0 || w == "-o") {
      std::string name = w == "-o" ? "o" : w.substr(2);
      std::string value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (std::find(switches.begin(), switches.end(), name) !=
                 switches.end()) {
        args.options[name] = "true";
        continue;
      } else {
        if (i + 1 >= words.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("option --", name, " needs a value"));
        }
        value = words[++i];
      }
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown option --", name));
      }
      args.options[name] = value;
    } else {
      args.positional.push_back(w);
    }
  }
  return args;
}

}  // namespace stephub::cli
