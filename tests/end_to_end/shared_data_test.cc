// Data-level checks on the real data sets in ../shared/data (see each SOURCE.md): the readers
// see every row, the labels the configs expect, and no text that the rules empty out. Each test
// skips with a message where the data is absent (set ULMFIT_SHARED_DATA to point elsewhere).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "config/config.h"
#include "data/corpus.h"
#include "data/labeled_data.h"
#include "text/rules.h"

namespace ulmfit {
namespace {
namespace fs = std::filesystem;

fs::path SharedData() {
  const char* env = std::getenv("ULMFIT_SHARED_DATA");
  return env != nullptr ? fs::path(env) : fs::path(ULMFIT_SOURCE_DIR) / ".." / "shared" / "data";
}

#define SKIP_UNLESS_PRESENT(path)                                                        \
  if (!fs::exists(path)) {                                                               \
    GTEST_SKIP() << (path).string() << " is absent: this data-level test needs the shared " \
                 << "data sets (or ULMFIT_SHARED_DATA pointing at them)";                  \
  }

std::map<std::string, int> LabelCounts(const LabeledData& data) {
  std::map<std::string, int> counts;
  for (const std::string& label : data.labels) ++counts[label];
  return counts;
}

TaskDataConfig TsvTask() {
  TaskDataConfig task;  // label<TAB>text, no header: the configs' task section
  task.label_column = "0";
  task.text_columns = {"1"};
  return task;
}

TEST(SharedData, Trec6HasEveryQuestionAndTheSixCoarseLabels) {
  const fs::path dir = SharedData() / "trec";
  SKIP_UNLESS_PRESENT(dir / "train.tsv.gz");
  const auto train = ReadLabeledData((dir / "train.tsv.gz").string(), TsvTask());
  ASSERT_TRUE(train.ok()) << train.status();
  const auto test = ReadLabeledData((dir / "test.tsv.gz").string(), TsvTask());
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(train->size(), 5452);
  EXPECT_EQ(test->size(), 500);
  EXPECT_EQ(train->skipped_rows, 0);
  // SOURCE.md's label counts.
  const std::map<std::string, int> expected = {{"ABBR", 86},  {"DESC", 1162}, {"ENTY", 1250},
                                               {"HUM", 1223}, {"LOC", 835},   {"NUM", 896}};
  EXPECT_EQ(LabelCounts(*train), expected);
  // Every test label is known from training, so evaluation never meets an unseen label.
  const LabelSet labels = LabelSet::FromLabels(train->labels);
  EXPECT_TRUE(LabelIds(*test, labels).ok());
  // The rules never leave a question empty.
  const RuleOptions rules{true, true};
  for (const std::string& text : test->texts) EXPECT_FALSE(ApplyRules(text, rules).empty()) << text;
}

TEST(SharedData, ImdbIsBalancedWithFiftyThousandUnlabelledReviews) {
  const fs::path dir = SharedData() / "imdb";
  SKIP_UNLESS_PRESENT(dir / "train.tsv.gz");
  for (const char* split : {"train.tsv.gz", "test.tsv.gz"}) {
    const auto data = ReadLabeledData((dir / split).string(), TsvTask());
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->size(), 25000) << split;
    EXPECT_EQ(LabelCounts(*data), (std::map<std::string, int>{{"neg", 12500}, {"pos", 12500}}))
        << split;
  }
  const auto unsup = ReadDocuments((dir / "unsup.txt.gz").string(), CorpusFormat::kLines);
  ASSERT_TRUE(unsup.ok()) << unsup.status();
  EXPECT_EQ(unsup->size(), 50000u);
}

TEST(SharedData, LanguageModelCorporaReadAsDocuments) {
  for (const char* name : {"wikitext2", "ptb", "brown"}) {
    const fs::path dir = SharedData() / name;
    if (!fs::exists(dir / "train.txt.gz")) {
      std::printf("skipping %s: %s is absent\n", name, (dir / "train.txt.gz").c_str());
      continue;
    }
    for (const char* split : {"train.txt.gz", "valid.txt.gz", "test.txt.gz"}) {
      const auto docs = ReadDocuments((dir / split).string(), CorpusFormat::kLines);
      ASSERT_TRUE(docs.ok()) << name << "/" << split << ": " << docs.status();
      EXPECT_GT(docs->size(), 100u) << name << "/" << split;
    }
  }
  SKIP_UNLESS_PRESENT(SharedData() / "wikitext2" / "train.txt.gz");
}

}  // namespace
}  // namespace ulmfit
