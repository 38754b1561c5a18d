// The patient progress report from a hand-built history: the numbers the
// report model computes, and the PDF read back with poppler's pdftotext,
// pdffonts, pdfinfo and pdftoppm (poppler-utils, installed by
// tools/setup.sh --test).
#include "hub/reports/patient_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "tests/testing.h"

namespace stephub::reports {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

v1::Repetition Rep(double drop, v1::Verdict verdict) {
  v1::Repetition r;
  r.set_peak_pelvic_drop_deg(drop);
  r.set_verdict(verdict);
  r.set_clean(verdict == v1::VERDICT_CLEAN);
  if (verdict != v1::VERDICT_NOT_ASSESSED) {
    r.mutable_quality()->set_pelvis(verdict == v1::VERDICT_CLEAN ? 0 : 1);
  }
  return r;
}
v1::Repetition Clean(double drop) { return Rep(drop, v1::VERDICT_CLEAN); }
v1::Repetition Dropped(double drop) {
  return Rep(drop, v1::VERDICT_PELVIC_DROP);
}

// Four visits over two weeks, the drop coming down from 5° to 1°.
v1::PatientProgress History() {
  v1::PatientProgress p;
  p.mutable_patient()->set_display_name("Anna K.");
  p.mutable_patient()->set_external_ref("MRN-1");
  p.set_horizon("week 2 of the 8-12 week programme");
  p.set_time_zone("Europe/Berlin");
  auto add_set = [&](int64_t id, const std::string& load,
                     std::vector<v1::Repetition> reps) {
    v1::SetSummary* s = p.add_sets();
    s->mutable_set()->set_set_id(id);
    s->mutable_set()->set_load(load);
    for (auto& r : reps) *s->add_repetition_list() = r;
  };
  add_set(1, "bodyweight", {Dropped(6.0), Clean(4.0)});
  add_set(2, "bodyweight", {Clean(4.0), Clean(3.0)});
  add_set(3, "band", {Clean(2.0), Clean(3.0)});
  add_set(4, "band", {Clean(-1.0)});
  add_set(5, "band", {Clean(1.0), Rep(0, v1::VERDICT_NOT_ASSESSED)});
  auto add_session = [&](const std::string& day, std::vector<int64_t> sets) {
    v1::SessionSummary* s = p.add_sessions();
    s->set_day(day);
    for (int64_t id : sets) s->add_set_ids(id);
  };
  add_session("2026-11-02", {1});
  add_session("2026-11-04", {2});
  add_session("2026-11-06", {3, 4});
  add_session("2026-11-10", {5});
  v1::WeekSummary* w1 = p.add_weeks();
  w1->set_index(1);
  w1->set_monday("2026-11-02");
  w1->set_sessions(3);
  w1->set_adherence(v1::ADHERENCE_ON_TARGET);
  v1::WeekSummary* w2 = p.add_weeks();
  w2->set_index(2);
  w2->set_monday("2026-11-09");
  w2->set_sessions(1);
  w2->set_adherence(v1::ADHERENCE_IN_PROGRESS);
  v1::SideProgress* side = p.add_sides();
  side->set_side(v1::STANCE_SIDE_LEFT);
  side->mutable_readiness()->set_ready(false);
  side->mutable_readiness()->set_reason("1 of 2 repetitions were not assessed");
  side->mutable_readiness()->set_next_step("stay at band");
  return p;
}

std::vector<v1::Session> Notes() {
  v1::Session s;
  s.set_day("2026-11-04");
  s.set_note("Cued <hip> level; better");
  return {s};
}

TEST(PatientReport, NumbersFromTheHistory) {
  const PatientReport r = BuildPatientReport(History(), Notes());
  ASSERT_EQ(r.sessions.size(), 4u);
  EXPECT_EQ(r.first_day, "2026-11-02");
  EXPECT_EQ(r.last_day, "2026-11-10");
  const SessionRow& third = r.sessions[2];
  EXPECT_EQ(third.sets, 2);
  EXPECT_EQ(third.repetitions, 3);
  EXPECT_EQ(third.clean, 3);
  EXPECT_DOUBLE_EQ(third.mean_pelvic_drop_deg, 4.0 / 3);
  EXPECT_DOUBLE_EQ(third.worst_pelvic_drop_deg, 3.0);
  EXPECT_EQ(third.loads, "band");
  EXPECT_DOUBLE_EQ(r.sessions[0].worst_pelvic_drop_deg, 6.0);
  // A repetition not assessed is neither clean nor in the mean.
  EXPECT_EQ(r.sessions[3].repetitions, 2);
  EXPECT_EQ(r.sessions[3].clean, 1);
  EXPECT_DOUBLE_EQ(r.sessions[3].mean_pelvic_drop_deg, 1.0);
  EXPECT_EQ(r.sessions[1].note, "Cued <hip> level; better");
  // Means 5, 3.5, 4/3, 1 over sessions 0-3.
  ASSERT_TRUE(r.drop_trend_per_session.has_value());
  EXPECT_NEAR(*r.drop_trend_per_session, -17.0 / 12, 1e-12);
  EXPECT_NEAR(*r.drop_trend_at_first, 29.0 / 6, 1e-12);
  ASSERT_EQ(r.weeks.size(), 2u);
  EXPECT_EQ(r.weeks[0].repetitions, 7);
  EXPECT_DOUBLE_EQ(r.weeks[0].clean_percent, 600.0 / 7);
  EXPECT_DOUBLE_EQ(r.weeks[1].clean_percent, 50);
  EXPECT_EQ(r.weeks_on_target, 1);
  EXPECT_EQ(r.complete_weeks, 1);
  ASSERT_EQ(r.quality.size(), 1u);  // only the pelvis was assessed
  EXPECT_EQ(r.quality[0].item, "pelvis");
  EXPECT_EQ(r.quality[0].faulted, 1);
  EXPECT_EQ(r.quality[0].assessed, 8);
}

TEST(PatientReport, PdfReadsBackWithTheNumbersAndEmbeddedFonts) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/pdftotext"))
      << "poppler-utils is needed: run tools/setup.sh --test";
  RenderOptions options;
  options.clinic_name = "Physio Nord";
  options.generated_at = absl::FromUnixSeconds(1'795'000'000);
  auto pdf =
      RenderPatientReportPdf(BuildPatientReport(History(), Notes()), options);
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  ASSERT_EQ(pdf->rfind("%PDF-", 0), 0u);
  const std::string dir =
      (std::filesystem::temp_directory_path() /
       absl::StrCat("stephub-report-", std::random_device{}()))
          .string();
  std::filesystem::create_directories(dir);
  const std::string file = dir + "/report.pdf";
  std::ofstream(file, std::ios::binary) << *pdf;

  const std::string text =
      testing::CommandOutput("pdftotext -layout " + file + " -");
  EXPECT_THAT(text, HasSubstr("Lateral step-down progress report"));
  EXPECT_THAT(text, HasSubstr("Anna K. (MRN-1)"));
  EXPECT_THAT(text, HasSubstr("Physio Nord"));
  EXPECT_THAT(text, HasSubstr("Period 2026-11-02 to 2026-11-10"));
  EXPECT_THAT(text, HasSubstr("Sessions attended: 4"));
  EXPECT_THAT(text, HasSubstr("target: 1 of 1"));
  EXPECT_THAT(text, HasSubstr("not ready: 1 of 2 repetitions were not "
                              "assessed; next: stay at band"));
  EXPECT_THAT(text, HasSubstr("Trend: -1.42° per session"));
  EXPECT_THAT(text, MatchesRegex("(.|\n)*2026-11-06 +2 +3 +100% +1\\.3° +"
                                 "3\\.0° +band(.|\n)*"));
  EXPECT_THAT(text, MatchesRegex("(.|\n)*pelvis +1 of 8 +12%(.|\n)*"));
  EXPECT_THAT(text, HasSubstr("2026-11-04: Cued <hip> level; better"));

  const std::string info = testing::CommandOutput("pdfinfo " + file);
  EXPECT_THAT(info, ContainsRegex("Page size: +595.276 x 841.89 pts \\(A4\\)"));
  EXPECT_THAT(info, ContainsRegex("Pages: +1\n"));
  EXPECT_THAT(text, HasSubstr("Page 1 of 1"));
  const std::string fonts = testing::CommandOutput("pdffonts " + file);
  EXPECT_THAT(fonts, HasSubstr("DejaVuSans"));
  EXPECT_THAT(fonts, Not(MatchesRegex("(.|\n)* no +(yes|no) +(yes|no) +"
                                      "[0-9]+ +[0-9]+\n(.|\n)*")))
      << "every font embedded:\n"
      << fonts;
  testing::CommandOutput("pdftoppm -png -r 40 -f 1 -l 1 " + file + " " + dir +
                         "/page");
  EXPECT_GT(std::filesystem::file_size(dir + "/page-1.png"), 2000u);
  // For a look at the page: STEPHUB_KEEP_TEST_DIRS keeps it.
  if (std::getenv("STEPHUB_KEEP_TEST_DIRS") == nullptr) {
    std::filesystem::remove_all(dir);
  } else {
    std::cout << "report kept in " << dir << "\n";
  }
}

TEST(PatientReport, LongHistoriesGoOnToNumberedPages) {
  v1::PatientProgress p = History();
  for (int i = 0; i < 80; ++i) *p.add_sessions() = p.sessions(i % 4);
  auto pdf = RenderPatientReportPdf(BuildPatientReport(p, {}), {});
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  const std::string file =
      (std::filesystem::temp_directory_path() /
       absl::StrCat("stephub-long-", std::random_device{}(), ".pdf"))
          .string();
  std::ofstream(file, std::ios::binary) << *pdf;
  const std::string info = testing::CommandOutput("pdfinfo " + file);
  const std::string text = testing::CommandOutput("pdftotext " + file + " -");
  std::filesystem::remove(file);
  EXPECT_THAT(info, ContainsRegex("Pages: +3\n"));
  EXPECT_THAT(text, HasSubstr("Page 1 of 3"));
  EXPECT_THAT(text, HasSubstr("Page 3 of 3"));
}

TEST(PatientReport, HtmlHasTheSameContentEscaped) {
  const std::string html = RenderPatientReportHtml(
      BuildPatientReport(History(), Notes()), RenderOptions{});
  EXPECT_THAT(html, HasSubstr("Anna K. (MRN-1)"));
  EXPECT_THAT(html, HasSubstr("Cued &lt;hip&gt; level; better"));
  EXPECT_THAT(html, Not(HasSubstr("<hip>")));
  EXPECT_THAT(html, HasSubstr("<td>2026-11-06</td><td>2</td><td>3</td>"
                              "<td>100%</td><td>1.3°</td><td>3.0°</td>"
                              "<td>band</td>"));
  EXPECT_THAT(html, HasSubstr("Trend: -1.42° per session."));
  EXPECT_THAT(html, HasSubstr("<svg"));
}

}  // namespace
}  // namespace stephub::reports
