// SentencePiece through the shim library (see text/spm_shim/spm_shim.h for why).
// Use these instead of including SentencePiece headers anywhere in ulmfit_core.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

struct UlmfitSpm;

namespace ulmfit {

// Trains a SentencePiece model from command-line style arguments
// ("--input=... --model_prefix=... --vocab_size=...").
absl::Status SpmTrain(const std::string& args);
// Trains from in-memory sentences (no --input in `args`); returns the serialized model proto.
absl::StatusOr<std::string> SpmTrainFromSentences(const std::string& args,
                                                  const std::vector<std::string>& sentences);

// A loaded SentencePiece model. Encode/Decode are safe to call from several threads.
class SpmModel {
 public:
  // `serialized` is the content of a .model file; `source` names it in errors.
  static absl::StatusOr<std::shared_ptr<SpmModel>> FromSerialized(const std::string& serialized,
                                                                 const std::string& source);
  ~SpmModel();
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;

  std::vector<int32_t> Encode(std::string_view text) const;
  std::string Decode(const std::vector<int32_t>& ids) const;
  int32_t PieceSize() const;
  int32_t PieceToId(const std::string& piece) const;
  std::string IdToPiece(int32_t id) const;
  int32_t UnkId() const;

 private:
  explicit SpmModel(UlmfitSpm* handle) : handle_(handle) {}
  UlmfitSpm* handle_;
};

}  // namespace ulmfit
