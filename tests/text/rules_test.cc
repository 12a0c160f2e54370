#include "text/rules.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "data/corpus.h"

namespace ulmfit {
namespace {

std::string Rules(std::string_view text) { return ApplyRules(text, RuleOptions{}); }

TEST(RulesTest, PrependsBosAndLowercases) {
  EXPECT_EQ(Rules("the cat sat"), "xxbos the cat sat");
  EXPECT_EQ(Rules(""), "xxbos");
  EXPECT_EQ(Rules("   \n  "), "xxbos");
}

TEST(RulesTest, SpecialTokenIdsFollowFastaiOrder) {
  EXPECT_EQ(kSpecialTokens[kUnkId], "xxunk");
  EXPECT_EQ(kSpecialTokens[kPadId], "xxpad");
  EXPECT_EQ(kSpecialTokens[kBosId], "xxbos");
  EXPECT_EQ(kSpecialTokens[kEosId], "xxeos");
  EXPECT_EQ(kSpecialTokens[kFldId], "xxfld");
  EXPECT_EQ(kSpecialTokens[kRepId], "xxrep");
  EXPECT_EQ(kSpecialTokens[kWrepId], "xxwrep");
  EXPECT_EQ(kSpecialTokens[kUpId], "xxup");
  EXPECT_EQ(kSpecialTokens[kMajId], "xxmaj");
}

TEST(RulesTest, ReplaceRepMarksCharactersRepeatedThreeTimes) {
  EXPECT_EQ(Rules("this is sooooo good"), "xxbos this is s xxrep 5 o good");
  EXPECT_EQ(Rules("wow!!!"), "xxbos wow xxrep 3 !");
  EXPECT_EQ(Rules("good keep aa"), "xxbos good keep aa");  // two in a row is not a repetition
  EXPECT_EQ(Rules("ééé"), "xxbos xxrep 3 é");              // whole multi-byte characters
  EXPECT_EQ(Rules("ha😀😀😀😀"), "xxbos ha xxrep 4 😀");
}

TEST(RulesTest, ReplaceWrepMarksWordsRepeatedThreeTimes) {
  EXPECT_EQ(Rules("i like like like it"), "xxbos i xxwrep 3 like it");
  EXPECT_EQ(Rules("no no no no!"), "xxbos xxwrep 4 no !");
  EXPECT_EQ(Rules("go go gone"), "xxbos go go gone");
  EXPECT_EQ(Rules("a a b b b"), "xxbos a a xxwrep 3 b");
  EXPECT_EQ(Rules("très très très bien"), "xxbos xxwrep 3 très bien");
}

TEST(RulesTest, AllCapsAndCapitalisedWordsAreMarked) {
  EXPECT_EQ(Rules("I LOVE it"), "xxbos i xxup love it");
  EXPECT_EQ(Rules("Hello World"), "xxbos xxmaj hello xxmaj world");
  EXPECT_EQ(Rules("U.S. A1 Ok"), "xxbos xxup u.s. xxup a1 xxmaj ok");
  EXPECT_EQ(Rules("McDonald"), "xxbos mcdonald");  // neither all caps nor capitalised
  EXPECT_EQ(Rules("Hellooo"), "xxbos xxmaj hell xxrep 3 o");
}

TEST(RulesTest, NonAsciiLettersDoNotTriggerCaseMarkers) {
  // Detection is ASCII-only as in fastai's [A-Z] regexes; lowercasing still maps É, Ç, Ü.
  EXPECT_EQ(Rules("École ÇA"), "xxbos école ça");
  EXPECT_EQ(Rules("CAFÉ Über"), "xxbos xxup café über");
  EXPECT_EQ(Rules("日本語 テキスト"), "xxbos 日本語 テキスト");
}

TEST(RulesTest, SpecAddSpacesSplitsSlashHashBackslash) {
  EXPECT_EQ(Rules("and/or #tag"), "xxbos and / or # tag");
  EXPECT_EQ(Rules("c:\\dir"), "xxbos c: \\ dir");
}

TEST(RulesTest, FixHtmlFollowsFastai) {
  EXPECT_EQ(Rules("Great.<br /><br />Loved it"), "xxbos xxmaj great. xxmaj loved it");
  EXPECT_EQ(Rules("it#39;s quot;fine"), "xxbos it's 'fine");
  EXPECT_EQ(Rules("well @-@ known 1 @,@ 250 3 @.@ 5"), "xxbos well-known 1,250 3.5");
  EXPECT_EQ(Rules("the <unk> cat"), "xxbos the xxunk cat");
  EXPECT_EQ(Rules("a\\nb"), "xxbos a b");
  // fastai replaces "#36;" before unescaping, hence "&$".
  EXPECT_EQ(FixHtml("x &lt;3 &#233; &#x41; &#36;"), "x <3 é A &$");
  EXPECT_EQ(FixHtml("AT&T &bogus; &"), "AT&T &bogus; &");
  EXPECT_EQ(FixHtml("nbsp;#146;"), " '");
}

TEST(RulesTest, WhitespaceAndNewlinesBecomeSingleSpaces) {
  EXPECT_EQ(Rules("a\nb\r\nc\t d  \xc2\xa0 e"), "xxbos a b c d e");
}

TEST(RulesTest, RulesOffOnlyAddsBosAndLowercases) {
  EXPECT_EQ(ApplyRules("Hello  WORLD\n!!!!", RuleOptions{false, true}), "xxbos hello world !!!!");
  EXPECT_EQ(ApplyRules("Hello  WORLD", RuleOptions{false, false}), "xxbos Hello WORLD");
}

TEST(RulesTest, LowercaseOffKeepsCaseOfUnmarkedWords) {
  // As in fastai, xxup/xxmaj lowercase the word they mark; other words keep their case.
  EXPECT_EQ(ApplyRules("Hello McDonald NASA", RuleOptions{true, false}),
            "xxbos xxmaj hello McDonald xxup nasa");
}

TEST(RulesTest, LowercaseMapsLatinGreekCyrillic) {
  std::string out;
  AppendLowercase("ABC ÀÉÎÕÜ ŁŚŸ ΑΒΓΆ ДЖЁ 日本", &out);
  EXPECT_EQ(out, "abc àéîõü łśÿ αβγά джё 日本");
}

TEST(RulesTest, RandomTextStaysValidUtf8WithSingleSpaces) {
  const std::vector<std::string> alphabet = {"a", "B", "z",    "Z",      " ",  "\n",
                                             "/", "#", "é",    "É",      "日", "😀",
                                             "!", "&", "amp;", "<br />", "\\", "aaa"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    int length = rng() % 40;
    for (int i = 0; i < length; ++i) text += alphabet[rng() % alphabet.size()];
    std::string out = Rules(text);
    SCOPED_TRACE(text);
    EXPECT_EQ(FindInvalidUtf8(out), -1);
    EXPECT_EQ(out.find("  "), std::string::npos);
    EXPECT_EQ(out.rfind("xxbos", 0), 0u);
    EXPECT_NE(out.back(), ' ');
  }
}

}  // namespace
}  // namespace ulmfit
