// The simulation's summary table on hand-computed learning curves.
#include "active/simulation.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ulmfit {
namespace {

std::vector<SimulationRow> Curve(const std::string& strategy, uint64_t seed,
                                 const std::vector<double>& errors) {
  std::vector<SimulationRow> rows;
  for (size_t r = 0; r < errors.size(); ++r) {
    SimulationRow row;
    row.strategy = strategy;
    row.seed = seed;
    row.round = static_cast<int>(r + 1);
    row.labels = 10 * static_cast<int64_t>(r + 1);
    row.test_error = errors[r];
    rows.push_back(row);
  }
  return rows;
}

// The row of `strategy` in the summary table.
std::string RowOf(const std::string& table, const std::string& strategy) {
  const size_t at = table.find("| " + strategy + " |");
  return at == std::string::npos ? "" : table.substr(at, table.find('\n', at) - at);
}

TEST(SimulationSummaryTest, AreasPairedDifferencesAndLabelsToReachRandom) {
  std::vector<SimulationRow> rows;
  for (auto part : {Curve("random", 1, {0.5, 0.4, 0.3}), Curve("random", 2, {0.6, 0.4, 0.2}),
                    Curve("smart", 1, {0.4, 0.3, 0.2}), Curve("smart", 2, {0.5, 0.25, 0.15})}) {
    rows.insert(rows.end(), part.begin(), part.end());
  }
  const std::string table = SimulationSummary(rows);
  // random: areas 0.4 and 0.4; final error (0.3 + 0.2) / 2 = 0.25 at 30 labels.
  EXPECT_NE(RowOf(table, "random").find("| 40.00% ± 0.00 (2 seeds) | +0.00 ± 0.00 points | 0 of 2 | 30 (100% of 30) |"),
            std::string::npos)
      << table;
  // smart: areas 0.3 and 0.3; 10 points below random on both seeds; mean 0.275 at 20 labels
  // is not <= 0.25, at 30 labels 0.175 is.
  EXPECT_NE(RowOf(table, "smart").find("| 30.00% ± 0.00 (2 seeds) | -10.00 ± 0.00 points | 2 of 2 | 30 (100% of 30) |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("25.00% at 30 labels"), std::string::npos) << table;

  // One that reaches random's final error early, and one that never does.
  rows = Curve("random", 1, {0.5, 0.4, 0.3});
  for (auto part : {Curve("early", 1, {0.3, 0.2, 0.1}), Curve("never", 1, {0.6, 0.5, 0.4})}) {
    rows.insert(rows.end(), part.begin(), part.end());
  }
  const std::string second = SimulationSummary(rows);
  EXPECT_NE(RowOf(second, "early").find("10 (33% of 30)"), std::string::npos) << second;
  EXPECT_NE(RowOf(second, "never").find("not reached"), std::string::npos) << second;
  EXPECT_NE(RowOf(second, "never").find("0 of 1"), std::string::npos) << second;
}

}  // namespace
}  // namespace ulmfit
