// StagedDirectory (tools/synthsae/output_dir.hpp): a complete output or none. A failed move
// half-way through a commit stands in for a kill between two moves: the completion marker
// (move_last) must not be in the target unless every other file is.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "synthsae/output_dir.hpp"

namespace fs = std::filesystem;
using synthsae::cli::StagedDirectory;

namespace {

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

fs::path fresh_directory(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("StagedDirectory: a new target appears whole at commit, an uncommitted one never", "[io][output_dir]") {
  const fs::path root = fresh_directory("synthsae_test_output_new");
  {
    StagedDirectory out(root / "run");
    write_text(out.path() / "a.txt", "a");
    CHECK_FALSE(fs::exists(root / "run"));
    out.commit();
  }
  CHECK(read_text(root / "run" / "a.txt") == "a");
  {
    StagedDirectory abandoned(root / "other");
    write_text(abandoned.path() / "a.txt", "a");
  }  // destroyed without commit: nothing stays, not even the staging directory
  CHECK_FALSE(fs::exists(root / "other"));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root)) ++entries;
  CHECK(entries == 1);
  fs::remove_all(root);
}

TEST_CASE("StagedDirectory: into an existing target, staged files replace theirs and others stay", "[io][output_dir]") {
  const fs::path root = fresh_directory("synthsae_test_output_existing");
  const fs::path target = root / "run";
  fs::create_directories(target / "runs");
  write_text(target / "keep.txt", "kept");
  write_text(target / "cfg.json", "old");
  write_text(target / "runs" / "old.txt", "old");
  {
    StagedDirectory out(target, {"cfg.json"});
    write_text(out.path() / "cfg.json", "new");
    fs::create_directories(out.path() / "runs");
    write_text(out.path() / "runs" / "new.txt", "new");
    out.commit();
  }
  CHECK(read_text(target / "keep.txt") == "kept");
  CHECK(read_text(target / "cfg.json") == "new");
  CHECK(read_text(target / "runs" / "new.txt") == "new");
  CHECK_FALSE(fs::exists(target / "runs" / "old.txt"));  // a staged directory replaces its namesake whole
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root)) ++entries;
  CHECK(entries == 1);  // no .partial- or .replaced- sibling left
  fs::remove_all(root);
}

TEST_CASE("StagedDirectory: a commit that fails half-way leaves no completion marker", "[io][output_dir]") {
  const fs::path root = fresh_directory("synthsae_test_output_half");
  const fs::path target = root / "sae";
  // A directory where the weights file must go: rename() of a file onto it fails, as a kill
  // would stop the commit there.
  fs::create_directories(target / "sae_weights.safetensors" / "blocker");
  StagedDirectory out(target, {"cfg.json"});
  write_text(out.path() / "sae_weights.safetensors", "weights");
  write_text(out.path() / "a_first.txt", "a");
  write_text(out.path() / "z_last.txt", "z");
  write_text(out.path() / "cfg.json", "{}");
  try {
    out.commit();
    FAIL("the commit should have failed on the weights file");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("sae_weights.safetensors") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(target / "cfg.json"));  // whatever order the directory listed the files in
  fs::remove_all(root);
}
