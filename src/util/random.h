// The project's random draws. Everything here gives the same numbers with every standard
// library: std::mt19937_64 and std::seed_seq are fully specified, while std::shuffle and the
// std::*_distribution classes are not (a resumed run, a test or a published table must see
// the same order on any platform).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>
#include <utility>
#include <vector>

namespace ulmfit {

// One step of SplitMix64 (Steele et al. 2014) from `x`: a cheap hash of a seed or index.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// SplitMix64 as a generator: advances `state` and returns the next value.
inline uint64_t NextSplitMix64(uint64_t* state) {
  const uint64_t value = SplitMix64(*state);
  *state += 0x9e3779b97f4a7c15ULL;
  return value;
}

// A Mersenne Twister seeded from the 64-bit `seed` and extra words (a stream id, an epoch), so
// that differently-purposed draws from one seed do not overlap.
inline std::mt19937_64 SeededRng(uint64_t seed, std::initializer_list<uint32_t> words) {
  std::vector<uint32_t> all = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  all.insert(all.end(), words.begin(), words.end());
  std::seed_seq seq(all.begin(), all.end());
  return std::mt19937_64(seq);
}

// 53 random bits into [0, 1).
inline double UnitUniform(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Fisher-Yates from the back, index draws by modulo: the project's shuffle (not std::shuffle).
template <typename T, typename Rng>
void Shuffle(std::vector<T>* values, Rng& rng) {
  for (int64_t i = static_cast<int64_t>(values->size()) - 1; i > 0; --i) {
    std::swap((*values)[i], (*values)[static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1))]);
  }
}

}  // namespace ulmfit
