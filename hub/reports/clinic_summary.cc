// The clinic summary's three renderings of one model: see clinic_summary.h.
#include "hub/reports/clinic_summary.h"

#include <google/protobuf/util/time_util.h>

#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace stephub::reports {

ClinicTotals TotalsOf(const ClinicSummary& summary) {
  ClinicTotals t;
  for (const PatientSeen& p : summary.patients) {
    ++t.patients_seen;
    t.sessions += p.sessions;
    t.weeks.below += p.weeks.below;
    t.weeks.on += p.weeks.on;
    t.weeks.above += p.weeks.above;
    t.weeks.in_progress += p.weeks.in_progress;
    t.patients_ready_to_progress += !p.ready_sides.empty();
    t.patients_not_improving += !p.not_improving.empty();
  }
  return t;
}

std::optional<double> UptimePercent(const StationUptime& station) {
  if (station.observed <= absl::ZeroDuration()) return std::nullopt;
  return 100.0 * absl::FDivDuration(station.connected, station.observed);
}

namespace {

using google::protobuf::util::TimeUtil;

std::string Rfc3339(absl::Time t) {
  return TimeUtil::ToString(
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t)));
}

std::string Hours(absl::Duration d) {
  return absl::StrFormat("%.2f", absl::ToDoubleHours(d));
}

std::string Trend(const std::optional<double>& slope) {
  return slope ? absl::StrFormat("%.2f", *slope) : "";
}

std::string Percent(const std::optional<double>& share) {
  return share ? absl::StrFormat("%.1f", *share) : "";
}

std::string SummaryRow(const char* section, const std::string& name,
                       const std::string& value, const std::string& unit) {
  return absl::StrCat(section, ",", name, ",", CsvField(value), ",", unit,
                      "\n");
}

// What HTML and PDF show alike, as rows of text: one place for the
// wording and the numbers' formats of the tables.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

std::string Display(const PatientSeen& p) {
  return p.external_ref.empty()
             ? p.patient
             : absl::StrCat(p.patient, " (", p.external_ref, ")");
}

std::string Sides(const std::vector<std::string>& sides) {
  return absl::StrJoin(sides, " and ");
}

std::string Share(int part, int whole) {
  return whole > 0 ? absl::StrFormat("%.0f%%", 100.0 * part / whole) : "";
}

const char* const kAdherenceLabels[] = {
    "below target", "on target", "above target", "week still in progress"};

Table AdherenceTable(const ClinicTotals& t) {
  const int counts[] = {t.weeks.below, t.weeks.on, t.weeks.above,
                        t.weeks.in_progress};
  const int all = counts[0] + counts[1] + counts[2] + counts[3];
  Table table{{"weeks", "patient-weeks", "share"}, {}};
  for (int i = 0; i < 4; ++i) {
    table.rows.push_back(
        {kAdherenceLabels[i], absl::StrCat(counts[i]), Share(counts[i], all)});
  }
  return table;
}

BarChart AdherenceChart(const ClinicTotals& t) {
  BarChart chart;
  chart.labels = {"below target", "on target", "above target", "in progress"};
  chart.values = {static_cast<double>(t.weeks.below),
                  static_cast<double>(t.weeks.on),
                  static_cast<double>(t.weeks.above),
                  static_cast<double>(t.weeks.in_progress)};
  chart.y_max = BarChartTop(chart.values);
  return chart;
}

Table ReadyTable(const ClinicSummary& s) {
  Table table{{"patient", "sessions", "ready side"}, {}};
  for (const PatientSeen& p : s.patients) {
    if (p.ready_sides.empty()) continue;
    table.rows.push_back(
        {Display(p), absl::StrCat(p.sessions), Sides(p.ready_sides)});
  }
  return table;
}

Table ReviewTable(const ClinicSummary& s) {
  Table table{{"patient", "weeks in", "why"}, {}};
  for (const PatientSeen& p : s.patients) {
    if (p.not_improving.empty()) continue;
    table.rows.push_back({Display(p), absl::StrCat(p.weeks_since_start),
                          absl::StrJoin(p.review_reasons, "; ")});
  }
  return table;
}

Table PatientsTable(const ClinicSummary& s) {
  Table table{{"patient", "first session", "weeks in", "sessions", "too soon",
               "below", "on", "above", "so far"},
              {}};
  for (const PatientSeen& p : s.patients) {
    table.rows.push_back(
        {Display(p), p.first_session_day, absl::StrCat(p.weeks_since_start),
         absl::StrCat(p.sessions), absl::StrCat(p.sessions_too_soon),
         absl::StrCat(p.weeks.below), absl::StrCat(p.weeks.on),
         absl::StrCat(p.weeks.above), absl::StrCat(p.weeks.in_progress)});
  }
  return table;
}

Table StationsTable(const ClinicSummary& s) {
  Table table{{"station", "observed h", "connected h", "uptime",
               "disconnections", "longest offline h", "spool losses"},
              {}};
  for (const StationUptime& st : s.stations) {
    const auto uptime = UptimePercent(st);
    table.rows.push_back(
        {st.station_id, Hours(st.observed), Hours(st.connected),
         uptime ? absl::StrCat(Percent(uptime), "%") : "",
         absl::StrCat(st.disconnections), Hours(st.longest_offline),
         absl::StrCat(st.spool_losses)});
  }
  return table;
}

Table GapsTable(const ClinicSummary& s, absl::TimeZone zone) {
  auto when = [&](absl::Time t) {
    return absl::FormatTime("%Y-%m-%d %H:%M", t, zone);
  };
  Table table{{"station", "gap", "from", "until", "hours", "detail"}, {}};
  for (const DataGap& g : s.gaps) {
    table.rows.push_back({g.station_id,
                          g.kind == "spool_loss" ? "spool loss" : g.kind,
                          when(g.start), g.end ? when(*g.end) : "",
                          g.duration ? Hours(*g.duration) : "", g.detail});
  }
  return table;
}

std::string Generated(const RenderOptions& options) {
  return absl::StrCat(
      options.clinic_name, " · generated ",
      absl::FormatTime("%Y-%m-%d %H:%M", options.generated_at, options.zone));
}

std::string PeriodLine(const ClinicSummary& s, const RenderOptions& options) {
  return absl::StrCat("Period ", s.from, " to ", s.to, " (days and times in ",
                      s.time_zone, "); progress as it stood at ",
                      absl::FormatTime("%Y-%m-%d %H:%M", s.as_of, options.zone),
                      ".");
}

std::string Headline(const ClinicTotals& t) {
  return absl::StrFormat(
      "Patients seen: %d. Sessions: %d. Ready to progress: %d. Flagged for "
      "review: %d.",
      t.patients_seen, t.sessions, t.patients_ready_to_progress,
      t.patients_not_improving);
}

std::string ReviewTitle(const ClinicSummary& s) {
  return absl::StrFormat(
      "Flagged for review: pelvic drop not improving %d or more weeks after "
      "the first session",
      s.review_after_weeks);
}

constexpr char kPatientsTitle[] =
    "Patients seen: sessions, and programme weeks below, on or above the "
    "target or still in progress";

constexpr char kAdherenceTitle[] =
    "Adherence: patient-weeks against the 3-4 sessions a week target";

std::string HtmlTable(const Table& t) {
  std::string html = "<table><tr>";
  for (const std::string& h : t.header) {
    absl::StrAppend(&html, "<th>", HtmlEscape(h), "</th>");
  }
  html += "</tr>";
  for (const auto& row : t.rows) {
    html += "<tr>";
    for (const std::string& cell : row) {
      absl::StrAppend(&html, "<td>", HtmlEscape(cell), "</td>");
    }
    html += "</tr>";
  }
  return html + "</table>";
}

// A table, or a line saying there is nothing to list.
std::string HtmlTableOr(const Table& t, const char* none) {
  return t.rows.empty() ? absl::StrCat("<p>", none, "</p>") : HtmlTable(t);
}

}  // namespace

std::string RenderClinicSummaryCsv(const ClinicSummary& s) {
  std::string csv = absl::StrCat(
      "section,name,value,unit\n",
      SummaryRow("report", "kind", "clinic_summary", ""),
      SummaryRow("report", "from", s.from, "day"),
      SummaryRow("report", "to", s.to, "day"),
      SummaryRow("report", "time_zone", s.time_zone, ""),
      SummaryRow("report", "as_of", Rfc3339(s.as_of), "utc"),
      SummaryRow("report", "review_after_weeks",
                 absl::StrCat(s.review_after_weeks), "weeks"),
      "\n",
      "section,patient_id,patient,external_ref,sessions,sessions_too_soon,"
      "first_session_day,weeks_since_start,weeks_below_target,"
      "weeks_on_target,weeks_above_target,weeks_in_progress,"
      "ready_to_progress,not_improving,left_pelvic_drop_trend_deg_per_week,"
      "right_pelvic_drop_trend_deg_per_week,review_reason\n");
  for (const PatientSeen& p : s.patients) {
    absl::StrAppend(&csv, "patients,", p.patient_id, ",", CsvField(p.patient),
                    ",", CsvField(p.external_ref), ",", p.sessions, ",",
                    p.sessions_too_soon, ",", p.first_session_day, ",",
                    p.weeks_since_start, ",", p.weeks.below, ",", p.weeks.on,
                    ",", p.weeks.above, ",", p.weeks.in_progress, ",",
                    absl::StrJoin(p.ready_sides, ";"), ",",
                    absl::StrJoin(p.not_improving, ";"), ",",
                    Trend(p.left_trend_deg_per_week), ",",
                    Trend(p.right_trend_deg_per_week), ",",
                    CsvField(absl::StrJoin(p.review_reasons, "; ")), "\n");
  }
  const ClinicTotals t = TotalsOf(s);
  absl::StrAppend(
      &csv, "\nsection,name,value,unit\n",
      SummaryRow("totals", "patients_seen", absl::StrCat(t.patients_seen),
                 "patients"),
      SummaryRow("totals", "sessions", absl::StrCat(t.sessions), "sessions"),
      SummaryRow("totals", "weeks_below_target", absl::StrCat(t.weeks.below),
                 "patient-weeks"),
      SummaryRow("totals", "weeks_on_target", absl::StrCat(t.weeks.on),
                 "patient-weeks"),
      SummaryRow("totals", "weeks_above_target", absl::StrCat(t.weeks.above),
                 "patient-weeks"),
      SummaryRow("totals", "weeks_in_progress",
                 absl::StrCat(t.weeks.in_progress), "patient-weeks"),
      SummaryRow("totals", "patients_ready_to_progress",
                 absl::StrCat(t.patients_ready_to_progress), "patients"),
      SummaryRow("totals", "patients_not_improving",
                 absl::StrCat(t.patients_not_improving), "patients"));
  csv +=
      "\nsection,station_id,observed_hours,connected_hours,uptime_percent,"
      "disconnections,longest_offline_hours,spool_loss_events\n";
  for (const StationUptime& st : s.stations) {
    absl::StrAppend(&csv, "stations,", CsvField(st.station_id), ",",
                    Hours(st.observed), ",", Hours(st.connected), ",",
                    Percent(UptimePercent(st)), ",", st.disconnections, ",",
                    Hours(st.longest_offline), ",", st.spool_losses, "\n");
  }
  csv += "\nsection,station_id,kind,start_utc,end_utc,duration_hours,detail\n";
  for (const DataGap& g : s.gaps) {
    absl::StrAppend(&csv, "data_gaps,", CsvField(g.station_id), ",", g.kind,
                    ",", Rfc3339(g.start), ",", g.end ? Rfc3339(*g.end) : "",
                    ",", g.duration ? Hours(*g.duration) : "", ",",
                    CsvField(g.detail), "\n");
  }
  return csv;
}

std::string RenderClinicSummaryHtml(const ClinicSummary& s,
                                    const RenderOptions& options) {
  const ClinicTotals t = TotalsOf(s);
  std::string html = absl::StrCat(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>Clinic summary ",
      HtmlEscape(s.from), " to ", HtmlEscape(s.to),
      "</title><style>body{font-family:'DejaVu Sans',sans-serif;"
      "max-width:60em;margin:2em auto}table{border-collapse:collapse}"
      "td,th{border-bottom:1px solid #ccc;padding:.2em .6em;"
      "text-align:left}</style></head><body><p>",
      HtmlEscape(Generated(options)), "</p><h1>Clinic summary</h1><p>",
      HtmlEscape(PeriodLine(s, options)), "</p><p><b>", Headline(t),
      "</b></p><h3>", kAdherenceTitle, "</h3>", HtmlTable(AdherenceTable(t)),
      SvgBarChart(AdherenceChart(t)), "<h3>Ready to progress</h3>",
      HtmlTableOr(ReadyTable(s), "Nobody in this period."), "<h3>",
      HtmlEscape(ReviewTitle(s)), "</h3>",
      HtmlTableOr(ReviewTable(s), "Nobody in this period."), "<h3>",
      kPatientsTitle, "</h3>",
      HtmlTableOr(PatientsTable(s), "Nobody had a session in this period."),
      "<h3>Station uptime</h3>",
      HtmlTableOr(StationsTable(s), "No station history in this period."),
      "<h3>Data gaps</h3>",
      HtmlTableOr(GapsTable(s, options.zone), "None in this period."));
  return html + "</body></html>\n";
}

namespace {

void DrawTable(PdfPages& pdf, const Table& table,
               const std::vector<double>& columns, const char* none) {
  if (table.rows.empty()) {
    pdf.Text(none, 10, false);
  } else {
    pdf.Table(table.header, columns, table.rows);
  }
}

void DrawClinicSummary(const ClinicSummary& s, const RenderOptions& options,
                       PdfPages& pdf) {
  const ClinicTotals t = TotalsOf(s);
  pdf.Text(Generated(options), 9, false);
  pdf.Text("Clinic summary", 18, true);
  pdf.Text(PeriodLine(s, options), 10, false);
  pdf.Gap(4);
  pdf.Text(Headline(t), 11, true);
  pdf.Gap(6);
  pdf.Text(kAdherenceTitle, 12, true);
  pdf.Table(AdherenceTable(t).header, {0, 160, 250}, AdherenceTable(t).rows);
  pdf.Draw(AdherenceChart(t));
  pdf.Gap(6);
  pdf.Text("Ready to progress", 12, true);
  DrawTable(pdf, ReadyTable(s), {0, 200, 260}, "Nobody in this period.");
  pdf.Gap(6);
  pdf.Text(ReviewTitle(s), 12, true);
  DrawTable(pdf, ReviewTable(s), {0, 140, 190}, "Nobody in this period.");
  pdf.Gap(6);
  pdf.Text(kPatientsTitle, 12, true);
  DrawTable(pdf, PatientsTable(s), {0, 125, 195, 245, 295, 345, 385, 415, 450},
            "Nobody had a session in this period.");
  pdf.Gap(6);
  pdf.Text("Station uptime", 12, true);
  DrawTable(pdf, StationsTable(s), {0, 45, 110, 180, 225, 305, 400},
            "No station history in this period.");
  pdf.Gap(6);
  pdf.Text("Data gaps", 12, true);
  DrawTable(pdf, GapsTable(s, options.zone), {0, 45, 100, 195, 290, 330},
            "None in this period.");
}

}  // namespace

absl::StatusOr<std::string> RenderClinicSummaryPdf(
    const ClinicSummary& summary, const RenderOptions& options) {
  return RenderPdf(
      "Clinic summary",
      absl::StrCat(options.clinic_name, " · clinic summary ", summary.from,
                   " to ", summary.to),
      [&](PdfPages& pdf) { DrawClinicSummary(summary, options, pdf); });
}

}  // namespace stephub::reports
