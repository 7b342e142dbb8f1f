#pragma once
// Output directories without partial results: everything is written into a temporary
// sibling directory, and only a complete result is moved into place. On failure the
// temporary directory is removed and the target is untouched.
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

#include "synthsae/core/error.hpp"

namespace synthsae::cli {

class StagedDirectory {
 public:
  explicit StagedDirectory(std::filesystem::path target) : target_(std::move(target)) {
    if (target_.filename().empty()) target_ = target_.parent_path();  // "dir/" -> "dir"
    staging_ = target_;
    staging_ += ".partial-" + std::to_string(::getpid());
    std::error_code ec;
    std::filesystem::remove_all(staging_, ec);
    if (!std::filesystem::create_directories(staging_, ec) || ec) {
      throw IoError(target_.string(),
                    "cannot create a staging directory next to it: " + (ec ? ec.message() : staging_.string()));
    }
  }
  StagedDirectory(const StagedDirectory&) = delete;
  StagedDirectory& operator=(const StagedDirectory&) = delete;
  ~StagedDirectory() {
    std::error_code ec;
    if (!committed_) std::filesystem::remove_all(staging_, ec);
  }

  /// Where to write.
  const std::filesystem::path& path() const { return staging_; }

  /// Moves every staged file into the target (created if needed), replacing files of the same
  /// name; files of the target that were not staged are left alone.
  void commit() {
    std::error_code ec;
    std::filesystem::create_directories(target_, ec);
    if (ec) throw IoError(target_.string(), "cannot create directory: " + ec.message());
    for (const auto& entry : std::filesystem::directory_iterator(staging_)) {
      std::filesystem::rename(entry.path(), target_ / entry.path().filename(), ec);
      if (ec) throw IoError((target_ / entry.path().filename()).string(), "cannot move into place: " + ec.message());
    }
    std::filesystem::remove(staging_, ec);
    committed_ = true;
  }

 private:
  std::filesystem::path target_, staging_;
  bool committed_ = false;
};

}  // namespace synthsae::cli
