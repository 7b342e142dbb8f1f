// Every fuzz target's committed corpus (tests/data/fuzz/<target>/, scripts/fuzz_seeds.py) and
// every input that ever crashed one (regression-*) replayed in the normal suite: nothing but a
// synthsae error may escape, valid-* seeds must be accepted and refused-* seeds refused, so a
// reader that starts refusing good files, or letting bad ones through, fails here too.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.hpp"

namespace {

namespace fs = std::filesystem;
using synthsae::fuzz::Outcome;

std::vector<std::byte> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* b = reinterpret_cast<const std::byte*>(s.data());
  return {b, b + s.size()};
}

}  // namespace

TEST_CASE("fuzz corpus: every committed input replays without a crash, with its expected outcome", "[fuzz]") {
  const fs::path root = fs::path(SYNTHSAE_SOURCE_DIR) / "tests" / "data" / "fuzz";
  synthsae::fuzz::set_scratch_directory((fs::temp_directory_path() / "synthsae-fuzz-replay").string());
  for (const auto& target : synthsae::fuzz::targets()) {
    const fs::path dir = root / std::string(target.name);
    INFO("target " << target.name);
    REQUIRE(fs::is_directory(dir));
    int valid = 0, refused = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      INFO("input " << name);
      const auto bytes = read_bytes(entry.path());
      Outcome outcome{};
      REQUIRE_NOTHROW(outcome = target.run(bytes));
      if (name.rfind("valid-", 0) == 0) {
        CHECK(outcome == Outcome::accepted);
        ++valid;
      } else if (name.rfind("refused-", 0) == 0) {
        CHECK(outcome == Outcome::refused);
        ++refused;
      }
    }
    CHECK(valid >= 1);  // each target's seeds reach past its first check
    CHECK(refused >= 1);
  }
}

TEST_CASE("fuzz sections: a directory input splits at the marker; a missing section is a missing file", "[fuzz]") {
  using synthsae::fuzz::split_sections;
  const std::string m(synthsae::fuzz::kSectionMarker);
  CHECK(split_sections("abc") == std::vector<std::string_view>{"abc"});
  CHECK(split_sections("a" + m + "" + m + "c") == std::vector<std::string_view>{"a", "", "c"});
  CHECK(split_sections(m) == std::vector<std::string_view>{"", ""});
}
