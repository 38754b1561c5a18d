// The reports' shared rendering: see page_layout.h.
#include "hub/reports/page_layout.h"

#include <cairo-pdf.h>
#include <cairo.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace stephub::reports {

double BarChartTop(const std::vector<double>& values) {
  double most = 0;
  for (double v : values) most = std::max(most, v);
  // Quarters of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5 or 8 times a power of ten,
  // whole numbers at least 1: axis labels a reader takes in at a glance.
  for (double power = 1;; power *= 10) {
    for (double m : {1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 8.0}) {
      const double quarter = m * power;
      if (quarter != std::floor(quarter)) continue;
      if (4 * quarter >= most) return 4 * quarter;
    }
  }
}

std::string HtmlEscape(absl::string_view text) {
  return absl::StrReplaceAll(
      text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\n\r") == std::string::npos) return value;
  return absl::StrCat("\"", absl::StrReplaceAll(value, {{"\"", "\"\""}}), "\"");
}

namespace {

// The SVG charts' frame, in px: width, height and the plot's margins.
constexpr double kSvgW = 520, kSvgH = 200, kSvgL = 40, kSvgB = 24, kSvgT = 8,
                 kSvgR = 10;

double SvgY(double y, double y_max) {
  return kSvgH - kSvgB - (std::max(0.0, y) / y_max) * (kSvgH - kSvgB - kSvgT);
}

// The frame and the y axis's quarter labels.
std::string SvgFrame(double y_max, const char* unit) {
  std::string svg = absl::StrFormat(
      R"(<svg width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">)"
      R"(<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" )"
      R"(stroke="#999"/>)",
      kSvgW, kSvgH, kSvgW, kSvgH, kSvgL, kSvgT, kSvgW - kSvgL - kSvgR,
      kSvgH - kSvgB - kSvgT);
  for (int i = 0; i <= 4; ++i) {
    const double v = y_max * i / 4;
    absl::StrAppendFormat(
        &svg,
        R"(<text x="%.0f" y="%.1f" font-size="10" text-anchor="end">)"
        R"(%.0f%s</text>)",
        kSvgL - 4, SvgY(v, y_max) + 3, v, unit);
  }
  return svg;
}

}  // namespace

std::string SvgChart(const Chart& chart) {
  auto px = [&](double x) {
    return kSvgL + (x / chart.x_max) * (kSvgW - kSvgL - kSvgR);
  };
  std::string svg = SvgFrame(chart.y_max, chart.unit);
  for (size_t i = 0; i < chart.x.size(); ++i) {
    absl::StrAppendFormat(
        &svg, R"(<circle cx="%.1f" cy="%.1f" r="3.5" fill="#0969da"/>)",
        px(chart.x[i]), SvgY(chart.y[i], chart.y_max));
  }
  if (const auto& trend = chart.trend) {
    absl::StrAppendFormat(
        &svg,
        R"(<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c62828" )"
        R"(stroke-dasharray="5 3"/>)",
        px(1), SvgY(trend->first, chart.y_max), px(chart.x_max - 1),
        SvgY(trend->second, chart.y_max));
  }
  return svg + "</svg>";
}

std::string SvgBarChart(const BarChart& chart) {
  std::string svg = SvgFrame(chart.y_max, "");
  const double slot =
      (kSvgW - kSvgL - kSvgR) / std::max<size_t>(1, chart.values.size());
  for (size_t i = 0; i < chart.values.size(); ++i) {
    const double x = kSvgL + slot * static_cast<double>(i);
    const double top = SvgY(chart.values[i], chart.y_max);
    absl::StrAppendFormat(
        &svg,
        R"(<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" )"
        R"(fill="#0969da"/><text x="%.1f" y="%.1f" font-size="10" )"
        R"(text-anchor="middle">%.0f</text><text x="%.1f" y="%.1f" )"
        R"(font-size="10" text-anchor="middle">%s</text>)",
        x + slot * 0.2, top, slot * 0.6, kSvgH - kSvgB - top, x + slot / 2,
        top - 3, chart.values[i], x + slot / 2, kSvgH - kSvgB + 14,
        HtmlEscape(chart.labels[i]));
  }
  return svg + "</svg>";
}

void PdfPages::StartPage() {
  ++page_;
  y_ = kMargin;
}

void PdfPages::EndPage() {
  Font(8, false);
  if (!footer_.empty()) {
    cairo_move_to(cr_, kMargin, kHeight - 25);
    cairo_show_text(cr_, Fit(footer_, kWidth - 2 * kMargin - 80).c_str());
  }
  const std::string number =
      total_pages_ > 0 ? absl::StrFormat("Page %d of %d", page_, total_pages_)
                       : absl::StrFormat("Page %d", page_);
  cairo_move_to(cr_, kWidth - kMargin - 60, kHeight - 25);
  cairo_show_text(cr_, number.c_str());
  cairo_show_page(cr_);
}

void PdfPages::Ensure(double height) {
  if (y_ + height <= kHeight - kMargin) return;
  EndPage();
  StartPage();
}

void PdfPages::Gap(double points) { y_ += points; }

void PdfPages::Font(double size, bool bold) {
  cairo_select_font_face(
      cr_, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
      bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr_, size);
  cairo_set_source_rgb(cr_, 0.1, 0.1, 0.1);
}

// In the current font; a word longer than the width is cut where it must.
std::vector<std::string> PdfPages::Wrap(const std::string& text, double width) {
  std::vector<std::string> lines;
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
    lines.push_back(rest.substr(0, cut));
    rest = cut < rest.size() ? rest.substr(cut + (rest[cut] == ' ')) : "";
  }
  return lines;
}

std::string PdfPages::Fit(const std::string& text, double width) {
  cairo_text_extents_t extents;
  cairo_text_extents(cr_, text.c_str(), &extents);
  if (extents.x_advance <= width) return text;
  std::string cut = text;
  while (!cut.empty()) {
    // Back to the start of a UTF-8 character, never into one.
    do {
      cut.pop_back();
    } while (!cut.empty() && (cut.back() & 0xC0) == 0x80);
    if (!cut.empty() && (cut.back() & 0x80)) cut.pop_back();
    const std::string shortened = cut + "…";
    cairo_text_extents(cr_, shortened.c_str(), &extents);
    if (extents.x_advance <= width) return shortened;
  }
  return "…";
}

void PdfPages::Text(const std::string& text, double size, bool bold) {
  Font(size, bold);
  for (const std::string& line : Wrap(text, kWidth - 2 * kMargin)) {
    Ensure(size * 1.5);
    y_ += size * 1.25;
    Font(size, bold);
    cairo_move_to(cr_, kMargin, y_);
    cairo_show_text(cr_, line.c_str());
    y_ += size * 0.25;
  }
}

void PdfPages::Row(const std::vector<std::string>& cells,
                   const std::vector<double>& columns, bool bold) {
  Ensure(14);
  y_ += 11;
  Font(9, bold);
  for (size_t i = 0; i < cells.size() && i < columns.size(); ++i) {
    const double right =
        i + 1 < columns.size() ? columns[i + 1] - 4 : kWidth - 2 * kMargin;
    cairo_move_to(cr_, kMargin + columns[i], y_);
    cairo_show_text(cr_, Fit(cells[i], right - columns[i]).c_str());
  }
  y_ += 3;
}

void PdfPages::Table(const std::vector<std::string>& header,
                     const std::vector<double>& columns,
                     const std::vector<std::vector<std::string>>& rows) {
  constexpr double kLine = 14;
  Ensure(2 * kLine);  // never a header alone at the foot of a page
  Row(header, columns, true);
  for (const std::vector<std::string>& cells : rows) {
    Font(9, false);
    std::vector<std::string> last = {""};
    if (cells.size() >= columns.size() && !columns.empty()) {
      last = Wrap(cells[columns.size() - 1],
                  kWidth - 2 * kMargin - columns.back());
      if (last.empty()) last = {""};  // an empty cell is still a line
    }
    const double height = kLine * static_cast<double>(last.size());
    if (y_ + height > kHeight - kMargin) {
      EndPage();
      StartPage();
      Row(header, columns, true);
    }
    std::vector<std::string> first(
        cells.begin(), cells.begin() + std::min(cells.size(), columns.size()));
    if (first.size() == columns.size()) first.back() = last[0];
    Row(first, columns, false);
    for (size_t i = 1; i < last.size(); ++i) {
      y_ += 11;
      Font(9, false);
      cairo_move_to(cr_, kMargin + columns.back(), y_);
      cairo_show_text(cr_, last[i].c_str());
      y_ += 3;
    }
  }
}

void PdfPages::Axes(double top, double left, double w, double h, double y_max,
                    const char* unit) {
  cairo_set_line_width(cr_, 0.5);
  cairo_set_source_rgb(cr_, 0.6, 0.6, 0.6);
  cairo_rectangle(cr_, left, top, w, h);
  cairo_stroke(cr_);
  Font(8, false);
  for (int i = 0; i <= 4; ++i) {
    const double v = y_max * i / 4;
    const std::string label = absl::StrFormat("%.0f%s", v, unit);
    cairo_move_to(cr_, kMargin, top + h - (v / y_max) * h + 3);
    cairo_show_text(cr_, label.c_str());
  }
}

void PdfPages::Draw(const Chart& chart) {
  constexpr double kH = 120, kLeft = 40;
  Ensure(kH + 10);
  const double top = y_ + 4;
  const double left = kMargin + kLeft;
  const double w = kWidth - 2 * kMargin - kLeft;
  const double h = kH - 10;
  auto px = [&](double x) { return left + (x / chart.x_max) * w; };
  auto py = [&](double y) {
    return top + h - (std::max(0.0, y) / chart.y_max) * h;
  };
  Axes(top, left, w, h, chart.y_max, chart.unit);
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
    cairo_line_to(cr_, px(chart.x_max - 1), py(trend->second));
    cairo_stroke(cr_);
    cairo_set_dash(cr_, nullptr, 0, 0);
  }
  y_ = top + kH;
}

void PdfPages::Draw(const BarChart& chart) {
  constexpr double kH = 120, kLeft = 40, kLabels = 14;
  Ensure(kH + kLabels + 20);
  const double top = y_ + 14;  // room for the tallest bar's value
  const double left = kMargin + kLeft;
  const double w = kWidth - 2 * kMargin - kLeft;
  const double h = kH - 10;
  Axes(top, left, w, h, chart.y_max, "");
  const double slot = w / std::max<size_t>(1, chart.values.size());
  for (size_t i = 0; i < chart.values.size(); ++i) {
    const double x = left + slot * static_cast<double>(i);
    const double bar = (std::max(0.0, chart.values[i]) / chart.y_max) * h;
    cairo_set_source_rgb(cr_, 0.04, 0.41, 0.85);
    cairo_rectangle(cr_, x + slot * 0.2, top + h - bar, slot * 0.6, bar);
    cairo_fill(cr_);
    Font(8, false);
    const std::string value = absl::StrFormat("%.0f", chart.values[i]);
    cairo_text_extents_t extents;
    cairo_text_extents(cr_, value.c_str(), &extents);
    cairo_move_to(cr_, x + (slot - extents.x_advance) / 2, top + h - bar - 3);
    cairo_show_text(cr_, value.c_str());
    const std::string label = Fit(chart.labels[i], slot - 4);
    cairo_text_extents(cr_, label.c_str(), &extents);
    cairo_move_to(cr_, x + (slot - extents.x_advance) / 2, top + h + 11);
    cairo_show_text(cr_, label.c_str());
  }
  y_ = top + kH + kLabels;
}

void PdfPages::Box(double height) {
  Ensure(height + 10);
  cairo_set_line_width(cr_, 0.8);
  cairo_set_source_rgb(cr_, 0.5, 0.5, 0.5);
  cairo_rectangle(cr_, kMargin, y_ + 4, kWidth - 2 * kMargin, height);
  cairo_stroke(cr_);
  y_ += height + 10;
}

namespace {

cairo_status_t AppendTo(void* closure, const unsigned char* data,
                        unsigned int length) {
  static_cast<std::string*>(closure)->append(
      reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

absl::StatusOr<std::string> RenderPdf(
    const std::string& title, const std::string& footer,
    const std::function<void(PdfPages&)>& draw) {
  int pages = 0;
  std::string pdf;
  for (bool counting : {true, false}) {
    pdf.clear();
    cairo_surface_t* surface = cairo_pdf_surface_create_for_stream(
        AppendTo, &pdf, PdfPages::kWidth, PdfPages::kHeight);
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE,
                                   title.c_str());
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR,
                                   "StepHub");
    cairo_t* cr = cairo_create(surface);
    PdfPages layout(cr, counting ? 0 : pages, footer);
    layout.StartPage();
    draw(layout);
    layout.EndPage();
    pages = layout.page_;
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    const cairo_status_t status = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    if (status != CAIRO_STATUS_SUCCESS) {
      return absl::InternalError(absl::StrCat("cairo could not write the PDF: ",
                                              cairo_status_to_string(status)));
    }
  }
  return pdf;
}

}  // namespace stephub::reports
