// The one seed scheme: counter-based draws. Item `index` of stream `stream` under `seed` gets its own
// 64-bit seed, so any batch or sample can be rebuilt from its index alone (exact resume, any order).
#pragma once
#include <cstdint>
#include <random>

namespace vimo::core {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// Seed of item `index` of `stream` (a constant naming the use, e.g. the ASCII of "WINDOW").
inline uint64_t derive_seed(int64_t seed, uint64_t stream, int64_t index) {
  return splitmix64(splitmix64(static_cast<uint64_t>(seed) ^ stream) + static_cast<uint64_t>(index));
}
// Uniform integer in [0, n) from one 64-bit draw (multiply-shift; the same on every platform).
inline uint64_t below(std::mt19937_64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}
// Uniform double in [0, 1) with 53 random bits.
inline double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace vimo::core
