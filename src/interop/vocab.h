// fastai vocabularies: itos_*.pkl (fastai v1 Vocab.save: pickle.dump of a list of str, protocol
// 2-4 depending on the Python that wrote it) and plain text with one token a line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace ulmfit {

// A pickled list (or tuple) of str, read with the restricted unpickler (interop/pickle.h).
absl::StatusOr<std::vector<std::string>> ParseVocabPickle(std::string_view bytes,
                                                          const std::string& name);
// One token a line ("\n" or "\r\n"); a final newline ends the last token, it adds none. Tokens
// may repeat (fastai v1 pads its vocab with "xxfake").
absl::StatusOr<std::vector<std::string>> ParseVocabText(std::string_view text,
                                                        const std::string& name);
// Either kind: a pickle when the file starts with the PROTO opcode (0x80), else text.
absl::StatusOr<std::vector<std::string>> ReadVocab(const std::string& path);

// pickle.dump(itos, f, protocol=2): what fastai's load_pretrained reads back.
absl::Status WriteVocabPickle(const std::string& path, const std::vector<std::string>& tokens);

}  // namespace ulmfit
