// File helpers: atomic writes (temporary name, then rename), whole-file reads, memory maps.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace vimo::core {

// Writes through `fill(tmp_path)` then renames onto `path`; on any exception the temporary is
// removed and `path` is untouched. Parent directories are created.
void write_atomic(const std::string& path, const std::function<void(const std::string& tmp_path)>& fill);
void write_file_atomic(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
// Creates `dir` (and parents) and checks that a file can be written there; throws a clear error if not.
void ensure_writable_dir(const std::string& dir);

// A read-only memory map of a whole file; shared so tensors viewing it keep it alive.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vimo::core
