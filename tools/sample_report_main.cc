// stephub-sample-report: writes the sample patient progress report in
// docs/ (docs/REPORTS.md gives the command). A simulated ten-week
// programme: each session's set is simulated sensor data scored by the
// hub's own scorer, the progress computed as the Dashboard computes it, and
// the report rendered as the hub renders it.
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "common/flags.h"
#include "common/simulator.h"
#include "hub/api/progress_view.h"
#include "hub/ingest/repetition_proto.h"
#include "hub/reports/patient_report.h"
#include "hub/scoring/scoring.h"

ABSL_FLAG(std::string, out, "sample-report.pdf", "the PDF to write");
ABSL_FLAG(std::string, html, "", "also write the report as HTML here");

namespace {

using namespace stephub;  // a tool's main

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary);
  file << bytes;
  file.close();
  if (!file) {
    std::cerr << "stephub-sample-report: cannot write " << path << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes a sample patient progress report: a simulated ten-week "
      "programme scored by the hub's own code.\n  stephub-sample-report "
      "--out=FILE.pdf [--html=FILE.html]");
  ParseFlagsAcceptingDashes(argc, argv);
  absl::TimeZone zone;
  absl::LoadTimeZone("Europe/Berlin", &zone);

  v1::Patient patient;
  patient.set_patient_id(1);
  patient.set_display_name("Sample Patient");
  patient.set_external_ref("MRN-0001");
  // Sessions a week over ten weeks, and the days of the week they fall on.
  const int kSessionsPerWeek[] = {3, 3, 2, 3, 4, 3, 3, 2, 3, 3};
  const std::vector<std::vector<int>> kDays = {
      {}, {}, {1, 4}, {0, 2, 4}, {0, 1, 3, 5}};
  const absl::CivilDay first_monday(2026, 9, 7);
  int total = 0;
  for (int n : kSessionsPerWeek) total += n;

  std::vector<api::SetResults> sets;
  std::vector<v1::Session> notes;
  int session = 0;
  for (int week = 0; week < 10; ++week) {
    for (int weekday : kDays[kSessionsPerWeek[week]]) {
      // The drop comes down from about 9 deg to about 2.5 deg over the
      // programme; the load goes up once the sets come out clean.
      PatientProfile profile = *ProfileByName("moderate");
      profile.stance_side = StanceSide::kLeft;
      profile.pelvic_drop_mean_deg = 9.0 - 6.5 * session / (total - 1);
      profile.pelvic_drop_sd_deg = 1.2;
      const Recording recording = SimulateRecording(profile, 100 + session);
      const std::vector<scoring::Repetition> scored =
          scoring::ScoreRecording(recording);

      const absl::CivilDay day = first_monday + 7 * week + weekday;
      const absl::Time start = absl::FromCivil(
          absl::CivilMinute(day.year(), day.month(), day.day(), 10, 0), zone);
      api::SetResults results;
      v1::ExerciseSet& set = results.set;
      set.set_set_id(session + 1);
      set.set_station_id("bay-1");
      set.set_patient_id(patient.patient_id());
      set.set_patient_display_name(patient.display_name());
      set.set_stance_side(v1::STANCE_SIDE_LEFT);
      set.set_exercise("lateral_step_down");
      set.set_load(week < 6 ? "bodyweight" : week < 8 ? "band" : "5 kg vest");
      set.set_level(2);
      set.set_state(v1::SET_STATE_ENDED);
      set.set_scoring_version(scoring::kScoringVersion);
      *set.mutable_started_at() = ToProto(start);
      *set.mutable_ended_at() = ToProto(start + absl::Minutes(1));
      for (const scoring::Repetition& r : scored) {
        v1::Repetition rep = ingest::RepetitionToProto(r);
        rep.set_set_id(set.set_id());
        rep.set_station_id(set.station_id());
        rep.set_patient_id(patient.patient_id());
        rep.set_scoring_version(scoring::kScoringVersion);
        results.repetitions.push_back(std::move(rep));
      }
      sets.push_back(std::move(results));
      if (session == 0 || session == 12 || session == total - 1) {
        v1::Session note;
        note.set_day(absl::FormatCivilTime(day));
        note.set_note(
            session == 0 ? "First visit. Mirror feedback: keep the hip bones "
                           "level."
            : session == 12 ? "Drop now mostly under 5 deg; keep bodyweight "
                              "until every rep is clean."
                            : "Clean sets with the vest. Discussed moving to "
                              "level 3.");
        notes.push_back(note);
      }
      ++session;
    }
  }

  const absl::Time as_of =
      absl::FromCivil(first_monday + 7 * 10, zone) - absl::Hours(6);
  const v1::PatientProgress progress =
      api::ProgressOf(patient, sets, as_of, zone);
  const reports::PatientReport report =
      reports::BuildPatientReport(progress, notes);
  reports::RenderOptions options;
  options.clinic_name = "Physio Nord (sample report, simulated data)";
  options.generated_at = as_of;
  options.zone = zone;
  auto pdf = reports::RenderPatientReportPdf(report, options);
  if (!pdf.ok()) {
    std::cerr << "stephub-sample-report: " << pdf.status().message() << "\n";
    return 1;
  }
  if (!Write(absl::GetFlag(FLAGS_out), *pdf)) return 1;
  const std::string html = absl::GetFlag(FLAGS_html);
  if (!html.empty() &&
      !Write(html, reports::RenderPatientReportHtml(report, options))) {
    return 1;
  }
  std::cout << "wrote " << absl::GetFlag(FLAGS_out) << ": " << total
            << " sessions over 10 weeks\n";
  return 0;
}
