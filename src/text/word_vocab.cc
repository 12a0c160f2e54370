#include "text/word_vocab.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "text/rules.h"
#include "text/unicode.h"

namespace ulmfit {
namespace {

constexpr std::string_view kHeaderStem = "# ulmfit word vocabulary";

// Characters that an escaped line never holds raw: whitespace, controls and the BOM.
bool NeedsCodeEscape(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xFEFF || unicode::IsSpace(cp);
}

std::string Escape(std::string_view token) {
  if (token.empty()) return "\\e";
  std::string out;
  out.reserve(token.size() + 2);
  for (size_t i = 0; i < token.size();) {
    const size_t start = i;
    const char32_t cp = unicode::DecodeAt(token, &i);
    switch (cp) {
      case '\\': out.append("\\\\"); break;
      case ' ': out.append("\\s"); break;
      case '\n': out.append("\\n"); break;
      case '\t': out.append("\\t"); break;
      case '\r': out.append("\\r"); break;
      default:
        if (NeedsCodeEscape(cp)) {
          absl::StrAppendFormat(&out, "\\u%04X", static_cast<uint32_t>(cp));
        } else {
          out.append(token.substr(start, i - start));
        }
    }
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Undoes Escape for one line; errors say what is wrong (the caller adds file and line).
absl::StatusOr<std::string> Unescape(std::string_view line) {
  if (line.empty()) return absl::InvalidArgumentError("empty line (write an empty token as \\e)");
  if (line == "\\e") return std::string();
  if (!unicode::IsValidUtf8(line)) return absl::InvalidArgumentError("invalid UTF-8");
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size();) {
    const size_t start = i;
    const char32_t cp = unicode::DecodeAt(line, &i);
    if (NeedsCodeEscape(cp)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "raw whitespace or control character U+%04X (escape it, e.g. \\s for a space)",
          static_cast<uint32_t>(cp)));
    }
    if (cp != '\\') {
      out.append(line.substr(start, i - start));
      continue;
    }
    const char kind = i < line.size() ? line[i++] : '\0';
    switch (kind) {
      case '\\': out.push_back('\\'); break;
      case 's': out.push_back(' '); break;
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case 'r': out.push_back('\r'); break;
      case 'u': {
        uint32_t value = 0;
        for (int k = 0; k < 4; ++k) {
          const int digit = i < line.size() ? HexValue(line[i++]) : -1;
          if (digit < 0) return absl::InvalidArgumentError("\\u needs four hex digits");
          value = value * 16 + digit;
        }
        if (value >= 0xD800 && value <= 0xDFFF) {
          return absl::InvalidArgumentError("\\u names a UTF-16 surrogate");
        }
        unicode::AppendUtf8(value, &out);
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unknown escape \\", std::string(1, kind),
                         " (known: \\\\ \\s \\n \\t \\r \\uXXXX, and \\e alone for an empty token)"));
    }
  }
  return out;
}

}  // namespace

bool LooksLikeWordVocabulary(std::string_view bytes) {
  return bytes.substr(0, kHeaderStem.size()) == kHeaderStem;
}

absl::StatusOr<WordVocab> WordVocab::Create(std::vector<std::string> itos,
                                            const std::string& path) {
  if (itos.size() < 2 || itos[0] != kSpecialTokens[kUnkId] || itos[1] != kSpecialTokens[kPadId]) {
    const std::string first = itos.empty() ? "nothing" : "\"" + Escape(itos[0]) + "\"";
    const std::string second = itos.size() < 2 ? "nothing" : "\"" + Escape(itos[1]) + "\"";
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": word vocabulary starts with ", first, ", ", second,
        "; ulmfit needs xxunk at id 0 and xxpad at id 1 (fastai v1 and v2 vocabularies have "
        "them there)"));
  }
  WordVocab vocab;
  vocab.stoi_.reserve(itos.size());
  for (size_t id = 0; id < itos.size(); ++id) {
    if (!unicode::IsValidUtf8(itos[id])) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": token ", id, " of the word vocabulary is not valid UTF-8"));
    }
    vocab.stoi_.try_emplace(itos[id], static_cast<int>(id));
  }
  for (std::string_view special : kSpecialTokens) {
    if (!vocab.stoi_.contains(absl::string_view(special.data(), special.size()))) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": word vocabulary lacks the special token ", std::string(special),
          " (ulmfit needs all nine: xxunk xxpad xxbos xxeos xxfld xxmaj xxup xxrep xxwrep)"));
    }
  }
  vocab.itos_ = std::move(itos);
  return vocab;
}

absl::StatusOr<WordVocab> WordVocab::Parse(std::string_view bytes, const std::string& path) {
  size_t end = bytes.find('\n');
  std::string_view header = bytes.substr(0, end);
  if (!header.empty() && header.back() == '\r') header.remove_suffix(1);
  if (header != kWordVocabHeader) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: not a word vocabulary this ulmfit reads: the first line must be \"",
        std::string(kWordVocabHeader), "\""));
  }
  std::vector<std::string> itos;
  int64_t line_number = 1;
  size_t start = end == std::string_view::npos ? bytes.size() : end + 1;
  while (start < bytes.size()) {
    ++line_number;
    end = bytes.find('\n', start);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = bytes.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    absl::StatusOr<std::string> token = Unescape(line);
    if (!token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": ", token.status().message()));
    }
    itos.push_back(*std::move(token));
    start = end + 1;
  }
  return Create(std::move(itos), path);
}

std::string WordVocab::Serialize() const {
  std::string out(kWordVocabHeader);
  out.push_back('\n');
  for (const std::string& token : itos_) out.append(Escape(token)).push_back('\n');
  return out;
}

int WordVocab::id(std::string_view token) const {
  auto it = stoi_.find(absl::string_view(token.data(), token.size()));
  return it == stoi_.end() ? -1 : it->second;
}

}  // namespace ulmfit
