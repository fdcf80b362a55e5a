// Llama benchmarks against transformers on the CPU: forward+backward tokens/s (training), a stage-2
// training step (LoRA on a frozen base, new vocabulary rows, AdamW) against transformers+PEFT, batch-1
// greedy decoding tokens/s, the fused kernels against the composite ops, and the peak-RSS cost of loading a ~1 GB checkpoint; and, on a GPU, an
// 8B-shaped model with random bf16 weights: decoding tokens/s and training MFU (vimo alone).
//   lm_bench [train|pretrain|kernels|decode|rss|all] [--threads N] [--rounds 3] [--dtype float32|bfloat16 (decode)]
//            [--response 0.5 (pretrain: the fraction of each row that carries the loss)]
//   lm_bench device [--shape 8b|small] [--device cuda|cpu] [--seq 2048] [--peak-tflops 989]
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>

#include "vimo/core/run.h"
#include "vimo/lm/fused.h"
#include "vimo/lm/generate.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/lora.h"
#include "vimo/lm/loss.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace vimo::lm;
namespace lm = vimo::lm;

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

json run_python(const std::string& args, const std::string& script = "lm_bench_hf.py") {
  const std::string cmd = std::string(VIMO_PYTHON_EXE) + " " + VIMO_SOURCE_DIR + "/bench/" + script + " " + args;
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

// A reference process kept alive between rounds: it loads and warms up once, then on each line
// "N" on its stdin runs N steps and answers one JSON line; "quit" ends it. The sides then alternate
// every few steps, so both see the same machine (a shared one drifts by tens of percent per minute).
class RefProcess {
 public:
  explicit RefProcess(const std::string& cmd) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[1]);
      close(out[0]);
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }
  ~RefProcess() {
    if (to_) {
      std::fputs("quit\n", to_);
      std::fclose(to_);
    }
    if (from_) std::fclose(from_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }
  // The next JSON line of the process (skipping anything else it prints); empty when it has died.
  json read() {
    char buf[1 << 16];
    while (from_ && std::fgets(buf, sizeof buf, from_)) {
      const std::string line(buf);
      if (!line.empty() && line[0] == '{') return json::parse(line);
    }
    return json();
  }
  json run(int steps) {
    if (!to_) return json();
    std::fprintf(to_, "%d\n", steps);
    std::fflush(to_);
    return read();
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The medians of both sides with their ratio, then the median of the per-round ratios.
void report_rounds(const std::string& what, const std::vector<double>& ours, const std::vector<double>& ref,
                   const std::vector<double>& ratio) {
  const double v = median(ours), r = median(ref);
  std::printf("%-44s vimo %10.1f   transformers %10.1f   ratio %5.2fx\n", what.c_str(), v, r, r > 0 ? v / r : 0.0);
  std::printf("%-44s median of the %zu round ratios %5.2fx (min %.2fx, max %.2fx)\n", "", ratio.size(), median(ratio),
              *std::min_element(ratio.begin(), ratio.end()), *std::max_element(ratio.begin(), ratio.end()));
}

int g_rounds = 3;  // --rounds

// Sides alternate for g_rounds rounds (vimo, transformers, vimo, ...) so drifts in machine load hit
// both; the medians of the rounds are compared, and so are the rounds pairwise (each vimo round with
// the reference round run right after it; their median ratio is the steadier figure on a shared
// machine). `ours` measures one vimo round in tokens/s.
void compare_rounds(const char* what, const std::function<double()>& ours, const std::string& python_args) {
  std::vector<double> v, ref, pair;
  for (int r = 1; r <= g_rounds; ++r) {
    v.push_back(ours());
    ref.push_back(run_python(python_args).value("tokens_per_s", 0.0));
    pair.push_back(ref.back() > 0 ? v.back() / ref.back() : 0.0);
    std::printf("  round %d: vimo %.1f, transformers %.1f tokens/s (%.2fx)\n", r, v.back(), ref.back(), pair.back());
  }
  report_rounds(what, v, ref, pair);
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Median seconds of `iters` forward + cross-entropy + backward steps (no optimizer) after one warm-up.
double median_train_step_s(LlamaForCausalLM& m, const torch::Tensor& x, const torch::Tensor& y, int iters) {
  const torch::Device d = x.device();
  std::vector<double> times;
  for (int i = 0; i < iters + 1; ++i) {
    sync(d);
    const double t0 = now();
    auto logits = m->forward(x);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32),
                                                     y.reshape({-1}));
    m->zero_grad();
    loss.backward();
    sync(d);
    if (i > 0) times.push_back(now() - t0);
  }
  return median(times);
}

// Best seconds of 3 generations (the caller warms up).
double best_generate_s(LlamaForCausalLM& m, const std::vector<std::vector<int64_t>>& prompts, const GenerateOptions& o) {
  const torch::Device d = m->device();
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    sync(d);
    const double t0 = now();
    generate(m, prompts, o);
    sync(d);
    best = std::min(best, now() - t0);
  }
  return best;
}

void bench_train(int threads, const std::string& dir) {
  const int64_t B = 4, T = 256;
  const int iters = 5;
  auto m = load_pretrained(dir);
  m->train();
  auto ids = torch::randint(0, 8000, {B, T + 1}, torch::kLong);
  auto x = ids.narrow(1, 0, T), y = ids.narrow(1, 1, T);
  auto round = [&] { return B * T / median_train_step_s(m, x, y, iters); };
  compare_rounds("forward+backward tokens/s (27M, B4 x T256)", round,
                 "train --model " + dir + " --threads " + std::to_string(threads) + " --batch 4 --seq 256 --iters 5");
}

// Stage 2's step: the 27M base frozen, LoRA r8/alpha16 (dropout 0) on q/k/v/o, 512 new vocabulary rows
// trainable (fp32 tails, their own AdamW group without weight decay). The loss is on the last
// `response` fraction of each row (the rest is the prompt, label -100), as stage 2 trains on
// responses only; --response 1 puts it on every token. The reference (bench/pretrain_bench_hf.py)
// trains the same with PEFT (trainable_token_indices) and the same labels.
void bench_pretrain(int threads, const std::string& dir, double response) {
  const int64_t B = 4, T = 256, base_vocab = bench_config().vocab_size, new_rows = 512;
  const int iters = 3;
  const std::string resized = dir + "_rows";
  if (!fs::exists(resized + "/model.safetensors")) {
    auto r = load_pretrained(dir);
    r->resize_vocab(base_vocab + new_rows, 7);
    save_pretrained(r, resized);
  }
  auto m = load_pretrained(dir);  // grown the way `vimo pretrain` grows it: the new rows are fp32 tails
  m->resize_vocab(base_vocab + new_rows, 7);
  LoraOptions lo;
  lo.dropout = 0.0;
  apply_lora(m, lo, /*freeze=*/true);
  m->train();
  std::vector<torch::Tensor> lora, rows;
  for (const auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) (p.key().size() > 5 && p.key().substr(p.key().size() - 5) == ".tail" ? rows : lora).push_back(p.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(lora, std::make_unique<torch::optim::AdamWOptions>(1e-3));
  auto ro = std::make_unique<torch::optim::AdamWOptions>(1e-3);
  ro->weight_decay(0.0);
  groups.emplace_back(rows, std::move(ro));
  torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(1e-3));
  int64_t trainable = 0;
  for (auto& t : lora) trainable += t.numel();
  for (auto& t : rows) trainable += t.numel();
  auto ids = torch::randint(0, base_vocab + new_rows, {B, T}, torch::kLong);
  const int64_t prompt = std::clamp<int64_t>(std::llround(T * (1 - response)), 0, T - 1);
  auto labels = ids.clone();
  labels.narrow(1, 0, prompt).fill_(kIgnoreIndex);
  auto targets = shift_labels(labels);
  auto step = [&] {
    auto parts = causal_lm_loss(m, m->hidden(ids), targets);
    (parts.sum / static_cast<double>(parts.targets)).backward();
    opt.step();
    opt.zero_grad(true);
  };
  step();  // warm-up: allocations and optimizer state
  if (const char* trace = std::getenv("VIMO_BENCH_TRACE")) {  // a chrome://tracing file of two steps, per op
    torch::autograd::profiler::RecordProfile guard(trace);
    step();
    step();
  }
  std::printf("  trainable: %lld parameters (LoRA %zu tensors, %zu new-row tensors); loss on the last %lld of %lld tokens per row\n",
              static_cast<long long>(trainable), lora.size(), rows.size(), static_cast<long long>(T - prompt), static_cast<long long>(T));
  RefProcess ref(std::string(VIMO_PYTHON_EXE) + " " + VIMO_SOURCE_DIR + "/bench/pretrain_bench_hf.py --serve --model " + resized +
                 " --new-rows-from " + std::to_string(base_vocab) + " --threads " + std::to_string(threads) +
                 " --batch 4 --seq 256 --prompt " + std::to_string(prompt));
  if (ref.read().is_null()) {
    std::fprintf(stderr, "reference process (bench/pretrain_bench_hf.py --serve) did not start\n");
    return;
  }
  // g_rounds x 4 rounds of `iters` steps per side, alternating; per round the median step of each side.
  std::vector<double> ours, theirs, ratio;
  const int rounds = 4 * g_rounds;
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> t;
    for (int i = 0; i < iters; ++i) {
      const double t0 = now();
      step();
      t.push_back(now() - t0);
    }
    auto j = ref.run(iters);
    if (j.is_null() || !j.contains("step_s")) {
      std::fprintf(stderr, "reference process stopped answering\n");
      return;
    }
    ours.push_back(B * T / median(t));
    theirs.push_back(B * T / median(j["step_s"].get<std::vector<double>>()));
    ratio.push_back(ours.back() / theirs.back());
    std::printf("  round %2d: vimo %7.1f, transformers+PEFT %7.1f tokens/s (%.2fx)\n", r + 1, ours.back(), theirs.back(),
                ratio.back());
  }
  report_rounds("stage-2 step tokens/s (B4 x T256, loss on " + std::to_string(T - prompt) + "/row)", ours, theirs, ratio);
}

void bench_decode(int threads, const std::string& dir, const std::string& dtype) {
  const int64_t n_new = 128;
  LoadOptions lo;
  lo.dtype = dtype_from_name(dtype, "--dtype");
  auto m = load_pretrained(dir, lo);
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < 16; ++i) prompt.push_back(1 + i * 37 % 7999);
  GenerateOptions o;
  o.greedy = true;
  o.max_new_tokens = n_new;
  generate(m, {prompt}, o);  // warm-up
  auto round = [&] { return n_new / best_generate_s(m, {prompt}, o); };
  const std::string what = "greedy decoding tokens/s (27M, batch 1, " + dtype_name(*lo.dtype) + ")";
  compare_rounds(what.c_str(), round,
                 "decode --model " + dir + " --threads " + std::to_string(threads) + " --new 128 --dtype " +
                     dtype_name(*lo.dtype));
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
// ---- device: an 8B-shaped model (Llama-3.1-8B's shapes, random weights) in bf16 ----
LlamaConfig device_config(const std::string& shape) {
  LlamaConfig c;
  c.rope_theta = 500000;
  c.rope_type = "llama3";
  c.rope_factor = 8;
  c.max_position_embeddings = 131072;
  c.rms_norm_eps = 1e-5;
  c.torch_dtype = "bfloat16";
  if (shape == "8b") {  // meta-llama/Llama-3.1-8B config.json
    c.vocab_size = 128256;
    c.hidden_size = 4096;
    c.intermediate_size = 14336;
    c.num_hidden_layers = 32;
    c.num_attention_heads = 32;
    c.num_key_value_heads = 8;
    c.head_dim = 128;
  } else if (shape == "small") {  // the same code path at a size a CPU runs in seconds
    c.vocab_size = 4096;
    c.hidden_size = 256;
    c.intermediate_size = 704;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 2;
    c.head_dim = 32;
  } else {
    throw std::runtime_error("--shape must be 8b or small, got '" + shape + "'");
  }
  return c;
}

// The fused kernels (lm/fused.h, the chunked head loss) against the LibTorch composite ops they
// replace, forward + backward at the bench model's shapes (B4 x T256, width 512, 8/4 heads of 64,
// vocabulary 8512). Best of 20 calls after a warm-up, sides alternating.
void bench_kernels(int threads) {
  std::printf("kernels: fused vs LibTorch composite ops, forward + backward, %d thread(s)\n", threads);
  auto best_ms = [](const std::function<void()>& f) {
    f();
    double best = 1e30;
    for (int i = 0; i < 20; ++i) {
      const double t0 = now();
      f();
      best = std::min(best, now() - t0);
    }
    return best * 1e3;
  };
  auto compare = [&](const char* what, const std::function<void()>& fused, const std::function<void()>& composite) {
    double a = 1e30, b = 1e30;
    for (int r = 0; r < 3; ++r) a = std::min(a, best_ms(fused)), b = std::min(b, best_ms(composite));
    std::printf("%-44s fused %8.3f ms   composite %8.3f ms   speed-up %5.2fx\n", what, a, b, b / a);
  };
  auto x = torch::randn({4, 256, 512}).requires_grad_(true);
  auto w = torch::rand({512}) + 0.5;
  auto gy = torch::randn({4, 256, 512});
  compare("RMSNorm [1024, 512] (frozen gain)", [&] { lm::rms_norm(x, w, 1e-5).backward(gy); },
          [&] { (w * at::rms_norm(x, {512}, std::nullopt, 1e-5)).backward(gy); });
  auto h = torch::randn({4, 256, 512}).requires_grad_(true);
  auto hw = torch::randn({8000, 512}) * 0.02, tail = (torch::randn({512, 512}) * 0.02).requires_grad_(true);
  auto tg = torch::randint(0, 8512, {4, 256}, torch::kLong);
  compare("head loss, 1024 targets x 8512 (tail trains)", [&] { lm::head_loss(h, hw, tail, tg).sum.backward(); },
          [&] {
            auto logits = torch::cat({h.matmul(hw.t()), h.matmul(tail.t())}, -1).reshape({-1, 8512});
            torch::nn::functional::cross_entropy(logits, tg.reshape({-1}),
                                                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                .backward();
          });
}

// Random weights drawn on the device itself (an 8B model is 16 GB in bf16: no host copy).
LlamaForCausalLM random_on_device(const LlamaConfig& c, const torch::Device& d) {
  LlamaForCausalLM m(c, torch::TensorOptions().dtype(torch::kBFloat16).device(d));
  m->to(d);
  torch::NoGradGuard g;
  for (auto& item : m->named_parameters()) {
    if (item.key().find("norm") != std::string::npos) item.value().fill_(1.0);
    else item.value().normal_(0.0, 0.02);
  }
  return m;
}

void bench_device(const std::string& shape, const std::string& device, int64_t seq, double peak_tflops) {
  const torch::Device d(device);
  if (d.is_cuda() && !torch::cuda::is_available()) throw std::runtime_error("--device cuda: no CUDA device is visible");
  const LlamaConfig c = device_config(shape);
  auto m = random_on_device(c, d);
  const double n_params = static_cast<double>(c.num_parameters());
  std::printf("device bench: %s, shape %s (%.1fM parameters), bf16 weights\n", device.c_str(), shape.c_str(), n_params / 1e6);
  // Decoding: batch 1 and 8, prompt 128 random ids, 128 new tokens (no stop id), best of 3 after a warm-up.
  for (int64_t batch : {1, 8}) {
    std::vector<std::vector<int64_t>> prompts(batch);
    auto ids = torch::randint(1, c.vocab_size, {batch, 128}, torch::kLong);
    for (int64_t b = 0; b < batch; ++b) prompts[b] = std::vector<int64_t>(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + 128);
    GenerateOptions o;
    o.greedy = true;
    o.max_new_tokens = 128;
    generate(m, prompts, o);  // warm-up
    const double best = best_generate_s(m, prompts, o);
    std::printf("  greedy decoding, batch %ld, prompt 128 + 128 new: %.1f tokens/s per sequence, %.1f in all\n",
                static_cast<long>(batch), 128 / best, batch * 128 / best);
  }
  // Training: forward + backward (cross-entropy, every weight trainable, no optimizer step) of one
  // sequence of `seq` tokens; MFU counts 6 N + 12 L H T FLOPs per token (PaLM's accounting, H = width,
  // N without the input embedding, which is a lookup).
  m->train();
  auto ids = torch::randint(0, c.vocab_size, {1, seq + 1}, torch::TensorOptions().dtype(torch::kLong).device(d));
  auto x = ids.narrow(1, 0, seq), y = ids.narrow(1, 1, seq);
  const double tok_s = seq / median_train_step_s(m, x, y, 5);
  const double matmul_params = n_params - static_cast<double>(c.vocab_size) * c.hidden_size;
  const double flops_per_token = 6 * matmul_params + 12.0 * c.num_hidden_layers * c.hidden_size * seq;
  std::printf("  forward+backward, 1 x %ld tokens: %.0f tokens/s, %.1f TFLOP/s = MFU %.1f%% of %.0f TFLOP/s\n",
              static_cast<long>(seq), tok_s, tok_s * flops_per_token / 1e12,
              100 * tok_s * flops_per_token / (peak_tflops * 1e12), peak_tflops);
  if (d.is_cuda()) {
    // Peak memory is not exposed by the C++ API without CUDA headers; nvidia-smi beside the run shows it.
    std::printf("  (peak bf16 dense TFLOP/s assumed %.0f: H100/H200 SXM; pass --peak-tflops for other cards)\n", peak_tflops);
  }
}
}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "all";
  if (mode == "rss-child" && argc > 2) return rss_child(argv[2]);
  int threads = 0;
  std::string shape = "8b", device = "cuda", dtype = "float32";
  int64_t seq = 2048;
  double peak = 989, response = 0.5;
  for (int i = 2; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::stoi(argv[i + 1]);
    if (a == "--shape") shape = argv[i + 1];
    if (a == "--dtype") dtype = argv[i + 1];
    if (a == "--rounds") g_rounds = std::max(1, std::stoi(argv[i + 1]));
    if (a == "--device") device = argv[i + 1];
    if (a == "--seq") seq = std::stoll(argv[i + 1]);
    if (a == "--peak-tflops") peak = std::stod(argv[i + 1]);
    if (a == "--response") response = std::clamp(std::stod(argv[i + 1]), 0.0, 1.0);
  }
  threads = vimo::core::apply_threads(threads);
  if (mode == "device") {
    bench_device(shape, device, seq, peak);
    return 0;
  }
  std::printf("lm_bench: %d thread(s), both sides on the CPU (training float32, decoding %s)\n", threads, dtype.c_str());
  const std::string dir = (fs::temp_directory_path() / "vimo_lm_bench_27m").string();
  if (mode != "rss" && !fs::exists(dir + "/model.safetensors")) {
    auto m = build_random(bench_config(), 0.02, 1);
    save_pretrained(m, dir);
  }
  if (mode == "train" || mode == "all") bench_train(threads, dir);
  if (mode == "pretrain" || mode == "all") bench_pretrain(threads, dir, response);
  if (mode == "kernels" || mode == "all") bench_kernels(threads);
  if (mode == "decode" || mode == "all") bench_decode(threads, dir, dtype);
  if (mode == "rss" || mode == "all") bench_rss(argv[0]);
  return 0;
}
