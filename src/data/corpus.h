// Reading raw text corpora: one document per line of a file, or one per file in a folder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/enums.h"
#include "util/status.h"

namespace ulmfit {

// Reads documents: format kLines = one document per non-blank line of a file (of every file,
// for a folder); kFiles = one document per file in a folder (recursively, sorted by path,
// skipping hidden files and folders); kAuto = files for a folder, lines for a file. ".gz" files
// are decompressed in both modes. CRLF line endings are accepted (the \r is dropped); blank and
// whitespace-only lines/files are skipped. max_documents > 0 stops after that many documents.
// Errors name the file (and line) and say what to do: missing path, unreadable file, corrupt
// gzip, invalid UTF-8, or no documents at all.
absl::StatusOr<std::vector<std::string>> ReadDocuments(const std::string& path,
                                                       CorpusFormat format = CorpusFormat::kAuto,
                                                       int64_t max_documents = 0);

// Checks UTF-8 validity (no overlong forms, surrogates or code points above U+10FFFF);
// returns the byte offset of the first invalid sequence or -1.
int64_t FindInvalidUtf8(std::string_view text);

}  // namespace ulmfit
