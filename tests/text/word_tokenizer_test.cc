#include "text/word_tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "text/spacy_english.h"
#include "text/unicode.h"

namespace ulmfit {
namespace {

// Tokens joined by single spaces; whitespace inside a token written as \n \t \s, backslash \\.
std::string Show(const std::vector<std::string>& tokens) {
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) out.push_back(' ');
    for (char c : tokens[i]) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case ' ': out += "\\s"; break;
        case '\\': out += "\\\\"; break;
        default: out.push_back(c);
      }
    }
  }
  return out;
}

std::string Words(std::string_view text, RuleOptions options = RuleOptions{}) {
  return Show(FastaiWordTokens(text, options));
}

struct Case {
  const char* text;
  const char* expected;  // Show() of FastaiWordTokens(text) with rules and lowercasing on
};

// Expected outputs follow spaCy 2.0's documented behaviour (its usage docs' examples, the cases
// in spacy/tests/lang/en/test_exceptions.py, test_punct.py, test_prefix_suffix_infix.py,
// spacy/tests/tokenizer/test_urls.py and test_whitespace.py, the rules in
// spacy/lang/punctuation.py and spacy/lang/en/tokenizer_exceptions.py) and fastai v1's
// (fastai/text/transform.py; "xxup don't watch it 1 / 10" is a stored output of fastai's IMDb
// notebook). Case markers and lowercasing are fastai's post-rules on spaCy's tokens.
const Case kCases[] = {
    // spaCy's documentation examples.
    {"Let's go to N.Y.!", "xxbos xxmaj let 's go to xxup n.y. !"},
    {"Apple is looking at buying U.K. startup for $1 billion",
     "xxbos xxmaj apple is looking at buying xxup u.k. startup for $ 1 billion"},
    {"Apple isn't looking at buying U.K. startup for $1 billion",
     "xxbos xxmaj apple is n't looking at buying xxup u.k. startup for $ 1 billion"},
    // fastai's IMDb notebook: the exceptions cover lower and Title case only.
    {"DON'T watch it 1/10", "xxbos xxup don't watch it 1 / 10"},
    // Contractions.
    {"don't giggle", "xxbos do n't giggle"},
    {"i said don't!", "xxbos i said do n't !"},
    {"Don't, can't, won't", "xxbos xxmaj do n't , ca n't , wo n't"},
    {"Can't stop, Won't stop", "xxbos xxmaj ca n't stop , xxmaj wo n't stop"},
    {"CAN'T and WON'T stay whole", "xxbos xxup can't and xxup won't stay whole"},
    {"It ain't so, isn't it", "xxbos xxmaj it ai n't so , is n't it"},
    {"dont do that, its fine", "xxbos do nt do that , its fine"},
    {"I'm sure you're right and they've gone", "xxbos i 'm sure you 're right and they 've gone"},
    {"He's here, she'll come, we'd go", "xxbos xxmaj he 's here , she 'll come , we 'd go"},
    {"Who's there? What's that? That's it.",
     "xxbos xxmaj who 's there ? xxmaj what 's that ? xxmaj that 's it ."},
    {"I'll be there, ill or well", "xxbos i 'll be there , ill or well"},
    {"You should've known", "xxbos xxmaj you should 've known"},
    {"I cannot go, Cannot stop", "xxbos i can not go , xxmaj can not stop"},
    {"We're gonna win. Gonna be fun", "xxbos xxmaj we 're gon na win . xxmaj gon na be fun"},
    {"You gotta see it", "xxbos xxmaj you got ta see it"},
    {"let's dance", "xxbos let 's dance"},
    {"y'all rock, o'clock, ma'am", "xxbos y' all rock , o'clock , ma'am"},
    {"``We've", "xxbos `` xxmaj we 've"},
    // Possessives.
    {"John's car and the dogs' toys", "xxbos xxmaj john 's car and the dogs ' toys"},
    {"JOHN'S CAR", "xxbos xxup john xxup 's xxup car"},
    {"The 1990s and 80's", "xxbos xxmaj the 1990s and 80 's"},
    // Abbreviations stay whole; "." is split after a digit, a lower-case word or two capitals.
    {"Mr. Smith met Mrs. Jones and Dr. Brown.",
     "xxbos xxmaj mr. xxmaj smith met xxmaj mrs. xxmaj jones and xxmaj dr. xxmaj brown ."},
    {"It's mediocre i.e. bad.", "xxbos xxmaj it 's mediocre i.e. bad ."},
    {"Use e.g. this, or E.g. that", "xxbos xxmaj use e.g. this , or xxmaj e.g. that"},
    {"He lived in the U.S. for years", "xxbos xxmaj he lived in the xxup u.s. for years"},
    {"Born Jan. 5 near Mt. Hood", "xxbos xxmaj born xxmaj jan. 5 near xxmaj mt. xxmaj hood"},
    {"A.I. and M.D. degrees", "xxbos xxup a.i. and xxup m.d. degrees"},
    {"USA. Then", "xxbos xxup usa . xxmaj then"},
    {"The end. The start", "xxbos xxmaj the end . xxmaj the start"},
    {"See etc. and Ph.D. work", "xxbos xxmaj see etc . and ph.d. work"},
    // Numbers.
    {"It costs 1,000 dollars or 3.5 euros", "xxbos xxmaj it costs 1,000 dollars or 3.5 euros"},
    {"Pi is 3.14159.", "xxbos xxmaj pi is 3.14159 ."},
    {"The score was 2-1 in 1990-91", "xxbos xxmaj the score was 2 - 1 in 1990 - 91"},
    {"Meet me at 3pm or 11a.m. sharp", "xxbos xxmaj meet me at 3 pm or 11 a.m. sharp"},
    {"It runs 24/7 until 13pm", "xxbos xxmaj it runs 24 / 7 until 13pm"},
    {"It costs $5, \u00a33 or \u20ac2", "xxbos xxmaj it costs $ 5 , \u00a3 3 or \u20ac 2"},
    {"It weighs 10kg and is 5km long", "xxbos xxmaj it weighs 10 kg and is 5 km long"},
    {"Up 50% today", "xxbos xxmaj up 50 % today"},
    {"It's 10\u00b0C.", "xxbos xxmaj it 's xxup 10\u00b0c ."},
    // Hyphens and other infixes.
    {"a well-known best-seller", "xxbos a well - known best - seller"},
    {"a B-movie", "xxbos a b - movie"},
    {"Hello,world", "xxbos xxmaj hello , world"},
    {"end.Next sentence", "xxbos end . xxmaj next sentence"},
    {"state-of-the-art", "xxbos state - of - the - art"},
    {"word--word", "xxbos word -- word"},
    {"a:b and x=y", "xxbos a : b and x = y"},
    // Ellipses.
    {"best...Known", "xxbos best ... xxmaj known"},
    {"Wait... what?", "xxbos xxmaj wait ... what ?"},
    {"...and then", "xxbos ... and then"},
    // URLs and e-mail addresses.
    {"Visit www.example.com today", "xxbos xxmaj visit www.example.com today"},
    {"(www.google.com)", "xxbos ( www.google.com )"},
    {"Mail john.doe@example.com now.", "xxbos xxmaj mail john.doe@example.com now ."},
    {"my-site.com is up", "xxbos my-site.com is up"},
    // Quotes and brackets.
    {"\"Hello,\" she said.", "xxbos \" xxmaj hello , \" she said ."},
    {"'Single' quotes", "xxbos ' xxmaj single ' quotes"},
    {"(can't?)", "xxbos ( ca n't ? )"},
    {"[brackets] {braces} <angles>", "xxbos [ brackets ] { braces } < angles >"},
    {"*spoilers*", "xxbos * spoilers *"},
    // fastai v1 pre-rules.
    {"Wow!!!! So goood", "xxbos xxmaj wow xxrep 4 ! xxmaj so goood"},
    {"It was so so so so boring", "xxbos xxmaj it was xxwrep 4 so boring"},
    {"This is a test<br />Next line", "xxbos xxmaj this is a test \\n\\s xxmaj next line"},
    {"One<br /><br />Two", "xxbos xxmaj one \\n\\s\\n\\s xxmaj two"},
    {"Tom &amp; Jerry", "xxbos xxmaj tom & & xxmaj jerry"},
    {"word  with   spaces", "xxbos word with spaces"},
    {"Tab\there", "xxbos xxmaj tab \\t here"},
    {"a/b#c", "xxbos a / b # c"},
    {"<unk> token", "xxbos xxunk token"},
    {"state @-@ of @-@ the @-@ art , 1 @,@ 000 or 3 @.@ 5",
     "xxbos state - of - the - art , 1,000 or 3.5"},
    // Special cases of fastai and spaCy.
    {"xxunk and xxbos", "xxbos xxunk and xxbos"},
    {"C++ and C# code", "xxbos xxup c++ and c # code"},
    {":) nice :(", "xxbos :) nice :("},
    // Edge cases.
    {"", "xxbos"},
    {"   ", "xxbos"},
    {"!!!", "xxbos ! ! !"},
    {"?!", "xxbos ? !"},
    {"...", "xxbos ..."},
    {"\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002",
     "xxbos \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u3002"},
    {"I \u2764 NY \U0001F600", "xxbos i \u2764 xxup ny \U0001F600"},
    {"great\U0001F600", "xxbos great\U0001F600"},
    {"\u00c9cole fran\u00e7aise, \u00c9COLE, na\u00efve caf\u00e9",
     "xxbos xxmaj \u00e9cole fran\u00e7aise , xxup \u00e9cole , na\u00efve caf\u00e9"},
    {"\u041f\u0440\u0438\u0432\u0435\u0442, \u041c\u0438\u0440",
     "xxbos xxmaj \u043f\u0440\u0438\u0432\u0435\u0442 , xxmaj \u043c\u0438\u0440"},
    {"ab\xff" "cd", "xxbos ab\ufffd" "cd"},
};

TEST(WordTokenizerTest, TableOfSentences) {
  int checked = 0;
  for (const Case& c : kCases) {
    EXPECT_EQ(Words(c.text), c.expected) << "input: \"" << c.text << "\"";
    ++checked;
  }
  EXPECT_GE(checked, 60);
}

TEST(WordTokenizerTest, RulesOffOnlySplitsAtWhitespace) {
  EXPECT_EQ(Words("Hello  WORLD\n!!!! don't", RuleOptions{false, true}),
            "xxbos hello world !!!! don't");
  EXPECT_EQ(Words("Hello  WORLD", RuleOptions{false, false}), "xxbos Hello WORLD");
  EXPECT_EQ(Words("", RuleOptions{false, true}), "xxbos");
  EXPECT_EQ(Words(" \t\n ", RuleOptions{false, true}), "xxbos");
}

TEST(WordTokenizerTest, LowercaseOffKeepsCaseOfUnmarkedTokens) {
  // Marked tokens are lowercased (the marker carries the case), as ApplyRules does.
  EXPECT_EQ(Words("Hello McDonald NASA I", RuleOptions{true, false}),
            "xxbos xxmaj hello McDonald xxup nasa I");
}

TEST(WordTokenizerTest, SpacyWhitespaceTokens) {
  std::vector<std::string> tokens;
  SpacyEnglishTokens("a  b\nc \n d ", &tokens);
  // A single space after a token only separates; other whitespace runs are tokens.
  EXPECT_EQ(Show(tokens), "a \\s b \\n c \\n\\s d");
  tokens.clear();
  SpacyEnglishTokens(" lead", &tokens);
  EXPECT_EQ(Show(tokens), "\\s lead");
}

TEST(WordTokenizerTest, LongWordsDoNotCrashOrCrawl) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Words(std::string(10000, 'a')), "xxbos xxrep 10000 a");
  const std::string letters = [] {
    std::string s;
    for (int i = 0; i < 10000; ++i) s.push_back("abcdefghij"[i % 10]);
    return s;
  }();
  EXPECT_EQ(Words(letters), "xxbos " + letters);
  // Prefix and suffix stripping of 5,000 brackets on each side.
  std::string brackets;
  for (int i = 0; i < 2500; ++i) brackets += "([";
  brackets += "word";
  for (int i = 0; i < 2500; ++i) brackets += "])";
  const std::vector<std::string> tokens = FastaiWordTokens(brackets, RuleOptions{});
  ASSERT_EQ(tokens.size(), 10002u);
  EXPECT_EQ(tokens[5001], "word");
  // 10,000 characters of mixed punctuation and multi-byte letters.
  std::string mixed;
  while (mixed.size() < 10000) mixed += "\u00e9.,-(\u65e5'";
  EXPECT_FALSE(FastaiWordTokens(mixed, RuleOptions{}).empty());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
}

TEST(WordTokenizerTest, BrokenUtf8BecomesReplacementCharacters) {
  // Each byte that does not start a well-formed sequence becomes U+FFFD.
  const std::string broken = "x\xc3 y\xe2\x82 \xed\xa0\x80 \xf8z \x80";
  const std::vector<std::string> tokens = FastaiWordTokens(broken, RuleOptions{});
  EXPECT_EQ(Show(tokens),
            "xxbos x\ufffd y\ufffd\ufffd \ufffd\ufffd\ufffd \ufffdz \ufffd");
  for (const std::string& token : tokens) EXPECT_TRUE(unicode::IsValidUtf8(token)) << token;
  // Rules off too.
  for (const std::string& token : FastaiWordTokens(broken, RuleOptions{false, true})) {
    EXPECT_TRUE(unicode::IsValidUtf8(token));
  }
}

TEST(WordTokenizerTest, EveryTokenIsValidUtf8AndNonEmpty) {
  std::string text;
  for (const Case& c : kCases) text.append(c.text).append(" ");
  for (const std::string& token : FastaiWordTokens(text, RuleOptions{})) {
    EXPECT_FALSE(token.empty());
    EXPECT_TRUE(unicode::IsValidUtf8(token)) << token;
  }
}

TEST(WordTokenizerTest, ReplaceWrepCountsLikeFastaiV1) {
  // The last copy counts only when a separator follows it.
  EXPECT_EQ(Words("ha ha ha ha"), "xxbos ha ha ha ha");
  EXPECT_EQ(Words("ha ha ha ha ha"), "xxbos xxwrep 4 ha ha");
  EXPECT_EQ(Words("no, no, no, no, stop"), "xxbos xxwrep 4 no , stop");
}

TEST(WordTokenizerCounterTest, FastaiVocabularyOrderAndLimits) {
  TokenCounter counter;
  counter.Add({"b", "a", "b", "c", "a", "d", "xxmaj", "b", "e"});
  counter.Add({"c", "e"});
  // Counts: b 3, a 2, c 2, e 2, d 1, xxmaj 1; ties keep first-seen order.
  std::vector<std::string> itos = counter.FastaiVocabulary(60000, 2);
  const std::vector<std::string> expected = {"xxunk", "xxpad", "xxbos", "xxeos", "xxfld",
                                             "xxmaj", "xxup",  "xxrep", "xxwrep", "b",
                                             "a",     "c",     "e",     "xxfake", "xxfake",
                                             "xxfake"};
  EXPECT_EQ(itos, expected);
  // most_common(max_vocab) first, then the special tokens, then the cut.
  itos = counter.FastaiVocabulary(11, 1);
  EXPECT_EQ(itos.size(), 11u);
  EXPECT_EQ(itos[9], "b");
  EXPECT_EQ(itos[10], "a");
  TokenCounter later;
  later.Add({"z", "z", "z", "z"});
  counter.Merge(later);
  EXPECT_EQ(counter.total(), 15);
  EXPECT_EQ(counter.FastaiVocabulary(60000, 2)[9], "z");
}

}  // namespace
}  // namespace ulmfit
