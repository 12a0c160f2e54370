// Numericalizing a corpus (rules + tokenizer) in parallel, with an on-disk cache so that a
// second run over the same data skips the work.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "text/rules.h"
#include "text/tokenizer.h"
#include "util/status.h"

namespace ulmfit {

// A numericalized corpus: the ids of all documents concatenated; document d is
// ids[offsets[d], offsets[d + 1]). offsets has num_docs() + 1 entries and starts at 0.
struct TokenizedCorpus {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets = {0};
  int64_t num_docs() const {
    return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1;
  }
};

// ApplyRules over all documents on `threads` threads (0 = all hardware threads).
std::vector<std::string> ApplyRulesParallel(const std::vector<std::string>& docs,
                                            const RuleOptions& rules, int threads);

// Appends the ids of one raw document: ApplyRules then Encode for SentencePiece,
// FastaiWordTokens then EncodeTokens for a word tokenizer.
void EncodeRawDocument(const Tokenizer& tokenizer, std::string_view raw_doc,
                       const RuleOptions& rules, std::vector<int32_t>* ids);

// EncodeRawDocument over all documents, in parallel over `threads` (0 = hardware threads; the
// output does not depend on the thread count). No cache.
TokenizedCorpus TokenizeDocuments(const std::vector<std::string>& docs, const Tokenizer& tokenizer,
                                  const RuleOptions& rules, int threads);

// TokenizeDocuments, with the result cached in cache_dir as tokens-<key>.bin, where the key
// hashes the documents' bytes, the tokenizer model bytes, the rule options and a format version
// (for a word tokenizer also the kind and the word tokenizer's version, so the two kinds never
// share ids; SentencePiece keys are as they always were). A second call with the same inputs loads that file instead.
// The file is written atomically (temp file + rename); a corrupt or truncated one (checked by
// size, magic, key and checksum) is silently rebuilt. An empty cache_dir disables caching, and
// failing to write the cache is not an error (the result is still returned). `cached` (if
// non-null) reports whether the cache was used.
absl::StatusOr<TokenizedCorpus> TokenizeCorpus(const std::vector<std::string>& docs,
                                               const Tokenizer& tokenizer, const RuleOptions& rules,
                                               const std::string& cache_dir, int threads,
                                               bool* cached = nullptr);

// Trains the tokenizer on the rule-processed raw_docs with the same caching idea: if a model
// trained from the same documents, rules, vocabulary settings and seed exists in cache_dir
// (spm-<key>.model), it is copied to model_path (with its .vocab) instead of training again.
absl::StatusOr<Tokenizer> TrainTokenizerCached(const std::vector<std::string>& raw_docs,
                                               const RuleOptions& rules, const TextConfig& config,
                                               const std::string& cache_dir,
                                               const std::string& model_path, uint64_t seed,
                                               int threads, bool* cached = nullptr);

// Builds a word tokenizer from raw documents as fastai v1 does (FastaiWordTokens, then
// TokenCounter::FastaiVocabulary(max_vocab, min_freq)), writes its vocabulary to `path` and
// returns it. Tokenizes on `threads` threads; the vocabulary does not depend on their number.
absl::StatusOr<Tokenizer> BuildWordTokenizer(const std::vector<std::string>& raw_docs,
                                             const RuleOptions& rules, int max_vocab,
                                             int min_freq, const std::string& path, int threads);

// The token-id cache shared by all runs: text.cache_dir, else $ULMFIT_CACHE_DIR, else
// $XDG_CACHE_HOME/ulmfit, else ~/.cache/ulmfit.
std::string DefaultCacheDir(const TextConfig& text);

}  // namespace ulmfit
