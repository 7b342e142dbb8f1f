#pragma once
// Output directories without partial results: everything is written into a temporary
// sibling directory (TARGET.partial-PID), and only a complete result is moved into place. On
// failure the temporary directory is removed and the target is untouched. A process killed
// outright cannot remove its own: the next run on the same target removes the staging
// directories of processes that no longer exist.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "synthsae/core/error.hpp"
#include "synthsae/io/atomic_file.hpp"

namespace synthsae::cli {

class StagedDirectory {
 public:
  /// `move_last`: the files a reader takes as the sign of a complete output (an SAE directory's
  /// cfg.json, the bench's results.json); commit() moves them after every other file.
  explicit StagedDirectory(std::filesystem::path target, std::vector<std::string> move_last = {})
      : target_(std::move(target)), move_last_(std::move(move_last)) {
    if (target_.filename().empty()) target_ = target_.parent_path();  // "dir/" -> "dir"
    staging_ = target_;
    staging_ += ".partial-" + std::to_string(::getpid());
    remove_stale_staging();
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

  /// Moves every staged file into the target, replacing files of the same name; files of the
  /// target that were not staged are left alone. A target that does not exist yet gets the whole
  /// staging directory in one rename. Into an existing one (a training run's checkpoint/ is
  /// there) files move one by one, move_last's files last: a loader finds an SAE by its
  /// cfg.json, so a process killed between two moves must not leave cfg.json without weights.
  void commit() {
    std::error_code ec;
    if (!std::filesystem::exists(target_, ec) && !ec) {
      std::filesystem::rename(staging_, target_, ec);
      if (!ec) {
        committed_ = true;
        return;
      }
    }
    ec.clear();
    std::filesystem::create_directories(target_, ec);
    if (ec) throw IoError(target_.string(), "cannot create directory: " + ec.message());
    std::vector<std::filesystem::directory_entry> entries;
    for (const auto& entry : std::filesystem::directory_iterator(staging_)) entries.push_back(entry);
    std::stable_partition(entries.begin(), entries.end(), [this](const std::filesystem::directory_entry& e) {
      return std::find(move_last_.begin(), move_last_.end(), e.path().filename().string()) == move_last_.end();
    });
    for (const auto& entry : entries) {
      const std::filesystem::path to = target_ / entry.path().filename();
      // rename() replaces a file but not a non-empty directory (a rerun's runs/, saes/): the old
      // one moves aside first and goes once the new one is in place.
      std::filesystem::path aside;
      if (entry.is_directory() && std::filesystem::is_directory(to)) {
        aside = to;
        aside += ".replaced-" + std::to_string(::getpid());
        std::filesystem::remove_all(aside, ec);
        std::filesystem::rename(to, aside, ec);
        if (ec) throw IoError(to.string(), "cannot move the previous directory aside: " + ec.message());
      }
      std::filesystem::rename(entry.path(), to, ec);
      if (ec) throw IoError(to.string(), "cannot move into place: " + ec.message());
      if (!aside.empty()) std::filesystem::remove_all(aside, ec);
    }
    std::filesystem::remove(staging_, ec);
    committed_ = true;
  }

 private:
  /// Removes TARGET.partial-PID siblings whose process is gone (kill(pid, 0) fails with ESRCH);
  /// a live process's staging directory, another run's on the same target, is left alone.
  void remove_stale_staging() const {
    const std::filesystem::path parent = target_.parent_path().empty() ? "." : target_.parent_path();
    const std::string prefix = target_.filename().string() + ".partial-";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(parent, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) != 0 || entry.path() == staging_) continue;
      const long long pid = io::pid_after(name, prefix);
      if (pid < 0 || name.find('-', prefix.size()) != std::string::npos || !io::process_is_gone(pid)) continue;
      std::error_code rm;
      std::filesystem::remove_all(entry.path(), rm);
      if (!rm) std::fprintf(stderr, "synthsae: removed %s, left by a run that no longer exists\n", entry.path().c_str());
    }
  }

  std::filesystem::path target_, staging_;
  std::vector<std::string> move_last_;
  bool committed_ = false;
};

}  // namespace synthsae::cli
