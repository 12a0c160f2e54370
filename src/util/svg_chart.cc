#include "util/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace ulmfit {
namespace {

constexpr double kWidth = 640, kHeight = 400;
constexpr double kLeft = 70, kRight = 170, kTop = 40, kBottom = 60;  // margins; legend on the right
// Colour-blind-safe palette (Okabe-Ito).
constexpr const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                   "#E69F00", "#56B4E9", "#000000", "#F0E442"};

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// About five round tick values covering [lo, hi].
std::vector<double> LinearTicks(double lo, double hi) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / 5;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

// 1, 3, 10, 30, ... within [lo, hi].
std::vector<double> LogTicks(double lo, double hi) {
  std::vector<double> ticks;
  for (double decade = std::pow(10, std::floor(std::log10(lo))); decade <= hi * 1.0001;
       decade *= 10) {
    for (double m : {1.0, 3.0}) {
      const double t = decade * m;
      if (t >= lo * 0.9999 && t <= hi * 1.0001) ticks.push_back(t);
    }
  }
  return ticks;
}

std::string FormatTick(double value, bool percent) {
  if (percent) return fmt::format("{:g}%", std::round(value * 1000) / 10);
  if (std::fabs(value) >= 1000) return fmt::format("{:.0f}", value);
  return fmt::format("{:g}", value);
}

}  // namespace

std::string RenderSvg(const LineChart& chart) {
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = x_lo, y_hi = -x_lo;
  for (const ChartSeries& s : chart.series) {
    for (const ChartPoint& p : s.points) {
      if (chart.log_x && !(p.x > 0)) continue;
      x_lo = std::min(x_lo, p.x);
      x_hi = std::max(x_hi, p.x);
      y_lo = std::min({y_lo, p.y, p.low < p.high ? p.low : p.y});
      y_hi = std::max({y_hi, p.y, p.low < p.high ? p.high : p.y});
    }
  }
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (x_hi <= x_lo) x_hi = x_lo + 1;
  y_lo = std::min(0.0, y_lo);  // errors read best from zero
  if (y_hi <= y_lo) y_hi = y_lo + 1;
  y_hi += (y_hi - y_lo) * 0.05;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto sx = [&](double x) {
    const double t = chart.log_x ? (std::log(x) - std::log(x_lo)) / (std::log(x_hi) - std::log(x_lo))
                                 : (x - x_lo) / (x_hi - x_lo);
    return kLeft + (std::isfinite(t) ? t : 0) * plot_w;
  };
  auto sy = [&](double y) { return kTop + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{3}</text>\n",
      kWidth, kHeight, kLeft, Escape(chart.title));
  // Axes, grid and ticks.
  for (double t : LinearTicks(y_lo, y_hi)) {
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        kLeft, sy(t), kLeft + plot_w, kLeft - 6, sy(t) + 4, FormatTick(t, chart.y_percent));
  }
  for (double t : chart.log_x ? LogTicks(x_lo, x_hi) : LinearTicks(x_lo, x_hi)) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        sx(t), kTop, kTop + plot_h, kTop + plot_h + 16, FormatTick(t, false));
  }
  svg += fmt::format(
      "<rect x=\"{0}\" y=\"{1}\" width=\"{2}\" height=\"{3}\" fill=\"none\" stroke=\"#333\"/>\n"
      "<text x=\"{4:.1f}\" y=\"{5}\" text-anchor=\"middle\">{6}</text>\n"
      "<text transform=\"translate(18 {7:.1f}) rotate(-90)\" text-anchor=\"middle\">{8}</text>\n",
      kLeft, kTop, plot_w, plot_h, kLeft + plot_w / 2, kHeight - 18,
      Escape(chart.x_label + (chart.log_x ? " (log scale)" : "")), kTop + plot_h / 2,
      Escape(chart.y_label));
  // Series: band, line, markers, legend entry.
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    const char* color = kColors[i % (sizeof(kColors) / sizeof(kColors[0]))];
    std::string upper, lower, line;
    for (const ChartPoint& p : s.points) {
      if (chart.log_x && !(p.x > 0)) continue;
      const double lo = p.low < p.high ? p.low : p.y, hi = p.low < p.high ? p.high : p.y;
      upper += fmt::format("{:.1f},{:.1f} ", sx(p.x), sy(hi));
      lower = fmt::format("{:.1f},{:.1f} ", sx(p.x), sy(lo)) + lower;
      line += fmt::format("{:.1f},{:.1f} ", sx(p.x), sy(p.y));
    }
    if (line.empty()) continue;
    svg += fmt::format("<polygon points=\"{}{}\" fill=\"{}\" fill-opacity=\"0.15\" "
                       "stroke=\"none\"/>\n", upper, lower, color);
    svg += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
                       line, color);
    for (const ChartPoint& p : s.points) {
      if (chart.log_x && !(p.x > 0)) continue;
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", sx(p.x),
                         sy(p.y), color);
    }
    const double ly = kTop + 10 + 20 * static_cast<double>(i);
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\"/><text x=\"{4}\" y=\"{5:.1f}\">{6}</text>\n",
        kWidth - kRight + 12, ly, kWidth - kRight + 32, color, kWidth - kRight + 38, ly + 4,
        Escape(s.name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string RenderBarSvg(const BarChart& chart) {
  constexpr double kLabels = 230, kBar = 26;  // left column for the names; one row per bar
  const double height = kTop + kBottom + kBar * static_cast<double>(chart.bars.size());
  double hi = 0;
  for (const Bar& b : chart.bars) hi = std::max({hi, b.value, b.low < b.high ? b.high : b.value});
  if (!(hi > 0)) hi = 1;
  hi *= 1.05;
  const double plot_w = kWidth - kLabels - 40;
  auto sx = [&](double v) { return kLabels + v / hi * plot_w; };
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"10\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{2}</text>\n",
      kWidth, height, Escape(chart.title));
  const double bottom = height - kBottom;
  for (double t : LinearTicks(0, hi)) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        sx(t), kTop, bottom, bottom + 16, FormatTick(t, chart.percent));
  }
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     kLabels + plot_w / 2, height - 18, Escape(chart.value_label));
  for (size_t i = 0; i < chart.bars.size(); ++i) {
    const Bar& b = chart.bars[i];
    const double y = kTop + kBar * static_cast<double>(i);
    svg += fmt::format(
        "<text x=\"{0}\" y=\"{1:.1f}\" text-anchor=\"end\">{2}</text>"
        "<rect x=\"{3}\" y=\"{4:.1f}\" width=\"{5:.1f}\" height=\"{6:.1f}\" fill=\"{7}\"/>"
        "<text x=\"{8:.1f}\" y=\"{1:.1f}\" fill=\"#333\">{9}</text>\n",
        kLabels - 8, y + kBar / 2 + 4, Escape(b.name), kLabels, y + 4,
        std::max(0.0, sx(b.value) - kLabels), kBar - 8, kColors[0],
        sx(b.low < b.high ? b.high : b.value) + 4, FormatTick(b.value, chart.percent));
    if (b.low < b.high) {
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#000\"/>\n",
          sx(b.low), y + kBar / 2, sx(b.high));
    }
  }
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#333\"/>\n",
                     kLabels, kTop, bottom);
  svg += "</svg>\n";
  return svg;
}

}  // namespace ulmfit
