// The `clips` format: a folder of feature files <id>.npy ([T, 2, 262] or [T, 1, 262], float32/64)
// with optional captions in <id>.txt (one per line). Implemented in src/motion/io.cpp.
#pragma once
#include <string>
#include <vector>

#include "vimo/motion/clip.h"
#include "vimo/motion/io.h"

namespace vimo::motion {

// All *.npy in `dir` (sorted by name; not recursive).
std::vector<Clip> read_clips(const std::string& dir, const ReadOptions& opts = {}, ReadStats* stats = nullptr);
// One feature file (+ its .txt when present) as a clip; id = the file's stem.
Clip read_clip_file(const std::string& npy_path);
// Writes dir/<id>.npy (float32) and, when the clip has captions, dir/<id>.txt; atomically.
void write_clip(const std::string& dir, const Clip& clip);

}  // namespace vimo::motion
