#include "hub/reports/patient_report.h"

#include <cairo-pdf.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

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

std::string Escape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A chart as both renderings draw it: points, an optional trend line from
// x = 1 to x_max - 1, axes from 0.
struct Chart {
  std::vector<double> x, y;
  std::optional<std::pair<double, double>> trend;  // y at its two ends
  double x_max = 1;
  double y_max = 1;
  const char* unit = "";
};

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

namespace {

std::string SvgChart(const Chart& chart) {
  const double x_max = chart.x_max, y_max = chart.y_max;
  constexpr double kW = 520, kH = 200, kL = 40, kB = 24, kT = 8, kR = 10;
  auto px = [&](double x) { return kL + (x / x_max) * (kW - kL - kR); };
  auto py = [&](double y) { return kH - kB - (y / y_max) * (kH - kB - kT); };
  std::string svg = absl::StrFormat(
      R"(<svg width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">)"
      R"(<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" )"
      R"(stroke="#999"/>)",
      kW, kH, kW, kH, kL, kT, kW - kL - kR, kH - kB - kT);
  for (int i = 0; i <= 4; ++i) {
    const double v = y_max * i / 4;
    absl::StrAppendFormat(
        &svg,
        R"(<text x="%.0f" y="%.1f" font-size="10" text-anchor="end">)"
        R"(%.0f%s</text>)",
        kL - 4, py(v) + 3, v, chart.unit);
  }
  for (size_t i = 0; i < chart.x.size(); ++i) {
    absl::StrAppendFormat(
        &svg, R"(<circle cx="%.1f" cy="%.1f" r="3.5" fill="#0969da"/>)",
        px(chart.x[i]), py(std::max(0.0, chart.y[i])));
  }
  if (const auto& trend = chart.trend) {
    absl::StrAppendFormat(
        &svg,
        R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c62828" )"
        R"(stroke-dasharray="5 3"/>)",
        px(1), py(std::max(0.0, trend->first)), px(x_max - 1),
        py(std::max(0.0, trend->second)));
  }
  return svg + "</svg>";
}

}  // namespace

std::string RenderPatientReportHtml(const PatientReport& r,
                                    const RenderOptions& options) {
  std::string html = absl::StrCat(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>Progress report: ",
      Escape(r.patient),
      "</title><style>body{font-family:'DejaVu Sans',sans-serif;"
      "max-width:60em;margin:2em auto}table{border-collapse:collapse}"
      "td,th{border-bottom:1px solid #ccc;padding:.2em .6em;"
      "text-align:right}th:first-child,td:first-child{text-align:left}"
      ".notes{border:1px solid #999;min-height:6em;padding:.5em}</style>"
      "</head><body>");
  absl::StrAppend(
      &html, "<p>", Escape(options.clinic_name), " · generated ",
      absl::FormatTime("%Y-%m-%d %H:%M", options.generated_at, options.zone),
      "</p><h1>Lateral step-down progress report</h1><h2>", Escape(r.patient),
      r.external_ref.empty() ? ""
                             : absl::StrCat(" (", Escape(r.external_ref), ")"),
      "</h2><p>", Escape(r.horizon), ". Period ", Escape(r.first_day), " to ",
      Escape(r.last_day), " (days in ", Escape(r.time_zone), ").</p>");
  absl::StrAppendFormat(&html,
                        "<p>Sessions attended: <b>%d</b>; complete weeks on "
                        "the 3-4 sessions a week target: <b>%d of %d</b>.</p>",
                        r.sessions.size(), r.weeks_on_target, r.complete_weeks);
  html += "<h3>Readiness to progress</h3><ul>";
  for (const ReadinessLine& line : r.readiness) {
    absl::StrAppend(&html, "<li><b>", Escape(line.side), ":</b> ",
                    line.ready
                        ? "ready to progress"
                        : absl::StrCat("not ready: ", Escape(line.reason)),
                    line.next_step.empty()
                        ? ""
                        : absl::StrCat("; next: ", Escape(line.next_step)),
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
        Escape(s.day), s.sets, s.repetitions, s.clean_percent,
        Degrees(s.mean_pelvic_drop_deg), Degrees(s.worst_pelvic_drop_deg),
        Escape(s.loads));
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
    absl::StrAppend(&html, "<p><b>", Escape(s.day), ":</b> ", Escape(s.note),
                    "</p>");
  }
  return html + "</div></body></html>\n";
}

namespace {

// Lays the report out on A4 pages with cairo; run once to count the pages
// and once to draw them with "Page i of n".
class PdfLayout {
 public:
  static constexpr double kWidth = 595.276, kHeight = 841.89;  // A4, pt
  static constexpr double kMargin = 50;

  PdfLayout(cairo_t* cr, int total_pages, const RenderOptions& options)
      : cr_(cr), total_pages_(total_pages), options_(options) {}

  int pages() const { return page_; }

  void Run(const PatientReport& r) {
    StartPage();
    Text(absl::StrCat(options_.clinic_name, " · generated ",
                      absl::FormatTime("%Y-%m-%d %H:%M", options_.generated_at,
                                       options_.zone)),
         9, false);
    Text("Lateral step-down progress report", 18, true);
    Text(absl::StrCat(r.patient, r.external_ref.empty()
                                     ? ""
                                     : absl::StrCat(" (", r.external_ref, ")")),
         14, true);
    Text(absl::StrCat(r.horizon, ". Period ", r.first_day, " to ", r.last_day,
                      " (days in ", r.time_zone, ")."),
         10, false);
    Text(
        absl::StrFormat("Sessions attended: %d. Complete weeks on the 3-4 "
                        "sessions a week target: %d of %d.",
                        r.sessions.size(), r.weeks_on_target, r.complete_weeks),
        10, false);
    Gap(6);
    Text("Readiness to progress", 12, true);
    for (const ReadinessLine& line : r.readiness) {
      Text(absl::StrCat(line.side, ": ",
                        line.ready ? "ready to progress"
                                   : absl::StrCat("not ready: ", line.reason),
                        line.next_step.empty()
                            ? ""
                            : absl::StrCat("; next: ", line.next_step)),
           10, false);
    }
    Gap(6);
    Text("Mean pelvic drop per session (dashed: trend)", 12, true);
    Draw(DropChart(r));
    if (r.drop_trend_per_session) {
      Text(absl::StrFormat("Trend: %+.2f° per session.",
                           *r.drop_trend_per_session),
           10, false);
    }
    Gap(6);
    Text("Clean repetitions per week", 12, true);
    Draw(CleanChart(r));
    Gap(6);
    Text("Quality-scale items: faults per assessed repetition", 12, true);
    for (const QualityFrequency& q : r.quality) {
      Row({q.item, absl::StrFormat("%d of %d", q.faulted, q.assessed),
           absl::StrFormat("%.0f%%", 100.0 * q.faulted / q.assessed)},
          {0, 160, 240}, false);
    }
    Gap(6);
    Text("Sessions", 12, true);
    const std::vector<double> columns = {0, 75, 110, 150, 205, 265, 330};
    Row({"day", "sets", "reps", "clean %", "mean drop", "worst drop", "load"},
        columns, true);
    for (const SessionRow& s : r.sessions) {
      Row({s.day, absl::StrCat(s.sets), absl::StrCat(s.repetitions),
           absl::StrFormat("%.0f%%", s.clean_percent),
           Degrees(s.mean_pelvic_drop_deg), Degrees(s.worst_pelvic_drop_deg),
           s.loads},
          columns, false);
    }
    Gap(6);
    Text("Therapist's notes", 12, true);
    for (const SessionRow& s : r.sessions) {
      if (!s.note.empty()) Text(absl::StrCat(s.day, ": ", s.note), 10, false);
    }
    // Room to write by hand on the printed report.
    Ensure(90);
    cairo_set_line_width(cr_, 0.8);
    cairo_set_source_rgb(cr_, 0.5, 0.5, 0.5);
    cairo_rectangle(cr_, kMargin, y_ + 4, kWidth - 2 * kMargin, 80);
    cairo_stroke(cr_);
    y_ += 90;
    EndPage();
  }

 private:
  void StartPage() {
    ++page_;
    y_ = kMargin;
  }
  void EndPage() {
    Font(8, false);
    const std::string footer =
        total_pages_ > 0 ? absl::StrFormat("Page %d of %d", page_, total_pages_)
                         : absl::StrFormat("Page %d", page_);
    cairo_move_to(cr_, kWidth - kMargin - 60, kHeight - 25);
    cairo_show_text(cr_, footer.c_str());
    cairo_show_page(cr_);
  }
  void Ensure(double height) {
    if (y_ + height <= kHeight - kMargin) return;
    EndPage();
    StartPage();
  }
  void Gap(double points) { y_ += points; }
  void Font(double size, bool bold) {
    cairo_select_font_face(
        cr_, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
        bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    cairo_set_source_rgb(cr_, 0.1, 0.1, 0.1);
  }
  // One line; text too long for the page is cut at a word and continued.
  void Text(const std::string& text, double size, bool bold) {
    Font(size, bold);
    const double width = kWidth - 2 * kMargin;
    std::string rest = text;
    while (!rest.empty()) {
      size_t cut = rest.size();
      cairo_text_extents_t extents;
      cairo_text_extents(cr_, rest.substr(0, cut).c_str(), &extents);
      while (extents.x_advance > width && cut > 1) {
        const size_t space = rest.rfind(' ', cut - 1);
        cut = space == std::string::npos || space == 0 ? cut - 1 : space;
        cairo_text_extents(cr_, rest.substr(0, cut).c_str(), &extents);
      }
      Ensure(size * 1.5);
      y_ += size * 1.25;
      Font(size, bold);
      cairo_move_to(cr_, kMargin, y_);
      cairo_show_text(cr_, rest.substr(0, cut).c_str());
      y_ += size * 0.25;
      rest = cut < rest.size() ? rest.substr(cut + (rest[cut] == ' ')) : "";
    }
  }
  void Row(const std::vector<std::string>& cells,
           const std::vector<double>& columns, bool bold) {
    Ensure(14);
    y_ += 11;
    Font(9, bold);
    for (size_t i = 0; i < cells.size() && i < columns.size(); ++i) {
      cairo_move_to(cr_, kMargin + columns[i], y_);
      cairo_show_text(cr_, cells[i].c_str());
    }
    y_ += 3;
  }
  void Draw(const Chart& chart) {
    const double x_max = chart.x_max, y_max = chart.y_max;
    constexpr double kH = 120, kLeft = 40;
    Ensure(kH + 10);
    const double top = y_ + 4;
    const double left = kMargin + kLeft;
    const double w = kWidth - 2 * kMargin - kLeft;
    const double h = kH - 10;
    auto px = [&](double x) { return left + (x / x_max) * w; };
    auto py = [&](double y) {
      return top + h - (std::max(0.0, y) / y_max) * h;
    };
    cairo_set_line_width(cr_, 0.5);
    cairo_set_source_rgb(cr_, 0.6, 0.6, 0.6);
    cairo_rectangle(cr_, left, top, w, h);
    cairo_stroke(cr_);
    Font(8, false);
    for (int i = 0; i <= 4; ++i) {
      const double v = y_max * i / 4;
      const std::string label = absl::StrFormat("%.0f%s", v, chart.unit);
      cairo_move_to(cr_, kMargin, py(v) + 3);
      cairo_show_text(cr_, label.c_str());
    }
    cairo_set_source_rgb(cr_, 0.04, 0.41, 0.85);
    for (size_t i = 0; i < chart.x.size(); ++i) {
      cairo_new_sub_path(cr_);
      cairo_arc(cr_, px(chart.x[i]), py(chart.y[i]), 2.5, 0, 2 * M_PI);
      cairo_fill(cr_);
    }
    if (const auto& trend = chart.trend) {
      cairo_set_source_rgb(cr_, 0.78, 0.16, 0.16);
      const double dash[] = {4, 3};
      cairo_set_dash(cr_, dash, 2, 0);
      cairo_set_line_width(cr_, 1);
      cairo_move_to(cr_, px(1), py(trend->first));
      cairo_line_to(cr_, px(x_max - 1), py(trend->second));
      cairo_stroke(cr_);
      cairo_set_dash(cr_, nullptr, 0, 0);
    }
    y_ = top + kH;
  }

  cairo_t* cr_;
  const int total_pages_;
  const RenderOptions& options_;
  int page_ = 0;
  double y_ = 0;
};

cairo_status_t AppendTo(void* closure, const unsigned char* data,
                        unsigned int length) {
  static_cast<std::string*>(closure)->append(
      reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// Lays the report out on a PDF surface writing into `out`; the page count.
absl::StatusOr<int> Render(const PatientReport& report,
                           const RenderOptions& options, int total_pages,
                           std::string* out) {
  cairo_surface_t* surface = cairo_pdf_surface_create_for_stream(
      AppendTo, out, PdfLayout::kWidth, PdfLayout::kHeight);
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE,
                                 "Lateral step-down progress report");
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR,
                                 "StepHub");
  cairo_t* cr = cairo_create(surface);
  PdfLayout layout(cr, total_pages, options);
  layout.Run(report);
  cairo_destroy(cr);
  cairo_surface_finish(surface);
  const cairo_status_t status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    return absl::InternalError(absl::StrCat("cairo could not write the PDF: ",
                                            cairo_status_to_string(status)));
  }
  return layout.pages();
}

}  // namespace

absl::StatusOr<std::string> RenderPatientReportPdf(
    const PatientReport& report, const RenderOptions& options) {
  std::string draft;
  auto pages = Render(report, options, 0, &draft);
  if (!pages.ok()) return pages.status();
  std::string pdf;
  auto again = Render(report, options, *pages, &pdf);
  if (!again.ok()) return again.status();
  return pdf;
}

}  // namespace stephub::reports
