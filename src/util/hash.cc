#include "util/hash.h"

#include <algorithm>
#include <cstring>

namespace ulmfit {
namespace {

// Constants from wyhash; the 64x64->128 multiply-fold mixes each 16-byte block at ~several GB/s.
constexpr uint64_t kSecret0 = 0xa0761d6478bd642fULL;
constexpr uint64_t kSecret1 = 0xe7037ed1a0b428dbULL;
constexpr uint64_t kSecret2 = 0x8ebc6af09c88c6e3ULL;

inline uint64_t Mum(uint64_t a, uint64_t b) {
  __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

inline uint64_t Load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only (x86-64, aarch64), which is all libtorch CPU targets here
}

}  // namespace

void Hasher::Block(uint64_t a, uint64_t b) { state_ = Mum(a ^ kSecret0 ^ state_, b ^ kSecret1); }

void Hasher::Update(const void* data, size_t size) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += size;
  if (buffered_ > 0) {
    size_t take = std::min(size, sizeof(buffer_) - buffered_);
    std::memcpy(buffer_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    size -= take;
    if (buffered_ < sizeof(buffer_)) return;
    Block(Load64(buffer_), Load64(buffer_ + 8));
    buffered_ = 0;
  }
  while (size >= 16) {
    Block(Load64(p), Load64(p + 8));
    p += 16;
    size -= 16;
  }
  std::memcpy(buffer_, p, size);
  buffered_ = size;
}

void Hasher::UpdateU64(uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  Update(bytes, 8);
}

uint64_t Hasher::Finish() const {
  unsigned char tail[16] = {};
  std::memcpy(tail, buffer_, buffered_);
  uint64_t h = Mum(Load64(tail) ^ kSecret0 ^ state_, Load64(tail + 8) ^ kSecret1);
  // The total length goes in last so that trailing zero bytes change the value.
  return Mum(h ^ kSecret2, total_ ^ kSecret1);
}

uint64_t Hash64(std::string_view bytes) {
  Hasher hasher;
  hasher.Update(bytes);
  return hasher.Finish();
}

std::string HashHex(uint64_t hash) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[i] = kDigits[hash & 15];
    hash >>= 4;
  }
  return out;
}

}  // namespace ulmfit
