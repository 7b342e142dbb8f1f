#pragma once
// Whole-file reads, and writes that never leave a half-written file: the content goes to
// a temporary name in the same directory, which is renamed over the target only once
// everything was written and flushed.
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "synthsae/core/error.hpp"

namespace synthsae::io {

/// The whole file as bytes; IoError if it cannot be opened or read.
inline std::vector<char> read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string(), "cannot open for reading");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw IoError(path.string(), "cannot determine the file size");
  in.seekg(0, std::ios::beg);
  std::vector<char> bytes(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(bytes.data(), size)) throw IoError(path.string(), "read failed");
  return bytes;
}

/// Whether the process `pid` no longer exists (a PID that cannot be one counts as gone).
inline bool process_is_gone(long long pid) {
  return pid <= 0 || pid > INT_MAX || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
}

/// The PID in a name "<prefix><digits>[-...]", or -1 when the name is not of that form.
inline long long pid_after(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  std::size_t end = prefix.size();
  while (end < name.size() && end - prefix.size() < 18 && name[end] >= '0' && name[end] <= '9') ++end;
  if (end == prefix.size() || (end < name.size() && name[end] != '-')) return -1;
  return std::stoll(name.substr(prefix.size(), end - prefix.size()));
}

/// Removes the temporaries ("NAME.tmp-PID-N") that processes killed in the middle of a write
/// left in `dir`; a live process's are left alone. Returns how many were removed.
inline int remove_stale_temporaries(const std::filesystem::path& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto at = name.rfind(".tmp-");
    if (at == std::string::npos) continue;
    const long long pid = pid_after(name.substr(at), ".tmp-");
    if (pid < 0 || !process_is_gone(pid)) continue;
    std::error_code rm;
    if (std::filesystem::remove(entry.path(), rm)) ++removed;
  }
  return removed;
}

/// Writes through `fill(std::ostream&)` into a temporary sibling, then renames it to `path`.
/// On any failure (including an exception from `fill`) the temporary is removed and the
/// previous content of `path`, if any, is untouched.
inline void write_file_atomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& fill) {
  static std::atomic<std::uint64_t> sequence{0};
  std::filesystem::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(sequence++);
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw IoError(path.string(), "cannot open a temporary file for writing: " + tmp.string());
      fill(out);
      out.flush();
      if (!out) throw IoError(path.string(), "write failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw IoError(path.string(), "cannot rename the temporary file into place: " + ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace synthsae::io
