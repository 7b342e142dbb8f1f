#pragma once
// Whole-file reads, and writes that never leave a half-written file: the content goes to
// a temporary name in the same directory, which is renamed over the target only once
// everything was written and flushed.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

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
