// The chat session of `vimo chat` (chat_session.h): commands, motion attachments, generation of the
// assistant turn with the oldest exchanges dropped when the context is full, and the HTML page.
#include "vimo/vim/chat_session.h"

#include <filesystem>
#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/features.h"
#include "vimo/motion/features_npy.h"
#include "vimo/motion/render.h"
#include "vimo/vim/dialogue.h"
#include "vimo/vim/tasks.h"

namespace fs = std::filesystem;

namespace vimo::vim {
namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

}  // namespace

ChatSession::ChatSession(VimModel model, ChatOptions o) : model_(std::move(model)), o_(std::move(o)) {
  for (const auto& t : o_.tokens) caches_.push_back(data::TokenCache::open(t));
  fs::create_directories(o_.out_dir);
  if (!o_.system.empty()) conv_.push_back({text::Role::kSystem, {{text::Segment::Kind::kText, o_.system, {}}}});
}

torch::Tensor ChatSession::clip_features(const std::string& id) {
  for (const auto& c : caches_)
    if (auto i = c.find(id)) {
      auto clip = c.clip(*i);
      pending_ = clip.codes.narrow(2, 0, model_.spec().layers).narrow(1, 0, clip.persons).contiguous();
      return model_.decode_motion(pending_);
    }
  throw Error("'" + id + "' is neither a .npy file nor a clip id of " +
              (caches_.empty() ? std::string("a token cache (pass --tokens FILE.h5)") : "the token caches given with --tokens"));
}

std::string ChatSession::attach(const std::string& what) {
  if (what.size() > 4 && what.substr(what.size() - 4) == ".npy") {
    auto f = motion::load_features_npy(what, 0);
    pending_ = model_.encode_motion(f);
    pending_feats_ = f;
  } else {
    pending_feats_ = clip_features(what);
  }
  pending_name_ = what;
  return "attached " + what + " (" + std::to_string(pending_.size(0)) + " token steps, " + std::to_string(pending_.size(1)) +
         (pending_.size(1) == 2 ? " persons)" : " person)");
}

std::string ChatSession::send(const std::string& text) {
  text::Turn user{text::Role::kUser, {}};
  if (!text.empty()) user.segments.push_back({text::Segment::Kind::kText, text, {}});
  ChatEntry ue{"user", text, "", "", {}};
  if (pending_.defined()) {
    user.segments.push_back(motion_segment(pending_, pending_.size(1) == 2 ? text::Segment::Kind::kMotion
                                                                            : text::Segment::Kind::kMotionA,
                                           model_.spec().layers));
    ue.motion_npy = pending_name_;
    ue.joints = motion::features_to_joints(pending_feats_);
  }
  VIMO_CHECK(!user.segments.empty(), "nothing to send: type a message or attach a motion");
  auto conv = conv_;
  conv.push_back(user);
  // The oldest exchanges leave the context when the prompt and the answer would not fit.
  const auto& g = o_.generate;
  const int64_t budget = model_.lm()->config().max_position_embeddings - (g.max_new + g.max_motion_steps * 2 * model_.spec().layers + 2);
  const int64_t dropped = fit_prompt(model_.chat(), conv, budget);
  auto answer = model_.respond({conv}, g).at(0);
  conv.push_back(answer);
  conv_ = std::move(conv);
  dropped_ += dropped;
  pending_ = torch::Tensor(), pending_feats_ = torch::Tensor(), pending_name_.clear();
  entries_.push_back(std::move(ue));

  ChatEntry ae{"assistant", turn_text(answer), "", "", {}};
  std::string out = "assistant: " + (ae.text.empty() ? std::string("(motion)") : ae.text);
  for (const auto& s : answer.segments) {
    const torch::Tensor codes = segment_codes(s, model_.spec().layers);  // [T, P, Q]
    if (!codes.defined()) continue;
    auto feats = model_.decode_motion(codes);  // [4T, P, 262]
    const std::string stem = (fs::path(o_.out_dir) / ("turn" + std::to_string(entries_.size() + 1) + "_motion" +
                                                      std::to_string(++motions_))).string();
    core::save_npy(stem + ".npy", feats);
    ae.motion_npy = stem + ".npy";
    ae.joints = motion::features_to_joints(feats);
    out += "\n  motion: " + ae.motion_npy + " " + c10::str(feats.sizes());
    if (o_.render) {
      motion::RenderOptions ro;
      ro.caption = ae.text.empty() ? "assistant" : ae.text;
      motion::render_gif(ae.joints, stem + ".gif", ro);
      ae.gif = stem + ".gif";
      out += ", " + ae.gif;
    }
    break;  // one motion per turn in the session record
  }
  if (dropped > 0) out += "\n  (" + std::to_string(dropped) + " oldest turns left the context)";
  entries_.push_back(std::move(ae));
  return out;
}

std::string ChatSession::save(const std::string& path) const {
  const std::string p = path.empty() ? (fs::path(o_.out_dir) / "session.json").string() : path;
  core::write_file_atomic(p, text::conversation_to_json(conv_, static_cast<int>(model_.spec().layers)) + "\n");
  return "saved " + p;
}

std::string ChatSession::history() const {
  std::string s;
  int k = 0;
  for (const auto& e : entries_)
    s += "[" + std::to_string(++k) + "] " + e.role + ": " + e.text + (e.motion_npy.empty() ? "" : " [motion " + e.motion_npy + "]") + "\n";
  return s.empty() ? "(empty)" : s.substr(0, s.size() - 1);
}

std::string ChatSession::handle(const std::string& raw) {
  const std::string line = trim(raw);
  if (line.empty()) return "";
  try {
    if (line[0] != '/') return send(line);
    std::istringstream in(line);
    std::string cmd, arg;
    in >> cmd >> arg;
    std::string rest;
    std::getline(in, rest);
    rest = trim(rest);
    if (cmd == "/quit" || cmd == "/exit") {
      done_ = true;
      return "";
    }
    if (cmd == "/help")
      return "commands: /motion FILE.npy|CLIP_ID [text], /save [FILE.json], /reset, /history, /quit; other lines are sent";
    if (cmd == "/reset") {
      conv_.erase(conv_.begin() + (!conv_.empty() && conv_.front().role == text::Role::kSystem ? 1 : 0), conv_.end());
      entries_.clear();
      pending_ = torch::Tensor();
      return "conversation reset";
    }
    if (cmd == "/history") return history();
    if (cmd == "/save") return save(arg);
    if (cmd == "/motion") {
      VIMO_CHECK(!arg.empty(), "/motion needs a features .npy file or a clip id");
      std::string msg = attach(arg);
      return rest.empty() ? msg : msg + "\n" + send(rest);
    }
    return "error: unknown command '" + cmd + "' (/help lists them)";
  } catch (const Error& e) {
    return std::string("error: ") + e.what();
  } catch (const c10::Error& e) {
    return std::string("error: ") + e.what_without_backtrace();
  }
}

void ChatSession::write_html(const std::string& path) const {
  std::string body;
  int viewer = 0;
  for (const auto& e : entries_) {
    body += "<div class=\"turn " + e.role + "\"><b>" + e.role + "</b><p>" + motion::html_escape(e.text) + "</p>";
    if (e.joints.defined()) {
      motion::RenderOptions ro;
      ro.caption = e.text;
      // Each viewer in its own frame: the viewer page is self-contained and keeps its element ids.
      body += "<iframe class=\"viewer\" id=\"viewer" + std::to_string(viewer++) + "\" srcdoc=\"" +
              motion::html_escape(motion::html_viewer(e.joints, ro)) + "\"></iframe>";
    }
    body += "</div>\n";
  }
  core::write_file_atomic(path, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>vimo chat</title>\n<style>"
                                "body{font-family:sans-serif;margin:16px;background:#eee;max-width:900px}"
                                ".turn{background:#fff;border-radius:8px;padding:8px 12px;margin:10px 0}"
                                ".user{border-left:4px solid #4a7bd0}.assistant{border-left:4px solid #d07a2a}"
                                "iframe.viewer{width:860px;height:700px;border:0;max-width:100%}</style></head><body>\n"
                                "<h2>vimo chat</h2>\n" + body + "</body></html>\n");
}

}  // namespace vimo::vim
