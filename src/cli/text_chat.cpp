// `vimo text vocab` and `vimo text chat render|parse`: the unified vocabulary and chat template.
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/text/chat.h"

namespace vimo::cli {
namespace {

struct Opts {
  std::string tokenizer, arch, out, vocab, input;
  int k = 0, q = 0;
  bool gen = false;
  std::vector<int> ids;
};

Registrar reg(41, [](CLI::App& app) {
  auto* g = group(app, "text", "text tokenizers, the unified vocabulary and the chat template");

  auto v = std::make_shared<Opts>();
  auto* vc = g->add_subcommand("vocab", "lay out the unified text+motion vocabulary and write vocab.json");
  vc->add_option("--tokenizer", v->tokenizer, "text tokenizer: tokenizer.json or SentencePiece .model")->required();
  vc->add_option("--motion-arch", v->arch, "tokenizer run dir or JSON with codebook_size and num_quantizers");
  vc->add_option("--codebook-size", v->k, "K, codes per quantizer (instead of --motion-arch)");
  vc->add_option("--num-quantizers", v->q, "Q, residual quantizers (instead of --motion-arch)");
  vc->add_option("--out", v->out, "vocab.json to write")->required();
  vc->callback([v] {
    VIMO_CHECK(!v->arch.empty() || (v->k > 0 && v->q > 0), "give --motion-arch, or --codebook-size and --num-quantizers");
    const text::MotionLayout layout = v->arch.empty() ? text::MotionLayout{v->k, v->q} : text::read_motion_layout(v->arch);
    const auto tok = text::load_text_tokenizer(v->tokenizer);
    const auto vocab = text::UnifiedVocab::build(*tok, layout);
    vocab.save(v->out);
    std::cout << "wrote " << v->out << ": " << vocab.text_size() << " text ids, motion ids " << vocab.motion_base()
              << ".." << vocab.size() - 1 << ", chat format " << vocab.chat_format() << "\n";
  });

  auto* chat = g->add_subcommand("chat", "render conversations to ids, parse ids back");
  chat->require_subcommand(1);
  auto r = std::make_shared<Opts>();
  auto* re = chat->add_subcommand("render", "print the ids and the loss mask (two lines) of a conversation JSON");
  re->add_option("--vocab", r->vocab, "vocab.json")->required();
  re->add_option("--tokenizer", r->tokenizer, "text tokenizer (default: the one named in vocab.json)");
  re->add_option("--input", r->input, "conversation JSON file")->required();
  re->add_flag("--generation-prompt", r->gen, "end with an open assistant header");
  re->callback([r] {
    const auto vocab = text::UnifiedVocab::load(r->vocab);
    const auto tok = text::load_text_tokenizer(r->tokenizer.empty() ? vocab.text_tokenizer() : r->tokenizer);
    const text::ChatTemplate tpl(vocab, *tok);
    const auto out = tpl.render(text::conversation_from_json(core::read_file(r->input), vocab.layout().num_quantizers), r->gen);
    std::string ids, mask;
    for (size_t i = 0; i < out.ids.size(); ++i) {
      ids += (i ? " " : "") + std::to_string(out.ids[i]);
      mask += (i ? " " : "") + std::to_string(out.loss_mask[i]);
    }
    std::cout << ids << "\n" << mask << "\n";
  });
  auto p = std::make_shared<Opts>();
  auto* pa = chat->add_subcommand("parse", "print the conversation JSON of IDS");
  pa->add_option("--vocab", p->vocab, "vocab.json")->required();
  pa->add_option("--tokenizer", p->tokenizer, "text tokenizer (default: the one named in vocab.json)");
  pa->add_option("ids", p->ids, "ids")->required();
  pa->callback([p] {
    const auto vocab = text::UnifiedVocab::load(p->vocab);
    const auto tok = text::load_text_tokenizer(p->tokenizer.empty() ? vocab.text_tokenizer() : p->tokenizer);
    const text::ChatTemplate tpl(vocab, *tok);
    std::cout << text::conversation_to_json(tpl.parse(p->ids), vocab.layout().num_quantizers) << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli
