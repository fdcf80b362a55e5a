// Llama benchmarks against transformers on the CPU: forward+backward tokens/s (training), batch-1
// greedy decoding tokens/s, and the peak-RSS cost of loading a ~1 GB checkpoint.
//   lm_bench [train|decode|rss|all] [--threads N]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "vimo/core/run.h"
#include "vimo/lm/generate.h"
#include "vimo/lm/hf.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace vimo::lm;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// ~27M parameters: width 512, 8 layers, GQA 8/4, vocabulary 8000 (tied).
LlamaConfig bench_config() {
  LlamaConfig c;
  c.vocab_size = 8000;
  c.hidden_size = 512;
  c.intermediate_size = 1376;
  c.num_hidden_layers = 8;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 64;
  c.max_position_embeddings = 2048;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  c.eos_token_id = {};
  return c;
}

json run_python(const std::string& args) {
  const std::string cmd = std::string(VIMO_PYTHON_EXE) + " " + VIMO_SOURCE_DIR + "/bench/lm_bench_hf.py " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return json();
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  const auto at = out.rfind("{");
  if (at == std::string::npos) {
    std::cerr << "reference run failed: " << cmd << "\n" << out << "\n";
    return json();
  }
  return json::parse(out.substr(at));
}

void row(const char* what, double vimo, double ref) {
  std::printf("%-44s vimo %10.1f   transformers %10.1f   ratio %5.2fx\n", what, vimo, ref, ref > 0 ? vimo / ref : 0.0);
}

// Sides alternate for three rounds (vimo, transformers, vimo, ...) so drifts in machine load hit
// both; the medians of the rounds are compared. `ours` measures one vimo round in tokens/s.
void compare_rounds(const char* what, const std::function<double()>& ours, const std::string& python_args) {
  std::vector<double> v, ref;
  for (int r = 1; r <= 3; ++r) {
    v.push_back(ours());
    ref.push_back(run_python(python_args).value("tokens_per_s", 0.0));
    std::printf("  round %d: vimo %.1f, transformers %.1f tokens/s\n", r, v.back(), ref.back());
  }
  std::sort(v.begin(), v.end());
  std::sort(ref.begin(), ref.end());
  row(what, v[v.size() / 2], ref[ref.size() / 2]);
}

void bench_train(int threads, const std::string& dir) {
  const int64_t B = 4, T = 256, iters = 5;
  auto m = load_pretrained(dir);
  m->train();
  auto ids = torch::randint(0, 8000, {B, T + 1}, torch::kLong);
  auto x = ids.narrow(1, 0, T), y = ids.narrow(1, 1, T);
  auto round = [&] {  // median of 5 timed steps after one warm-up step
    std::vector<double> times;
    for (int64_t i = 0; i < iters + 1; ++i) {
      const double t0 = now();
      auto logits = m->forward(x);
      auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
      m->zero_grad();
      loss.backward();
      if (i > 0) times.push_back(now() - t0);
    }
    std::sort(times.begin(), times.end());
    return B * T / times[times.size() / 2];
  };
  compare_rounds("forward+backward tokens/s (27M, B4 x T256)", round,
                 "train --model " + dir + " --threads " + std::to_string(threads) + " --batch 4 --seq 256 --iters 5");
}

void bench_decode(int threads, const std::string& dir) {
  const int64_t n_new = 128;
  auto m = load_pretrained(dir);
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < 16; ++i) prompt.push_back(1 + i * 37 % 7999);
  GenerateOptions o;
  o.greedy = true;
  o.max_new_tokens = n_new;
  generate(m, {prompt}, o);  // warm-up
  auto round = [&] {  // best of 3 generations
    double best = 1e30;
    for (int i = 0; i < 3; ++i) {
      const double t0 = now();
      generate(m, {prompt}, o);
      best = std::min(best, now() - t0);
    }
    return n_new / best;
  };
  compare_rounds("greedy decoding tokens/s (27M, batch 1)", round,
                 "decode --model " + dir + " --threads " + std::to_string(threads) + " --new 128");
}

int64_t status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key) + 1));
  return -1;
}

// Child: load, touch every weight, report how far the peak RSS rose.
int rss_child(const std::string& dir) {
  const int64_t before = status_kb("VmHWM:");
  auto m = load_pretrained(dir);
  double s = 0;
  {
    torch::NoGradGuard g;
    for (auto& p : m->parameters()) s += p.sum().item<double>();
  }
  const int64_t after = status_kb("VmHWM:");
  int64_t bytes = 0;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") bytes += static_cast<int64_t>(e.file_size());
  const double rise = (after - before) * 1024.0;
  std::printf("load %.2f GB checkpoint (%s): peak RSS rose by %.2f GB = %.2fx the file size (checksum %.3g)\n",
              bytes / 1e9, vimo::lm::dtype_name(m->dtype()).c_str(), rise / 1e9, rise / bytes, s);
  return 0;
}

void bench_rss(const char* self) {
  const std::string dir = (fs::temp_directory_path() / "vimo_lm_rss_1gb").string();
  if (!fs::exists(dir + "/model.safetensors")) {
    LlamaConfig c = bench_config();
    c.vocab_size = 32000;
    c.hidden_size = 1024;
    c.intermediate_size = 2816;
    c.num_hidden_layers = 16;
    c.num_attention_heads = 16;
    c.num_key_value_heads = 8;
    c.tie_word_embeddings = false;
    auto m = build_random(c, 0.02, 1);
    save_pretrained(m, dir);
  }
  const pid_t pid = fork();
  if (pid == 0) {
    execl(self, self, "rss-child", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
}
}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "all";
  if (mode == "rss-child" && argc > 2) return rss_child(argv[2]);
  int threads = 0;
  for (int i = 2; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--threads") threads = std::stoi(argv[i + 1]);
  threads = vimo::core::apply_threads(threads);
  std::printf("lm_bench: %d thread(s), both sides float32 on the CPU\n", threads);
  const std::string dir = (fs::temp_directory_path() / "vimo_lm_bench_27m").string();
  if (mode != "rss" && !fs::exists(dir + "/model.safetensors")) {
    auto m = build_random(bench_config(), 0.02, 1);
    save_pretrained(m, dir);
  }
  if (mode == "train" || mode == "all") bench_train(threads, dir);
  if (mode == "decode" || mode == "all") bench_decode(threads, dir);
  if (mode == "rss" || mode == "all") bench_rss(argv[0]);
  return 0;
}
