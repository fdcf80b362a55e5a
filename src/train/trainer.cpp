// The training loop: optimizer, schedule, accumulation, precision, validation, checkpoints, resume.
#include "vimo/train/trainer.h"

#include "vimo/train/grad_sync.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/metrics.h"
#include "vimo/core/module_io.h"
#include "vimo/core/process_group.h"
#include "vimo/core/progress.h"
#include "vimo/core/run.h"

namespace fs = std::filesystem;

namespace vimo::train {

constexpr int kStateFormat = 1;

double learning_rate(const OptimSection& o, int64_t step, int64_t total) {
  if (o.warmup_steps > 0 && step < o.warmup_steps) return o.lr * static_cast<double>(step + 1) / o.warmup_steps;
  if (o.schedule == "constant") return o.lr;
  if (o.schedule == "step") {
    double lr = o.lr;
    for (int64_t at : o.decay_at)
      if (step >= at) lr *= o.gamma;
    return lr;
  }
  const double span = std::max<int64_t>(1, total - o.warmup_steps);
  const double t = std::min(1.0, static_cast<double>(step - o.warmup_steps) / span);
  const double lo = o.lr * o.min_lr_ratio;
  return lo + 0.5 * (o.lr - lo) * (1.0 + std::cos(M_PI * t));
}

std::vector<torch::Tensor> Task::trainable() {
  std::vector<torch::Tensor> out;
  for (auto& p : module().parameters())
    if (p.requires_grad()) out.push_back(p);
  return out;
}

std::vector<ParamGroup> Task::param_groups() {
  ParamGroup g;
  g.name = "all";
  g.params = trainable();
  return {g};
}

core::NamedTensors Task::weights() { return core::module_weights(module()); }
void Task::load_weights(const std::string& path) { core::load_module_weights(module(), path); }

std::optional<YAML::Node> saved_run_config(const std::string& run_dir) {
  const fs::path p = fs::path(run_dir) / "config.yaml";
  if (!fs::exists(p)) return std::nullopt;
  core::CheckpointManager cm(run_dir, 0);
  if (!cm.latest()) return std::nullopt;  // nothing trained yet: the current config decides
  try {
    return YAML::LoadFile(p.string());
  } catch (const std::exception& e) {
    throw Error("cannot read '" + p.string() + "': " + e.what() + "; fix it or start over with run.resume=false");
  }
}

namespace {

std::string to_hex(const torch::Tensor& bytes) {
  auto t = bytes.contiguous().to(torch::kUInt8);
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(t.numel() * 2);
  const uint8_t* p = t.data_ptr<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) s += d[p[i] >> 4], s += d[p[i] & 15];
  return s;
}

torch::Tensor from_hex(const std::string& s) {
  VIMO_CHECK(s.size() % 2 == 0, "state.json: RNG state is not valid hex");
  auto t = torch::empty({static_cast<int64_t>(s.size() / 2)}, torch::kUInt8);
  uint8_t* p = t.data_ptr<uint8_t>();
  auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < s.size(); i += 2) p[i / 2] = static_cast<uint8_t>(v(s[i]) << 4 | v(s[i + 1]));
  return t;
}

nlohmann::json rng_state() {
  nlohmann::json j;
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    j["cpu"] = to_hex(gen.get_state());
  }
  if (torch::cuda::is_available()) {
    nlohmann::json cuda = nlohmann::json::array();
    for (size_t i = 0; i < torch::cuda::device_count(); ++i) {
      auto g = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(g.mutex());
      cuda.push_back(to_hex(g.get_state()));
    }
    j["cuda"] = cuda;
  }
  return j;
}

void set_rng_state(const nlohmann::json& j) {
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(from_hex(j.at("cpu").get<std::string>()));
  }
  if (j.contains("cuda") && torch::cuda::is_available()) {
    const auto& cuda = j["cuda"];
    for (size_t i = 0; i < cuda.size() && i < torch::cuda::device_count(); ++i) {
      auto g = at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(i)));
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_state(from_hex(cuda[i].get<std::string>()));
    }
  }
}

// Enables bf16 autocast on CUDA for the guard's lifetime.
struct AutocastGuard {
  bool on;
  explicit AutocastGuard(bool enable) : on(enable) {
    if (!on) return;
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  }
  ~AutocastGuard() {
    if (!on) return;
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    at::autocast::clear_cache();
  }
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// torch::nn::utils::clip_grad_norm_ (2-norm), the same arithmetic, without reading the norm back to
// the host: returns the total norm before clipping as a scalar tensor on the gradients' device.
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad()), norms.push_back(p.grad().norm(2));
  if (grads.empty()) return torch::zeros({}, torch::kFloat64);
  auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  auto coef = torch::clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
  for (auto& g : grads) g.mul_(coef);
  return total;
}

}  // namespace

Trainer::Trainer(TrainerOptions opts, Task& task, std::shared_ptr<ProcessGroup> group)
    : o_(std::move(opts)), task_(task), group_(group ? group : core::process_group_ptr()) {
  best_ = o_.train.best_mode == "min" ? std::numeric_limits<double>::infinity()
                                      : -std::numeric_limits<double>::infinity();
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto pgroups = task_.param_groups();
  for (auto& g : pgroups) params_.insert(params_.end(), g.params.begin(), g.params.end());
  VIMO_CHECK(!params_.empty(), "the model has no trainable parameters");
  sharded_ = o_.dist.shard_optimizer && group_->distributed();
  // ZeRO-1 shares: each parameter, in order, to the rank with the fewest elements so far.
  owner_.assign(params_.size(), group_->rank());
  if (sharded_) {
    std::vector<int64_t> load(static_cast<size_t>(group_->world_size()), 0);
    for (size_t i = 0; i < params_.size(); ++i) {
      const auto r = std::min_element(load.begin(), load.end()) - load.begin();
      owner_[i] = static_cast<int>(r);
      load[static_cast<size_t>(r)] += params_[i].numel();
    }
  }
  size_t at = 0;
  for (auto& g : pgroups) {
    std::vector<torch::Tensor> mine;
    for (auto& p : g.params)
      if (owner_[at++] == group_->rank()) mine.push_back(p);
    if (mine.empty()) continue;
    auto ao = std::make_unique<torch::optim::AdamWOptions>(o_.optim.lr * g.lr_scale);
    ao->betas(std::make_tuple(o_.optim.beta1, o_.optim.beta2)).eps(o_.optim.eps);
    ao->weight_decay(g.weight_decay.value_or(o_.optim.weight_decay));
    lr_scales_.push_back(g.lr_scale);
    groups.emplace_back(mine, std::move(ao));
  }
  VIMO_CHECK(!groups.empty(), "dist.shard_optimizer: rank " + std::to_string(group_->rank()) +
                                  " owns no parameter (more ranks than trainable tensors); turn it off");
  optim_ = std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(o_.optim.lr));
  std::map<const void*, std::string> by_impl;
  for (const auto& np : task_.module().named_parameters(true)) by_impl[np.value().unsafeGetTensorImpl()] = np.key();
  for (size_t i = 0; i < params_.size(); ++i) {
    auto it = by_impl.find(params_[i].unsafeGetTensorImpl());
    names_.push_back(it != by_impl.end() ? it->second : "param_" + std::to_string(i));
  }
  if (o_.train.precision == "bf16" && !o_.device.is_cuda())
    throw Error("train.precision=bf16 needs a CUDA device (run.device is " + o_.device.str() +
                "); use train.precision=fp32 or auto");
  if (group_->distributed()) {  // every rank starts from rank 0's weights and buffers
    torch::NoGradGuard ng;
    for (auto& p : task_.module().parameters()) group_->broadcast(p);
    for (auto& b : task_.module().buffers()) group_->broadcast(b);
    sync_ = std::make_unique<GradientSync>(params_, *group_, o_.dist.bucket_bytes(), o_.dist.overlap);
  }
}

Trainer::~Trainer() = default;

bool Trainer::bf16() const {
  return o_.device.is_cuda() && (o_.train.precision == "bf16" || o_.train.precision == "auto");
}

core::NamedTensors Trainer::optimizer_tensors() {
  using State = torch::optim::AdamWParamState;
  core::NamedTensors out;
  auto& states = optim_->state();
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    State* s = nullptr;
    if (owner_[i] == group_->rank()) {
      auto it = states.find(p.unsafeGetTensorImpl());
      if (it != states.end()) s = static_cast<State*>(it->second.get());
    }
    int64_t step = s ? s->step() : -1;
    torch::Tensor m = s ? s->exp_avg() : torch::Tensor(), v = s ? s->exp_avg_sq() : torch::Tensor();
    if (sharded_) {  // the owner's state (or its absence) to every rank
      auto head = torch::tensor({static_cast<double>(step)}, torch::kFloat64);
      group_->broadcast(head, owner_[i]);
      step = static_cast<int64_t>(head.item<double>());
      if (step < 0) continue;
      if (!s) m = torch::empty_like(p), v = torch::empty_like(p);
      group_->broadcast(m, owner_[i]);
      group_->broadcast(v, owner_[i]);
    }
    if (step < 0 || !group_->is_main()) continue;
    out.emplace_back(names_[i] + ".exp_avg", m);
    out.emplace_back(names_[i] + ".exp_avg_sq", v);
    out.emplace_back(names_[i] + ".step", torch::tensor({step}, torch::kInt64));
  }
  return out;
}

void Trainer::load_optimizer(const std::string& dir) {
  const std::string path = dir + "/optimizer.safetensors";
  if (!fs::exists(path) && fs::exists(dir + "/optimizer.pt")) {  // checkpoints of vimo before 0.2
    VIMO_CHECK(!sharded_, "checkpoint '" + dir + "' keeps its optimizer state in the old optimizer.pt; resume it "
                          "once without dist.shard_optimizer (it is then saved as optimizer.safetensors)");
    torch::serialize::InputArchive ar;
    ar.load_from(dir + "/optimizer.pt", o_.device);
    optim_->load(ar);
    return;
  }
  VIMO_CHECK(fs::exists(path), "checkpoint '" + dir + "' has no optimizer.safetensors; delete that checkpoint "
                               "(the previous one is used) or start over with run.resume=false");
  std::map<std::string, torch::Tensor> t;
  for (auto& [k, v] : core::load_safetensors(path)) t[k] = v;
  auto& states = optim_->state();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (owner_[i] != group_->rank()) continue;
    const auto& p = params_[i];
    const std::string& n = names_[i];
    auto m = t.find(n + ".exp_avg"), v = t.find(n + ".exp_avg_sq"), k = t.find(n + ".step");
    if (m == t.end()) continue;  // no step had updated it yet
    VIMO_CHECK(v != t.end() && k != t.end() && m->second.sizes() == p.sizes() && v->second.sizes() == p.sizes(),
               "'" + path + "': the state of '" + n + "' is incomplete or not of its shape " + c10::str(p.sizes()) +
                   "; the checkpoint belongs to another model: delete it or start over with run.resume=false");
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(k->second.item<int64_t>());
    s->exp_avg(m->second.to(p.device(), p.scalar_type()).clone());
    s->exp_avg_sq(v->second.to(p.device(), p.scalar_type()).clone());
    states[p.unsafeGetTensorImpl()] = std::move(s);
  }
}

void Trainer::sync_owned_params() {
  torch::NoGradGuard ng;
  for (int r = 0; r < group_->world_size(); ++r) {
    std::vector<torch::Tensor> own;
    for (size_t i = 0; i < params_.size(); ++i)
      if (owner_[i] == r) own.push_back(params_[i]);
    core::for_each_bucket(own, o_.dist.bucket_bytes(), [&](torch::Tensor& b) { group_->broadcast(b, r); });
  }
}

std::string Trainer::save(const core::NamedTensors& optimizer_state) {
  core::CheckpointManager cm(o_.run_dir, o_.keep_last);
  return cm.save(step_, [&](const std::string& dir) {
    core::save_safetensors(dir + "/model.safetensors", task_.weights(), task_.weights_metadata());
    core::save_safetensors(dir + "/optimizer.safetensors", optimizer_state,
                           {{"format", "vimo-adamw"}, {"optimizer", "adamw"}});
    nlohmann::json s;
    s["format"] = kStateFormat;
    s["step"] = step_;
    s["total_steps"] = o_.train.steps;
    s["rng"] = rng_state();
    s["data"] = task_.data_state();
    s["best_metric"] = o_.train.best_metric;
    s["best"] = std::isfinite(best_) ? nlohmann::json(best_) : nlohmann::json(nullptr);
    s["best_step"] = best_step_;
    s["last_val"] = last_val_;
    core::write_file_atomic(dir + "/state.json", s.dump(2) + "\n");
  });
}

void Trainer::restore(const std::string& dir) {
  nlohmann::json s;
  try {
    s = nlohmann::json::parse(core::read_file(dir + "/state.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint '" + dir + "/state.json' is corrupt (" + e.what() +
                "); delete that checkpoint or start over with run.resume=false");
  }
  VIMO_CHECK(s.value("format", 0) == kStateFormat,
             "checkpoint '" + dir + "' has state format " + std::to_string(s.value("format", 0)) +
                 ", this vimo reads " + std::to_string(kStateFormat));
  task_.load_weights(dir + "/model.safetensors");
  load_optimizer(dir);
  step_ = s.at("step").get<int64_t>();
  set_rng_state(s.at("rng"));
  task_.load_data_state(s.at("data"));
  if (!s["best"].is_null()) best_ = s["best"].get<double>();
  best_step_ = s.value("best_step", int64_t{-1});
  if (s.contains("last_val")) last_val_ = s["last_val"].get<std::map<std::string, double>>();
  log::info("resumed from ", dir, " at step ", step_);
  // A longer or shorter train.steps than the checkpoint was trained toward stretches the schedule
  // from here on (a cosine restarts from a higher rate when lengthened): said, not refused.
  const int64_t was_total = s.value("total_steps", o_.train.steps);
  if (was_total != o_.train.steps) {
    const double was = learning_rate(o_.optim, step_, was_total), now = learning_rate(o_.optim, step_, o_.train.steps);
    const std::string msg = "train.steps is " + std::to_string(o_.train.steps) + ", the checkpoint was trained toward " +
                            std::to_string(was_total) + ": the learning-rate schedule now spans " +
                            std::to_string(o_.train.steps) + " steps (lr at step " + std::to_string(step_) + ": " +
                            c10::str(now) + ", was " + c10::str(was) + ")";
    if (now != was) log::warn(msg);  // the same function of the step: equal where the total plays no part
    else log::info(msg);
  }
}

void Trainer::run_validation() {
  auto& m = task_.module();
  m.eval();
  std::map<std::string, double> v;
  // Validation (and the samples it may generate) leaves the training RNG as it found it, so the
  // training draws do not depend on the validation cadence, and ranks that skip validation stay in step.
  const auto rng = rng_state();
  {
    torch::NoGradGuard ng;
    AutocastGuard ac(bf16());
    v = task_.validate();
  }
  set_rng_state(rng);
  m.train();
  last_val_ = v;
}

int Trainer::fit() {
  core::install_stop_handlers();
  core::CheckpointManager cm(o_.run_dir, o_.keep_last);
  const bool is_main = group_->is_main();
  const bool dist = group_->distributed();
  if (!o_.resume) {
    std::error_code ec;
    if (is_main)
      for (const char* p : {"checkpoints", "best", "latest"}) fs::remove_all(fs::path(o_.run_dir) / p, ec);
  } else if (auto latest = cm.latest()) {
    restore(*latest);
  }
  // Every rank resumed from the same checkpoint (or none): their steps must agree.
  if (dist && !group_->same_everywhere(static_cast<double>(step_)))
    throw Error("rank " + std::to_string(group_->rank()) + " resumed at step " + std::to_string(step_) +
                " but another rank did not (ranks see different checkpoints in '" + o_.run_dir +
                "'): give every rank the same run.dir on a shared file system");
  std::optional<core::MetricsWriter> metrics;  // rank 0 alone writes metrics.jsonl and event files
  if (is_main) metrics.emplace(o_.run_dir, o_.resume ? step_ : 0);
  const int64_t total = o_.train.steps;
  if (step_ >= total) {
    log::info(o_.tag, ": already trained to step ", step_, " of ", total, "; nothing to do");
    return kExitOk;
  }
  auto& model = task_.module();
  model.train();
  // Per-step values stay tensors on the model's device until a log line needs them: the loop reads
  // nothing back from a GPU except at log, validation and checkpoint steps (and the one small sum per
  // step of a multi-rank run).
  std::map<std::string, torch::Tensor> acc;
  torch::Tensor nonfinite;  // bool: some loss since the last check was NaN or Inf
  int64_t checked_at = step_;
  auto check_finite = [&] {
    if (nonfinite.defined() && nonfinite.item<bool>())
      throw Error("the loss became NaN or Inf between step " + std::to_string(checked_at) + " and step " +
                  std::to_string(step_) + "; lower optim.lr or check the data (nothing after step " +
                  std::to_string(checked_at) + " was saved: resume continues from the last checkpoint)");
    nonfinite = torch::Tensor();
    checked_at = step_;
  };
  auto add = [&](const std::string& k, const torch::Tensor& v) {
    auto x = v.detach().to(torch::kFloat64);
    acc[k] = acc.count(k) ? acc[k] + x : x;
  };
  int64_t acc_n = 0, samples = 0;
  auto t_start = std::chrono::steady_clock::now(), t_log = t_start;
  const int64_t first = step_;
  bool saved_now = false;

  while (step_ < total) {
    const double lr = learning_rate(o_.optim, step_, total);
    auto& pgroups = optim_->param_groups();
    for (size_t gi = 0; gi < pgroups.size(); ++gi)
      static_cast<torch::optim::AdamWOptions&>(pgroups[gi].options()).lr(lr * lr_scales_[gi]);
    for (auto& p : params_) p.mutable_grad() = torch::Tensor();  // every parameter's, also those another rank's optimizer holds
    torch::Tensor loss_sum;  // float64 scalar
    int64_t items = 0;
    for (int micro = 0; micro < o_.train.grad_accum; ++micro) {
      StepOutput out;
      {
        AutocastGuard ac(bf16());
        out = task_.forward(step_);
      }
      VIMO_CHECK(out.loss.defined() && out.loss.numel() == 1, "the task returned no scalar loss");
      auto lv = out.loss.detach().to(torch::kFloat64).reshape({});
      auto bad = torch::isfinite(lv).logical_not();
      nonfinite = nonfinite.defined() ? nonfinite.logical_or(bad) : bad;
      if (sync_ && micro == o_.train.grad_accum - 1) sync_->arm();  // hooks start the buckets from here on
      if (out.items > 0) out.loss.backward();  // a sum: normalized below by the step's items
      else (out.loss / o_.train.grad_accum).backward();
      if (out.items == 0) lv = lv / o_.train.grad_accum;
      loss_sum = loss_sum.defined() ? loss_sum + lv : lv;
      items += out.items;
      samples += out.samples;
      for (const auto& [k, v] : out.logs) add(k, v / o_.train.grad_accum);
    }
    bool stop = false;
    double divisor = 1.0;  // the step's gradient: sum-losses over all targets, mean losses over ranks
    if (dist) {
      // The gradient buckets not started during backward, then one small sum of the step's items, loss
      // and stop flags (with which parameters have gradients), then the buckets' results.
      auto st = torch::tensor({static_cast<double>(items), loss_sum.item<double>(),
                               core::stop_requested() ? 1.0 : 0.0}, torch::kFloat64);
      check_finite();  // the loss was read back anyway
      sync_->finish(st);
      const double* s = st.data_ptr<double>();
      stop = s[2] > 0;
      divisor = items > 0 ? std::max(1.0, s[0]) : group_->world_size();
      loss_sum = st[1].clone();
      if (step_ == first)
        log::info(o_.tag, ": gradients summed in ", sync_->buckets(), " bucket(s) of about ", o_.dist.bucket_mb,
                  " MiB, ", sync_->started_in_backward(), " started during the backward pass (dist.overlap=",
                  o_.dist.overlap ? "true" : "false", ")");
    } else if (items > 0) {
      divisor = static_cast<double>(items);
    }
    if (divisor != 1.0) {
      torch::NoGradGuard ng;
      for (auto& p : params_)
        if (p.grad().defined()) p.mutable_grad().div_(divisor);
      loss_sum = loss_sum / divisor;
    }
    if (o_.optim.grad_clip > 0) add("grad_norm", clip_grad_norm(params_, o_.optim.grad_clip));
    optim_->step();  // sharded: this rank's share of the parameters
    if (sharded_) sync_owned_params();
    task_.after_step(step_);
    ++step_;
    saved_now = false;
    add("loss", loss_sum);
    ++acc_n;

    if (step_ % o_.train.log_every == 0 || step_ == total) {
      const auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - t_log).count();
      const double el = std::chrono::duration<double>(now - t_start).count();
      const double eta = (step_ > first) ? el / (step_ - first) * (total - step_) : 0;
      check_finite();
      std::map<std::string, double> m;
      for (const auto& [k, v] : acc) m[k] = v.item<double>() / acc_n;
      m["lr"] = lr;
      m["samples_per_s"] = dt > 0 ? samples * group_->world_size() / dt : 0;  // every rank has an equal shard
      if (is_main) {
        metrics->write(step_, m, "train");
        log::info(o_.tag, " step ", step_, "/", total, " | loss ", fmt("%.4f", m["loss"]), " | lr ",
                  fmt("%.2e", lr), " | ", fmt("%.1f", m["samples_per_s"]), " samples/s | eta ",
                  core::format_duration(eta));
      }
      acc.clear();
      acc_n = 0;
      samples = 0;
      t_log = now;
    }
    const bool end = step_ == total;
    const bool validate = o_.train.val_every > 0 && (step_ % o_.train.val_every == 0 || end);
    bool improved = false;
    if (validate) check_finite();
    if (validate && (is_main || task_.validates_on_every_rank())) run_validation();  // else: wait at the barrier
    if (validate && is_main) {
      if (!last_val_.empty()) {
        metrics->write(step_, last_val_, "val");
        std::string line = o_.tag + " val step " + std::to_string(step_);
        for (const auto& [k, v] : last_val_) line += " | " + k + " " + fmt("%.4g", v);
        log::info(line);
        auto it = last_val_.find(o_.train.best_metric);
        if (it == last_val_.end())
          throw Error("train.best_metric='" + o_.train.best_metric + "' is not a validation metric of this stage");
        const double v = it->second;
        improved = o_.train.best_mode == "min" ? v < best_ : v > best_;
        if (improved) best_ = v, best_step_ = step_;
      }
    }
    if (dist && validate) {  // rank 0's verdict, so every rank knows a checkpoint is due
      auto f = torch::tensor({improved ? 1.0 : 0.0}, torch::kFloat64);
      group_->broadcast(f, 0);
      improved = f.item<double>() > 0;
    }
    if (!dist) stop = core::stop_requested();
    const bool ckpt = end || stop || improved || step_ % o_.train.ckpt_every == 0;
    if (ckpt) check_finite();  // no checkpoint of weights a NaN loss has touched
    if (ckpt && (is_main || sharded_)) {
      const auto opt_state = optimizer_tensors();  // sharded: every rank sends its share
      if (is_main) {
        const std::string dir = save(opt_state);
        saved_now = true;
        if (improved) cm.mark_best(dir);
      }
    }
    if (dist && (validate || ckpt)) group_->barrier();  // the others wait until rank 0 has written
    if (stop) {
      if (metrics) metrics->flush();
      const std::string why = core::stop_signal() != 0 ? "by signal " + std::to_string(core::stop_signal())
                                                       : std::string("because another rank received a stop signal");
      log::warn(o_.tag, ": stopped ", why, " at step ", step_,
                saved_now || (dist && !is_main) ? "; checkpoint saved, rerun the same command to resume" : "");
      // A rank stopped by another's signal exits as that one does (code 75): through its own handler.
      if (core::stop_signal() == 0) std::raise(SIGTERM);
      return kExitInterrupted;
    }
  }
  if (metrics) metrics->flush();
  if (best_step_ >= 0) log::info(o_.tag, ": best ", o_.train.best_metric, " ", fmt("%.4g", best_), " at step ", best_step_);
  return kExitOk;
}

}  // namespace vimo::train
