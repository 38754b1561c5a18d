// The patient progress report: its model from progress, and its HTML and
// PDF renderings (page_layout.h draws the pages and charts).
#include "hub/reports/patient_report.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"

namespace stephub::reports {
namespace {

std::string SideName(v1::StanceSide side) {
  return side == v1::STANCE_SIDE_LEFT    ? "left leg"
         : side == v1::STANCE_SIDE_RIGHT ? "right leg"
                                         : "leg not given";
}

std::string AdherenceText(v1::Adherence a) {
  switch (a) {
    case v1::ADHERENCE_BELOW_TARGET:
      return "below target";
    case v1::ADHERENCE_ON_TARGET:
      return "on target";
    case v1::ADHERENCE_ABOVE_TARGET:
      return "above target";
    case v1::ADHERENCE_IN_PROGRESS:
      return "this week, so far";
    default:
      return "";
  }
}

std::optional<absl::CivilDay> DayOf(const std::string& text) {
  absl::CivilDay day;
  if (!absl::ParseCivilTime(text, &day)) return std::nullopt;
  return day;
}

std::string Degrees(double deg) { return absl::StrFormat("%.1f°", deg); }

// The sessions' mean drops with their trend line; the y axis a multiple of
// 4 (whole degrees at the quarter lines), at least 8°.
Chart DropChart(const PatientReport& r) {
  Chart c;
  for (size_t i = 0; i < r.sessions.size(); ++i) {
    if (r.sessions[i].repetitions == 0) continue;
    c.x.push_back(static_cast<double>(i + 1));
    c.y.push_back(r.sessions[i].mean_pelvic_drop_deg);
  }
  if (r.drop_trend_per_session && !r.sessions.empty()) {
    const double last = static_cast<double>(r.sessions.size() - 1);
    c.trend = {*r.drop_trend_at_first,
               *r.drop_trend_at_first + *r.drop_trend_per_session * last};
  }
  c.x_max = static_cast<double>(r.sessions.size()) + 1;
  c.y_max = 8;
  for (double y : c.y) c.y_max = std::max(c.y_max, std::ceil(y / 4) * 4);
  c.unit = "°";
  return c;
}

// Clean % of each week with repetitions, over the programme's 8-12 week
// horizon or longer.
Chart CleanChart(const PatientReport& r) {
  Chart c;
  for (const WeekRow& w : r.weeks) {
    if (w.repetitions == 0) continue;
    c.x.push_back(w.index);
    c.y.push_back(w.clean_percent);
  }
  c.x_max = std::max<double>(12, static_cast<double>(r.weeks.size())) + 1;
  c.y_max = 100;
  c.unit = "%";
  return c;
}

}  // namespace

PatientReport BuildPatientReport(const v1::PatientProgress& progress,
                                 const std::vector<v1::Session>& sessions) {
  PatientReport r;
  r.patient = progress.patient().display_name();
  r.external_ref = progress.patient().external_ref();
  r.horizon = progress.horizon();
  r.time_zone = progress.time_zone();
  std::map<int64_t, const v1::SetSummary*> set_of;
  for (const v1::SetSummary& s : progress.sets()) set_of[s.set().set_id()] = &s;
  std::map<std::string, std::string> note_of;
  for (const v1::Session& s : sessions) {
    if (!s.note().empty()) note_of[s.day()] = s.note();
  }

  const char* kItems[] = {"arm strategy", "trunk", "pelvis", "knee",
                          "steady stance"};
  std::vector<QualityFrequency> quality(5);
  for (int i = 0; i < 5; ++i) quality[i].item = kItems[i];

  for (const v1::SessionSummary& session : progress.sessions()) {
    SessionRow row;
    row.day = session.day();
    std::vector<std::string> loads;
    double drop_sum = 0;
    int assessed = 0;
    for (int64_t id : session.set_ids()) {
      auto it = set_of.find(id);
      if (it == set_of.end()) continue;
      const v1::SetSummary& set = *it->second;
      ++row.sets;
      if (std::find(loads.begin(), loads.end(), set.set().load()) ==
          loads.end()) {
        loads.push_back(set.set().load());
      }
      for (const v1::Repetition& rep : set.repetition_list()) {
        ++row.repetitions;
        row.clean += rep.clean();
        if (rep.verdict() != v1::VERDICT_NOT_ASSESSED) {
          drop_sum += rep.peak_pelvic_drop_deg();
          ++assessed;
          if (std::abs(rep.peak_pelvic_drop_deg()) >
              std::abs(row.worst_pelvic_drop_deg)) {
            row.worst_pelvic_drop_deg = rep.peak_pelvic_drop_deg();
          }
        }
        const v1::QualityScale& q = rep.quality();
        const std::optional<uint32_t> items[] = {
            q.has_arm_strategy() ? std::optional(q.arm_strategy())
                                 : std::nullopt,
            q.has_trunk() ? std::optional(q.trunk()) : std::nullopt,
            q.has_pelvis() ? std::optional(q.pelvis()) : std::nullopt,
            q.has_knee() ? std::optional(q.knee()) : std::nullopt,
            q.has_stance() ? std::optional(q.stance()) : std::nullopt};
        for (int i = 0; i < 5; ++i) {
          if (!items[i]) continue;
          ++quality[i].assessed;
          quality[i].faulted += *items[i] > 0;
        }
      }
    }
    row.loads = absl::StrJoin(loads, ", ");
    if (row.repetitions > 0) {
      row.clean_percent = 100.0 * row.clean / row.repetitions;
    }
    if (assessed > 0) row.mean_pelvic_drop_deg = drop_sum / assessed;
    if (auto it = note_of.find(row.day); it != note_of.end()) {
      row.note = it->second;
    }
    r.sessions.push_back(std::move(row));
  }
  for (const QualityFrequency& q : quality) {
    if (q.assessed > 0) r.quality.push_back(q);
  }
  if (!r.sessions.empty()) {
    r.first_day = r.sessions.front().day;
    r.last_day = r.sessions.back().day;
  }

  for (const v1::WeekSummary& w : progress.weeks()) {
    WeekRow week;
    week.index = static_cast<int>(w.index());
    week.monday = w.monday();
    week.sessions = static_cast<int>(w.sessions());
    week.adherence = AdherenceText(w.adherence());
    int clean = 0;
    const auto monday = DayOf(w.monday());
    for (const SessionRow& s : r.sessions) {
      const auto day = DayOf(s.day);
      if (!monday || !day || *day < *monday || *day >= *monday + 7) continue;
      week.repetitions += s.repetitions;
      clean += s.clean;
    }
    if (week.repetitions > 0) {
      week.clean_percent = 100.0 * clean / week.repetitions;
    }
    if (w.adherence() != v1::ADHERENCE_IN_PROGRESS) {
      ++r.complete_weeks;
      r.weeks_on_target += w.adherence() == v1::ADHERENCE_ON_TARGET;
    }
    r.weeks.push_back(std::move(week));
  }

  // Least squares over the sessions that had repetitions.
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < r.sessions.size(); ++i) {
    if (r.sessions[i].repetitions == 0) continue;
    const double x = static_cast<double>(i);
    const double y = r.sessions[i].mean_pelvic_drop_deg;
    n += 1;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  if (n >= 2 && n * sxx - sx * sx > 0) {
    const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    r.drop_trend_per_session = slope;
    r.drop_trend_at_first = (sy - slope * sx) / n;
  }

  for (const v1::SideProgress& side : progress.sides()) {
    r.readiness.push_back({SideName(side.side()), side.readiness().ready(),
                           side.readiness().reason(),
                           side.readiness().next_step()});
  }
  return r;
}

std::string RenderPatientReportHtml(const PatientReport& r,
                                    const RenderOptions& options) {
  std::string html = absl::StrCat(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>Progress report: ",
      HtmlEscape(r.patient),
      "</title><style>body{font-family:'DejaVu Sans',sans-serif;"
      "max-width:60em;margin:2em auto}table{border-collapse:collapse}"
      "td,th{border-bottom:1px solid #ccc;padding:.2em .6em;"
      "text-align:right}th:first-child,td:first-child{text-align:left}"
      ".notes{border:1px solid #999;min-height:6em;padding:.5em}</style>"
      "</head><body>");
  absl::StrAppend(
      &html, "<p>", HtmlEscape(options.clinic_name), " · generated ",
      absl::FormatTime("%Y-%m-%d %H:%M", options.generated_at, options.zone),
      "</p><h1>Lateral step-down progress report</h1><h2>",
      HtmlEscape(r.patient),
      r.external_ref.empty()
          ? ""
          : absl::StrCat(" (", HtmlEscape(r.external_ref), ")"),
      "</h2><p>", HtmlEscape(r.horizon), ". Period ", HtmlEscape(r.first_day),
      " to ", HtmlEscape(r.last_day), " (days in ", HtmlEscape(r.time_zone),
      ").</p>");
  absl::StrAppendFormat(&html,
                        "<p>Sessions attended: <b>%d</b>; complete weeks on "
                        "the 3-4 sessions a week target: <b>%d of %d</b>.</p>",
                        r.sessions.size(), r.weeks_on_target, r.complete_weeks);
  html += "<h3>Readiness to progress</h3><ul>";
  for (const ReadinessLine& line : r.readiness) {
    absl::StrAppend(&html, "<li><b>", HtmlEscape(line.side), ":</b> ",
                    line.ready
                        ? "ready to progress"
                        : absl::StrCat("not ready: ", HtmlEscape(line.reason)),
                    line.next_step.empty()
                        ? ""
                        : absl::StrCat("; next: ", HtmlEscape(line.next_step)),
                    "</li>");
  }
  html += "</ul><h3>Mean pelvic drop per session</h3>";
  html += SvgChart(DropChart(r));
  if (r.drop_trend_per_session) {
    absl::StrAppendFormat(&html, "<p>Trend: %+.2f° per session.</p>",
                          *r.drop_trend_per_session);
  }
  html += "<h3>Clean repetitions per week</h3>";
  html += SvgChart(CleanChart(r));
  html +=
      "<h3>Sessions</h3><table><tr><th>day</th><th>sets</th><th>reps"
      "</th><th>clean %</th><th>mean drop</th><th>worst drop</th>"
      "<th>load</th></tr>";
  for (const SessionRow& s : r.sessions) {
    absl::StrAppendFormat(
        &html,
        "<tr><td>%s</td><td>%d</td><td>%d</td><td>%.0f%%</td><td>%s</td>"
        "<td>%s</td><td>%s</td></tr>",
        HtmlEscape(s.day), s.sets, s.repetitions, s.clean_percent,
        Degrees(s.mean_pelvic_drop_deg), Degrees(s.worst_pelvic_drop_deg),
        HtmlEscape(s.loads));
  }
  html +=
      "</table><h3>Quality-scale items (faults per assessed "
      "repetition)</h3><table>";
  for (const QualityFrequency& q : r.quality) {
    absl::StrAppendFormat(&html,
                          "<tr><td>%s</td><td>%d of %d</td><td>%.0f%%</td>"
                          "</tr>",
                          q.item, q.faulted, q.assessed,
                          100.0 * q.faulted / q.assessed);
  }
  html += "</table><h3>Therapist's notes</h3><div class=\"notes\">";
  for (const SessionRow& s : r.sessions) {
    if (s.note.empty()) continue;
    absl::StrAppend(&html, "<p><b>", HtmlEscape(s.day), ":</b> ",
                    HtmlEscape(s.note), "</p>");
  }
  return html + "</div></body></html>\n";
}

namespace {

void DrawPatientReport(const PatientReport& r, const RenderOptions& options,
                       PdfPages& pdf) {
  pdf.Text(absl::StrCat(options.clinic_name, " · generated ",
                        absl::FormatTime("%Y-%m-%d %H:%M", options.generated_at,
                                         options.zone)),
           9, false);
  pdf.Text("Lateral step-down progress report", 18, true);
  pdf.Text(
      absl::StrCat(r.patient, r.external_ref.empty()
                                  ? ""
                                  : absl::StrCat(" (", r.external_ref, ")")),
      14, true);
  pdf.Text(absl::StrCat(r.horizon, ". Period ", r.first_day, " to ", r.last_day,
                        " (days in ", r.time_zone, ")."),
           10, false);
  pdf.Text(
      absl::StrFormat("Sessions attended: %d. Complete weeks on the 3-4 "
                      "sessions a week target: %d of %d.",
                      r.sessions.size(), r.weeks_on_target, r.complete_weeks),
      10, false);
  pdf.Gap(6);
  pdf.Text("Readiness to progress", 12, true);
  for (const ReadinessLine& line : r.readiness) {
    pdf.Text(absl::StrCat(line.side, ": ",
                          line.ready ? "ready to progress"
                                     : absl::StrCat("not ready: ", line.reason),
                          line.next_step.empty()
                              ? ""
                              : absl::StrCat("; next: ", line.next_step)),
             10, false);
  }
  pdf.Gap(6);
  pdf.Text("Mean pelvic drop per session (dashed: trend)", 12, true);
  pdf.Draw(DropChart(r));
  if (r.drop_trend_per_session) {
    pdf.Text(absl::StrFormat("Trend: %+.2f° per session.",
                             *r.drop_trend_per_session),
             10, false);
  }
  pdf.Gap(6);
  pdf.Text("Clean repetitions per week", 12, true);
  pdf.Draw(CleanChart(r));
  pdf.Gap(6);
  pdf.Text("Quality-scale items: faults per assessed repetition", 12, true);
  for (const QualityFrequency& q : r.quality) {
    pdf.Row({q.item, absl::StrFormat("%d of %d", q.faulted, q.assessed),
             absl::StrFormat("%.0f%%", 100.0 * q.faulted / q.assessed)},
            {0, 160, 240}, false);
  }
  pdf.Gap(6);
  pdf.Text("Sessions", 12, true);
  std::vector<std::vector<std::string>> rows;
  for (const SessionRow& s : r.sessions) {
    rows.push_back({s.day, absl::StrCat(s.sets), absl::StrCat(s.repetitions),
                    absl::StrFormat("%.0f%%", s.clean_percent),
                    Degrees(s.mean_pelvic_drop_deg),
                    Degrees(s.worst_pelvic_drop_deg), s.loads});
  }
  pdf.Table(
      {"day", "sets", "reps", "clean %", "mean drop", "worst drop", "load"},
      {0, 75, 110, 150, 205, 265, 330}, rows);
  pdf.Gap(6);
  pdf.Text("Therapist's notes", 12, true);
  for (const SessionRow& s : r.sessions) {
    if (!s.note.empty()) pdf.Text(absl::StrCat(s.day, ": ", s.note), 10, false);
  }
  pdf.Box(80);  // room to write by hand on the printed report
}

}  // namespace

absl::StatusOr<std::string> RenderPatientReportPdf(
    const PatientReport& report, const RenderOptions& options) {
  return RenderPdf("Lateral step-down progress report", "", [&](PdfPages& pdf) {
    DrawPatientReport(report, options, pdf);
  });
}

}  // namespace stephub::reports
