// What every report rendering shares: the options (clinic, time, zone),
// chart models that both the SVG in HTML and the cairo PDF draw, text
// escaping for HTML and CSV, and A4 PDF pages laid out with cairo (fonts
// embedded, tables whose header repeats on each page they run onto,
// "Page i of n" on every page).
#ifndef STEPHUB_HUB_REPORTS_PAGE_LAYOUT_H_
#define STEPHUB_HUB_REPORTS_PAGE_LAYOUT_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct _cairo;  // cairo_t, kept out of the renderers' headers

namespace stephub::reports {

struct RenderOptions {
  std::string clinic_name = "StepHub";
  absl::Time generated_at;
  absl::TimeZone zone = absl::UTCTimeZone();
};

// Points with an optional trend line from x = 1 to x_max - 1; axes from 0.
struct Chart {
  std::vector<double> x, y;
  std::optional<std::pair<double, double>> trend;  // y at its two ends
  double x_max = 1;
  double y_max = 1;
  const char* unit = "";
};

// One bar per category, its value written above it; the y axis from 0.
struct BarChart {
  std::vector<std::string> labels;
  std::vector<double> values;
  double y_max = 1;
};

// A y axis top at or above every value whose quarter lines fall on round
// whole numbers (4, 8, 12, ..., 40, 60, 80, 100, ..., 600, ...).
double BarChartTop(const std::vector<double>& values);

std::string HtmlEscape(absl::string_view text);
// RFC 4180: quoted only when it holds a comma, quote or line break.
std::string CsvField(const std::string& value);

std::string SvgChart(const Chart& chart);
std::string SvgBarChart(const BarChart& chart);

// A4 pages drawn top to bottom; a block that does not fit on what is left
// of a page starts the next one.
class PdfPages {
 public:
  static constexpr double kWidth = 595.276, kHeight = 841.89;  // A4, pt
  static constexpr double kMargin = 50;

  // Wraps at words to the page's width.
  void Text(const std::string& text, double size, bool bold);
  void Gap(double points);
  // One line of cells at the columns' x offsets from the margin; a cell too
  // wide for its column is shortened with "…".
  void Row(const std::vector<std::string>& cells,
           const std::vector<double>& columns, bool bold);
  // `header` in bold, then the rows; a table that runs onto another page
  // repeats its header there. The last column wraps to the page's width.
  void Table(const std::vector<std::string>& header,
             const std::vector<double>& columns,
             const std::vector<std::vector<std::string>>& rows);
  void Draw(const Chart& chart);
  void Draw(const BarChart& chart);
  // An empty framed box the width of the page (room to write by hand).
  void Box(double height);

 private:
  friend absl::StatusOr<std::string> RenderPdf(
      const std::string& title, const std::string& footer,
      const std::function<void(PdfPages&)>& draw);

  PdfPages(_cairo* cr, int total_pages, std::string footer)
      : cr_(cr), total_pages_(total_pages), footer_(std::move(footer)) {}

  void StartPage();
  void EndPage();
  void Ensure(double height);
  void Font(double size, bool bold);
  std::vector<std::string> Wrap(const std::string& text, double width);
  std::string Fit(const std::string& text, double width);
  void Axes(double top, double left, double w, double h, double y_max,
            const char* unit);

  _cairo* cr_;
  const int total_pages_;
  const std::string footer_;
  int page_ = 0;
  double y_ = 0;
};

// Runs `draw` twice over A4 pages, once to count them and once to number
// them "Page i of n", `footer` at the foot of each page beside the number.
absl::StatusOr<std::string> RenderPdf(
    const std::string& title, const std::string& footer,
    const std::function<void(PdfPages&)>& draw);

}  // namespace stephub::reports

#endif  // STEPHUB_HUB_REPORTS_PAGE_LAYOUT_H_
