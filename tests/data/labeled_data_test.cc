#include "data/labeled_data.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;

::testing::AssertionResult MessageHas(const absl::Status& status, const std::string& needle) {
  std::string message(status.message());
  if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << message << "\" does not contain \"" << needle << "\"";
}

TaskDataConfig Columns(const std::string& label, const Strings& texts,
                       HeaderMode header = HeaderMode::kAuto,
                       TaskFormat format = TaskFormat::kAuto) {
  TaskDataConfig config;
  config.label_column = label;
  config.text_columns = texts;
  config.header = header;
  config.format = format;
  return config;
}

// `counts[i]` examples of label "c<i>", texts "c<i>-<k>", interleaved.
LabeledData MakeData(const std::vector<int>& counts) {
  LabeledData data;
  data.source = "synthetic";
  for (int k = 0;; ++k) {
    bool any = false;
    for (size_t c = 0; c < counts.size(); ++c) {
      if (k >= counts[c]) continue;
      any = true;
      data.texts.push_back("c" + std::to_string(c) + "-" + std::to_string(k));
      data.labels.push_back("c" + std::to_string(c));
    }
    if (!any) break;
  }
  return data;
}

std::map<std::string, int> CountLabels(const LabeledData& data) {
  std::map<std::string, int> counts;
  for (const std::string& label : data.labels) ++counts[label];
  return counts;
}

class LabeledDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "ulmfit_labeled_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& contents) {
    fs::path path = fs::path(dir_) / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
    return path.string();
  }

  std::string WriteGz(const std::string& name, const std::string& contents) {
    std::string path = (fs::path(dir_) / name).string();
    gzFile file = gzopen(path.c_str(), "wb");
    EXPECT_NE(file, nullptr);
    EXPECT_EQ(gzwrite(file, contents.data(), contents.size()), static_cast<int>(contents.size()));
    gzclose(file);
    return path;
  }

  std::string dir_;
};

TEST_F(LabeledDataTest, TsvWithHeaderByName) {
  std::string path = Write("train.tsv", "id\ttext\tlabel\n1\tgreat film\tpos \n2\tawful\tneg\n");
  auto data = ReadLabeledData(path, Columns("label", {"text"}));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts, (Strings{"great film", "awful"}));
  EXPECT_EQ(data->labels, (Strings{"pos", "neg"}));  // trimmed
  EXPECT_EQ(data->source, path);
  EXPECT_EQ(data->skipped_rows, 0);
}

TEST_F(LabeledDataTest, TsvByIndexWithoutHeader) {
  std::string path = Write("train.tsv", "pos\tgood \"quoted\", text\r\nneg\tbad\n\nneg\tworse");
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_TRUE(data.ok()) << data.status();
  // No quoting in TSV, CRLF dropped, blank lines ignored, last line without newline read.
  EXPECT_EQ(data->texts, (Strings{"good \"quoted\", text", "bad", "worse"}));
  EXPECT_EQ(data->labels, (Strings{"pos", "neg", "neg"}));
}

TEST_F(LabeledDataTest, HeaderYesSkipsFirstRowWithIndices) {
  std::string path = Write("train.tsv", "label\ttext\npos\tgood\n");
  auto data = ReadLabeledData(path, Columns("0", {"1"}, HeaderMode::kYes));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts, (Strings{"good"}));
  auto no_header = ReadLabeledData(path, Columns("0", {"1"}, HeaderMode::kNo));
  ASSERT_TRUE(no_header.ok()) << no_header.status();
  EXPECT_EQ(no_header->labels, (Strings{"label", "pos"}));
}

TEST_F(LabeledDataTest, CsvQuotesCommasAndNewlines) {
  std::string path = Write("train.csv",
                           "\xEF\xBB\xBFlabel,text\n"
                           "pos,\"Hello, world\"\n"
                           "neg,\"He said \"\"no\"\"\"\n"
                           "pos,\"line one\r\nline two\"\n"
                           "neg,plain\n");
  auto data = ReadLabeledData(path, Columns("label", {"text"}));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts,
            (Strings{"Hello, world", "He said \"no\"", "line one\nline two", "plain"}));
  EXPECT_EQ(data->labels, (Strings{"pos", "neg", "pos", "neg"}));
}

TEST_F(LabeledDataTest, CsvRowLineNumbersCountNewlinesInsideQuotes) {
  std::string path = Write("train.csv", "pos,\"a\nb\nc\"\nneg\n");
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(
      MessageHas(data.status(), path + ":4: expected at least 2 comma-separated columns, found 1"));
}

TEST_F(LabeledDataTest, CsvUnclosedQuoteIsAnError) {
  std::string path = Write("train.csv", "pos,fine\nneg,\"never closed\nmore\n");
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(MessageHas(data.status(), path + ":2: a quoted field is never closed"));
}

TEST_F(LabeledDataTest, SeveralTextColumnsAreJoinedWithXxfld) {
  std::string path = Write("train.csv", "title,body,label\nBig news,It happened,world\n");
  auto data = ReadLabeledData(path, Columns("label", {"title", "body"}));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts, (Strings{"xxfld 1 Big news xxfld 2 It happened"}));
  EXPECT_EQ(data->labels, (Strings{"world"}));
}

TEST_F(LabeledDataTest, FoldersLayoutSkipsUnsupHiddenAndTopLevelFiles) {
  Write("train/pos/0_9.txt", "loved it");
  Write("train/pos/1_8.txt", "great\r\nfun");
  Write("train/pos/sub/2_7.txt", "nested review");
  Write("train/pos/.hidden.txt", "not an example");
  Write("train/neg/0_1.txt", "hated it");
  Write("train/unsup/0_0.txt", "unlabelled");
  Write("train/.cache/x.txt", "hidden folder");
  Write("train/urls_pos.txt", "http://example.com");
  auto data = ReadLabeledData((fs::path(dir_) / "train").string(), Columns("0", {"1"}));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts, (Strings{"hated it", "loved it", "great\nfun", "nested review"}));
  EXPECT_EQ(data->labels, (Strings{"neg", "pos", "pos", "pos"}));
}

TEST_F(LabeledDataTest, EmptyClassFolderIsAnError) {
  Write("train/pos/a.txt", "good");
  fs::create_directories(fs::path(dir_) / "train" / "neg");
  auto data = ReadLabeledData((fs::path(dir_) / "train").string(), Columns("0", {"1"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(MessageHas(data.status(), "class folder 'neg' has no files"));
}

TEST_F(LabeledDataTest, GzippedTsvAndCsv) {
  std::string tsv = WriteGz("train.tsv.gz", "pos\tgood, really\nneg\tbad\n");
  auto data = ReadLabeledData(tsv, Columns("0", {"1"}));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts, (Strings{"good, really", "bad"}));
  std::string csv = WriteGz("train.csv.gz", "pos,\"good, really\"\nneg,bad\n");
  data = ReadLabeledData(csv, Columns("0", {"1"}));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts, (Strings{"good, really", "bad"}));  // auto picked CSV
}

TEST_F(LabeledDataTest, MissingFileIsNotFound) {
  std::string path = (fs::path(dir_) / "nope.tsv").string();
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(MessageHas(data.status(), path + ": no such file or folder"));
}

TEST_F(LabeledDataTest, TooFewColumnsNamesFileAndLine) {
  std::string path = Write("train.tsv", "pos\tgood\nneg bad\n");
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(
      MessageHas(data.status(), path + ":2: expected at least 2 tab-separated columns, found 1"));
}

TEST_F(LabeledDataTest, EmptyTextOrLabelIsSkippedAndCounted) {
  std::string path = Write("train.tsv", "pos\tgood\nneg\t   \n\tno label\nneg\tbad\n");
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->texts, (Strings{"good", "bad"}));
  EXPECT_EQ(data->skipped_rows, 2);
  EXPECT_EQ(data->first_skipped, path + ":2: empty text");
}

TEST_F(LabeledDataTest, NoLabelledRowsIsAnError) {
  std::string path = Write("train.tsv", "label\ttext\n");
  auto data = ReadLabeledData(path, Columns("label", {"text"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(MessageHas(data.status(), path + ": no labelled rows"));
}

TEST_F(LabeledDataTest, SingleClassTrainingSetIsAnError) {
  std::string path = Write("train.tsv", "pos\tgood\npos\tfine\n");
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_TRUE(data.ok()) << data.status();
  auto labels = LabelSet::FromTrainingData(*data);
  ASSERT_FALSE(labels.ok());
  EXPECT_TRUE(MessageHas(labels.status(),
                         path + ": only one class ('pos'); a classifier needs at least two"));
}

TEST_F(LabeledDataTest, UnknownColumnNameListsTheHeader) {
  std::string path = Write("train.tsv", "label\ttext\npos\tgood\n");
  auto data = ReadLabeledData(path, Columns("label", {"txt"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(
      MessageHas(data.status(), path + ": no column 'txt' in the header (columns: label, text)"));
  // Without a header row the name cannot be resolved at all.
  data = ReadLabeledData(path, Columns("sentiment", {"text"}, HeaderMode::kNo));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(MessageHas(data.status(), "names a column ('sentiment')"));
}

TEST_F(LabeledDataTest, BrokenUtf8NamesFileAndLine) {
  std::string path = Write("train.tsv", "pos\tgood\nneg\tbad \xC3\x28 bytes\n");
  auto data = ReadLabeledData(path, Columns("0", {"1"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(MessageHas(data.status(), path + ":2: invalid UTF-8 at byte 9"));
  Write("dir/pos/a.txt", "ok\nfine \xFF\n");
  Write("dir/neg/b.txt", "bad");
  data = ReadLabeledData((fs::path(dir_) / "dir").string(), Columns("0", {"1"}));
  ASSERT_FALSE(data.ok());
  EXPECT_TRUE(MessageHas(data.status(), "a.txt:2: invalid UTF-8 at byte 6"));
}

TEST_F(LabeledDataTest, LabelSetSaveLoadRoundTrip) {
  LabelSet labels = LabelSet::FromLabels({"pos", "neg", "pos", "neutral"});
  EXPECT_EQ(labels.names(), (Strings{"neg", "neutral", "pos"}));
  EXPECT_EQ(labels.Id("pos"), 2);
  EXPECT_EQ(labels.Id("unknown"), -1);
  EXPECT_EQ(labels.Name(1), "neutral");
  std::string path = (fs::path(dir_) / "labels.txt").string();
  ASSERT_TRUE(labels.Save(path).ok());
  auto loaded = LabelSet::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->names(), labels.names());
  EXPECT_EQ(loaded->Id("neutral"), 1);
  Write("dup.txt", "a\nb\na\n");
  auto dup = LabelSet::Load((fs::path(dir_) / "dup.txt").string());
  ASSERT_FALSE(dup.ok());
  EXPECT_TRUE(MessageHas(dup.status(), "dup.txt:3: label 'a' appears twice"));
}

TEST_F(LabeledDataTest, LabelIdsUnseenLabelError) {
  LabelSet labels = LabelSet::FromLabels({"pos", "neg"});
  LabeledData test;
  test.source = "test.tsv";
  test.labels = {"pos", "FOO", "neg", "BAR", "FOO"};
  test.texts.assign(5, "x");
  auto ids = LabelIds(test, labels);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().message(),
            "test.tsv: 3 rows have labels the training data never had: 'FOO' (2), 'BAR' (1); fix "
            "the labels or add examples of them to task.train");
  test.labels = {"pos", "neg", "neg", "pos", "pos"};
  ids = LabelIds(test, labels);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int64_t>{1, 0, 0, 1, 1}));
}

TEST_F(LabeledDataTest, StratifiedSplitKeepsClassesAndIsDeterministic) {
  LabeledData train = MakeData({40, 20, 1});
  LabeledData valid;
  SplitValidation(&train, &valid, 0.25, 7);
  EXPECT_EQ(CountLabels(valid), (std::map<std::string, int>{{"c0", 10}, {"c1", 5}}));
  EXPECT_EQ(CountLabels(train), (std::map<std::string, int>{{"c0", 30}, {"c1", 15}, {"c2", 1}}));
  EXPECT_EQ(valid.source, "synthetic (validation split)");
  // Every example ends up on exactly one side, with its own label.
  std::set<std::string> all(train.texts.begin(), train.texts.end());
  all.insert(valid.texts.begin(), valid.texts.end());
  EXPECT_EQ(all.size(), 61u);
  for (int64_t i = 0; i < valid.size(); ++i) {
    EXPECT_EQ(valid.texts[i].substr(0, 2), valid.labels[i]);
  }

  LabeledData train2 = MakeData({40, 20, 1}), valid2;
  SplitValidation(&train2, &valid2, 0.25, 7);
  EXPECT_EQ(valid2.texts, valid.texts);
  LabeledData train3 = MakeData({40, 20, 1}), valid3;
  SplitValidation(&train3, &valid3, 0.25, 8);
  EXPECT_NE(valid3.texts, valid.texts);
}

TEST_F(LabeledDataTest, SplitOfTinyDataStillHoldsOneOut) {
  LabeledData train = MakeData({3, 2});
  LabeledData valid;
  SplitValidation(&train, &valid, 0.1, 1);
  EXPECT_EQ(valid.size(), 1);
  EXPECT_EQ(train.size(), 4);
  EXPECT_EQ(CountLabels(train).size(), 2u);
}

TEST_F(LabeledDataTest, SampleExamplesIsStratifiedAndSeeded) {
  LabeledData data = MakeData({90, 9, 1});
  SampleExamples(&data, 10, 3);
  EXPECT_EQ(data.size(), 10);
  // 9 : 0.9 : 0.1 -> every label keeps one, the rest goes to the big class.
  EXPECT_EQ(CountLabels(data), (std::map<std::string, int>{{"c0", 8}, {"c1", 1}, {"c2", 1}}));
  LabeledData again = MakeData({90, 9, 1});
  SampleExamples(&again, 10, 3);
  EXPECT_EQ(again.texts, data.texts);
  LabeledData other = MakeData({90, 9, 1});
  SampleExamples(&other, 10, 4);
  EXPECT_NE(other.texts, data.texts);

  LabeledData proportional = MakeData({60, 40});
  SampleExamples(&proportional, 50, 3);
  EXPECT_EQ(CountLabels(proportional), (std::map<std::string, int>{{"c0", 30}, {"c1", 20}}));
  LabeledData all = MakeData({3, 2});
  SampleExamples(&all, 0, 3);
  EXPECT_EQ(all.size(), 5);
}

}  // namespace
}  // namespace ulmfit
