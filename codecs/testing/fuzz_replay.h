// ReplayFuzzInputs: the `*_fuzz_replay` executables' main loop (any compiler, no libFuzzer): feeds
// every file named on the command line, and every regular file under a named folder (sorted),
// to LLVMFuzzerTestOneInput once, so ctest replays the corpora through the fuzz targets'
// invariants. Returns the exit status: 1 when an argument cannot be read or a folder holds no
// file (a replay over nothing proves nothing), else 0. Prints "<name>: N input(s) replayed".
#ifndef PSL_CODECS_TESTING_FUZZ_REPLAY_H_
#define PSL_CODECS_TESTING_FUZZ_REPLAY_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace psl::codecs::testing {

inline int ReplayFuzzFile(const char* name, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read %s\n", name, path.c_str());
    return 1;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

inline int ReplayFuzzInputs(const char* name, int argc, char** argv) {
  int failures = 0;
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg, ec)) {
        if (entry.is_regular_file()) {
          files.push_back(entry.path());
        }
      }
      if (files.empty()) {
        ++failures;
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        failures += ReplayFuzzFile(name, f);
        ++replayed;
      }
    } else {
      failures += ReplayFuzzFile(name, arg);
      ++replayed;
    }
  }
  std::printf("%s: %zu input(s) replayed\n", name, replayed);
  return failures == 0 && replayed > 0 ? 0 : 1;
}

}  // namespace psl::codecs::testing

#endif  // PSL_CODECS_TESTING_FUZZ_REPLAY_H_
