#include "tools/watch_board.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace stephub::cli {
namespace {

const char* VerdictMark(v1::Verdict verdict) {
  switch (verdict) {
    case v1::VERDICT_CLEAN:
      return "clean";
    case v1::VERDICT_PELVIC_DROP:
      return "DROP";
    case v1::VERDICT_PELVIC_HIKE:
      return "hike";
    case v1::VERDICT_NOT_ASSESSED:
      return "n/a";
    default:
      return "?";
  }
}

const char* SideName(v1::StanceSide side) {
  return side == v1::STANCE_SIDE_LEFT    ? "L"
         : side == v1::STANCE_SIDE_RIGHT ? "R"
                                         : "?";
}

}  // namespace

WatchBoard::Bay& WatchBoard::BayOf(const std::string& station_id) {
  Bay& bay = bays_[station_id];
  bay.station.set_station_id(station_id);
  return bay;
}

void WatchBoard::Apply(const v1::ClinicEvent& event) {
  switch (event.event_case()) {
    case v1::ClinicEvent::kSnapshot: {
      bays_.clear();
      const v1::ClinicSnapshot& s = event.snapshot();
      for (const auto& station : s.stations()) {
        BayOf(station.station_id()).station = station;
      }
      for (const auto& set : s.active_sets()) BayOf(set.station_id()).set = set;
      for (const auto& rep : s.repetitions()) {
        BayOf(rep.station_id()).repetitions.push_back(rep);
      }
      for (const auto& trace : s.traces()) {
        if (trace.pelvic_drop_deg_size() > 0) {
          BayOf(trace.station_id()).live_drop_deg =
              trace.pelvic_drop_deg(trace.pelvic_drop_deg_size() - 1);
        }
      }
      break;
    }
    case v1::ClinicEvent::kStation:
      BayOf(event.station().station_id()).station = event.station();
      break;
    case v1::ClinicEvent::kSetStarted: {
      Bay& bay = BayOf(event.set_started().station_id());
      bay.set = event.set_started();
      bay.repetitions.clear();
      bay.live_drop_deg.reset();
      break;
    }
    case v1::ClinicEvent::kSetEnded: {
      Bay& bay = BayOf(event.set_ended().station_id());
      if (bay.set && bay.set->set_id() == event.set_ended().set_id()) {
        bay.set = event.set_ended();
        bay.live_drop_deg.reset();
      }
      break;
    }
    case v1::ClinicEvent::kRepetition: {
      Bay& bay = BayOf(event.repetition().station_id());
      if (bay.set && bay.set->set_id() == event.repetition().set_id()) {
        bay.repetitions.push_back(event.repetition());
      }
      break;
    }
    case v1::ClinicEvent::kPelvisTrace: {
      const v1::PelvisTrace& trace = event.pelvis_trace();
      Bay& bay = BayOf(trace.station_id());
      if (trace.pelvic_drop_deg_size() > 0 && bay.set &&
          bay.set->set_id() == trace.set_id()) {
        bay.live_drop_deg =
            trace.pelvic_drop_deg(trace.pelvic_drop_deg_size() - 1);
      }
      break;
    }
    case v1::ClinicEvent::kMissed:
      missed_ += event.missed().count();
      break;
    default:
      break;
  }
}

std::vector<std::string> WatchBoard::Alerts(const Bay& bay) {
  std::vector<std::string> alerts;
  if (!bay.station.online()) alerts.push_back("OFFLINE");
  for (const auto& h : bay.station.sensor_health()) {
    if (h.state() != v1::SENSOR_STATE_OK &&
        h.state() != v1::SENSOR_STATE_UNSPECIFIED) {
      alerts.push_back(absl::StrCat("sensor ", h.sensor_id(), " fault"));
    }
  }
  int run = 0;
  for (auto it = bay.repetitions.rbegin();
       it != bay.repetitions.rend() && it->verdict() == v1::VERDICT_PELVIC_DROP;
       ++it) {
    ++run;
  }
  if (run >= 2) alerts.push_back(absl::StrCat("PELVIS DROPPING x", run));
  return alerts;
}

std::string WatchBoard::Render(absl::Time now, absl::TimeZone zone,
                               int width) const {
  std::string out = absl::StrFormat(
      "StepHub  %s  %d bays%s\n%-8s %-3s %-16s %-4s %-12s %4s %5s %-15s %6s  "
      "%s\n",
      absl::FormatTime("%H:%M:%S", now, zone), bays_.size(),
      missed_ > 0 ? absl::StrCat("  (", missed_, " events missed)") : "", "bay",
      "", "patient", "side", "load", "reps", "clean", "last rep", "now",
      "alerts");
  for (const auto& [id, bay] : bays_) {
    const v1::ExerciseSet* set = bay.set ? &*bay.set : nullptr;
    const std::string patient = set ? set->patient_display_name() : "-";
    const char* side = set ? SideName(set->stance_side()) : "";
    const std::string load =
        set ? absl::StrCat(set->load(), set->state() == v1::SET_STATE_ENDED
                                            ? " (ended)"
                                            : "")
            : "";
    std::string last, live;
    int clean = 0;
    for (const auto& r : bay.repetitions) clean += r.clean();
    if (!bay.repetitions.empty()) {
      const v1::Repetition& r = bay.repetitions.back();
      last = absl::StrFormat("%+5.1f deg %s", r.peak_pelvic_drop_deg(),
                             VerdictMark(r.verdict()));
    }
    if (bay.live_drop_deg) live = absl::StrFormat("%+5.1f", *bay.live_drop_deg);
    std::string line = absl::StrFormat(
        "%-8s %-3s %-16.16s %-4s %-12.12s %4d %5d %-15s %6s  %s", id,
        bay.station.online() ? "on" : "OFF", patient, side, load,
        bay.repetitions.size(), clean, last, live,
        absl::StrJoin(Alerts(bay), ", "));
    if (width > 0 && static_cast<int>(line.size()) > width) line.resize(width);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace stephub::cli
