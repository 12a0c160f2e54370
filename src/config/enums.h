// The enumerated config values. Each enum has one name table (EnumTable) that parsing,
// ConfigToYaml, error messages ("must be one of ...") and logging all read, so a new value is
// one enumerator plus one table row.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "fmt/format.h"

namespace ulmfit {

// `preset`: which defaults apply before the file's values (config/presets.h).
enum class Preset { kFastai, kPaper };

// `text.tokenizer`: SentencePiece subwords trained by ulmfit, or a word vocabulary (fastai's
// itos, text/word_tokenizer.h).
enum class TokenizerKind { kSentencePiece, kWords };

// `text.model_type`: SentencePiece's model type.
enum class SpmModelType { kUnigram, kBpe };

// `pretrain.data.format` (and ReadDocuments): one document per line, or per file.
enum class CorpusFormat { kAuto, kLines, kFiles };

// `task.format`: how labelled data is laid out.
enum class TaskFormat { kAuto, kTsv, kCsv, kFolders };

// `task.header`: whether a TSV/CSV file starts with a header row.
enum class HeaderMode { kAuto, kYes, kNo };

// `*.schedule.kind`: the learning-rate schedule of a stage.
enum class ScheduleKind { kStlr, kOneCycle, kConstant };

// `finetune.discriminative`: how the LM's lower layer groups get smaller lrs.
enum class Discriminative { kFactor, kScripts, kNone };

// `classifier.select_metric`: which validation metric picks the best epoch.
enum class SelectMetric { kAccuracy, kMacroF1, kLoss };

// `run.distributed_backend`: c10d's backend for a multi-process run (dist/world.h); auto is
// NCCL on CUDA, Gloo on the CPU.
enum class DistributedBackend { kAuto, kGloo, kNccl };

// `active.strategy` and `active.strategies`: how useful labelling an example would be
// (active/strategies.h scores them).
enum class Strategy { kLeastConfidence, kMargin, kEntropy, kRandom, kDiverse, kBald, kBadge, kKMeans };

template <typename E>
struct EnumEntry {
  E value;
  const char* name;
};

// EnumTable<E>::kEntries lists every value of E with its config name, in the order messages
// list them.
template <typename E>
struct EnumTable;

template <>
struct EnumTable<Preset> {
  static constexpr EnumEntry<Preset> kEntries[] = {{Preset::kFastai, "fastai"},
                                                   {Preset::kPaper, "paper"}};
};
template <>
struct EnumTable<SpmModelType> {
  static constexpr EnumEntry<SpmModelType> kEntries[] = {{SpmModelType::kUnigram, "unigram"},
                                                         {SpmModelType::kBpe, "bpe"}};
};
template <>
struct EnumTable<CorpusFormat> {
  static constexpr EnumEntry<CorpusFormat> kEntries[] = {{CorpusFormat::kAuto, "auto"},
                                                         {CorpusFormat::kLines, "lines"},
                                                         {CorpusFormat::kFiles, "files"}};
};
template <>
struct EnumTable<TaskFormat> {
  static constexpr EnumEntry<TaskFormat> kEntries[] = {{TaskFormat::kAuto, "auto"},
                                                       {TaskFormat::kTsv, "tsv"},
                                                       {TaskFormat::kCsv, "csv"},
                                                       {TaskFormat::kFolders, "folders"}};
};
template <>
struct EnumTable<HeaderMode> {
  static constexpr EnumEntry<HeaderMode> kEntries[] = {{HeaderMode::kAuto, "auto"},
                                                       {HeaderMode::kYes, "yes"},
                                                       {HeaderMode::kNo, "no"}};
};
template <>
struct EnumTable<ScheduleKind> {
  static constexpr EnumEntry<ScheduleKind> kEntries[] = {{ScheduleKind::kStlr, "stlr"},
                                                         {ScheduleKind::kOneCycle, "one_cycle"},
                                                         {ScheduleKind::kConstant, "constant"}};
};
template <>
struct EnumTable<Discriminative> {
  static constexpr EnumEntry<Discriminative> kEntries[] = {
      {Discriminative::kFactor, "factor"},
      {Discriminative::kScripts, "scripts"},
      {Discriminative::kNone, "none"}};
};
template <>
struct EnumTable<DistributedBackend> {
  static constexpr EnumEntry<DistributedBackend> kEntries[] = {
      {DistributedBackend::kAuto, "auto"}, {DistributedBackend::kGloo, "gloo"},
      {DistributedBackend::kNccl, "nccl"}};
};

template <>
struct EnumTable<SelectMetric> {
  static constexpr EnumEntry<SelectMetric> kEntries[] = {{SelectMetric::kAccuracy, "accuracy"},
                                                         {SelectMetric::kMacroF1, "macro_f1"},
                                                         {SelectMetric::kLoss, "loss"}};
};
template <>
struct EnumTable<TokenizerKind> {
  static constexpr EnumEntry<TokenizerKind> kEntries[] = {
      {TokenizerKind::kSentencePiece, "sentencepiece"}, {TokenizerKind::kWords, "words"}};
};

template <>
struct EnumTable<Strategy> {
  static constexpr EnumEntry<Strategy> kEntries[] = {
      {Strategy::kLeastConfidence, "least_confidence"},
      {Strategy::kMargin, "margin"},
      {Strategy::kEntropy, "entropy"},
      {Strategy::kRandom, "random"},
      {Strategy::kDiverse, "diverse"},
      {Strategy::kBald, "bald"},
      {Strategy::kBadge, "badge"},
      {Strategy::kKMeans, "kmeans"}};
};

// True for the enums above (those with a name table).
template <typename E, typename = void>
constexpr bool kIsConfigEnum = false;
template <typename E>
constexpr bool kIsConfigEnum<E, std::void_t<decltype(EnumTable<E>::kEntries)>> = true;

// The config name of `value` ("" for a value outside the table, e.g. a bad cast).
template <typename E>
std::string EnumName(E value) {
  for (const EnumEntry<E>& entry : EnumTable<E>::kEntries) {
    if (entry.value == value) return entry.name;
  }
  return "";
}

// Sets *out to the value named `name` (exact, case-sensitive); false if there is none.
template <typename E>
bool ParseEnum(std::string_view name, E* out) {
  for (const EnumEntry<E>& entry : EnumTable<E>::kEntries) {
    if (name == entry.name) {
      *out = entry.value;
      return true;
    }
  }
  return false;
}

// Every name, in table order.
template <typename E>
std::vector<std::string> EnumNames() {
  std::vector<std::string> names;
  for (const EnumEntry<E>& entry : EnumTable<E>::kEntries) names.emplace_back(entry.name);
  return names;
}

// Streams print config enums by name (GoogleTest's failure messages, for one).
template <typename E, typename = std::enable_if_t<kIsConfigEnum<E>>>
std::ostream& operator<<(std::ostream& out, E value) {
  return out << EnumName(value);
}

}  // namespace ulmfit

// fmt::format("{}", value) writes the config name, so log lines read like the config file.
template <typename E>
struct fmt::formatter<E, char, std::enable_if_t<ulmfit::kIsConfigEnum<E>>>
    : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(E value, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(ulmfit::EnumName(value), ctx);
  }
};
