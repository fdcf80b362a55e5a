// Atomic writes, whole-file reads and read-only memory maps.
#include "vimo/core/fs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "vimo/core/error.h"

namespace fs = std::filesystem;

namespace vimo::core {

static std::string temp_name(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return path + ".tmp" + std::to_string(::getpid()) + "." + std::to_string(rng() % 1000000);
}

void write_atomic(const std::string& path, const std::function<void(const std::string&)>& fill) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) ensure_writable_dir(parent.string());
  const std::string tmp = temp_name(path);
  try {
    fill(tmp);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_atomic(path, [&](const std::string& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) throw Error("writing '" + path + "' failed (disk full?)");
  });
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read '" + path + "': " + std::strerror(errno));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s;
}

void ensure_writable_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("cannot create directory '" + dir + "': " + (ec ? ec.message() : "a file is in the way") +
                " (choose another location, e.g. run.dir=...)");
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error("directory '" + dir + "' is not writable (fix its permissions or choose another location)");
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error("cannot stat '" + path + "': " + std::strerror(errno));
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<size_t>(st.st_size);
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error("cannot memory-map '" + path + "': " + std::strerror(errno));
    }
    m->data_ = static_cast<unsigned char*>(p);
  }
  ::close(fd);
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace vimo::core
