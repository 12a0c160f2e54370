// Measures the fastai v1 word tokenizer (text/word_tokenizer.h), single-threaded:
//   1. speed on IMDb reviews (tokens/s, MB/s of raw text);
//   2. a proxy for vocabulary coverage, since fastai's itos_wt103.pkl is not available here: a
//      fastai-style vocabulary (min_freq 2, at most 60,000 tokens, special tokens first) built
//      from WikiText-2's training text, and the share of TREC-6 and IMDb test tokens that fall
//      to xxunk under it, next to the same numbers for a naive tokenizer (\w+|[^\w\s]);
//   3. how many tokens differ from that naive split on the same pre-processed text.
// Usage: bench_word_tokenizer --data /work/shared/data [--imdb_docs N]
// (N limits the IMDb test reviews used; 0, the default, means all 25,000.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "data/text_file.h"
#include "text/spacy_english.h"
#include "text/unicode.h"
#include "text/word_tokenizer.h"
#include "text/word_vocab.h"

namespace ulmfit {
namespace {

using Clock = std::chrono::steady_clock;

// Non-blank lines (WikiText) or the text column of label<TAB>text rows (IMDb, TREC).
std::vector<std::string> ReadDocs(const std::string& path, bool tsv, size_t limit) {
  std::vector<std::string> docs;
  absl::Status status = ForEachLine(path, [&](std::string_view line, int64_t) -> absl::StatusOr<bool> {
    if (tsv) {
      const size_t tab = line.find('\t');
      if (tab == std::string_view::npos) return true;
      line.remove_prefix(tab + 1);
    }
    if (!IsBlank(line)) docs.emplace_back(line);
    return limit == 0 || docs.size() < limit;
  });
  if (!status.ok()) {
    std::fprintf(stderr, "bench_word_tokenizer: %s\n", std::string(status.message()).c_str());
    std::exit(1);
  }
  return docs;
}

// The regex tokenizer \w+|[^\w\s] (Python semantics for \w and \s).
std::vector<std::string> NaiveTokens(std::string_view text) {
  std::vector<std::string> tokens;
  size_t word_start = std::string_view::npos;
  for (size_t i = 0; i < text.size();) {
    const size_t here = i;
    const char32_t cp = unicode::DecodeAt(text, &i);
    const bool word = unicode::IsWordChar(cp);
    if (!word && word_start != std::string_view::npos) {
      tokens.emplace_back(text.substr(word_start, here - word_start));
      word_start = std::string_view::npos;
    }
    if (word && word_start == std::string_view::npos) word_start = here;
    if (!word && !unicode::IsSpace(cp)) tokens.emplace_back(text.substr(here, i - here));
  }
  if (word_start != std::string_view::npos) tokens.emplace_back(text.substr(word_start));
  return tokens;
}

// The v1 pipeline with the naive split in place of spaCy's.
std::vector<std::string> NaiveFastaiTokens(std::string_view raw) {
  std::vector<std::string> tokens =
      NaiveTokens(FastaiV1PreRules("xxbos " + unicode::ToValidUtf8(raw)));
  FastaiV1PostRules(/*lowercase=*/true, &tokens);
  return tokens;
}

struct Coverage {
  int64_t tokens = 0, unknown = 0;
  absl::flat_hash_map<std::string, int64_t> unknown_types;
  double percent() const { return tokens == 0 ? 0 : 100.0 * unknown / tokens; }
};

bool IsWhitespaceToken(const std::string& token) {
  size_t i = 0;
  return !token.empty() && unicode::IsSpace(unicode::DecodeAt(token, &i));
}

// With skip_whitespace, spaCy's whitespace tokens ("\n \n " for IMDb's "<br /><br />") are
// left out: WikiText-2 lines hold no newlines, so the proxy vocabulary cannot know them.
void Count(const WordVocab& vocab, const std::vector<std::string>& tokens, Coverage* coverage,
           bool skip_whitespace = false) {
  for (const std::string& token : tokens) {
    if (skip_whitespace && IsWhitespaceToken(token)) continue;
    ++coverage->tokens;
    const int id = vocab.id(token);
    if (id <= 0) {  // absent, or the token xxunk itself
      ++coverage->unknown;
      ++coverage->unknown_types[token];
    }
  }
}

// The `n` most frequent entries, "token (count)" each, whitespace shown escaped.
std::string Top(const absl::flat_hash_map<std::string, int64_t>& counts, size_t n) {
  std::vector<std::pair<std::string, int64_t>> items(counts.begin(), counts.end());
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::string out;
  for (size_t k = 0; k < std::min(n, items.size()); ++k) {
    std::string shown;
    const std::string& token = items[k].first;
    for (size_t i = 0; i < token.size();) {
      const size_t start = i;
      const char32_t cp = unicode::DecodeAt(token, &i);
      if (cp == '\n') {
        shown += "\\n";
      } else if (cp == ' ') {
        shown += "\\s";
      } else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
        char code[8];
        std::snprintf(code, sizeof(code), "\\u%04X", static_cast<unsigned>(cp));
        shown += code;
      } else {
        shown.append(token, start, i - start);
      }
    }
    out += " " + shown + " (" + std::to_string(items[k].second) + ")";
  }
  return out;
}

// Tokens of ours with no counterpart in the naive split of the same pre-processed text
// (multiset difference), both lowercased, without case markers or whitespace tokens.
struct Difference {
  int64_t ours = 0, naive = 0, ours_only = 0, naive_only = 0;
  absl::flat_hash_map<std::string, int64_t> ours_only_types;
};

void Compare(std::string_view raw, Difference* diff) {
  const std::string processed = FastaiV1PreRules("xxbos " + unicode::ToValidUtf8(raw));
  std::vector<std::string> spacy;
  SpacyEnglishTokens(processed, &spacy);
  absl::flat_hash_map<std::string, int64_t> bag;
  std::string lower;
  int64_t ours = 0;
  std::vector<std::string> ours_tokens;
  for (const std::string& token : spacy) {
    size_t i = 0;
    if (unicode::IsSpace(unicode::DecodeAt(token, &i))) continue;
    lower.clear();
    unicode::AppendLower(token, &lower);
    ours_tokens.push_back(lower);
    ++ours;
  }
  std::string lowered;
  unicode::AppendLower(processed, &lowered);
  const std::vector<std::string> naive = NaiveTokens(lowered);
  for (const std::string& token : naive) ++bag[token];
  for (const std::string& token : ours_tokens) {
    auto it = bag.find(token);
    if (it != bag.end() && it->second > 0) {
      --it->second;
    } else {
      ++diff->ours_only;
      ++diff->ours_only_types[token];
    }
  }
  for (const auto& [token, left] : bag) diff->naive_only += left;
  diff->ours += ours;
  diff->naive += static_cast<int64_t>(naive.size());
}

void PrintDifference(const char* name, const Difference& diff) {
  std::printf("%-10s ours %9lld tokens, naive %9lld; ours not in naive %8lld (%.2f%%), "
              "naive not in ours %8lld (%.2f%%)\n",
              name, static_cast<long long>(diff.ours), static_cast<long long>(diff.naive),
              static_cast<long long>(diff.ours_only), 100.0 * diff.ours_only / diff.ours,
              static_cast<long long>(diff.naive_only), 100.0 * diff.naive_only / diff.naive);
  std::printf("           most frequent of ours not in naive:%s\n",
              Top(diff.ours_only_types, 12).c_str());
}

int Run(const std::string& data, size_t imdb_docs) {
  // 1. Speed, single thread.
  const std::vector<std::string> imdb = ReadDocs(data + "/imdb/test.tsv.gz", true, imdb_docs);
  int64_t bytes = 0, imdb_tokens = 0;
  std::vector<std::vector<std::string>> imdb_tokenized;
  imdb_tokenized.reserve(imdb.size());
  const auto start = Clock::now();
  for (const std::string& doc : imdb) {
    imdb_tokenized.push_back(FastaiWordTokens(doc, RuleOptions{}));
    bytes += static_cast<int64_t>(doc.size());
    imdb_tokens += static_cast<int64_t>(imdb_tokenized.back().size());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("speed: %zu IMDb test reviews, %.1f MB, %lld tokens in %.2f s: %.0f tokens/s, "
              "%.2f MB/s (one thread)\n",
              imdb.size(), bytes / 1e6, static_cast<long long>(imdb_tokens), seconds,
              imdb_tokens / seconds, bytes / 1e6 / seconds);

  // 2. Vocabulary from WikiText-2 train, ours and naive.
  const std::vector<std::string> wiki = ReadDocs(data + "/wikitext2/train.txt.gz", false, 0);
  TokenCounter ours_counts, naive_counts;
  for (const std::string& doc : wiki) {
    ours_counts.Add(FastaiWordTokens(doc, RuleOptions{}));
    naive_counts.Add(NaiveFastaiTokens(doc));
  }
  absl::StatusOr<WordVocab> ours_vocab =
      WordVocab::Create(ours_counts.FastaiVocabulary(60000, 2), "wikitext2 (ours)");
  absl::StatusOr<WordVocab> naive_vocab =
      WordVocab::Create(naive_counts.FastaiVocabulary(60000, 2), "wikitext2 (naive)");
  if (!ours_vocab.ok() || !naive_vocab.ok()) {
    std::fprintf(stderr, "bench_word_tokenizer: cannot build the vocabularies\n");
    return 1;
  }
  std::printf("vocabulary: WikiText-2 train, %zu lines, %lld tokens (ours) -> %d entries "
              "(min_freq 2, max 60000); naive split -> %d entries\n",
              wiki.size(), static_cast<long long>(ours_counts.total()), ours_vocab->size(),
              naive_vocab->size());

  std::vector<std::string> trec = ReadDocs(data + "/trec/train.tsv.gz", true, 0);
  const std::vector<std::string> trec_test = ReadDocs(data + "/trec/test.tsv.gz", true, 0);
  trec.insert(trec.end(), trec_test.begin(), trec_test.end());
  struct Set {
    const char* name;
    const std::vector<std::string>* docs;
  } sets[] = {{"TREC-6", &trec}, {"IMDb test", &imdb}};
  for (const Set& set : sets) {
    Coverage ours, ours_no_space, naive;
    Difference diff;
    for (size_t d = 0; d < set.docs->size(); ++d) {
      const std::string& doc = (*set.docs)[d];
      const std::vector<std::string> tokens =
          set.docs == &imdb ? imdb_tokenized[d] : FastaiWordTokens(doc, RuleOptions{});
      Count(*ours_vocab, tokens, &ours);
      Count(*ours_vocab, tokens, &ours_no_space, /*skip_whitespace=*/true);
      Count(*naive_vocab, NaiveFastaiTokens(doc), &naive);
      Compare(doc, &diff);
    }
    std::printf("xxunk %-10s %zu docs: ours %lld of %lld tokens = %.2f%%; naive %lld of %lld = "
                "%.2f%%\n",
                set.name, set.docs->size(), static_cast<long long>(ours.unknown),
                static_cast<long long>(ours.tokens), ours.percent(),
                static_cast<long long>(naive.unknown), static_cast<long long>(naive.tokens),
                naive.percent());
    std::printf("           ours without whitespace tokens: %lld of %lld = %.2f%%\n",
                static_cast<long long>(ours_no_space.unknown),
                static_cast<long long>(ours_no_space.tokens), ours_no_space.percent());
    std::printf("           most frequent xxunk, ours:%s\n", Top(ours.unknown_types, 12).c_str());
    std::printf("           most frequent xxunk, naive:%s\n", Top(naive.unknown_types, 12).c_str());
    PrintDifference(set.name, diff);
  }
  return 0;
}

}  // namespace
}  // namespace ulmfit

int main(int argc, char** argv) {
  std::string data;
  size_t imdb_docs = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--data") {
      data = argv[i + 1];
    } else if (flag == "--imdb_docs" && absl::SimpleAtoi(argv[i + 1], &imdb_docs)) {
    } else {
      std::fprintf(stderr, "bench_word_tokenizer: unknown flag or bad value %s\n", argv[i]);
      return 2;
    }
  }
  if (data.empty()) {
    std::fprintf(stderr, "usage: bench_word_tokenizer --data DIR [--imdb_docs N]\n");
    return 2;
  }
  return ulmfit::Run(data, imdb_docs);
}
