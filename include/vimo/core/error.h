// vimo's one exception type: a message that names the file, key or tensor at fault and the fix.
#pragma once
#include <stdexcept>
#include <string>

namespace vimo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws vimo::Error when `ok` is false; the message is built only on failure.
#define VIMO_CHECK(ok, msg)                                  \
  do {                                                       \
    if (!(ok)) throw ::vimo::Error(std::string() + msg);     \
  } while (0)

// Process exit codes of the CLI.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 75;  // a signal stopped the run after a checkpoint was saved

}  // namespace vimo
