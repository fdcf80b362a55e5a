// `vimo chat --run DIR`: a conversation with a trained LM run in the terminal, or played from a script
// of user lines (--script), with every motion saved and rendered and the session as one HTML page.
#include <fstream>
#include <iostream>

#include "command.h"
#include "sampling_flags.h"
#include "vimo/core/error.h"
#include "vimo/core/run.h"
#include "vimo/vim/chat_session.h"

namespace vimo::cli {
namespace {

struct ChatArgs {
  std::string run, script, html, out = "chat", device = "cpu", system;
  std::vector<std::string> tokens;
  int threads = 0;
  SamplingFlags sampling;
  std::optional<int64_t> max_new;
  bool no_render = false;
};

Registrar reg(71, [](CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  auto* c = app.add_subcommand("chat", "talk with a trained LM run: text and motions in, text and motions out (/help inside)");
  c->add_option("--run", a->run, "LM run directory (`vimo instruct` or `vimo pretrain`)")->required();
  c->add_option("--script", a->script, "play these user lines (one per line, commands included) instead of reading the terminal")
      ->check(CLI::ExistingFile);
  c->add_option("--html", a->html, "write the whole session as one self-contained page (a motion viewer per motion turn)");
  c->add_option("--out", a->out, "directory of the motions (.npy), GIFs and saved sessions");
  c->add_option("--tokens", a->tokens, "token cache files (.h5) whose clip ids /motion accepts");
  c->add_option("--system", a->system, "system prompt");
  a->sampling.add(c);
  c->add_option("--max-new", a->max_new, "most text tokens per answer (default: the run's generate.max_new)");
  c->add_flag("--no-render", a->no_render, "do not render GIFs");
  c->add_option("--device", a->device, "cpu | cuda[:N] | auto");
  c->add_option("--threads", a->threads, "CPU threads; 0 = all cores");
  c->callback([a] {
    core::apply_threads(a->threads);
    auto model = vim::VimModel::load_run(a->run, core::resolve_device(a->device));
    const auto d = vim::run_generate_section(a->run);
    vim::ChatOptions o;
    o.out_dir = a->out;
    o.tokens = a->tokens;
    o.render = !a->no_render;
    o.system = a->system;
    o.generate = a->sampling.resolve(d);
    if (a->max_new) o.generate.max_new = *a->max_new;
    vim::ChatSession session(model, o);
    std::ifstream script;
    if (!a->script.empty()) script.open(a->script);
    std::istream& in = a->script.empty() ? std::cin : script;
    const bool echo = !a->script.empty();
    if (a->script.empty()) std::cout << "vimo chat with " << a->run << " (/help for commands, /quit to end)\n";
    std::string line;
    while (!session.done() && !core::stop_requested()) {
      if (a->script.empty()) std::cout << "you> " << std::flush;
      if (!std::getline(in, line)) break;
      if (echo && !line.empty()) std::cout << "user: " << line << "\n";
      const std::string out = session.handle(line);
      if (!out.empty()) std::cout << out << "\n";
    }
    if (!a->html.empty()) {
      session.write_html(a->html);
      std::cout << "wrote " << a->html << "\n";
    }
  });
});

}  // namespace
}  // namespace vimo::cli
