// `vimo tensors show FILE` (names, dtypes, shapes, sizes) and `vimo tensors convert IN OUT`
// (between .npy and .safetensors).
#include <cstdio>
#include <iostream>

#include "command.h"
#include "vimo/core/tensor_io.h"

namespace vimo::cli {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

std::string human(double bytes) {
  const char* u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (bytes >= 1024 && i < 4) bytes /= 1024, ++i;
  char b[32];
  std::snprintf(b, sizeof b, i ? "%.1f %s" : "%.0f %s", bytes, u[i]);
  return b;
}

Registrar reg(5, [](CLI::App& app) {
  auto* g = group(app, "tensors", "inspect tensor files (safetensors, npy)");
  auto file = std::make_shared<std::string>();
  auto* c = g->add_subcommand("show", "list tensor names, dtypes, shapes and sizes");
  c->add_option("file", *file, "a .safetensors, *.index.json or .npy file")->required();
  c->callback([file] {
    const std::string& f = *file;
    if (f.size() > 4 && f.substr(f.size() - 4) == ".npy") {
      auto t = core::load_npy(f);
      std::cout << f << ": " << c10::toString(t.scalar_type()) << " " << shape_str(t.sizes().vec()) << " "
                << human(static_cast<double>(t.numel() * t.element_size())) << "\n";
      return;
    }
    auto st = core::SafeTensors::open(f);
    double total = 0;
    size_t width = 4;
    for (const auto& n : st.names()) width = std::max(width, n.size());
    for (const auto& n : st.names()) {
      const auto& i = st.info(n);
      total += static_cast<double>(i.end - i.begin);
      std::printf("%-*s  %-4s  %-20s  %s\n", static_cast<int>(width), n.c_str(), i.dtype.c_str(),
                  shape_str(i.shape).c_str(), human(static_cast<double>(i.end - i.begin)).c_str());
    }
    for (const auto& [k, v] : st.metadata()) std::printf("metadata %s = %s\n", k.c_str(), v.c_str());
    std::printf("%zu tensors, %s\n", st.names().size(), human(total).c_str());
  });
  auto conv = std::make_shared<core::ConvertOptions>();
  auto* cv = g->add_subcommand("convert", "convert between .npy and .safetensors (or rewrite a safetensors file)");
  cv->add_option("input", conv->input, "input .npy or .safetensors")->required()->check(CLI::ExistingFile);
  cv->add_option("output", conv->output, "output .npy or .safetensors")->required();
  cv->add_option("--name", conv->name, "tensor name: the one to extract, or the name given to an .npy's tensor");
  cv->callback([conv] { core::convert_tensor_file(*conv); });
});

}  // namespace
}  // namespace vimo::cli
