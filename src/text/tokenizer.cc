#include "text/tokenizer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "text/rules.h"
#include "text/spm_library.h"
#include "text/word_vocab.h"
#include "util/files.h"
#include "util/random.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's word boundary
// Above ERROR (2): SentencePiece stays silent; ulmfit prints its own progress and errors.
constexpr int kSentencePieceLogLevel = 3;
// SentencePiece skips training sentences longer than max_sentence_length (4192 bytes).
constexpr size_t kMaxTrainingSentenceBytes = 4000;

// absl::StrCat takes absl::string_view, which is not std::string_view in this Abseil build.
std::string SpecialToken(int id) { return std::string(kSpecialTokens[id]); }
std::string SpecialPiece(int id) { return std::string(kSpace) + SpecialToken(id); }

// Cuts `text` into pieces of at most kMaxTrainingSentenceBytes at spaces (or, inside one huge
// word, at a UTF-8 character boundary).
void AppendTrainingSentences(std::string_view text, std::vector<std::string>* out) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (text.size() > kMaxTrainingSentenceBytes) {
    size_t cut = text.rfind(' ', kMaxTrainingSentenceBytes);
    if (cut == std::string_view::npos || cut == 0) {
      cut = kMaxTrainingSentenceBytes;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    }
    out->emplace_back(text.substr(0, cut));
    text.remove_prefix(cut);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  }
  if (!text.empty()) out->emplace_back(text);
}

// Keeps a seeded random subset of `limit` sentences, in their original order.
void SampleSentences(int64_t limit, uint64_t seed, std::vector<std::string>* sentences) {
  const size_t n = sentences->size();
  if (limit <= 0 || n <= static_cast<size_t>(limit)) return;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = seed;
  for (size_t i = 0; i < static_cast<size_t>(limit); ++i) {
    size_t j = i + NextSplitMix64(&state) % (n - i);
    std::swap(order[i], order[j]);
  }
  order.resize(limit);
  std::sort(order.begin(), order.end());
  std::vector<std::string> kept;
  kept.reserve(limit);
  for (size_t index : order) kept.push_back(std::move((*sentences)[index]));
  sentences->swap(kept);
}

// Reads a varint at data[*pos]; false if it runs past the end.
bool ReadVarint(std::string_view data, size_t* pos, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *pos < data.size(); shift += 7) {
    unsigned char byte = data[(*pos)++];
    *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Skips a field of the given protobuf wire type; false on malformed input.
bool SkipField(std::string_view data, size_t* pos, int wire_type) {
  uint64_t value = 0;
  switch (wire_type) {
    case 0:
      return ReadVarint(data, pos, &value);
    case 1:
      *pos += 8;
      break;
    case 2:
      if (!ReadVarint(data, pos, &value) || value > data.size()) return false;
      *pos += value;
      break;
    case 5:
      *pos += 4;
      break;
    default:
      return false;
  }
  return *pos <= data.size();
}

// The scores of all pieces, read from the serialized ModelProto (field 1: repeated
// SentencePiece {1: piece, 2: float score}), because the shim does not expose them. Empty if
// the bytes do not parse.
std::vector<float> PieceScores(std::string_view model) {
  std::vector<float> scores;
  size_t pos = 0;
  while (pos < model.size()) {
    uint64_t key = 0;
    if (!ReadVarint(model, &pos, &key)) return {};
    if (key != ((1 << 3) | 2)) {
      if (!SkipField(model, &pos, key & 7)) return {};
      continue;
    }
    uint64_t length = 0;
    if (!ReadVarint(model, &pos, &length) || length > model.size() - pos) return {};
    std::string_view piece = model.substr(pos, length);
    pos += length;
    float score = 0;
    size_t inner = 0;
    while (inner < piece.size()) {
      uint64_t inner_key = 0;
      if (!ReadVarint(piece, &inner, &inner_key)) return {};
      if (inner_key == ((2 << 3) | 5) && inner + 4 <= piece.size()) {
        std::memcpy(&score, piece.data() + inner, 4);
        inner += 4;
      } else if (!SkipField(piece, &inner, inner_key & 7)) {
        return {};
      }
    }
    scores.push_back(score);
  }
  return scores;
}

// SentencePiece's .vocab format: "piece<TAB>score" per line, in id order.
std::string VocabText(const SpmModel& model, std::string_view serialized) {
  const std::vector<float> scores = PieceScores(serialized);
  std::ostringstream out;
  for (int id = 0; id < model.PieceSize(); ++id) {
    out << model.IdToPiece(id) << '\t'
        << (static_cast<size_t>(id) < scores.size() ? scores[id] : 0.0f) << '\n';
  }
  return out.str();
}

absl::Status CheckSpecialTokens(const SpmModel& model, const std::string& model_path) {
  for (int id = 0; id < kNumSpecialTokens; ++id) {
    const std::string piece = SpecialPiece(id);
    int found = model.PieceToId(piece);
    if (found < 0 || found >= model.PieceSize() || model.IdToPiece(found) != piece) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", model_path, " was not trained by ulmfit: special token ", SpecialToken(id),
          " is missing; train a new tokenizer (leave text.spm_model empty)"));
    }
    if (found != id) {
      return absl::InvalidArgumentError(
          absl::StrCat("model ", model_path, " was not trained by ulmfit: special token ",
                       SpecialToken(id), " has id ", found, ", expected ", id,
                       "; train a new tokenizer (leave text.spm_model empty)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string VocabPathFor(const std::string& model_path) {
  if (absl::EndsWith(model_path, ".model")) {
    return absl::StrCat(model_path.substr(0, model_path.size() - 6), ".vocab");
  }
  return absl::StrCat(model_path, ".vocab");
}

absl::StatusOr<Tokenizer> Tokenizer::Train(const std::vector<std::string>& processed_docs,
                                           const TextConfig& config, const std::string& model_path,
                                           uint64_t seed) {
  if (config.vocab_size <= kNumSpecialTokens) {
    return absl::InvalidArgumentError(absl::StrCat("text.vocab_size must be larger than ",
                                                   kNumSpecialTokens, ", got ", config.vocab_size));
  }
  // Before training, so that a bad path fails in seconds rather than after the training.
  const fs::path parent = fs::path(model_path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    fs::create_directories(parent, error);
    if (error) {
      return absl::PermissionDeniedError(absl::StrCat(
          parent.string(), ": cannot create the folder for the tokenizer (", error.message(), ")"));
    }
  }
  std::vector<std::string> sentences;
  sentences.reserve(processed_docs.size());
  for (const std::string& doc : processed_docs) AppendTrainingSentences(doc, &sentences);
  if (sentences.empty()) {
    return absl::InvalidArgumentError(
        "cannot train the tokenizer: the training documents contain no text");
  }
  SampleSentences(config.max_training_sentences, seed, &sentences);

  std::string user_symbols;
  for (int id = kBosId; id < kNumSpecialTokens; ++id) {
    if (!user_symbols.empty()) user_symbols += ",";
    user_symbols += SpecialPiece(id);
  }
  const int threads = std::max(1u, std::thread::hardware_concurrency());
  const std::string args = absl::StrCat(
      "--model_prefix= --vocab_size=", config.vocab_size,
      " --model_type=", EnumName(config.model_type),
      " --character_coverage=", absl::StrFormat("%.17g", config.character_coverage),
      // Tiny corpora get a smaller vocabulary instead of an error.
      " --hard_vocab_limit=false",
      // Sampling was done above, seeded; SentencePiece's own would not be reproducible.
      " --input_sentence_size=0 --shuffle_input_sentence=false", " --num_threads=", threads,
      " --unk_id=", kUnkId, " --unk_piece=", SpecialPiece(kUnkId), " --pad_id=", kPadId,
      " --pad_piece=", SpecialPiece(kPadId),
      " --bos_id=-1 --eos_id=-1 --user_defined_symbols=", user_symbols,
      " --minloglevel=", kSentencePieceLogLevel);
  absl::StatusOr<std::string> serialized = SpmTrainFromSentences(args, sentences);
  if (!serialized.ok()) {
    return absl::Status(serialized.status().code(),
                        absl::StrCat(serialized.status().message(),
                                     " (check text.vocab_size and text.character_coverage)"));
  }
  ASSIGN_OR_RETURN(Tokenizer tokenizer, FromSerialized(*std::move(serialized), model_path));

  RETURN_IF_ERROR(WriteFileAtomic(model_path, *tokenizer.serialized_));
  RETURN_IF_ERROR(WriteFileAtomic(VocabPathFor(model_path),
                                  VocabText(*tokenizer.model_, *tokenizer.serialized_)));
  return tokenizer;
}

absl::StatusOr<Tokenizer> Tokenizer::Load(const std::string& model_path) {
  std::error_code error;
  if (!fs::is_regular_file(model_path, error)) {
    return absl::NotFoundError(
        absl::StrCat(model_path,
                     ": tokenizer model not found (check text.spm_model, or leave it empty to "
                     "train one)"));
  }
  std::ifstream in(model_path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    return absl::PermissionDeniedError(
        absl::StrCat(model_path, ": cannot read the tokenizer model"));
  }
  return FromSerialized(bytes.str(), model_path);
}

absl::StatusOr<Tokenizer> Tokenizer::FromSerialized(std::string serialized_model,
                                                    const std::string& model_path) {
  if (LooksLikeWordVocabulary(serialized_model)) {
    ASSIGN_OR_RETURN(WordVocab vocab, WordVocab::Parse(serialized_model, model_path));
    return FromWords(std::move(vocab), model_path);
  }
  if (serialized_model.empty()) {
    return absl::DataLossError(
        absl::StrCat(model_path, ": not a valid SentencePiece model (the file is empty)"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<SpmModel> model,
                   SpmModel::FromSerialized(serialized_model, model_path));
  RETURN_IF_ERROR(CheckSpecialTokens(*model, model_path));
  Tokenizer tokenizer;
  tokenizer.model_ = std::move(model);
  tokenizer.serialized_ = std::make_shared<const std::string>(std::move(serialized_model));
  tokenizer.model_path_ = model_path;
  return tokenizer;
}

absl::StatusOr<Tokenizer> Tokenizer::FromWordVocabulary(std::vector<std::string> itos,
                                                        const std::string& path) {
  ASSIGN_OR_RETURN(WordVocab vocab, WordVocab::Create(std::move(itos), path));
  return FromWords(std::move(vocab), path);
}

Tokenizer Tokenizer::FromWords(WordVocab vocab, const std::string& path) {
  Tokenizer tokenizer;
  tokenizer.kind_ = TokenizerKind::kWords;
  for (int index = 0; index < kNumSpecialTokens; ++index) {
    tokenizer.special_ids_[index] = vocab.id(kSpecialTokens[index]);  // present: Create checked
  }
  tokenizer.serialized_ = std::make_shared<const std::string>(vocab.Serialize());
  tokenizer.words_ = std::make_shared<const WordVocab>(std::move(vocab));
  tokenizer.model_path_ = path;
  return tokenizer;
}

absl::Status Tokenizer::SaveWordVocabulary(const std::string& path) const {
  if (kind_ != TokenizerKind::kWords) {
    return absl::FailedPreconditionError(absl::StrCat(
        model_path_, ": a SentencePiece tokenizer has no word vocabulary to save"));
  }
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    fs::create_directories(parent, error);
  }
  return WriteFileAtomic(path, *serialized_);
}

void Tokenizer::EncodeTokens(const std::vector<std::string>& tokens,
                             std::vector<int32_t>* ids) const {
  if (kind_ == TokenizerKind::kWords) {
    ids->reserve(ids->size() + tokens.size());
    for (const std::string& token : tokens) {
      const int id = words_->id(token);
      ids->push_back(id < 0 ? kUnkId : id);
    }
    return;
  }
  std::string joined;
  for (const std::string& token : tokens) {
    if (!joined.empty()) joined.push_back(' ');
    joined.append(token);
  }
  EncodeTo(joined, ids);
}

void Tokenizer::EncodeTo(std::string_view text, std::vector<int32_t>* ids) const {
  if (kind_ == TokenizerKind::kWords) {
    for (size_t i = 0; i < text.size();) {
      size_t end = text.find(' ', i);
      if (end == std::string_view::npos) end = text.size();
      if (end > i) {
        const int id = words_->id(text.substr(i, end - i));
        ids->push_back(id < 0 ? kUnkId : id);
      }
      i = end + 1;
    }
    return;
  }
  auto encode_span = [&](std::string_view span) {
    if (span.find_first_not_of(' ') == std::string_view::npos) return;
    std::vector<int32_t> piece_ids = model_->Encode(span);
    ids->insert(ids->end(), piece_ids.begin(), piece_ids.end());
  };
  // Fast path: no unk/pad words, which SentencePiece cannot match itself.
  if (text.find("xxunk") == std::string_view::npos &&
      text.find("xxpad") == std::string_view::npos) {
    encode_span(text);
    return;
  }
  size_t span_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(i, end - i);
    int special = word == kSpecialTokens[kUnkId]   ? kUnkId
                  : word == kSpecialTokens[kPadId] ? kPadId
                                                   : -1;
    if (special >= 0) {
      encode_span(text.substr(span_start, i - span_start));
      ids->push_back(special);
      span_start = end;
    }
    i = end + 1;
  }
  if (span_start < text.size()) encode_span(text.substr(span_start));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view processed_text) const {
  std::vector<int32_t> ids;
  EncodeTo(processed_text, &ids);
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  if (kind_ == TokenizerKind::kWords) {
    std::string text;
    for (size_t k = 0; k < ids.size(); ++k) {
      const int32_t id = ids[k];
      if (k > 0) text.push_back(' ');
      text.append(id >= 0 && id < vocab_size() ? words_->token(id) : words_->token(kUnkId));
    }
    return text;
  }
  std::string joined;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      joined.append(kSpace).append(kSpecialTokens[kUnkId]);
      continue;
    }
    joined.append(model_->IdToPiece(id));
  }
  std::string text;
  text.reserve(joined.size());
  for (size_t i = 0; i < joined.size();) {
    if (joined.compare(i, kSpace.size(), kSpace) == 0) {
      if (!text.empty()) text.push_back(' ');
      i += kSpace.size();
    } else {
      text.push_back(joined[i++]);
    }
  }
  return text;
}

int Tokenizer::vocab_size() const {
  return kind_ == TokenizerKind::kWords ? words_->size() : model_->PieceSize();
}

std::string Tokenizer::IdToPiece(int id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return kind_ == TokenizerKind::kWords ? words_->token(id) : model_->IdToPiece(id);
}

int Tokenizer::PieceToId(const std::string& piece) const {
  if (kind_ == TokenizerKind::kWords) return words_->id(piece);
  int id = model_->PieceToId(piece);
  if (id < 0 || id >= vocab_size() || model_->IdToPiece(id) != piece) return -1;
  return id;
}

}  // namespace ulmfit
