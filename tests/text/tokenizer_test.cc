#include "text/tokenizer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "text/rules.h"
#include "text/spm_library.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

const std::string kSpace = "\xe2\x96\x81";

::testing::AssertionResult MessageHas(const absl::Status& status, const std::string& needle) {
  std::string message(status.message());
  if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << message << "\" does not contain \"" << needle << "\"";
}

// A few hundred rule-processed sentences over a small vocabulary, with every special token.
std::vector<std::string> SyntheticCorpus(int num_docs, uint32_t seed) {
  const std::vector<std::string> words = {"hello",   "the",
                                          "cat",     "sat",
                                          "on",      "a",
                                          "mat",     "dog",
                                          "ran",     "to",
                                          "house",   "tree",
                                          "apple",   "big",
                                          "small",   "green",
                                          "river",   "under",
                                          "over",    "slowly",
                                          "Paris",   "NASA",
                                          "Hello",   "I",
                                          "wow!!!!", "very very very",
                                          "and/or",  "café"};
  std::mt19937 rng(seed);
  std::vector<std::string> docs;
  for (int d = 0; d < num_docs; ++d) {
    std::string raw;
    int length = 5 + rng() % 12;
    for (int i = 0; i < length; ++i) raw += words[rng() % words.size()] + " ";
    if (d % 5 == 0) raw += "<unk> ";
    docs.push_back(ApplyRules(raw, RuleOptions{}));
  }
  return docs;
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::path(::testing::TempDir()) / "ulmfit_tok_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = new std::string(pattern);
    TextConfig config;
    config.vocab_size = 100;
    auto tokenizer = Tokenizer::Train(SyntheticCorpus(300, 1), config, ModelPath(), 42);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = new Tokenizer(*tokenizer);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete tokenizer_;
    delete dir_;
  }
  static std::string ModelPath() { return (fs::path(*dir_) / "spm.model").string(); }
  static std::string PathIn(const std::string& name) { return (fs::path(*dir_) / name).string(); }

  static std::string* dir_;
  static Tokenizer* tokenizer_;
};
std::string* TokenizerTest::dir_ = nullptr;
Tokenizer* TokenizerTest::tokenizer_ = nullptr;

TEST_F(TokenizerTest, SpecialTokensHaveIdsZeroToEight) {
  ASSERT_NE(tokenizer_, nullptr);
  for (int id = 0; id < kNumSpecialTokens; ++id) {
    EXPECT_EQ(tokenizer_->IdToPiece(id), kSpace + std::string(kSpecialTokens[id]));
  }
  EXPECT_GT(tokenizer_->vocab_size(), kNumSpecialTokens);
  EXPECT_LE(tokenizer_->vocab_size(), 100);
}

TEST_F(TokenizerTest, SpecialTokensEncodeAsWholePiecesWithoutStraySpace) {
  ASSERT_NE(tokenizer_, nullptr);
  std::vector<int32_t> ids = tokenizer_->Encode("xxbos xxmaj hello");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], kBosId);
  EXPECT_EQ(ids[1], kMajId);
  EXPECT_EQ(tokenizer_->IdToPiece(ids[2]), kSpace + "hello");

  // Every special token, in the middle of text, is exactly its id and no "▁" piece appears.
  std::string text = "the cat";
  for (std::string_view token : kSpecialTokens) text += " " + std::string(token) + " cat";
  ids = tokenizer_->Encode(text);
  std::vector<int32_t> specials;
  for (int32_t id : ids) {
    EXPECT_NE(tokenizer_->IdToPiece(id), kSpace) << text;
    if (id < kNumSpecialTokens) specials.push_back(id);
  }
  EXPECT_EQ(specials, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST_F(TokenizerTest, UnknownWordMapsToUnkId) {
  ASSERT_NE(tokenizer_, nullptr);
  std::vector<int32_t> ids = tokenizer_->Encode("xxbos xxunk the xxunk");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], kBosId);
  EXPECT_EQ(ids[1], kUnkId);
  EXPECT_EQ(tokenizer_->IdToPiece(ids[2]), kSpace + "the");
  EXPECT_EQ(ids[3], kUnkId);
  // Only whole words: "xxunky" goes through SentencePiece.
  EXPECT_NE(tokenizer_->Encode("xxunky")[0], kUnkId);
}

TEST_F(TokenizerTest, EncodeDecodeRoundTrip) {
  ASSERT_NE(tokenizer_, nullptr);
  for (const std::string& doc : SyntheticCorpus(20, 99)) {
    EXPECT_EQ(tokenizer_->Decode(tokenizer_->Encode(doc)), doc);
  }
  EXPECT_EQ(tokenizer_->Decode({}), "");
}

TEST_F(TokenizerTest, WritesModelAndVocabAndLoadsThem) {
  ASSERT_NE(tokenizer_, nullptr);
  EXPECT_EQ(tokenizer_->model_path(), ModelPath());
  std::ifstream vocab(VocabPathFor(ModelPath()));
  ASSERT_TRUE(vocab.good());
  std::string line;
  int lines = 0;
  while (std::getline(vocab, line)) {
    if (lines == kBosId) EXPECT_EQ(line.substr(0, line.find('\t')), kSpace + "xxbos");
    ++lines;
  }
  EXPECT_EQ(lines, tokenizer_->vocab_size());

  auto loaded = Tokenizer::Load(ModelPath());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->SerializedModel(), tokenizer_->SerializedModel());
  EXPECT_EQ(loaded->Encode("xxbos xxup nasa went to xxmaj paris"),
            tokenizer_->Encode("xxbos xxup nasa went to xxmaj paris"));
}

TEST_F(TokenizerTest, TrainingIsDeterministic) {
  TextConfig config;
  config.vocab_size = 100;
  auto again = Tokenizer::Train(SyntheticCorpus(300, 1), config, PathIn("again.model"), 42);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_NE(tokenizer_, nullptr);
  EXPECT_EQ(again->SerializedModel(), tokenizer_->SerializedModel());
}

TEST_F(TokenizerTest, SamplesDownToMaxTrainingSentences) {
  TextConfig config;
  config.vocab_size = 100;
  config.max_training_sentences = 30;
  auto small = Tokenizer::Train(SyntheticCorpus(300, 1), config, PathIn("small.model"), 42);
  ASSERT_TRUE(small.ok()) << small.status();
  ASSERT_NE(tokenizer_, nullptr);
  EXPECT_NE(small->SerializedModel(), tokenizer_->SerializedModel());
  EXPECT_EQ(small->IdToPiece(kMajId), kSpace + "xxmaj");
}

TEST_F(TokenizerTest, LoadMissingOrCorruptModelGivesClearError) {
  auto missing = Tokenizer::Load(PathIn("missing.model"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(
      MessageHas(missing.status(), PathIn("missing.model") + ": tokenizer model not found"));

  std::ofstream(PathIn("corrupt.model"), std::ios::binary) << "this is not a protobuf \xff\x01";
  auto corrupt = Tokenizer::Load(PathIn("corrupt.model"));
  ASSERT_FALSE(corrupt.ok());
  EXPECT_TRUE(
      MessageHas(corrupt.status(), PathIn("corrupt.model") + ": not a valid SentencePiece model"));

  std::ofstream(PathIn("empty.model"), std::ios::binary) << "";
  EXPECT_FALSE(Tokenizer::Load(PathIn("empty.model")).ok());
}

// A model whose special tokens sit in fastai v1's order (xxmaj before xxrep) is rejected.
TEST_F(TokenizerTest, LoadRejectsModelsWithOtherSpecialTokenIds) {
  std::string symbols;
  for (const char* token :
       {"xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep"}) {
    symbols += (symbols.empty() ? "" : ",") + kSpace + token;
  }
  auto serialized = SpmTrainFromSentences(
      "--model_prefix= --vocab_size=80 --hard_vocab_limit=false --unk_id=9 --bos_id=-1 "
      "--eos_id=-1 --minloglevel=3 --user_defined_symbols=" +
          symbols,
      SyntheticCorpus(100, 3));
  ASSERT_TRUE(serialized.ok()) << serialized.status();
  std::ofstream(PathIn("v1.model"), std::ios::binary) << *serialized;
  auto v1 = Tokenizer::Load(PathIn("v1.model"));
  ASSERT_FALSE(v1.ok());
  EXPECT_TRUE(MessageHas(v1.status(), "model " + PathIn("v1.model") +
                                          " was not trained by ulmfit: special token xxrep has "
                                          "id 7, expected 5"));
}

TEST_F(TokenizerTest, BpeModelKeepsSpecialTokensWhole) {
  TextConfig config;
  config.vocab_size = 100;
  config.model_type = SpmModelType::kBpe;
  ::testing::internal::CaptureStderr();
  auto bpe = Tokenizer::Train(SyntheticCorpus(300, 1), config, PathIn("bpe.model"), 42);
  // SentencePiece's own logging stays off the user's screen.
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(bpe.ok()) << bpe.status();
  for (int id = 0; id < kNumSpecialTokens; ++id) {
    EXPECT_EQ(bpe->IdToPiece(id), kSpace + std::string(kSpecialTokens[id]));
  }
  std::vector<int32_t> ids = bpe->Encode("xxbos xxmaj hello");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0], kBosId);
  EXPECT_EQ(ids[1], kMajId);
  EXPECT_EQ(bpe->IdToPiece(ids[2]), kSpace + "hello");
}

TEST_F(TokenizerTest, TrainRejectsEmptyInputAndTinyVocab) {
  TextConfig config;
  EXPECT_FALSE(Tokenizer::Train({"", "  "}, config, PathIn("none.model"), 1).ok());
  config.vocab_size = 5;
  EXPECT_FALSE(Tokenizer::Train(SyntheticCorpus(10, 1), config, PathIn("tiny.model"), 1).ok());
  // An unknown text.model_type cannot reach Train: it is an enum, refused by the config loader
  // (ConfigTest.EnumKeysRefuseUnknownNames).
}

}  // namespace
}  // namespace ulmfit
