#include "data/token_cache.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "text/word_tokenizer.h"
#include "util/files.h"
#include "util/hash.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

// Bump when the tokenized output for the same inputs changes (rules, encoding, file layout), so
// old cache files are no longer found.
constexpr uint64_t kTokenCacheVersion = 1;
constexpr uint64_t kSpmCacheVersion = 1;
// Bump when FastaiWordTokens gives different tokens for the same text; only word-tokenizer keys
// include it.
constexpr uint64_t kWordTokenizerVersion = 1;
constexpr char kMagic[8] = {'U', 'L', 'M', 'F', 'T', 'O', 'K', '\0'};
constexpr size_t kDocsPerTask = 64;  // small enough to balance threads, big enough to be cheap

// Cache file layout (little-endian): magic[8], version u64, key u64, num_docs i64, num_ids i64,
// offsets i64[num_docs + 1], ids i32[num_ids], checksum u64 over everything before it.
constexpr size_t kHeaderBytes = 8 + 4 * 8;

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Runs task(i) for i in [0, num_tasks) on up to `threads` threads, handing out tasks in order.
template <typename Task>
void ParallelFor(size_t num_tasks, int threads, const Task& task) {
  const size_t workers = std::min<size_t>(ResolveThreads(threads), num_tasks);
  if (workers <= 1) {
    for (size_t i = 0; i < num_tasks; ++i) task(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < num_tasks; i = next++) task(i);
    });
  }
  for (std::thread& thread : pool) thread.join();
}

void HashDocuments(const std::vector<std::string>& docs, Hasher* hasher) {
  hasher->UpdateU64(docs.size());
  for (const std::string& doc : docs) hasher->UpdateString(doc);
}

std::string CachePath(const std::string& cache_dir, const std::string& prefix, uint64_t key,
                      const std::string& extension) {
  return (fs::path(cache_dir) / absl::StrCat(prefix, HashHex(key), extension)).string();
}

// Writes `parts` to a temp file next to `path` and renames it into place; false on failure.
bool WriteAtomically(const std::string& path, const std::vector<std::string_view>& parts) {
  static std::atomic<int> counter{0};
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid(), ".", counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    for (std::string_view part : parts) {
      out.write(part.data(), static_cast<std::streamsize>(part.size()));
    }
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return false;
    }
  }
  std::error_code error;
  fs::rename(tmp, path, error);
  if (error) std::remove(tmp.c_str());
  return !error;
}

bool ReadWholeFile(const std::string& path, std::string* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream out;
  out << in.rdbuf();
  *bytes = out.str();
  return static_cast<bool>(in);
}

template <typename T>
std::string_view AsBytes(const std::vector<T>& values) {
  return std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

std::string Header(uint64_t key, int64_t num_docs, int64_t num_ids) {
  std::string header(kHeaderBytes, '\0');
  char* p = header.data();
  std::memcpy(p, kMagic, 8);
  uint64_t fields[4] = {kTokenCacheVersion, key, static_cast<uint64_t>(num_docs),
                        static_cast<uint64_t>(num_ids)};
  std::memcpy(p + 8, fields, sizeof(fields));
  return header;
}

bool SaveTokenCache(const std::string& path, uint64_t key, const TokenizedCorpus& corpus) {
  const std::string header = Header(key, corpus.num_docs(), corpus.ids.size());
  Hasher hasher;
  hasher.Update(header);
  hasher.Update(AsBytes(corpus.offsets));
  hasher.Update(AsBytes(corpus.ids));
  const uint64_t checksum = hasher.Finish();
  return WriteAtomically(path, {header, AsBytes(corpus.offsets), AsBytes(corpus.ids),
                                std::string_view(reinterpret_cast<const char*>(&checksum), 8)});
}

// Loads a cache file; false if it is missing, truncated, corrupt or for another key.
bool LoadTokenCache(const std::string& path, uint64_t key, TokenizedCorpus* corpus) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (file == nullptr) return false;
  char header[kHeaderBytes];
  if (std::fread(header, 1, kHeaderBytes, file.get()) != kHeaderBytes) return false;
  uint64_t fields[4];
  std::memcpy(fields, header + 8, sizeof(fields));
  if (std::memcmp(header, kMagic, 8) != 0 || fields[0] != kTokenCacheVersion || fields[1] != key) {
    return false;
  }
  const uint64_t num_docs = fields[2], num_ids = fields[3];
  std::error_code error;
  const uint64_t size = fs::file_size(path, error);
  // Checked before allocating, so a damaged header cannot request absurd amounts of memory.
  if (error || num_docs > size / 8 || num_ids > size / 4 ||
      size != kHeaderBytes + 8 * (num_docs + 1) + 4 * num_ids + 8) {
    return false;
  }
  TokenizedCorpus loaded;
  loaded.offsets.resize(num_docs + 1);
  loaded.ids.resize(num_ids);
  uint64_t checksum = 0;
  if (std::fread(loaded.offsets.data(), 8, num_docs + 1, file.get()) != num_docs + 1 ||
      std::fread(loaded.ids.data(), 4, num_ids, file.get()) != num_ids ||
      std::fread(&checksum, 8, 1, file.get()) != 1) {
    return false;
  }
  Hasher hasher;
  hasher.Update(header, kHeaderBytes);
  hasher.Update(AsBytes(loaded.offsets));
  hasher.Update(AsBytes(loaded.ids));
  if (hasher.Finish() != checksum) return false;
  if (loaded.offsets.front() != 0 || loaded.offsets.back() != static_cast<int64_t>(num_ids) ||
      !std::is_sorted(loaded.offsets.begin(), loaded.offsets.end())) {
    return false;
  }
  *corpus = std::move(loaded);
  return true;
}

bool EnsureDir(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  return !error;
}

}  // namespace

std::vector<std::string> ApplyRulesParallel(const std::vector<std::string>& docs,
                                            const RuleOptions& rules, int threads) {
  std::vector<std::string> processed(docs.size());
  const size_t num_tasks = (docs.size() + kDocsPerTask - 1) / kDocsPerTask;
  ParallelFor(num_tasks, threads, [&](size_t task) {
    const size_t end = std::min(docs.size(), (task + 1) * kDocsPerTask);
    for (size_t d = task * kDocsPerTask; d < end; ++d) processed[d] = ApplyRules(docs[d], rules);
  });
  return processed;
}

void EncodeRawDocument(const Tokenizer& tokenizer, std::string_view raw_doc,
                       const RuleOptions& rules, std::vector<int32_t>* ids) {
  if (tokenizer.kind() == TokenizerKind::kWords) {
    tokenizer.EncodeTokens(FastaiWordTokens(raw_doc, rules), ids);
  } else {
    tokenizer.EncodeTo(ApplyRules(raw_doc, rules), ids);
  }
}

TokenizedCorpus TokenizeDocuments(const std::vector<std::string>& docs, const Tokenizer& tokenizer,
                                  const RuleOptions& rules, int threads) {
  // Each task fills its own slot; concatenating the slots in order makes the result
  // independent of which thread ran which task.
  const size_t num_tasks = (docs.size() + kDocsPerTask - 1) / kDocsPerTask;
  std::vector<std::vector<int32_t>> task_ids(num_tasks);
  std::vector<std::vector<int64_t>> task_lengths(num_tasks);
  ParallelFor(num_tasks, threads, [&](size_t task) {
    const size_t begin = task * kDocsPerTask;
    const size_t end = std::min(docs.size(), begin + kDocsPerTask);
    std::vector<int32_t>& ids = task_ids[task];
    std::vector<int64_t>& lengths = task_lengths[task];
    lengths.reserve(end - begin);
    for (size_t d = begin; d < end; ++d) {
      const size_t before = ids.size();
      EncodeRawDocument(tokenizer, docs[d], rules, &ids);
      lengths.push_back(static_cast<int64_t>(ids.size() - before));
    }
  });
  TokenizedCorpus corpus;
  size_t total = 0;
  for (const auto& ids : task_ids) total += ids.size();
  corpus.ids.reserve(total);
  corpus.offsets.reserve(docs.size() + 1);
  for (size_t task = 0; task < num_tasks; ++task) {
    for (int64_t length : task_lengths[task])
      corpus.offsets.push_back(corpus.offsets.back() + length);
    corpus.ids.insert(corpus.ids.end(), task_ids[task].begin(), task_ids[task].end());
    std::vector<int32_t>().swap(task_ids[task]);  // release as we go to bound peak memory
  }
  return corpus;
}

absl::StatusOr<TokenizedCorpus> TokenizeCorpus(const std::vector<std::string>& docs,
                                               const Tokenizer& tokenizer, const RuleOptions& rules,
                                               const std::string& cache_dir, int threads,
                                               bool* cached) {
  if (cached != nullptr) *cached = false;
  std::string path;
  uint64_t key = 0;
  if (!cache_dir.empty()) {
    Hasher hasher;
    hasher.UpdateString("ulmfit-tokens");
    hasher.UpdateU64(kTokenCacheVersion);
    hasher.UpdateU64(rules.rules);
    hasher.UpdateU64(rules.lowercase);
    if (tokenizer.kind() == TokenizerKind::kWords) {
      // Only here, so that SentencePiece keys (and every existing cache) stay valid.
      hasher.UpdateString(TokenizerKindName(tokenizer.kind()));
      hasher.UpdateU64(kWordTokenizerVersion);
    }
    hasher.UpdateString(tokenizer.SerializedModel());
    HashDocuments(docs, &hasher);
    key = hasher.Finish();
    path = CachePath(cache_dir, "tokens-", key, ".bin");
    TokenizedCorpus corpus;
    if (LoadTokenCache(path, key, &corpus) &&
        corpus.num_docs() == static_cast<int64_t>(docs.size())) {
      if (cached != nullptr) *cached = true;
      return corpus;
    }
  }

  TokenizedCorpus corpus = TokenizeDocuments(docs, tokenizer, rules, threads);
  // The cache is only a speed-up: failing to write it must not fail the run.
  if (!path.empty() && EnsureDir(cache_dir)) SaveTokenCache(path, key, corpus);
  return corpus;
}

absl::StatusOr<Tokenizer> TrainTokenizerCached(const std::vector<std::string>& raw_docs,
                                               const RuleOptions& rules, const TextConfig& config,
                                               const std::string& cache_dir,
                                               const std::string& model_path, uint64_t seed,
                                               int threads, bool* cached) {
  if (cached != nullptr) *cached = false;
  std::string cache_path;
  if (!cache_dir.empty()) {
    Hasher hasher;
    hasher.UpdateString("ulmfit-spm");
    hasher.UpdateU64(kSpmCacheVersion);
    hasher.UpdateU64(rules.rules);
    hasher.UpdateU64(rules.lowercase);
    hasher.UpdateU64(static_cast<uint64_t>(config.vocab_size));
    hasher.UpdateString(EnumName(config.model_type));  // the name, as before the enum
    hasher.UpdateString(absl::StrFormat("%.17g", config.character_coverage));
    hasher.UpdateU64(static_cast<uint64_t>(config.max_training_sentences));
    hasher.UpdateU64(seed);
    HashDocuments(raw_docs, &hasher);
    cache_path = CachePath(cache_dir, "spm-", hasher.Finish(), ".model");

    std::string bytes;
    if (ReadWholeFile(cache_path, &bytes)) {
      absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromSerialized(bytes, model_path);
      if (tokenizer.ok()) {
        std::string vocab;
        if (!ReadWholeFile(VocabPathFor(cache_path), &vocab)) vocab.clear();
        const fs::path parent = fs::path(model_path).parent_path();
        if (!parent.empty()) EnsureDir(parent.string());
        if (!WriteAtomically(model_path, {bytes}) ||
            (!vocab.empty() && !WriteAtomically(VocabPathFor(model_path), {vocab}))) {
          return absl::PermissionDeniedError(
              absl::StrCat(model_path,
                           ": cannot write the tokenizer model (check that the folder is "
                           "writable and the disk has space)"));
        }
        if (cached != nullptr) *cached = true;
        return tokenizer;
      }
      // A corrupt cached model is simply trained again below and overwritten.
    }
  }

  ASSIGN_OR_RETURN(
      Tokenizer tokenizer,
      Tokenizer::Train(ApplyRulesParallel(raw_docs, rules, threads), config, model_path, seed));
  if (!cache_path.empty() && EnsureDir(cache_dir)) {
    std::string vocab;
    if (ReadWholeFile(VocabPathFor(model_path), &vocab)) {
      WriteAtomically(VocabPathFor(cache_path), {vocab});
    }
    // The model goes last: its presence is what marks the cache entry as complete.
    WriteAtomically(cache_path, {tokenizer.SerializedModel()});
  }
  return tokenizer;
}

absl::StatusOr<Tokenizer> BuildWordTokenizer(const std::vector<std::string>& raw_docs,
                                             const RuleOptions& rules, int max_vocab,
                                             int min_freq, const std::string& path, int threads) {
  if (max_vocab <= kNumSpecialTokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a word vocabulary needs room for more than the ", kNumSpecialTokens,
        " special tokens, got a maximum size of ", max_vocab));
  }
  const size_t num_tasks = (raw_docs.size() + kDocsPerTask - 1) / kDocsPerTask;
  std::vector<TokenCounter> counters(num_tasks);
  ParallelFor(num_tasks, threads, [&](size_t task) {
    const size_t end = std::min(raw_docs.size(), (task + 1) * kDocsPerTask);
    for (size_t d = task * kDocsPerTask; d < end; ++d) {
      counters[task].Add(FastaiWordTokens(raw_docs[d], rules));
    }
  });
  TokenCounter counts;
  for (const TokenCounter& counter : counters) counts.Merge(counter);
  ASSIGN_OR_RETURN(Tokenizer tokenizer,
                   Tokenizer::FromWordVocabulary(counts.FastaiVocabulary(max_vocab, min_freq), path));
  RETURN_IF_ERROR(tokenizer.SaveWordVocabulary(path));
  return tokenizer;
}

std::string DefaultCacheDir(const TextConfig& text) {
  return text.cache_dir.empty() ? UserCacheDir() : text.cache_dir;
}

}  // namespace ulmfit
