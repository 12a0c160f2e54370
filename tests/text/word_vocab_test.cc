// The word-vocabulary side of Tokenizer (text/tokenizer.h) and its file format
// (text/word_vocab.h).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "text/rules.h"
#include "text/tokenizer.h"
#include "text/word_tokenizer.h"
#include "text/word_vocab.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

::testing::AssertionResult MessageHas(const absl::Status& status, const std::string& needle) {
  std::string message(status.message());
  if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << message << "\" does not contain \"" << needle << "\"";
}

// A fastai v1 vocabulary: v1 special-token order, then words.
std::vector<std::string> V1Itos(std::vector<std::string> words) {
  std::vector<std::string> itos(kFastaiV1SpecialTokens.begin(), kFastaiV1SpecialTokens.end());
  itos.insert(itos.end(), words.begin(), words.end());
  return itos;
}

class TokenizerWordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "ulmfit_words_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (fs::path(dir_) / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  std::string dir_;
};

TEST_F(TokenizerWordsTest, SpecialTokensFoundByNameInV1Order) {
  auto tokenizer = Tokenizer::FromWordVocabulary(V1Itos({"the", ".", "movie"}), "v1.vocab");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->kind(), TokenizerKind::kWords);
  EXPECT_EQ(tokenizer->vocab_size(), 12);
  EXPECT_EQ(tokenizer->SpecialTokenId(kUnkId), 0);
  EXPECT_EQ(tokenizer->SpecialTokenId(kPadId), 1);
  EXPECT_EQ(tokenizer->SpecialTokenId(kBosId), 2);
  EXPECT_EQ(tokenizer->SpecialTokenId(kEosId), 3);
  EXPECT_EQ(tokenizer->SpecialTokenId(kFldId), 4);
  EXPECT_EQ(tokenizer->SpecialTokenId(kMajId), 5);  // v2 and SentencePiece: 8
  EXPECT_EQ(tokenizer->SpecialTokenId(kUpId), 6);
  EXPECT_EQ(tokenizer->SpecialTokenId(kRepId), 7);
  EXPECT_EQ(tokenizer->SpecialTokenId(kWrepId), 8);
  EXPECT_EQ(tokenizer->IdToPiece(9), "the");
  EXPECT_EQ(tokenizer->IdToPiece(12), "");
  EXPECT_EQ(tokenizer->PieceToId("movie"), 11);
  EXPECT_EQ(tokenizer->PieceToId("film"), -1);
}

TEST_F(TokenizerWordsTest, EncodeSplitsAtSingleSpacesUnknownIsZero) {
  auto tokenizer = Tokenizer::FromWordVocabulary(V1Itos({"the", ".", "movie"}), "v.vocab");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->Encode("xxbos xxmaj the  movie film ."),
            (std::vector<int32_t>{2, 5, 9, 11, 0, 10}));
  EXPECT_EQ(tokenizer->Decode({2, 5, 9, 11, 0, 10, 99}), "xxbos xxmaj the movie xxunk . xxunk");
  std::vector<int32_t> ids;
  tokenizer->EncodeTokens(FastaiWordTokens("The movie.", RuleOptions{}), &ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 5, 9, 11, 10}));
  EXPECT_TRUE(tokenizer->Encode("").empty());
}

TEST_F(TokenizerWordsTest, RequiresUnkPadFirstAndAllSpecialTokens) {
  std::vector<std::string> itos = V1Itos({"the"});
  std::swap(itos[0], itos[9]);
  auto bad = Tokenizer::FromWordVocabulary(itos, "bad.vocab");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(MessageHas(bad.status(), "bad.vocab"));
  EXPECT_TRUE(MessageHas(bad.status(), "xxunk at id 0"));

  itos = V1Itos({"the"});
  itos.erase(itos.begin() + 3);  // xxeos
  bad = Tokenizer::FromWordVocabulary(itos, "noeos.vocab");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(MessageHas(bad.status(), "noeos.vocab: word vocabulary lacks the special token xxeos"));
  EXPECT_EQ(std::string(bad.status().message()).find('\n'), std::string::npos);

  EXPECT_FALSE(Tokenizer::FromWordVocabulary({}, "empty.vocab").ok());
  EXPECT_FALSE(Tokenizer::FromWordVocabulary({"xxunk"}, "one.vocab").ok());
  // fastai v2's order is accepted too.
  std::vector<std::string> v2(kSpecialTokens.begin(), kSpecialTokens.end());
  v2.push_back("the");
  auto tokenizer = Tokenizer::FromWordVocabulary(v2, "v2.vocab");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->SpecialTokenId(kMajId), 8);
}

TEST_F(TokenizerWordsTest, SaveAndLoadRoundTripOddTokens) {
  // Whitespace tokens that spaCy makes, an empty token, backslashes, controls, non-ASCII space.
  const std::vector<std::string> itos =
      V1Itos({" ", "\n", "\n \n ", "", "a\\b", "\\s", "\t", "\r", "\x01", "\xc2\xa0",
              "\xe2\x80\xa8", "\xef\xbb\xbf", "caf\xc3\xa9", "#", "\\e", "xxfake", "xxfake"});
  auto tokenizer = Tokenizer::FromWordVocabulary(itos, "mem");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string path = (fs::path(dir_) / "sub" / "words.vocab").string();
  ASSERT_TRUE(tokenizer->SaveWordVocabulary(path).ok());

  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string text = bytes.str();
  EXPECT_EQ(text.substr(0, text.find('\n')), "# ulmfit word vocabulary v1");
  EXPECT_NE(text.find("\nxxunk\nxxpad\n"), std::string::npos);
  EXPECT_NE(text.find("\n\\s\n\\n\n\\n\\s\\n\\s\n\\e\na\\\\b\n\\\\s\n\\t\n\\r\n\\u0001\n\\u00A0\n"
                      "\\u2028\n\\uFEFF\ncaf\xc3\xa9\n#\n\\\\e\n"),
            std::string::npos);
  // Every line after the header is free of raw whitespace and control characters.
  for (size_t i = text.find('\n') + 1; i < text.size(); ++i) {
    const unsigned char c = text[i];
    if (c != '\n') EXPECT_FALSE(c == ' ' || c < 0x20) << "byte " << i;
  }

  auto loaded = Tokenizer::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->kind(), TokenizerKind::kWords);
  ASSERT_EQ(loaded->vocab_size(), static_cast<int>(itos.size()));
  for (int id = 0; id < loaded->vocab_size(); ++id) EXPECT_EQ(loaded->IdToPiece(id), itos[id]);
  EXPECT_EQ(loaded->SerializedModel(), tokenizer->SerializedModel());
  EXPECT_EQ(loaded->model_path(), path);
  // A duplicate keeps its first id.
  EXPECT_EQ(loaded->PieceToId("xxfake"), 24);
  // Copied under SentencePiece's file name, as checkpoints do, it still loads as words.
  const std::string copy = (fs::path(dir_) / "spm.model").string();
  fs::copy_file(path, copy);
  auto copied = Tokenizer::Load(copy);
  ASSERT_TRUE(copied.ok()) << copied.status();
  EXPECT_EQ(copied->kind(), TokenizerKind::kWords);
  EXPECT_EQ(copied->SerializedModel(), tokenizer->SerializedModel());
}

TEST_F(TokenizerWordsTest, LoadAcceptsCrlfAndMissingFinalNewline) {
  std::string file = "# ulmfit word vocabulary v1\r\n";
  for (std::string_view token : kFastaiV1SpecialTokens) file += std::string(token) + "\r\n";
  file += "the";
  auto tokenizer = Tokenizer::Load(Write("crlf.vocab", file));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->vocab_size(), 10);
  EXPECT_EQ(tokenizer->IdToPiece(9), "the");
}

TEST_F(TokenizerWordsTest, LoadErrorsNameFileAndLine) {
  std::string good_start = "# ulmfit word vocabulary v1\n";
  for (std::string_view token : kFastaiV1SpecialTokens) good_start += std::string(token) + "\n";
  struct Bad {
    std::string body, needle;
  } cases[] = {
      {good_start + "the\n\nend\n", ":12: empty line"},
      {good_start + "a\\qb\n", ":11: unknown escape \\q"},
      {good_start + "two words\n", ":11: raw whitespace"},
      {good_start + "\\u12\n", ":11: \\u needs four hex digits"},
      {good_start + "\\uD800\n", ":11: \\u names a UTF-16 surrogate"},
      {good_start + "bad\xff\n", ":11: invalid UTF-8"},
      {"# ulmfit word vocabulary v2\nxxunk\n", ":1: not a word vocabulary this ulmfit reads"},
  };
  for (const Bad& bad : cases) {
    const std::string path = Write("bad.vocab", bad.body);
    auto tokenizer = Tokenizer::Load(path);
    ASSERT_FALSE(tokenizer.ok()) << bad.needle;
    EXPECT_TRUE(MessageHas(tokenizer.status(), path + bad.needle));
  }
}

TEST_F(TokenizerWordsTest, SerializedBytesRoundTripThroughFromSerialized) {
  auto words = Tokenizer::FromWordVocabulary(V1Itos({"x"}), "w.vocab");
  ASSERT_TRUE(words.ok());
  auto again = Tokenizer::FromSerialized(words->SerializedModel(), "again.vocab");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->kind(), TokenizerKind::kWords);
  EXPECT_EQ(again->vocab_size(), 10);
}

TEST(TokenizerKindTest, NamesRoundTrip) {
  TokenizerKind kind = TokenizerKind::kSentencePiece;
  ASSERT_TRUE(ParseTokenizerKind("words", &kind));
  EXPECT_EQ(kind, TokenizerKind::kWords);
  EXPECT_EQ(TokenizerKindName(kind), "words");
  ASSERT_TRUE(ParseTokenizerKind("sentencepiece", &kind));
  EXPECT_EQ(TokenizerKindName(kind), "sentencepiece");
  EXPECT_FALSE(ParseTokenizerKind("spacy", &kind));
  EXPECT_EQ(kind, TokenizerKind::kSentencePiece);
}

}  // namespace
}  // namespace ulmfit
