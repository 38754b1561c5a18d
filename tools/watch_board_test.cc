// The terminal board of `stephub watch`: what each bay's line says.
#include "tools/watch_board.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"

namespace stephub::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Repetition Rep(const std::string& station, int64_t set, int number,
                   double drop, v1::Verdict verdict) {
  v1::Repetition r;
  r.set_station_id(station);
  r.set_set_id(set);
  r.set_number(number);
  r.set_peak_pelvic_drop_deg(drop);
  r.set_verdict(verdict);
  r.set_clean(verdict == v1::VERDICT_CLEAN);
  return r;
}

TEST(WatchBoard, OneLinePerBayWithRepsLiveDropAndAlerts) {
  WatchBoard board;
  v1::ClinicEvent snapshot;
  for (const char* id : {"bay-1", "bay-2", "bay-3"}) {
    v1::StationStatus* s = snapshot.mutable_snapshot()->add_stations();
    s->set_station_id(id);
    s->set_online(std::string(id) != "bay-2");
  }
  v1::SensorHealth* fault =
      snapshot.mutable_snapshot()->mutable_stations(0)->add_sensor_health();
  fault->set_sensor_id(3);
  fault->set_state(v1::SENSOR_STATE_FAULT);
  board.Apply(snapshot);

  v1::ClinicEvent started;
  v1::ExerciseSet* set = started.mutable_set_started();
  set->set_set_id(7);
  set->set_station_id("bay-3");
  set->set_patient_display_name("Carla Ruiz");
  set->set_stance_side(v1::STANCE_SIDE_LEFT);
  set->set_load("bodyweight");
  set->set_state(v1::SET_STATE_ACTIVE);
  board.Apply(started);
  for (int i = 1; i <= 3; ++i) {
    v1::ClinicEvent rep;
    *rep.mutable_repetition() =
        Rep("bay-3", 7, i, i == 1 ? 3.0 : 8.0 + i,
            i == 1 ? v1::VERDICT_CLEAN : v1::VERDICT_PELVIC_DROP);
    board.Apply(rep);
  }
  // A repetition of another set (an old one) is not this set's.
  v1::ClinicEvent stray;
  *stray.mutable_repetition() = Rep("bay-3", 6, 9, 1.0, v1::VERDICT_CLEAN);
  board.Apply(stray);
  v1::ClinicEvent trace;
  trace.mutable_pelvis_trace()->set_station_id("bay-3");
  trace.mutable_pelvis_trace()->set_set_id(7);
  trace.mutable_pelvis_trace()->add_t_us(1);
  trace.mutable_pelvis_trace()->add_pelvic_drop_deg(6.25f);
  board.Apply(trace);

  const std::string text =
      board.Render(absl::FromUnixSeconds(0), absl::UTCTimeZone(), 0);
  const std::vector<std::string> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << text;  // title, header, three bays
  EXPECT_THAT(lines[2], HasSubstr("bay-1"));
  EXPECT_THAT(lines[2], HasSubstr("sensor 3 fault"));
  EXPECT_THAT(lines[3], HasSubstr("OFF"));
  EXPECT_THAT(lines[3], HasSubstr("OFFLINE"));
  EXPECT_THAT(lines[4], HasSubstr("Carla Ruiz"));
  EXPECT_THAT(lines[4], HasSubstr("   3     1 "));  // reps, clean
  EXPECT_THAT(lines[4], HasSubstr("+11.0 deg DROP"));
  EXPECT_THAT(lines[4], HasSubstr("+6.2"));  // live drop now
  EXPECT_THAT(lines[4], HasSubstr("PELVIS DROPPING x2"));
  EXPECT_THAT(lines[2], Not(HasSubstr("PELVIS")));

  // Cut to the terminal's width.
  const std::string narrow =
      board.Render(absl::FromUnixSeconds(0), absl::UTCTimeZone(), 30);
  for (absl::string_view line :
       std::vector<absl::string_view>(absl::StrSplit(narrow, '\n'))) {
    if (line.rfind("bay-", 0) == 0) {
      EXPECT_LE(line.size(), 30u) << line;
    }
  }
}

}  // namespace
}  // namespace stephub::cli
