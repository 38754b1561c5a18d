// `stephub watch` on a terminal: every bay on one compact board, redrawn in
// place from the WatchClinic events. Pure: events in, text out.
#ifndef STEPHUB_TOOLS_WATCH_BOARD_H_
#define STEPHUB_TOOLS_WATCH_BOARD_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "stephub/v1/dashboard.pb.h"

namespace stephub::cli {

class WatchBoard {
 public:
  void Apply(const v1::ClinicEvent& event);
  // The board, one line per bay, `width` columns at most.
  std::string Render(absl::Time now, absl::TimeZone zone, int width) const;

 private:
  struct Bay {
    v1::StationStatus station;
    std::optional<v1::ExerciseSet> set;
    std::vector<v1::Repetition> repetitions;
    std::optional<float> live_drop_deg;
  };
  Bay& BayOf(const std::string& station_id);
  // Why the bay needs a look now ("pelvis dropping 3 reps in a row").
  static std::vector<std::string> Alerts(const Bay& bay);

  std::map<std::string, Bay> bays_;
  uint64_t missed_ = 0;
};

}  // namespace stephub::cli

#endif  // STEPHUB_TOOLS_WATCH_BOARD_H_
