#pragma once
// The fuzz targets: one function per reader of outside bytes. Each takes an input, feeds it to
// the library as a user's file (or argv) would, and returns whether the library accepted it or
// refused it with one of its own errors. Anything else escaping (std::bad_alloc, nlohmann's or
// the standard library's exceptions) and every crash is a finding. libFuzzer drives them
// (fuzz_main.cpp, scripts/fuzz.sh); the normal suite replays the committed corpus and every
// input that ever crashed (test_fuzz_corpus.cpp).
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace synthsae::fuzz {

enum class Outcome { accepted, refused };

struct Target {
  std::string_view name;
  std::string_view what;
  Outcome (*run)(std::span<const std::byte> input);
};

/// Every target, by name (the corpus directory under tests/data/fuzz/ has the same name).
const std::vector<Target>& targets();
const Target* find_target(std::string_view name);

/// Inputs of the directory targets hold several files: the sections between these markers,
/// in the order the target lists them (a missing section is a missing file).
inline constexpr std::string_view kSectionMarker = "\n--8<--\n";
std::vector<std::string_view> split_sections(std::string_view input);

/// The scratch directory the directory targets write their files into (one per process).
void set_scratch_directory(const std::string& path);

}  // namespace synthsae::fuzz
