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

// Bars: one per variant, widths proportional to the values, a whisker only where the seeds
// spread, names escaped.
TEST(SvgChart, BarsScaleWithValuesAndShowTheSpread) {
  BarChart chart;
  chart.title = "ablations";
  chart.value_label = "test error";
  chart.percent = true;
  chart.bars = {{"full <recipe>", 0.1, 0.09, 0.12}, {"no pretraining", 0.2, 0, 0}};
  const std::string svg = RenderBarSvg(chart);
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("full &lt;recipe&gt;"), std::string::npos);
  EXPECT_EQ(Count(svg, "<rect x="), 2);
  EXPECT_EQ(Count(svg, "stroke=\"#000\""), 1);  // only the first bar has a spread
  auto width = [&](size_t from) {
    const size_t at = svg.find("width=\"", svg.find("<rect x=", from)) + 7;
    return std::stod(svg.substr(at));
  };
  const size_t second = svg.find("no pretraining");
  EXPECT_NEAR(width(second), 2 * width(0), 0.2);
  EXPECT_NE(svg.find(">20%<"), std::string::npos);
}

}  // namespace
}  // namespace ulmfit
