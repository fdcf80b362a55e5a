// Encode throughput of the tokenizer.json BPE backend, single thread: text_bpe_bench TOKENIZER TEXTS.jsonl [PASSES].
// Run through bench/text_bpe_bench.py, which measures HF `tokenizers` on the same input alongside.
#include <chrono>
#include <cstdio>
#include <fstream>

#include "vimo/text/hf_bpe.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER.json TEXTS.jsonl [PASSES]\n", argv[0]);
    return 2;
  }
  const int passes = argc > 3 ? std::atoi(argv[3]) : 3;
  std::vector<std::string> texts;
  std::ifstream f(argv[2]);
  size_t chars = 0;
  for (std::string line; std::getline(f, line);) {
    texts.push_back(nlohmann::json::parse(line).get<std::string>());
    for (unsigned char c : texts.back()) chars += (c & 0xC0) != 0x80;  // code points
  }
  vimo::text::HfBpeTokenizer tok(argv[1]);
  double cold = 0, best = 1e30;
  size_t tokens = 0;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    size_t n = 0;
    for (const auto& s : texts) n += tok.encode(s).size();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (p == 0) cold = sec;
    best = std::min(best, sec);
    tokens = n;
  }
  std::printf("{\"chars\": %zu, \"tokens\": %zu, \"cold_s\": %.6f, \"warm_s\": %.6f}\n", chars, tokens, cold, best);
  return 0;
}
