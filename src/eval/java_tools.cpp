// The Java side of caption evaluation: finding java and pycocoevalcap's jars, METEOR 1.5 over its
// -stdio protocol, and the Stanford PTBTokenizer run as pycocoevalcap runs it.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "coco_text.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/eval/captions.h"
#include "vimo/eval/ptb_tokenizer.h"

extern char** environ;

namespace vimo::eval {
namespace {

namespace fs = std::filesystem;

// A child process with a pipe to its stdin (optional) and one from its stdout; stderr is discarded.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& cwd, bool with_stdin) {
    int out[2], in[2] = {-1, -1};
    VIMO_CHECK(pipe2(out, O_CLOEXEC) == 0 && (!with_stdin || pipe2(in, O_CLOEXEC) == 0),
               "cannot create a pipe for java");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (with_stdin) {
      posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    } else {
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (with_stdin) close(in[0]);
    if (rc != 0) {
      close(out[0]);
      if (with_stdin) close(in[1]);
      throw Error("cannot start '" + argv[0] + "': " + std::strerror(rc));
    }
    from_ = fdopen(out[0], "r");
    if (with_stdin) to_ = fdopen(in[1], "w");
  }
  ~Child() { finish(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void write_line(const std::string& s) {
    VIMO_CHECK(to_ && std::fputs((s + "\n").c_str(), to_) >= 0 && std::fflush(to_) == 0,
               "java stopped reading its input (did it fail to start? try the command by hand)");
  }
  std::string read_line(const char* what) {
    std::string s;
    for (int c; (c = std::fgetc(from_)) != EOF && c != '\n';) s += static_cast<char>(c);
    VIMO_CHECK(!s.empty() || !std::feof(from_), std::string("java ended before answering (") + what + ")");
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  }
  std::string read_all() {
    std::string s;
    char buf[65536];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, from_)) > 0;) s.append(buf, n);
    return s;
  }
  int finish() {
    if (to_) std::fclose(to_), to_ = nullptr;
    if (from_) std::fclose(from_), from_ = nullptr;
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  int status_ = 0;
};

// SIGPIPE would kill vimo if java exits while we write; the failed write is reported instead.
struct IgnoreSigpipe {
  struct sigaction old {};
  IgnoreSigpipe() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
  }
  ~IgnoreSigpipe() { sigaction(SIGPIPE, &old, nullptr); }
};

double parse_score(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  VIMO_CHECK(end != s.c_str() && *end == '\0', "METEOR jar answered '" + s + "' where a score belongs");
  return v;
}

std::string existing(const std::string& p, const std::string& what) {
  VIMO_CHECK(fs::is_regular_file(p), what + " '" + p + "' does not exist");
  return fs::absolute(p).string();
}

}  // namespace

std::string find_java() {
  if (const char* home = std::getenv("JAVA_HOME");
      home && *home && access((std::string(home) + "/bin/java").c_str(), X_OK) == 0)
    return std::string(home) + "/bin/java";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && access((d + "/java").c_str(), X_OK) == 0) return d + "/java";
  return "";
}

std::string find_pycocoevalcap_jar(const std::string& explicit_path, const char* env, const std::string& relative) {
  if (!explicit_path.empty()) return existing(explicit_path, "jar");
  if (const char* e = std::getenv(env); e && *e) return existing(e, std::string("jar from ") + env);
  const char* venv = std::getenv("VIMO_VENV");
  const char* home = std::getenv("HOME");
  const fs::path root = venv && *venv ? fs::path(venv) : fs::path(home ? home : "") / ".cache/vimo/venv";
  std::error_code ec;
  for (const auto& lib : fs::directory_iterator(root / "lib", ec)) {
    const auto p = lib.path() / "site-packages/pycocoevalcap" / relative;
    if (lib.path().filename().string().rfind("python", 0) == 0 && fs::is_regular_file(p)) return p.string();
  }
  return "";
}

double meteor(const std::vector<TokenizedSet>& sets, const std::string& jar) {
  const std::string java = find_java();
  VIMO_CHECK(!java.empty(), "METEOR needs java on PATH (install default-jre-headless, scripts/setup.sh)");
  VIMO_CHECK(!sets.empty(), "meteor: no caption sets to score");
  const std::string path = existing(jar, "METEOR jar");
  IgnoreSigpipe guard;
  // As pycocoevalcap: run from the jar's folder (it finds its paraphrase data there).
  Child c({java, "-jar", "-Xmx2G", path, "-", "-", "-stdio", "-l", "en", "-norm"},
          fs::path(path).parent_path().string(), true);
  std::string eval = "EVAL";
  for (const auto& s : sets) {
    std::string hyp = s.hyp;
    for (size_t p; (p = hyp.find("|||")) != std::string::npos;) hyp.erase(p, 3);
    for (size_t p = 0; (p = hyp.find("  ", p)) != std::string::npos; ++p) hyp.replace(p, 2, " ");
    std::string line = "SCORE";
    for (const auto& r : s.refs) line += " ||| " + r;
    c.write_line(line + " ||| " + hyp);
    eval += " ||| " + c.read_line("METEOR statistics");
  }
  c.write_line(eval);
  for (size_t i = 0; i < sets.size(); ++i) parse_score(c.read_line("METEOR segment score"));
  const double score = parse_score(c.read_line("METEOR corpus score"));
  c.finish();
  return score;
}

std::vector<std::string> coco_tokenize_stanford(const std::vector<std::string>& captions, const std::string& jar) {
  if (captions.empty()) return {};
  const std::string java = find_java();
  VIMO_CHECK(!java.empty(), "--tokenizer stanford needs java on PATH (install default-jre-headless, scripts/setup.sh)");
  std::string tmp = (fs::temp_directory_path() / "vimo_ptb_XXXXXX").string();
  const int fd = mkstemp(tmp.data());
  VIMO_CHECK(fd >= 0,
             "cannot create a temporary file for the Stanford tokenizer in " + fs::temp_directory_path().string());
  close(fd);
  std::string out;
  try {
    core::write_file_atomic(tmp, join_captions(captions));
    Child c({java, "-cp", existing(jar, "CoreNLP jar"), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines",
             "-lowerCase", tmp},
            "", false);
    out = c.read_all();
    VIMO_CHECK(c.finish() == 0, "the Stanford PTBTokenizer failed (java -cp " + jar + " ...)");
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  std::remove(tmp.c_str());
  std::vector<std::vector<std::string>> lines;
  std::stringstream ss(out);
  for (std::string line; std::getline(ss, line);) {
    lines.emplace_back();
    std::stringstream ws(line);
    for (std::string w; std::getline(ws, w, ' ');)
      if (!w.empty() && w != "\r") lines.back().push_back(w);
  }
  while (lines.size() < captions.size()) lines.emplace_back();  // trailing empty captions print nothing
  return drop_punctuation(lines, captions.size());
}

}  // namespace vimo::eval
