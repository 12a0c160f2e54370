// A fast, stable 64-bit hash for on-disk cache keys and checksums.
//
// Unlike absl::Hash (salted per process), the value depends only on the bytes fed in, so it can
// name files that later runs look up. Not cryptographic: it guards against accidental collisions
// and corruption, not against crafted inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ulmfit {

// Streaming hasher: feeding the same bytes gives the same value however they are split into
// Update() calls.
class Hasher {
 public:
  Hasher() = default;
  void Update(const void* data, size_t size);
  void Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }
  // Feeds a value's 8 little-endian bytes; use it to delimit variable-length fields.
  void UpdateU64(uint64_t value);
  // Length-prefixed string, so ("ab","c") and ("a","bc") differ.
  void UpdateString(std::string_view bytes) {
    UpdateU64(bytes.size());
    Update(bytes);
  }
  uint64_t Finish() const;

 private:
  void Block(uint64_t a, uint64_t b);

  uint64_t state_ = 0x243f6a8885a308d3ULL;
  uint64_t total_ = 0;
  unsigned char buffer_[16] = {};
  size_t buffered_ = 0;
};

uint64_t Hash64(std::string_view bytes);

// 16 lowercase hex digits.
std::string HashHex(uint64_t hash);

}  // namespace ulmfit
