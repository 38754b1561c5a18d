// libFuzzer target: the station's config file, parsed, given its defaults
// and validated as the station daemon does at start (station/config.h).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "station/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = stephub::station::ParseStationConfig(
      absl::string_view(reinterpret_cast<const char*>(data), size),
      "station.textproto");
  if (!config.ok()) return 0;
  stephub::station::ApplyStationDefaults(&*config);
  (void)stephub::station::ValidateStationConfig(*config);
  return 0;
}
