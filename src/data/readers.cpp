// Maps data.format to the motion readers that turn a dataset folder into clips.
#include "vimo/core/error.h"
#include "vimo/data/prepare.h"

namespace vimo::data {

SourceReader reader_for(const std::string& format) {
  throw Error("data.format=" + format + ": no reader for this format is built into this vimo");
}

}  // namespace vimo::data
