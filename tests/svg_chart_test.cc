// The SVG chart: well-formed output, points placed on the right scale, names escaped.
#include "util/svg_chart.h"

#include <gtest/gtest.h>

#include <string>

namespace ulmfit {
namespace {

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(SvgChart, OneLineAndMarkerPerSeriesPoint) {
  LineChart chart;
  chart.title = "TREC-6 <test>";
  chart.x_label = "labels";
  chart.y_label = "test error";
  chart.log_x = true;
  chart.y_percent = true;
  chart.series = {{"random", {{100, 0.30, 0.28, 0.33}, {1000, 0.12, 0.11, 0.13}}},
                  {"entropy & co", {{100, 0.30, 0, 0}, {300, 0.2, 0, 0}, {1000, 0.1, 0, 0}}}};
  const std::string svg = RenderSvg(chart);
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(Count(svg, "<polyline"), 2);
  EXPECT_EQ(Count(svg, "<circle"), 5);
  EXPECT_NE(svg.find("TREC-6 &lt;test&gt;"), std::string::npos);
  EXPECT_NE(svg.find("entropy &amp; co"), std::string::npos);
  EXPECT_NE(svg.find("(log scale)"), std::string::npos);
  EXPECT_NE(svg.find(">30%<"), std::string::npos);  // a percent tick on the y axis
}

TEST(SvgChart, LogScalePutsDecadesEvenlyApart) {
  LineChart chart;
  chart.log_x = true;
  chart.series = {{"a", {{10, 1, 0, 0}, {100, 1, 0, 0}, {1000, 1, 0, 0}}}};
  const std::string svg = RenderSvg(chart);
  // Marker x positions: 70 (left margin), then evenly spaced over the 400-pixel plot.
  EXPECT_NE(svg.find("<circle cx=\"70.0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("<circle cx=\"270.0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("<circle cx=\"470.0\""), std::string::npos) << svg;
}

TEST(SvgChart, EmptyChartIsStillAValidDocument) {
  const std::string svg = RenderSvg(LineChart{});
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(Count(svg, "<polyline"), 0);
}

}  // namespace
}  // namespace ulmfit
