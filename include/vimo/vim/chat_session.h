// A conversation with a trained LM run (`vimo chat`): user turns of text with an optional attached
// motion (a features .npy or a clip id of a token cache), assistant turns of text and motion, each
// motion saved (.npy) and rendered (GIF), commands, and the whole session as one HTML page.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "vimo/data/token_cache.h"
#include "vimo/vim/model.h"

namespace vimo::vim {

struct ChatOptions {
  std::string out_dir = "chat";       // motions, GIFs and saved sessions
  std::vector<std::string> tokens;    // token cache files (.h5) whose clip ids /motion accepts
  GenerateSettings generate;
  bool render = true;                 // a GIF per motion turn
  std::string system;                 // system prompt; empty: none
};

struct ChatEntry {
  std::string role;         // "user" | "assistant"
  std::string text;
  std::string motion_npy;   // features [T, P, 262] written for this turn ("" without motion)
  std::string gif;
  torch::Tensor joints;     // [T, P, 22, 3] for the HTML viewer (undefined without motion)
};

class ChatSession {
 public:
  ChatSession(VimModel model, ChatOptions o);
  // One input line: a command or the text of a user turn. Returns the lines to print. A bad command or
  // file is answered with an "error: ..." line; the session keeps what it had.
  //   /motion FILE.npy | CLIP_ID [text]   attach a motion to the next user turn (with text: send now)
  //   /save [FILE.json]   the conversation as chat JSON (`vimo text chat render` reads it)
  //   /reset              forget the conversation    /history   print it
  //   /help               the commands               /quit      end the session
  std::string handle(const std::string& line);
  bool done() const { return done_; }
  const std::vector<ChatEntry>& entries() const { return entries_; }
  int64_t dropped_turns() const { return dropped_; }
  // The session as one self-contained page: every turn, a motion viewer per motion turn.
  void write_html(const std::string& path) const;

 private:
  std::string attach(const std::string& what);
  std::string send(const std::string& text);
  std::string save(const std::string& path) const;
  std::string history() const;
  torch::Tensor clip_features(const std::string& id);  // [T, 2, 262] decoded from a cache's codes
  VimModel model_;
  ChatOptions o_;
  std::vector<data::TokenCache> caches_;
  text::Conversation conv_;
  std::vector<ChatEntry> entries_;
  torch::Tensor pending_;     // codes [T', P, layers] of the attached motion
  torch::Tensor pending_feats_;
  std::string pending_name_;
  int64_t dropped_ = 0;
  int motions_ = 0;
  bool done_ = false;
};

}  // namespace vimo::vim
