// libFuzzer target: the recording reader (common/recording.h) on a folder
// made of the input. The input is a sequence of files, each a name line
// then its content up to a line "--- end" (see corpus/recording_reader);
// ParseRecording reads them as ReadRecording reads a folder's files.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "common/recording.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> files;
  constexpr absl::string_view kEnd = "\n--- end\n";
  while (!input.empty()) {
    const size_t name_end = input.find('\n');
    if (name_end == absl::string_view::npos) break;
    const std::string name(input.substr(0, name_end));
    input.remove_prefix(name_end + 1);
    const size_t content_end = input.find(kEnd);
    const absl::string_view content = input.substr(0, content_end);
    files[name] = std::string(content);
    if (content_end == absl::string_view::npos) break;
    input.remove_prefix(content_end + kEnd.size());
  }
  (void)stephub::ParseRecording(files, "fuzz");
  return 0;
}
