#include "text/spm_shim/spm_shim.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace sentencepiece::logging {
void SetMinLogLevel(int v);  // exported by libsentencepiece; not declared in its public headers
}  // namespace sentencepiece::logging

struct UlmfitSpm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

// Runs when the shim is loaded, before any call into SentencePiece. Its string-argument Train()
// logs the command line to std::cerr before it parses --minloglevel, and under RTLD_DEEPBIND that
// std::cerr can be libstdc++'s never-constructed copy (when the program has a copy relocation
// for std::cerr): a segfault. Above ERROR, SentencePiece never touches std::cerr; its errors
// come back as statuses anyway, and ulmfit prints its own progress.
__attribute__((constructor)) void SilenceSentencePiece() {
  sentencepiece::logging::SetMinLogLevel(3);
}

void CopyError(const std::string& message, char* error, size_t error_len) {
  if (error == nullptr || error_len == 0) return;
  std::strncpy(error, message.c_str(), error_len - 1);
  error[error_len - 1] = '\0';
}

// Feeds in-memory sentences to the trainer.
class ArrayIterator : public sentencepiece::SentenceIterator {
 public:
  ArrayIterator(const char* const* sentences, const size_t* sizes, size_t count)
      : sentences_(sentences), sizes_(sizes), count_(count) { Load(); }
  bool done() const override { return index_ >= count_; }
  void Next() override { ++index_; Load(); }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void Load() { if (index_ < count_) value_.assign(sentences_[index_], sizes_[index_]); }
  const char* const* sentences_;
  const size_t* sizes_;
  size_t count_;
  size_t index_ = 0;
  std::string value_;
};

}  // namespace

extern "C" {

int ulmfit_spm_train_from_sentences(const char* args, const char* const* sentences,
                                    const size_t* sizes, size_t count, char** model,
                                    size_t* model_size, char* error, size_t error_len) {
  ArrayIterator iterator(sentences, sizes, count);
  std::string serialized;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &serialized);
  if (!status.ok()) {
    CopyError(status.ToString(), error, error_len);
    return 1;
  }
  *model = static_cast<char*>(std::malloc(serialized.size()));
  std::memcpy(*model, serialized.data(), serialized.size());
  *model_size = serialized.size();
  return 0;
}

void ulmfit_spm_free_buffer(char* buffer) { std::free(buffer); }

int ulmfit_spm_train(const char* args, char* error, size_t error_len) {
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    CopyError(status.ToString(), error, error_len);
    return 1;
  }
  return 0;
}

UlmfitSpm* ulmfit_spm_load(const char* data, size_t size, char* error, size_t error_len) {
  auto* model = new UlmfitSpm;
  const auto status = model->processor.LoadFromSerializedProto(std::string(data, size));
  if (!status.ok()) {
    CopyError(status.ToString(), error, error_len);
    delete model;
    return nullptr;
  }
  return model;
}

void ulmfit_spm_free(UlmfitSpm* model) { delete model; }

int64_t ulmfit_spm_encode(const UlmfitSpm* model, const char* text, size_t size, int32_t* ids,
                          int64_t capacity) {
  std::vector<int> out;
  if (!model->processor.Encode(std::string(text, size), &out).ok()) return -1;
  const int64_t n = static_cast<int64_t>(out.size());
  for (int64_t i = 0; i < n && i < capacity; ++i) ids[i] = out[i];
  return n;
}

int64_t ulmfit_spm_decode(const UlmfitSpm* model, const int32_t* ids, size_t count, char* out,
                          int64_t capacity) {
  std::vector<int> in(ids, ids + count);
  std::string text;
  if (!model->processor.Decode(in, &text).ok()) return -1;
  if (capacity > 0) {
    const size_t n = std::min<size_t>(text.size(), static_cast<size_t>(capacity - 1));
    std::memcpy(out, text.data(), n);
    out[n] = '\0';
  }
  return static_cast<int64_t>(text.size());
}

int32_t ulmfit_spm_piece_size(const UlmfitSpm* model) { return model->processor.GetPieceSize(); }

int32_t ulmfit_spm_piece_to_id(const UlmfitSpm* model, const char* piece) {
  return model->processor.PieceToId(piece);
}

const char* ulmfit_spm_id_to_piece(const UlmfitSpm* model, int32_t id) {
  return model->processor.IdToPiece(id).c_str();
}

int32_t ulmfit_spm_unk_id(const UlmfitSpm* model) { return model->processor.unk_id(); }

}  // extern "C"
