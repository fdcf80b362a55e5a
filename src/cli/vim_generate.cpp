// `vimo generate --run DIR --task t2m|m2t|a2b|b2a|reaction|t2m_single|m2t_single|group ...`: one request
// to a trained LM run; motions written as .npy features (and rendered), captions printed.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "command.h"
#include "sampling_flags.h"
#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"
#include "vimo/core/schemas.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/bvh.h"
#include "vimo/motion/features.h"
#include "vimo/motion/features_npy.h"
#include "vimo/motion/render.h"
#include "vimo/vim/group.h"
#include "vimo/vim/model.h"

namespace fs = std::filesystem;

namespace vimo::cli {
namespace {

struct GenArgs {
  std::string run, task = "t2m", text, motion, motion_a, motion_b, out, render, bvh, device = "cpu";
  int num = 1, threads = 0, tmpl = 0;
  vim::GroupOptions group;
  std::vector<std::string> pair_texts;
  SamplingFlags sampling;
};

// `bvh`: the prefix of one BVH file per person (bvh_for); empty: none.
void write_motion(const torch::Tensor& m, const std::string& out, const std::string& render, const std::string& title,
                  const std::string& bvh) {
  core::save_npy(out, m);
  std::cout << "wrote " << out << " " << c10::str(m.sizes()) << "\n";
  if (!bvh.empty())
    for (const auto& p : motion::export_features_bvh(bvh, m))
      std::cout << "wrote " << p << "\n";
  if (render.empty()) return;
  motion::RenderOptions ro;
  ro.caption = title;
  motion::render_file(motion::features_to_joints(m), render, ro);
  std::cout << "rendered " << render << "\n";
}

std::string numbered(const std::string& path, int i, int n) {
  if (n == 1 || path.empty()) return path;
  const fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "_" + std::to_string(i) + p.extension().string())).string();
}

// --bvh of sample i: a prefix is numbered like --out; a folder takes the (numbered) --out file's stem.
std::string bvh_for(const GenArgs& a, int i) {
  if (a.bvh.empty()) return a.bvh;
  const bool folder = a.bvh.back() == '/' || fs::is_directory(a.bvh);
  return motion::bvh_prefix(folder ? a.bvh : numbered(a.bvh, i, a.num), fs::path(numbered(a.out, i, a.num)).stem().string());
}

// `vimo config check configs/templates/*.yaml` checks instruction templates.
const bool templates_check = [] {
  core::file_check_registry()["templates"] = [](const std::string& path) {
    const auto t = vim::Templates::load(path);
    int lists = 0;
    for (vim::Task k : {vim::Task::kT2M, vim::Task::kM2T, vim::Task::kA2B, vim::Task::kB2A, vim::Task::kT2MSingle, vim::Task::kM2TSingle})
      lists += t.has(k, false) + ((k == vim::Task::kA2B || k == vim::Task::kB2A) && t.has(k, true));
    return std::to_string(lists) + " phrasing lists";
  };
  return true;
}();

Registrar reg(70, [](CLI::App& app) {
  auto a = std::make_shared<GenArgs>();
  auto* c = app.add_subcommand("generate", "generate with a trained LM run: t2m (--text), m2t (--motion), reactions (--motion-a/--motion-b)");
  c->add_option("--run", a->run, "LM run directory (made by `vimo pretrain`)")->required();
  c->add_option("--task", a->task, "t2m | m2t | a2b | b2a | reaction (a2b with --motion-a, b2a with --motion-b) | t2m_single | m2t_single | "
                "editing | reasoning | story (stage-3 runs: --text and --motion as one user turn) | "
                "group (--persons N: the pair from --text, then each further person as a reaction)");
  c->add_option("--text", a->text, "the caption (t2m; optional for reactions)");
  c->add_option("--motion", a->motion, "m2t: features .npy [T, 2, 262] (m2t_single: [T, 262])");
  c->add_option("--motion-a", a->motion_a, "reaction: person A's features .npy [T, 262]; B is generated");
  c->add_option("--motion-b", a->motion_b, "reaction: person B's features .npy [T, 262]; A is generated");
  c->add_option("--out", a->out, "output features .npy (motion tasks); with --num N, _0.._N-1 are appended");
  c->add_option("--render", a->render, "also render the motion (.gif, .mp4 or .html)");
  c->add_option("--bvh", a->bvh, "also write one BVH file per person: PREFIX_A.bvh, PREFIX_B.bvh, ... (with --num N, "
                "PREFIX_i_A.bvh; a folder: <--out stem>_A.bvh)");
  c->add_option("--num", a->num, "samples generated as one batch")->check(CLI::Range(1, 256));
  c->add_option("--template", a->tmpl, "index of the instruction phrasing");
  c->add_option("--persons", a->group.persons, "group: people in the scene (2..--max-persons)");
  c->add_option("--max-persons", a->group.max_persons, "group: the largest group accepted");
  c->add_option("--layout", a->group.layout, "group: star (each further person reacts to person 1) | chain (to the one before)");
  c->add_option("--anchor", a->group.anchors, "group: person k's anchor (0-based), one per person after the first pair");
  c->add_option("--pair-text", a->pair_texts, "group: the interaction of person 3, 4, ... with its anchor (the last repeats; "
                "default: --text)");
  c->add_option("--tries", a->group.tries, "group: samples per person, the least overlapping placement kept")->check(CLI::Range(1, 64));
  c->add_option("--max-penetration", a->group.max_penetration, "group: overlap ratio a placement may have");
  c->add_flag("!--no-foot-cleanup", a->group.foot_cleanup, "group: keep the decoded feet as they are (default: hold planted feet)");
  a->sampling.add(c);
  c->add_option("--device", a->device, "cpu | cuda[:N] | auto");
  c->add_option("--threads", a->threads, "CPU threads; 0 = all cores");
  c->callback([a] {
    core::apply_threads(a->threads);
    std::string task = a->task;
    if (task == "reaction") {
      VIMO_CHECK(a->motion_a.empty() != a->motion_b.empty(), "--task reaction needs exactly one of --motion-a / --motion-b");
      task = a->motion_a.empty() ? "b2a" : "a2b";
    }
    if (task == "group") {
      // The group size, text and anchors are checked by vim::generate_group.
      VIMO_CHECK(!a->out.empty(), "--task group writes a motion: give --out group.npy");
      auto model = vim::VimModel::load_run(a->run, core::resolve_device(a->device));
      const auto d = vim::run_generate_section(a->run);
      auto g = a->sampling.resolve(d);
      a->group.texts = {a->text};
      for (const auto& t : a->pair_texts) a->group.texts.push_back(t);
      for (int i = 0; i < a->num; ++i) {
        g.seed = static_cast<uint64_t>(a->sampling.seed.value_or(d.seed)) + static_cast<uint64_t>(i);
        const auto t0 = std::chrono::steady_clock::now();
        auto res = vim::generate_group(model, a->group, g);
        log::info("composed ", a->group.persons, " persons in ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                  " s (first pair overlap ", res.pair_penetration, "; feet held over ", res.foot_cleanup.spans,
                  " contact spans, largest move ", res.foot_cleanup.max_shift_m, " m)");
        for (const auto& p : res.placements)
          std::cout << "person " << p.person + 1 << ": reacts to person " << p.anchor + 1 << ", sample " << p.sample << ", turned "
                    << p.angle_deg << " deg, overlap " << p.penetration << (p.accepted ? "" : " (none clear)") << "\n";
        write_motion(res.features, numbered(a->out, i, a->num), numbered(a->render, i, a->num), a->text,
                     bvh_for(*a, i));
      }
      return;
    }
    const bool conversational = task == "editing" || task == "reasoning" || task == "story";
    const vim::Task t = conversational ? vim::Task::kT2M : vim::parse_task(task, "--task (or editing, reasoning, story)");
    auto model = vim::VimModel::load_run(a->run, core::resolve_device(a->device));
    if (!conversational) model.check_task(t);
    const auto d = vim::run_generate_section(a->run);
    auto g = a->sampling.resolve(d);
    const int64_t Q = model.spec().layers;
    if (conversational) {  // one user turn (text and the optional --motion) answered freely, as in `vimo chat`
      VIMO_CHECK(!a->text.empty(), "--task " + task + " needs --text \"...\" (e.g. \"make it slower\")");
      VIMO_CHECK(task == "story" || !a->motion.empty(), "--task " + task + " needs --motion source.npy (the scene to " +
                                                            (task == "editing" ? "edit" : "reason about") + ")");
      text::Turn user{text::Role::kUser, {{text::Segment::Kind::kText, a->text, {}}}};
      if (!a->motion.empty()) {
        auto codes = model.encode_motion(motion::load_features_npy(a->motion, 2));
        user.segments.push_back(vim::motion_segment(codes, text::Segment::Kind::kMotion, model.spec().layers));
      }
      for (int i = 0; i < a->num; ++i) {
        g.seed = static_cast<uint64_t>(a->sampling.seed.value_or(d.seed)) + static_cast<uint64_t>(i);
        const auto turn = model.respond({{user}}, g).at(0);
        bool wrote = false;
        for (const auto& sg : turn.segments) {
          if (sg.kind == text::Segment::Kind::kText) {
            std::cout << sg.text << "\n";
            continue;
          }
          const torch::Tensor codes = vim::segment_codes(sg, Q);  // [T, P, Q]
          if (wrote || !codes.defined()) continue;
          VIMO_CHECK(!a->out.empty(), "the answer holds a motion: give --out motion.npy to keep it");
          write_motion(model.decode_motion(codes), numbered(a->out, i, a->num),
                       numbered(a->render, i, a->num), a->text, bvh_for(*a, i));
          wrote = true;
        }
      }
      return;
    }
    vim::Request r;
    r.task = t;
    r.caption = a->text;
    r.tmpl = a->tmpl;
    torch::Tensor input;  // raw features of the given person(s)
    if (t == vim::Task::kT2M || t == vim::Task::kT2MSingle) {
      VIMO_CHECK(!a->text.empty(), "--task " + task + " needs --text \"...\"");
    } else if (t == vim::Task::kM2T || t == vim::Task::kM2TSingle) {
      VIMO_CHECK(!a->motion.empty(), "--task " + task + " needs --motion clip.npy");
      input = motion::load_features_npy(a->motion, t == vim::Task::kM2T ? 2 : 1);
      r.codes = model.encode_motion(input);
      if (r.codes.size(1) == 1) r.codes = torch::cat({r.codes, torch::zeros_like(r.codes)}, 1);
    } else {
      const bool a2b = t == vim::Task::kA2B;
      const std::string& path = a2b ? a->motion_a : a->motion_b;
      VIMO_CHECK(!path.empty(), std::string("--task ") + task + " needs " + (a2b ? "--motion-a" : "--motion-b") + " actor.npy");
      input = motion::load_features_npy(path, 1);
      auto codes = model.encode_motion(input);  // [T', 1, Q]
      auto other = torch::zeros_like(codes);
      r.codes = a2b ? torch::cat({codes, other}, 1) : torch::cat({other, codes}, 1);
    }
    std::vector<vim::Request> reqs(static_cast<size_t>(a->num), r);
    const auto t0 = std::chrono::steady_clock::now();
    auto res = model.generate(reqs, g);
    int64_t steps = 0;
    for (const auto& x : res) steps += x.codes.defined() ? x.codes.size(0) : 0;
    log::info("generated ", a->num, " sample(s) in ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
              " s", vim::response_motion(t) ? " (" + std::to_string(steps) + " motion token steps, " +
                                                  (model.spec().depth_head() ? "depth head" : "flat") + ")"
                                            : std::string());
    for (int i = 0; i < a->num; ++i) {
      const auto& x = res[static_cast<size_t>(i)];
      if (!vim::response_motion(t)) {
        std::cout << x.text << "\n";
        continue;
      }
      VIMO_CHECK(!a->out.empty(), "--task " + task + " writes a motion: give --out motion.npy");
      VIMO_CHECK(x.codes.size(0) > 0, "sample " + std::to_string(i) + ": the model closed the motion block at once (no frame)");
      auto gen = model.decode_motion(x.codes.narrow(2, 0, Q));  // [T, P, 262]
      if (input.defined()) {  // the pair: the given actor and the generated reactor
        const int64_t T = std::min(gen.size(0), input.size(0));
        auto actor = input.narrow(0, 0, T), react = gen.narrow(0, 0, T);
        gen = t == vim::Task::kA2B ? torch::cat({actor, react}, 1) : torch::cat({react, actor}, 1);
      }
      write_motion(gen, numbered(a->out, i, a->num), numbered(a->render, i, a->num), a->text.empty() ? task : a->text,
                   bvh_for(*a, i));
    }
  });
});

}  // namespace
}  // namespace vimo::cli
