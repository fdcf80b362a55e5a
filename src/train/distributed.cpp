// c10d process groups behind core::ProcessGroup: launch environment, TCPStore rendezvous, Gloo and
// NCCL backends, collective failures turned into named errors, and the bucketed gradient sums that
// overlap the backward pass (train/grad_sync.h).
// (LibTorch's CMake package defines USE_C10D_GLOO and USE_C10D_NCCL for every unit; ensured here too.)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#if defined(VIMO_WITH_NCCL) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL 1
#endif
#include "vimo/train/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef VIMO_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/log_setup.h"
#include "vimo/train/grad_sync.h"

namespace vimo::train {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(const char* name, int lo, int hi) {
  const char* v = env(name);
  VIMO_CHECK(v, std::string("environment variable ") + name + " is not set");
  try {
    size_t used = 0;
    const long x = std::stol(v, &used);
    VIMO_CHECK(used == std::string(v).size() && x >= lo && x <= hi, "");
    return static_cast<int>(x);
  } catch (const std::exception&) {
    throw Error(std::string("environment variable ") + name + "='" + v + "' is not a whole number in [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]; fix the launch command");
  }
}

// The first line of a c10d/Gloo message (they carry long stack traces).
std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  std::string out = s.substr(0, nl);
  if (out.size() > 300) out = out.substr(0, 300) + "...";
  return out;
}

class C10dGroup : public core::ProcessGroup {
 public:
  C10dGroup(c10::intrusive_ptr<c10d::Backend> pg, const LaunchEnv& e, std::chrono::milliseconds timeout,
            std::string backend, torch::Device device)
      : pg_(std::move(pg)), e_(e), timeout_(timeout), backend_(std::move(backend)), device_(device) {}

  int rank() const override { return e_.rank; }
  int world_size() const override { return e_.world_size; }
  int local_rank() const override { return e_.local_rank; }

  void sum(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::SUM, "sum"); }
  void max(torch::Tensor& t) override { reduce(t, c10d::ReduceOp::MAX, "max"); }

  void broadcast(torch::Tensor& t, int root) override {
    auto c = staged(t);
    std::vector<at::Tensor> v{c};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = timeout_;
    wait("broadcast", [&] { return pg_->broadcast(v, o); });
    if (!c.is_same(t)) t.copy_(c);
  }

  void barrier() override {
    c10d::BarrierOptions o;
    o.timeout = timeout_;
    wait("barrier", [&] { return pg_->barrier(o); });
  }

  std::unique_ptr<core::PendingCollective> sum_async(torch::Tensor& t) override {
    auto c = staged(t);
    std::vector<at::Tensor> v{c};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp(c10d::ReduceOp::SUM);
    o.timeout = timeout_;
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = pg_->allreduce(v, o);
    } catch (const std::exception& ex) {
      throw failure("gradient sum", ex);
    }
    return std::make_unique<Pending>(*this, std::move(work), c, t);
  }

 private:
  // NCCL reduces CUDA tensors only: a host tensor (flags, counts) goes through the rank's device.
  torch::Tensor staged(const torch::Tensor& t) const {
    if (backend_ == "nccl" && !t.is_cuda()) return t.to(device_);
    return t.contiguous();
  }

  void reduce(torch::Tensor& t, c10d::ReduceOp::RedOpType op, const char* what) {
    auto c = staged(t);
    std::vector<at::Tensor> v{c};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp(op);
    o.timeout = timeout_;
    wait(what, [&] { return pg_->allreduce(v, o); });
    if (!c.is_same(t)) t.copy_(c);
  }

  // A started collective: wait() waits for it and copies a staged result back.
  class Pending : public core::PendingCollective {
   public:
    Pending(C10dGroup& g, c10::intrusive_ptr<c10d::Work> w, torch::Tensor staged, torch::Tensor target)
        : g_(g), w_(std::move(w)), staged_(std::move(staged)), target_(std::move(target)) {}
    void wait() override {
      if (!w_) return;
      auto w = std::move(w_);
      g_.wait("gradient sum", [&] { return w; });
      if (!staged_.is_same(target_)) target_.copy_(staged_);
    }

   private:
    C10dGroup& g_;
    c10::intrusive_ptr<c10d::Work> w_;
    torch::Tensor staged_, target_;
  };

  template <class F> void wait(const char* what, F&& start) {
    try {
      auto work = start();
      work->wait(timeout_);
    } catch (const std::exception& ex) {
      throw failure(what, ex);
    }
  }

  Error failure(const char* what, const std::exception& ex) const {
    return Error("rank " + std::to_string(e_.rank) + " of " + std::to_string(e_.world_size) + ": the " + what +
                 " over " + backend_ + " failed (" + first_line(ex.what()) +
                 "): another rank exited, was killed or did not answer within dist.timeout_s=" +
                 std::to_string(timeout_.count() / 1000) +
                 "; see that rank's log, then rerun the same command: it resumes from the last complete checkpoint");
  }

  c10::intrusive_ptr<c10d::Backend> pg_;
  LaunchEnv e_;
  std::chrono::milliseconds timeout_;
  std::string backend_;
  torch::Device device_;
};

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets.
  std::string first;
  int depth = 0;
  for (char ch : nodelist) {
    if (ch == '[') ++depth;
    if (ch == ']') --depth;
    if (ch == ',' && depth == 0) break;
    first += ch;
  }
  const auto lb = first.find('[');
  if (lb == std::string::npos) return first;
  const std::string prefix = first.substr(0, lb);
  std::string range = first.substr(lb + 1);
  if (!range.empty() && range.back() == ']') range.pop_back();
  const std::string head = range.substr(0, range.find_first_of(",-"));
  VIMO_CHECK(!head.empty(), "SLURM_JOB_NODELIST='" + nodelist + "' has an empty host range; set MASTER_ADDR");
  return prefix + head;
}

LaunchEnv launch_env() {
  LaunchEnv e;
  if (env("WORLD_SIZE") || env("RANK")) {
    e.source = "torchrun";
    e.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
    e.rank = env_int("RANK", 0, e.world_size - 1);
    e.local_rank = env("LOCAL_RANK") ? env_int("LOCAL_RANK", 0, e.world_size - 1) : 0;
    if (e.world_size > 1) {
      VIMO_CHECK(env("MASTER_ADDR"), "WORLD_SIZE=" + std::to_string(e.world_size) +
                                         " but MASTER_ADDR is not set; launch with torchrun or set MASTER_ADDR and MASTER_PORT");
      e.master_addr = env("MASTER_ADDR");
      e.master_port = env_int("MASTER_PORT", 1, 65535);
    }
    const char* agent = env("TORCHELASTIC_USE_AGENT_STORE");
    e.agent_store = agent && (std::string(agent) == "True" || std::string(agent) == "true" || std::string(agent) == "1");
  } else if (env("SLURM_PROCID") && env("SLURM_NTASKS")) {
    e.source = "slurm";
    e.world_size = env_int("SLURM_NTASKS", 1, 1 << 20);
    e.rank = env_int("SLURM_PROCID", 0, e.world_size - 1);
    e.local_rank = env("SLURM_LOCALID") ? env_int("SLURM_LOCALID", 0, e.world_size - 1) : 0;
    if (env("MASTER_ADDR")) e.master_addr = env("MASTER_ADDR");
    else if (env("SLURM_JOB_NODELIST")) e.master_addr = first_slurm_host(env("SLURM_JOB_NODELIST"));
    else if (e.world_size > 1)
      throw Error("a Slurm launch without SLURM_JOB_NODELIST or MASTER_ADDR: set MASTER_ADDR to the first node");
    if (env("MASTER_PORT")) e.master_port = env_int("MASTER_PORT", 1, 65535);
  }
  return e;
}

std::string backend_name(const DistSection& d, const torch::Device& device) {
  return d.backend != "auto" ? d.backend : device.is_cuda() ? "nccl" : "gloo";
}

std::shared_ptr<core::ProcessGroup> init_distributed(const DistSection& d, const LaunchEnv& e,
                                                     const torch::Device& device) {
  if (e.world_size <= 1) {
    core::set_process_group(nullptr);
    return core::process_group_ptr();
  }
  const std::string backend = backend_name(d, device);
  if (backend == "nccl" && !device.is_cuda())
    throw Error("dist.backend=nccl needs run.device on CUDA (it is " + device.str() + "); use dist.backend=gloo");
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(d.timeout_s * 1000));
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(e.master_port);
    so.isServer = e.rank == 0 && !e.agent_store;
    so.numWorkers = e.agent_store ? std::nullopt : std::optional<size_t>(e.world_size);
    so.waitWorkers = !e.agent_store;  // every rank counts itself in, the server waits for all
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(e.master_addr, so);
    store = c10::make_intrusive<c10d::PrefixStore>("vimo/pg", tcp);
  } catch (const std::exception& ex) {
    throw Error("rank " + std::to_string(e.rank) + ": rendezvous at " + e.master_addr + ":" +
                std::to_string(e.master_port) + " failed (" + first_line(ex.what()) +
                "); check MASTER_ADDR/MASTER_PORT and that every rank was started (dist.timeout_s=" +
                std::to_string(static_cast<int64_t>(d.timeout_s)) + ")");
  }
  c10::intrusive_ptr<c10d::Backend> pg;
  try {
    if (backend == "gloo") {
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, e.rank, e.world_size, o);
    } else {
#ifdef VIMO_WITH_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, e.rank, e.world_size, o);
#else
      throw Error("this vimo was built without NCCL (no nccl.h at build time); use dist.backend=gloo");
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& ex) {
    throw Error("rank " + std::to_string(e.rank) + ": creating the " + backend + " process group failed (" +
                first_line(ex.what()) + ")");
  }
  auto g = std::make_shared<C10dGroup>(pg, e, timeout, backend, device);
  core::set_process_group(g);
  log::set_rank(e.rank, e.world_size);
  return g;
}

namespace {

struct GradHook : torch::autograd::PostAccumulateGradHook {
  GradHook(GradientSync* s, size_t i) : sync(s), index(i) {}
  void operator()(const torch::autograd::Variable& /*param*/) override { sync->on_grad(index); }
  GradientSync* sync;
  size_t index;
};

}  // namespace

GradientSync::GradientSync(std::vector<torch::Tensor> params, core::ProcessGroup& group, int64_t bucket_bytes,
                           bool overlap)
    : params_(std::move(params)), group_(group) {
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  marked_.assign(n, 0);
  const std::vector<torch::Tensor> reversed(params_.rbegin(), params_.rend());
  for (const auto& [a, b] : core::bucket_ranges(reversed, bucket_bytes)) {
    auto& bucket = buckets_.emplace_back();
    for (size_t j = a; j < b; ++j) {
      const size_t k = n - 1 - j;
      bucket.members.push_back(k);
      bucket.numel += params_[k].numel();
      bucket_of_[k] = buckets_.size() - 1;
    }
  }
  if (overlap) {
    for (size_t k = 0; k < n; ++k) torch::autograd::impl::set_post_acc_grad_hooks(params_[k], std::make_unique<GradHook>(this, k));
    hooked_ = true;
  }
}

GradientSync::~GradientSync() {
  if (hooked_)
    for (auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

std::vector<std::vector<size_t>> GradientSync::layout() const {
  std::vector<std::vector<size_t>> out;
  for (const auto& b : buckets_) out.push_back(b.members);
  return out;
}

void GradientSync::arm() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_ = true;
  started_now_ = 0;
}

void GradientSync::on_grad(size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!armed_ || marked_[i]) return;
  marked_[i] = 1;
  auto& b = buckets_[bucket_of_[i]];
  if (++b.ready < b.members.size()) return;
  while (next_ < buckets_.size() && buckets_[next_].ready == buckets_[next_].members.size()) {
    start(buckets_[next_++]);
    ++started_now_;
  }
}

void GradientSync::start(Bucket& b) {
  torch::NoGradGuard ng;
  b.flat = torch::empty({b.numel}, params_[b.members.front()].options().requires_grad(false));
  int64_t off = 0;
  for (size_t i : b.members) {
    const auto& p = params_[i];
    auto slot = b.flat.narrow(0, off, p.numel());
    if (p.grad().defined()) slot.copy_(p.grad().reshape({-1}));
    else slot.zero_();  // no gradient on this rank: it adds nothing to the sum
    off += p.numel();
  }
  b.work = group_.sum_async(b.flat);
}

void GradientSync::finish(torch::Tensor& stats) {
  torch::NoGradGuard ng;
  const int64_t k = stats.numel();
  const size_t n = params_.size();
  auto all = torch::zeros({k + static_cast<int64_t>(n)}, torch::kFloat64);
  {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
    all.narrow(0, 0, k).copy_(stats.reshape({-1}));
    double* has = all.data_ptr<double>() + k;
    for (size_t i = 0; i < n; ++i) has[i] = params_[i].grad().defined() ? 1.0 : 0.0;
    while (next_ < buckets_.size()) start(buckets_[next_++]);
  }
  group_.sum(all);  // after every bucket, on every rank
  stats.copy_(all.narrow(0, 0, k).view_as(stats));
  const double* has = all.data_ptr<double>() + k;
  for (auto& b : buckets_) {
    b.work->wait();
    int64_t off = 0;
    for (size_t i : b.members) {
      auto& p = params_[i];
      auto sum = b.flat.narrow(0, off, p.numel()).view_as(p);
      off += p.numel();
      if (has[i] == 0) continue;  // no rank's: stays without a gradient
      if (p.grad().defined()) p.mutable_grad().copy_(sum);
      else p.mutable_grad() = sum.clone();
    }
    b.flat = torch::Tensor();
    b.work.reset();
    b.ready = 0;
  }
  std::fill(marked_.begin(), marked_.end(), 0);
  next_ = 0;
  started_in_backward_ = started_now_;
  started_now_ = 0;
}

}  // namespace vimo::train
