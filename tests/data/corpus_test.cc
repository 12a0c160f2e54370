#include "data/corpus.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using Docs = std::vector<std::string>;

// Like gmock's HasSubstr on a status message, without needing gmock.
::testing::AssertionResult MessageHas(const absl::Status& status, const std::string& needle) {
  std::string message(status.message());
  if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << message << "\" does not contain \"" << needle << "\"";
}

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "ulmfit_corpus_XXXXXX").string();
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

TEST_F(CorpusTest, LinesSkipsBlankLines) {
  std::string path = Write("a.txt", "first doc\n\n   \nsecond doc\nthird");
  auto docs = ReadDocuments(path);
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ(*docs, (Docs{"first doc", "second doc", "third"}));
}

TEST_F(CorpusTest, CrlfLineEndingsAreStripped) {
  std::string path = Write("crlf.txt", "one\r\ntwo\r\n\r\nthree\r\n");
  auto docs = ReadDocuments(path, CorpusFormat::kLines);
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ(*docs, (Docs{"one", "two", "three"}));
}

TEST_F(CorpusTest, GzipLinesAreDecompressed) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "line number " + std::to_string(i) + "\n";
  std::string path = WriteGz("big.txt.gz", text);
  auto docs = ReadDocuments(path);
  ASSERT_TRUE(docs.ok()) << docs.status();
  ASSERT_EQ(docs->size(), 1000u);
  EXPECT_EQ((*docs)[0], "line number 0");
  EXPECT_EQ((*docs)[999], "line number 999");
}

TEST_F(CorpusTest, MaxDocumentsStopsEarly) {
  std::string path = Write("many.txt", "a\nb\nc\nd\ne\n");
  auto docs = ReadDocuments(path, CorpusFormat::kAuto, 3);
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ(*docs, (Docs{"a", "b", "c"}));
}

TEST_F(CorpusTest, FilesModeReadsFolderSortedSkippingHidden) {
  Write("corpus/b.txt", "second\r\nfile\n");
  WriteGz("corpus/a.txt.gz", "first file");
  Write("corpus/sub/c.txt", "third");
  Write("corpus/.hidden.txt", "hidden");
  Write("corpus/.git/d.txt", "hidden folder");
  Write("corpus/empty.txt", "  \n");
  std::string folder = (fs::path(dir_) / "corpus").string();
  auto docs = ReadDocuments(folder);
  ASSERT_TRUE(docs.ok()) << docs.status();
  EXPECT_EQ(*docs, (Docs{"first file", "second\nfile\n", "third"}));

  auto limited = ReadDocuments(folder, CorpusFormat::kFiles, 2);
  ASSERT_TRUE(limited.ok()) << limited.status();
  EXPECT_EQ(limited->size(), 2u);

  auto lines = ReadDocuments(folder, CorpusFormat::kLines);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(*lines, (Docs{"first file", "second", "file", "third"}));
}

TEST_F(CorpusTest, MissingPathNamesPathAndConfig) {
  std::string path = (fs::path(dir_) / "nope.txt").string();
  auto docs = ReadDocuments(path);
  ASSERT_FALSE(docs.ok());
  EXPECT_EQ(docs.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(MessageHas(docs.status(), path + ": no such file or folder (check the data path"));
}

TEST_F(CorpusTest, EmptyCorpusIsAnError) {
  for (const std::string& contents : {std::string(""), std::string("\n  \n\t\n")}) {
    std::string path = Write("empty.txt", contents);
    auto docs = ReadDocuments(path);
    ASSERT_FALSE(docs.ok());
    EXPECT_TRUE(
        MessageHas(docs.status(), path + ": no documents found (the file is empty or every line is "
                                         "blank)"));
  }
  fs::create_directories(fs::path(dir_) / "empty_dir");
  auto docs = ReadDocuments((fs::path(dir_) / "empty_dir").string());
  ASSERT_FALSE(docs.ok());
  EXPECT_TRUE(MessageHas(docs.status(), "no documents found"));
}

TEST_F(CorpusTest, BrokenUtf8NamesFileLineAndByte) {
  std::string path = Write("latin1.txt", "fine\n\nstill fine\ncaf\xe9 au lait\n");
  auto docs = ReadDocuments(path);
  ASSERT_FALSE(docs.ok());
  EXPECT_TRUE(MessageHas(docs.status(), path + ":4: invalid UTF-8 at byte 4"));
  EXPECT_TRUE(MessageHas(docs.status(), "iconv"));

  std::string file_path = Write("dir/doc.txt", "ok\nbad \xff\n");
  auto files = ReadDocuments((fs::path(dir_) / "dir").string());
  ASSERT_FALSE(files.ok());
  EXPECT_TRUE(MessageHas(files.status(), file_path + ":2: invalid UTF-8"));
}

TEST_F(CorpusTest, CorruptGzipIsAnError) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "some text to compress " + std::to_string(i) + "\n";
  std::string path = WriteGz("cut.txt.gz", text);
  fs::resize_file(path, fs::file_size(path) / 2);
  auto docs = ReadDocuments(path);
  ASSERT_FALSE(docs.ok());
  EXPECT_TRUE(MessageHas(docs.status(), path + ": corrupt gzip data"));

  std::string fake = Write("fake.txt.gz", "plain text, not gzip\n");
  auto fake_docs = ReadDocuments(fake);
  ASSERT_FALSE(fake_docs.ok());
  EXPECT_TRUE(MessageHas(fake_docs.status(), "not a gzip file"));
}

TEST(CorpusUtf8Test, AcceptsValidAndLocatesInvalid) {
  EXPECT_EQ(FindInvalidUtf8(""), -1);
  EXPECT_EQ(FindInvalidUtf8("plain ascii text that is longer than eight bytes"), -1);
  EXPECT_EQ(FindInvalidUtf8("é 日本 😀 \xf4\x8f\xbf\xbf"), -1);
  EXPECT_EQ(FindInvalidUtf8("\xc0\x80"), 0);                      // overlong NUL
  EXPECT_EQ(FindInvalidUtf8("ab\xed\xa0\x80"), 2);                // surrogate
  EXPECT_EQ(FindInvalidUtf8("abc\xe2\x82"), 3);                   // truncated at the end
  EXPECT_EQ(FindInvalidUtf8("\xf5\x80\x80\x80"), 0);              // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("0123456789abcdefghij\x80xyz"), 20);  // after the ASCII fast path
  EXPECT_EQ(FindInvalidUtf8("\xe2\x28\xa1"), 0);                  // bad continuation byte
}

}  // namespace
}  // namespace ulmfit
