// A small seeded pseudo-random generator with its own distributions, so that the same seed gives
// the same numbers under libstdc++ and libc++ (std:: distributions differ between them).
// xoshiro256** seeded through splitmix64. Not for cryptography.
#pragma once

#include <cstdint>

#include "engine/base/result.hpp"

namespace anya {

class Prng {
 public:
  explicit Prng(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& word : state_) word = splitmix64(x);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound), without modulo bias (rejects the short last bucket).
  std::uint64_t below(std::uint64_t bound) {
    ANYA_ASSERT(bound > 0);
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    std::uint64_t x = next();
    while (x >= limit) x = next();
    return x % bound;
  }

  // Uniform in [lo, hi], both ends included.
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) {
    ANYA_ASSERT(lo <= hi);
    if (hi - lo == UINT64_MAX) return next();
    return lo + below(hi - lo + 1);
  }

  // True with probability numerator / denominator.
  bool chance(std::uint64_t numerator, std::uint64_t denominator) {
    ANYA_ASSERT(numerator <= denominator);
    ANYA_ASSERT(denominator > 0);
    return below(denominator) < numerator;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::uint64_t state_[4];
};

}  // namespace anya
