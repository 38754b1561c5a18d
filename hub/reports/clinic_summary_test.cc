// The clinic summary's renderings of one hand-built model: totals, the CSV
// rows, HTML escaping, and a clinic large enough that the PDF runs to
// several pages, read back with poppler (poppler-utils, installed by
// tools/setup.sh --test): numbered pages, every one rendered, and each
// long table's header repeated on the pages it continues on.
#include "hub/reports/clinic_summary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/testing.h"

namespace stephub::reports {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

absl::Time Day(int month, int day, int hour = 0) {
  return absl::FromCivil(absl::CivilSecond(2026, month, day, hour, 0, 0),
                         absl::UTCTimeZone());
}

// `patients` seen; every third ready to progress, every fifth not
// improving; `gaps` offline stretches on bay-1.
ClinicSummary Clinic(int patients, int gaps) {
  ClinicSummary s;
  s.from = "2026-03-02";
  s.to = "2026-03-29";
  s.time_zone = "UTC";
  s.as_of = Day(3, 30) - absl::Microseconds(1);
  s.review_after_weeks = 4;
  for (int i = 1; i <= patients; ++i) {
    PatientSeen p;
    p.patient_id = i;
    p.patient = absl::StrFormat("Patient %03d", i);
    p.external_ref = absl::StrCat("MRN-", i);
    p.sessions = 1 + i % 12;
    p.first_session_day = "2026-02-02";
    p.weeks_since_start = 8;
    p.weeks = {i % 2, 3, 0, 1};
    if (i % 3 == 0) p.ready_sides = {"left"};
    if (i % 5 == 0) {
      p.not_improving = {"right"};
      p.right_trend_deg_per_week = 0.25;
      p.review_reasons = {
          "right: weekly mean pelvic drop +0.25 deg/week over 7 weeks with "
          "data, 8 weeks after the first session"};
    }
    s.patients.push_back(p);
  }
  s.stations.push_back(
      {"bay-1", absl::Hours(672), absl::Hours(600), gaps, absl::Hours(3), 0});
  for (int i = 0; i < gaps; ++i) {
    const absl::Time start = Day(3, 2 + i % 27, 8);
    s.gaps.push_back({"bay-1", "offline", start, start + absl::Hours(2),
                      absl::Hours(2), ""});
  }
  return s;
}

TEST(ClinicSummary, TotalsAndCsvComeFromTheOneModel) {
  const ClinicSummary s = Clinic(30, 2);
  const ClinicTotals t = TotalsOf(s);
  EXPECT_EQ(t.patients_seen, 30);
  EXPECT_EQ(t.patients_ready_to_progress, 10);
  EXPECT_EQ(t.patients_not_improving, 6);
  EXPECT_EQ(t.weeks.below, 15);
  EXPECT_EQ(t.weeks.on, 90);
  EXPECT_EQ(t.weeks.in_progress, 30);
  ASSERT_TRUE(UptimePercent(s.stations[0]).has_value());
  EXPECT_NEAR(*UptimePercent(s.stations[0]), 100.0 * 600 / 672, 1e-9);

  const std::string csv = RenderClinicSummaryCsv(s);
  EXPECT_THAT(csv, HasSubstr("patients,5,Patient 005,MRN-5,6,0,2026-02-02,8,"
                             "1,3,0,1,,right,,0.25,\"right: weekly mean "
                             "pelvic drop +0.25 deg/week over 7 weeks with "
                             "data, 8 weeks after the first session\"\n"));
  EXPECT_THAT(csv, HasSubstr("totals,patients_seen,30,patients\n"));
  EXPECT_THAT(csv, HasSubstr("totals,patients_ready_to_progress,10,"
                             "patients\n"));
  EXPECT_THAT(csv, HasSubstr("stations,bay-1,672.00,600.00,89.3,2,3.00,0\n"));
  EXPECT_THAT(csv, HasSubstr("data_gaps,bay-1,offline,2026-03-02T08:00:00Z,"
                             "2026-03-02T10:00:00Z,2.00,\n"));
}

TEST(ClinicSummary, AdherenceChartAxisEndsOnRoundQuarters) {
  EXPECT_EQ(BarChartTop({0, 0}), 4);
  EXPECT_EQ(BarChartTop({4, 8, 0, 1}), 8);
  EXPECT_EQ(BarChartTop({13}), 16);
  EXPECT_EQ(BarChartTop({75, 450, 0, 150}), 600);
  EXPECT_EQ(BarChartTop({1000}), 1000);
  EXPECT_EQ(BarChartTop({1001}), 1200);
}

TEST(ClinicSummary, HtmlEscapesWhatPeopleTyped) {
  ClinicSummary s = Clinic(1, 0);
  s.patients[0].patient = "Eve <script>";
  const std::string html = RenderClinicSummaryHtml(s, {});
  EXPECT_THAT(html, HasSubstr("Eve &lt;script&gt; (MRN-1)"));
  EXPECT_THAT(html, Not(HasSubstr("<script>")));
  EXPECT_THAT(html, HasSubstr("<h3>Data gaps</h3><p>None in this period."));
}

// pdftotext puts a form feed between pages.
std::vector<std::string> Pages(const std::string& text) {
  std::vector<std::string> pages = absl::StrSplit(text, '\f');
  while (!pages.empty() &&
         pages.back().find_first_not_of(" \n") == std::string::npos) {
    pages.pop_back();
  }
  return pages;
}

TEST(ClinicSummary, ManyPatientsGoOnToPagesThatRepeatTheTableHeader) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/pdftotext"))
      << "poppler-utils is needed: run tools/setup.sh --test";
  RenderOptions options;
  options.clinic_name = "Physio Nord";
  auto pdf = RenderClinicSummaryPdf(Clinic(150, 60), options);
  ASSERT_TRUE(pdf.ok()) << pdf.status();
  const testing::PdfReadBack read = testing::ReadPdf(*pdf);
  const std::string& text = read.text;

  EXPECT_THAT(read.info,
              ContainsRegex("Page size: +595.276 x 841.89 pts \\(A4\\)"));
  const int n = read.pages;
  EXPECT_GE(n, 4);  // 150 patients in two lists, 60 gaps
  EXPECT_EQ(read.pages_rendered, n);
  const std::vector<std::string> pages = Pages(text);
  ASSERT_EQ(static_cast<int>(pages.size()), n);
  for (int i = 0; i < n; ++i) {
    EXPECT_THAT(pages[i], HasSubstr(absl::StrFormat("Page %d of %d", i + 1, n)))
        << "page " << i + 1;
    EXPECT_THAT(pages[i],
                HasSubstr("Physio Nord · clinic summary 2026-03-02 to "
                          "2026-03-29"));
    // A page with rows of the patients table has its header too.
    if (pages[i].find("2026-02-02") != std::string::npos) {
      EXPECT_THAT(pages[i], ContainsRegex("patient +first session +weeks in"))
          << "page " << i + 1 << ":\n"
          << pages[i];
    }
    if (pages[i].find("2026-03-02 08:00") != std::string::npos) {
      EXPECT_THAT(pages[i], ContainsRegex("station +gap +from +until"))
          << "page " << i + 1;
    }
  }
  // Every patient made it, the last on a later page than the first.
  EXPECT_THAT(pages.front(), HasSubstr("Patient 003 (MRN-3)"));
  EXPECT_THAT(text, ContainsRegex("Patient 150 \\(MRN-150\\) +2026-02-02 +8 "
                                  "+7 +0 +0 +3 +0 +1"));
  EXPECT_THAT(pages.front(), Not(HasSubstr("Patient 150 (MRN-150)")));
}

}  // namespace
}  // namespace stephub::reports
