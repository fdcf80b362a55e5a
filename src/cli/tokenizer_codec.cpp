// `vimo tokenizer encode|decode`: clip.npy <-> codes.npy, and packed splits -> token caches.
#include <filesystem>
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/run.h"
#include "vimo/core/tensor_io.h"
#include "vimo/tokenizer/tokenizer.h"

namespace vimo::cli {
namespace {

struct CodecArgs {
  std::string run, input, data, codes, out, device = "cpu";
};

Registrar reg(42, [](CLI::App& app) {
  auto* g = group(app, "tokenizer", "stage 1: the RQ-VAE motion tokenizer (train, eval, encode, decode)");
  auto e = std::make_shared<CodecArgs>();
  auto* enc = g->add_subcommand("encode", "motion -> codes: --input clip.npy --out codes.npy, or --data packed/DIR "
                                           "--out tokens/DIR (every split; or --data split.h5 --out x.h5)");
  enc->add_option("--run", e->run, "tokenizer run directory")->required();
  auto* in = enc->add_option("--input", e->input, "clip [T, P, 262] or [T, 262] float .npy");
  auto* data = enc->add_option("--data", e->data,
                               "a packed directory (each {train,val,test}.h5 -> <out>/<split>.h5) or one split .h5");
  in->excludes(data);
  enc->add_option("--out", e->out, "codes.npy [T/4, P, Q] int64; with --data a directory of token caches (or one .h5)")
      ->required();
  enc->add_option("--device", e->device, "cpu | cuda[:N] | auto");
  enc->callback([e] {
    VIMO_CHECK(!e->input.empty() || !e->data.empty(), "give --input clip.npy or --data packed/DIR");
    auto tok = tokenizer::MotionTokenizer::load(e->run, core::resolve_device(e->device));
    if (!e->data.empty()) {
      for (const auto& f : tokenizer::encode_packed(tok, e->data, e->out)) std::cout << "wrote " << f << "\n";
      return;
    }
    VIMO_CHECK(std::filesystem::exists(e->input), "input '" + e->input + "' does not exist");
    auto codes = tok.encode(core::load_npy(e->input));
    core::save_npy(e->out, codes);
    std::cout << "wrote " << e->out << " " << c10::str(codes.sizes()) << "\n";
  });

  auto d = std::make_shared<CodecArgs>();
  auto* dec = g->add_subcommand("decode", "codes.npy [T/4, P, L] -> clip.npy [T, P, 262]");
  dec->add_option("--run", d->run, "tokenizer run directory")->required();
  dec->add_option("--codes", d->codes, "integer codes .npy")->required();
  dec->add_option("--out", d->out, "output clip .npy")->required();
  dec->add_option("--device", d->device, "cpu | cuda[:N] | auto");
  dec->callback([d] {
    auto tok = tokenizer::MotionTokenizer::load(d->run, core::resolve_device(d->device));
    VIMO_CHECK(std::filesystem::exists(d->codes), "codes file '" + d->codes + "' does not exist");
    auto clip = tok.decode(core::load_npy(d->codes));
    core::save_npy(d->out, clip);
    std::cout << "wrote " << d->out << " " << c10::str(clip.sizes()) << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli
