// fuzz_seed_gen: writes the seed corpora and the frame dictionary.
//
//   fuzz_seed_gen <dir>   ->  <dir>/<target>/<seed>, <dir>/frames.dict
//
// tools/fuzz.sh runs it before fuzzing; the seeds are generated at run time
// (not committed) so they always match the current formats.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz/seeds.h"

namespace {

bool WriteFile(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  int count = 0;
  for (const tally::fuzz::Seed& seed : tally::fuzz::GenerateSeeds()) {
    std::filesystem::create_directories(dir / seed.target);
    if (!WriteFile(dir / seed.target / seed.name, seed.bytes)) {
      std::fprintf(stderr, "fuzz_seed_gen: cannot write %s/%s\n",
                   seed.target.c_str(), seed.name.c_str());
      return 1;
    }
    ++count;
  }
  if (!WriteFile(dir / "frames.dict", tally::fuzz::FrameDictionary())) {
    std::fprintf(stderr, "fuzz_seed_gen: cannot write frames.dict\n");
    return 1;
  }
  std::printf("fuzz_seed_gen: %d seeds and frames.dict in %s\n", count,
              argv[1]);
  return 0;
}
