// Llama benchmarks against transformers on the CPU: forward+backward tokens/s (training), a stage-2
// training step (LoRA on a frozen base, new vocabulary rows, AdamW) against transformers+PEFT, batch-1
// greedy decoding tokens/s, and the peak-RSS cost of loading a ~1 GB checkpoint; and, on a GPU, an
// 8B-shaped model with random bf16 weights: decoding tokens/s and training MFU (vimo alone).
//   lm_bench [train|pretrain|decode|rss|all] [--threads N] [--rounds 3] [--dtype float32|bfloat16 (decode)]
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

#include <torch/cuda.h>

#include "vimo/core/run.h"
#include "vimo/lm/generate.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/lora.h"
#include "vimo/lm/loss.h"

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

void row(const char* what, double vimo, double ref) {
  std::printf("%-44s vimo %10.1f   transformers %10.1f   ratio %5.2fx\n", what, vimo, ref, ref > 0 ? vimo / ref : 0.0);
}

int g_rounds = 3;  // --rounds

// Sides alternate for g_rounds rounds (vimo, transformers, vimo, ...) so drifts in machine load hit
// both; the medians of the rounds are compared. `ours` measures one vimo round in tokens/s.
void compare_rounds(const char* what, const std::function<double()>& ours, const std::string& python_args,
                    const std::string& script = "lm_bench_hf.py") {
  std::vector<double> v, ref;
  for (int r = 1; r <= g_rounds; ++r) {
    v.push_back(ours());
    ref.push_back(run_python(python_args, script).value("tokens_per_s", 0.0));
    std::printf("  round %d: vimo %.1f, transformers %.1f tokens/s\n", r, v.back(), ref.back());
  }
  std::sort(v.begin(), v.end());
  std::sort(ref.begin(), ref.end());
  row(what, v[v.size() / 2], ref[ref.size() / 2]);
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
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
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
// trainable (fp32 tails, their own AdamW group without weight decay), loss on every token. The
// reference (bench/pretrain_bench_hf.py) trains the same with PEFT (trainable_token_indices).
void bench_pretrain(int threads, const std::string& dir) {
  const int64_t B = 4, T = 256, base_vocab = bench_config().vocab_size, new_rows = 512;
  const int iters = 5;
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
  auto targets = shift_labels(ids);
  auto step = [&] {
    auto parts = causal_lm_loss(m->forward(ids), targets);
    (parts.sum / static_cast<double>(parts.targets)).backward();
    opt.step();
    opt.zero_grad(true);
  };
  step();  // warm-up: allocations and optimizer state
  auto round = [&] {
    std::vector<double> t;
    for (int i = 0; i < iters; ++i) {
      const double t0 = now();
      step();
      t.push_back(now() - t0);
    }
    std::sort(t.begin(), t.end());
    return B * T / t[t.size() / 2];
  };
  std::printf("  trainable: %lld parameters (LoRA %zu tensors, %zu new-row tensors)\n", static_cast<long long>(trainable),
              lora.size(), rows.size());
  compare_rounds("stage-2 step tokens/s (LoRA + 512 rows, B4 x T256)", round,
                 "--model " + resized + " --new-rows-from " + std::to_string(base_vocab) + " --threads " +
                     std::to_string(threads) + " --batch 4 --seq 256 --iters 5",
                 "pretrain_bench_hf.py");
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

// Random weights drawn on the device itself (an 8B model is 16 GB in bf16: no host copy).
LlamaForCausalLM random_on_device(const LlamaConfig& c, const torch::Device& d) {
  LlamaForCausalLM m(c, torch::TensorOptions().dtype(torch::kBFloat16).device(d));
  m->to_device(d);
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
  double peak = 989;
  for (int i = 2; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads") threads = std::stoi(argv[i + 1]);
    if (a == "--shape") shape = argv[i + 1];
    if (a == "--dtype") dtype = argv[i + 1];
    if (a == "--rounds") g_rounds = std::max(1, std::stoi(argv[i + 1]));
    if (a == "--device") device = argv[i + 1];
    if (a == "--seq") seq = std::stoll(argv[i + 1]);
    if (a == "--peak-tflops") peak = std::stod(argv[i + 1]);
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
  if (mode == "pretrain" || mode == "all") bench_pretrain(threads, dir);
  if (mode == "decode" || mode == "all") bench_decode(threads, dir, dtype);
  if (mode == "rss" || mode == "all") bench_rss(argv[0]);
  return 0;
}
