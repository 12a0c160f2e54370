// A small line chart written as SVG: error against number of labels, one line per method, with
// an optional band (min..max over seeds). Enough for the results pages; no plotting library.
#pragma once

#include <string>
#include <vector>

namespace ulmfit {

struct ChartPoint {
  double x = 0;
  double y = 0;
  double low = 0;   // band around y (e.g. the smallest value over seeds); low == high: no band
  double high = 0;
};

struct ChartSeries {
  std::string name;
  std::vector<ChartPoint> points;  // drawn in the given order
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;      // logarithmic x axis (numbers of labels)
  bool y_percent = false;  // y values are fractions shown as percentages
  std::vector<ChartSeries> series;
};

// The chart as a standalone SVG document (640x400).
std::string RenderSvg(const LineChart& chart);

// Horizontal bars, one per variant (ablations): the value, with a whisker from low to high.
struct Bar {
  std::string name;
  double value = 0;
  double low = 0;   // low == high: no whisker
  double high = 0;
};

struct BarChart {
  std::string title;
  std::string value_label;
  bool percent = false;  // values are fractions shown as percentages
  std::vector<Bar> bars;  // drawn top to bottom
};

// The chart as a standalone SVG document, 640 wide and as tall as its bars need.
std::string RenderBarSvg(const BarChart& chart);

}  // namespace ulmfit
