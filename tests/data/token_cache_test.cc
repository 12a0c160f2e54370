#include "data/token_cache.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "text/word_tokenizer.h"
#include "util/hash.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

// Raw (not rule-processed) documents with case, repetitions and HTML for the rules to act on.
std::vector<std::string> RawDocs(int num_docs, uint32_t seed) {
  const std::vector<std::string> words = {"The",    "cat",    "sat",  "on",      "the",    "MAT",
                                          "and",    "a",      "dog",  "ran",     "Slowly", "home",
                                          "<br />", "sooooo", "good", "it#39;s", "Paris",  "under",
                                          "tree",   "river",  "café"};
  std::mt19937 rng(seed);
  std::vector<std::string> docs;
  for (int d = 0; d < num_docs; ++d) {
    std::string doc;
    int length = 3 + rng() % 30;
    for (int i = 0; i < length; ++i) doc += words[rng() % words.size()] + " ";
    docs.push_back(doc);
  }
  return docs;
}

std::vector<fs::path> FilesWithPrefix(const std::string& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) files.push_back(entry.path());
  }
  return files;
}

class TokenCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::path(::testing::TempDir()) / "ulmfit_cache_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    suite_dir_ = new std::string(pattern);
    TextConfig config;
    config.vocab_size = 120;
    auto tokenizer = TrainTokenizerCached(RawDocs(300, 1), RuleOptions{}, config, "",
                                          *suite_dir_ + "/spm.model", 7, 2);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = new Tokenizer(*tokenizer);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*suite_dir_);
    delete tokenizer_;
    delete suite_dir_;
  }
  void SetUp() override {
    ASSERT_NE(tokenizer_, nullptr);
    cache_dir_ = *suite_dir_ + "/" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_cache";
  }

  static std::string* suite_dir_;
  static Tokenizer* tokenizer_;
  std::string cache_dir_;
};
std::string* TokenCacheTest::suite_dir_ = nullptr;
Tokenizer* TokenCacheTest::tokenizer_ = nullptr;

TEST_F(TokenCacheTest, MatchesRulesPlusEncodePerDocument) {
  std::vector<std::string> docs = RawDocs(50, 2);
  auto corpus = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, "", 3);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  ASSERT_EQ(corpus->num_docs(), 50);
  ASSERT_EQ(corpus->offsets.size(), 51u);
  EXPECT_EQ(corpus->offsets.front(), 0);
  EXPECT_EQ(corpus->offsets.back(), static_cast<int64_t>(corpus->ids.size()));
  for (size_t d = 0; d < docs.size(); ++d) {
    std::vector<int32_t> expected = tokenizer_->Encode(ApplyRules(docs[d], RuleOptions{}));
    std::vector<int32_t> got(corpus->ids.begin() + corpus->offsets[d],
                             corpus->ids.begin() + corpus->offsets[d + 1]);
    EXPECT_EQ(got, expected) << "doc " << d;
    EXPECT_EQ(got.front(), kBosId);
  }
}

TEST_F(TokenCacheTest, SecondCallHitsCacheWithIdenticalIds) {
  std::vector<std::string> docs = RawDocs(200, 3);
  bool cached = true;
  auto first = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 2, &cached);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(cached);
  EXPECT_EQ(FilesWithPrefix(cache_dir_, "tokens-").size(), 1u);
  auto second = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 2, &cached);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(cached);
  EXPECT_EQ(second->ids, first->ids);
  EXPECT_EQ(second->offsets, first->offsets);
}

TEST_F(TokenCacheTest, DifferentDocsOrRulesUseDifferentKeys) {
  std::vector<std::string> docs = RawDocs(40, 4);
  bool cached = true;
  ASSERT_TRUE(TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 1, &cached).ok());
  EXPECT_FALSE(cached);
  docs[17] += "x";
  ASSERT_TRUE(TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 1, &cached).ok());
  EXPECT_FALSE(cached);
  ASSERT_TRUE(
      TokenizeCorpus(docs, *tokenizer_, RuleOptions{true, false}, cache_dir_, 1, &cached).ok());
  EXPECT_FALSE(cached);
  // Moving a byte across a document boundary must change the key too.
  std::vector<std::string> shifted = {"ab", "c"}, merged = {"a", "bc"};
  ASSERT_TRUE(TokenizeCorpus(shifted, *tokenizer_, RuleOptions{}, cache_dir_, 1, &cached).ok());
  ASSERT_TRUE(TokenizeCorpus(merged, *tokenizer_, RuleOptions{}, cache_dir_, 1, &cached).ok());
  EXPECT_FALSE(cached);
  EXPECT_EQ(FilesWithPrefix(cache_dir_, "tokens-").size(), 5u);
}

TEST_F(TokenCacheTest, CorruptOrTruncatedCacheIsRebuilt) {
  std::vector<std::string> docs = RawDocs(100, 5);
  bool cached = true;
  auto first = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 2, &cached);
  ASSERT_TRUE(first.ok());
  std::vector<fs::path> files = FilesWithPrefix(cache_dir_, "tokens-");
  ASSERT_EQ(files.size(), 1u);
  const fs::path file = files[0];
  const uintmax_t size = fs::file_size(file);

  // Flip one byte in the middle of the ids: same length, bad checksum.
  {
    std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
    stream.seekg(size / 2);
    char byte = 0;
    stream.read(&byte, 1);
    stream.seekp(size / 2);
    byte ^= 0x5a;
    stream.write(&byte, 1);
  }
  auto rebuilt = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 2, &cached);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_FALSE(cached);
  EXPECT_EQ(rebuilt->ids, first->ids);

  fs::resize_file(file, size - 10);
  rebuilt = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 2, &cached);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_FALSE(cached);
  EXPECT_EQ(rebuilt->offsets, first->offsets);

  // The rebuild rewrote a good file.
  EXPECT_EQ(fs::file_size(file), size);
  rebuilt = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 2, &cached);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_TRUE(cached);
}

TEST_F(TokenCacheTest, ThreadCountDoesNotChangeOutput) {
  std::vector<std::string> docs = RawDocs(500, 6);
  auto one = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, "", 1);
  auto three = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, "", 3);
  auto all = TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, "", 0);
  ASSERT_TRUE(one.ok() && three.ok() && all.ok());
  EXPECT_EQ(one->ids, three->ids);
  EXPECT_EQ(one->offsets, three->offsets);
  EXPECT_EQ(one->ids, all->ids);
  EXPECT_EQ(ApplyRulesParallel(docs, RuleOptions{}, 1), ApplyRulesParallel(docs, RuleOptions{}, 4));
}

TEST_F(TokenCacheTest, EmptyCacheDirDisablesCachingAndEmptyCorpusWorks) {
  std::vector<std::string> docs = RawDocs(10, 7);
  bool cached = true;
  ASSERT_TRUE(TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, "", 1, &cached).ok());
  ASSERT_TRUE(TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, "", 1, &cached).ok());
  EXPECT_FALSE(cached);

  auto empty = TokenizeCorpus({}, *tokenizer_, RuleOptions{}, cache_dir_, 2, &cached);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->num_docs(), 0);
  EXPECT_TRUE(empty->ids.empty());
}

TEST_F(TokenCacheTest, TrainTokenizerCachedReusesModel) {
  std::vector<std::string> docs = RawDocs(150, 8);
  TextConfig config;
  config.vocab_size = 90;
  const std::string first_path = *suite_dir_ + "/first/spm.model";
  const std::string second_path = *suite_dir_ + "/second/spm.model";
  bool cached = true;
  auto first =
      TrainTokenizerCached(docs, RuleOptions{}, config, cache_dir_, first_path, 3, 2, &cached);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(cached);
  auto second =
      TrainTokenizerCached(docs, RuleOptions{}, config, cache_dir_, second_path, 3, 2, &cached);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(cached);
  EXPECT_EQ(second->SerializedModel(), first->SerializedModel());
  EXPECT_EQ(second->model_path(), second_path);
  EXPECT_TRUE(fs::exists(second_path));
  EXPECT_TRUE(fs::exists(VocabPathFor(second_path)));

  // Another seed is another key.
  auto reseeded =
      TrainTokenizerCached(docs, RuleOptions{}, config, cache_dir_, second_path, 4, 2, &cached);
  ASSERT_TRUE(reseeded.ok()) << reseeded.status();
  EXPECT_FALSE(cached);
}

TEST_F(TokenCacheTest, SentencePieceKeyIsUnchanged) {
  // The key formula from before word tokenizers existed; changing it would orphan every cache.
  std::vector<std::string> docs = RawDocs(20, 8);
  Hasher hasher;
  hasher.UpdateString("ulmfit-tokens");
  hasher.UpdateU64(1);  // kTokenCacheVersion
  hasher.UpdateU64(true);
  hasher.UpdateU64(true);
  hasher.UpdateString(tokenizer_->SerializedModel());
  hasher.UpdateU64(docs.size());
  for (const std::string& doc : docs) hasher.UpdateString(doc);
  ASSERT_TRUE(TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 1).ok());
  EXPECT_TRUE(fs::exists(fs::path(cache_dir_) / ("tokens-" + HashHex(hasher.Finish()) + ".bin")));
}

TEST_F(TokenCacheTest, WordTokenizerUsesFastaiWordTokensAndItsOwnKey) {
  std::vector<std::string> docs = RawDocs(150, 9);
  auto words = BuildWordTokenizer(docs, RuleOptions{}, 60000, 2,
                                  (fs::path(cache_dir_) / "words.vocab").string(), 2);
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_EQ(words->kind(), TokenizerKind::kWords);
  EXPECT_GT(words->vocab_size(), kNumSpecialTokens);
  EXPECT_EQ(words->vocab_size() % 8, 0);

  bool cached = true;
  auto corpus = TokenizeCorpus(docs, *words, RuleOptions{}, cache_dir_, 3, &cached);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_FALSE(cached);
  for (size_t d = 0; d < docs.size(); ++d) {
    std::vector<int32_t> expected;
    words->EncodeTokens(FastaiWordTokens(docs[d], RuleOptions{}), &expected);
    std::vector<int32_t> got(corpus->ids.begin() + corpus->offsets[d],
                             corpus->ids.begin() + corpus->offsets[d + 1]);
    EXPECT_EQ(got, expected) << "doc " << d;
    EXPECT_EQ(got.front(), words->SpecialTokenId(kBosId));
  }
  // "<br />" becomes spaCy's "\n " token, which the vocabulary knows.
  EXPECT_GE(words->PieceToId("\n "), kNumSpecialTokens);

  // The SentencePiece tokenizer on the same documents and rules gets a cache file of its own.
  ASSERT_TRUE(TokenizeCorpus(docs, *tokenizer_, RuleOptions{}, cache_dir_, 3, &cached).ok());
  EXPECT_FALSE(cached);
  EXPECT_EQ(FilesWithPrefix(cache_dir_, "tokens-").size(), 2u);
  auto again = TokenizeCorpus(docs, *words, RuleOptions{}, cache_dir_, 1, &cached);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(cached);
  EXPECT_EQ(again->ids, corpus->ids);
}

TEST_F(TokenCacheTest, BuildWordTokenizerDoesNotDependOnThreads) {
  std::vector<std::string> docs = RawDocs(300, 10);
  auto one = BuildWordTokenizer(docs, RuleOptions{}, 40, 1, cache_dir_ + "/a.vocab", 1);
  auto three = BuildWordTokenizer(docs, RuleOptions{}, 40, 1, cache_dir_ + "/b.vocab", 3);
  ASSERT_TRUE(one.ok() && three.ok());
  EXPECT_EQ(one->SerializedModel(), three->SerializedModel());
  EXPECT_EQ(one->vocab_size(), 40);
  EXPECT_FALSE(BuildWordTokenizer(docs, RuleOptions{}, 9, 1, cache_dir_ + "/c.vocab", 1).ok());
  // SentencePiece has no word vocabulary to save.
  EXPECT_FALSE(tokenizer_->SaveWordVocabulary(cache_dir_ + "/spm.vocab").ok());
  EXPECT_EQ(tokenizer_->kind(), TokenizerKind::kSentencePiece);
  EXPECT_EQ(tokenizer_->SpecialTokenId(kMajId), kMajId);
}

TEST(TokenCacheHashTest, StableAndSplitIndependent) {
  EXPECT_EQ(Hash64("hello world"), Hash64("hello world"));
  EXPECT_NE(Hash64("hello world"), Hash64("hello worle"));
  EXPECT_NE(Hash64(std::string(16, '\0')), Hash64(std::string(17, '\0')));
  const std::string text = "The quick brown fox jumps over the lazy dog, 0123456789 times.";
  for (size_t split = 0; split <= text.size(); ++split) {
    Hasher hasher;
    hasher.Update(std::string_view(text).substr(0, split));
    hasher.Update(std::string_view(text).substr(split));
    EXPECT_EQ(hasher.Finish(), Hash64(text)) << split;
  }
  // Pinned so that a change to the function (which would orphan every cache) is noticed.
  EXPECT_EQ(HashHex(Hash64("ulmfit")), "5e966a049f9a622b");
  EXPECT_EQ(HashHex(Hash64("The quick brown fox jumps over the lazy dog")), "70302181d06be674");
  EXPECT_EQ(HashHex(0x0123456789abcdefULL), "0123456789abcdef");
}

}  // namespace
}  // namespace ulmfit
