# External packages vimo links against, gathered into one interface target (vimo_deps).
find_package(Torch REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(nlohmann_json 3 REQUIRED)

find_package(yaml-cpp REQUIRED)
find_package(CLI11 CONFIG QUIET)
find_package(HDF5 REQUIRED COMPONENTS C)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)

add_library(vimo_deps INTERFACE)
target_link_libraries(vimo_deps INTERFACE
  ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json yaml-cpp
  ${HDF5_C_LIBRARIES} PkgConfig::SENTENCEPIECE PkgConfig::PCRE2 Threads::Threads)
target_include_directories(vimo_deps INTERFACE ${HDF5_C_INCLUDE_DIRS})
if(TARGET CLI11::CLI11)
  target_link_libraries(vimo_deps INTERFACE CLI11::CLI11)
endif()
# The torch wheel's shared libraries sit beside the imported targets; keep their path in the binaries.
set(CMAKE_BUILD_RPATH_USE_ORIGIN ON)
# spdlog (Debian's 1.10, built on fmt 9) backs core/log; it does not compile next to the fmt 12
# headers that the torch wheel puts on the include path, so only src/core/log.cpp (its own library,
# vimo_log) includes it.
find_package(spdlog REQUIRED)
# c10d's Gloo process group header includes gloo's headers, which the torch wheel does not ship.
find_path(VIMO_GLOO_INCLUDE gloo/rendezvous/store.h)
if(NOT VIMO_GLOO_INCLUDE)
  message(FATAL_ERROR "gloo headers not found: install Debian's libgloo-dev (scripts/setup.sh does)")
endif()
find_path(VIMO_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
# libtorch.so exports its own copy of std::filesystem (from a static libstdc++fs) that crashes
# (e.g. in remove_all) when it preempts libstdc++'s. Listing libstdc++ first among the needed
# libraries makes the dynamic linker resolve those symbols to the system libstdc++.
target_link_options(vimo_deps INTERFACE "LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")
