#pragma once
// NumPy .npy files (numpy.lib.format): the magic "\x93NUMPY", a version byte pair, a 2-byte
// (v1.0) or 4-byte (v2.0, v3.0) little-endian header length, a Python dict literal
//   {'descr': '<f4', 'fortran_order': False, 'shape': (250000, 4096), }
// then the row-major array bytes. Activation dumps are large, so NpyArray memory-maps the
// file and converts rows on demand instead of loading it. The header is parsed by hand and
// every size is checked against the file before any data byte is read.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synthsae/core/error.hpp"
#include "synthsae/core/float16.hpp"
#include "synthsae/io/atomic_file.hpp"

namespace synthsae::io {

static_assert(std::endian::native == std::endian::little, "synthsae's .npy code assumes a little-endian host");

/// Element types read: float activations ('<f4', '<f2', '<f8') and integer positions ('<i4', '<i8').
enum class NpyDtype { F32, F16, F64, I32, I64 };

inline constexpr std::pair<NpyDtype, std::string_view> kNpyDtypeNames[] = {{NpyDtype::F32, "<f4"},
                                                                           {NpyDtype::F16, "<f2"},
                                                                           {NpyDtype::F64, "<f8"},
                                                                           {NpyDtype::I32, "<i4"},
                                                                           {NpyDtype::I64, "<i8"}};

inline std::string_view npy_dtype_name(NpyDtype d) {
  for (const auto& [dtype, name] : kNpyDtypeNames)
    if (dtype == d) return name;
  return "?";
}

inline std::size_t npy_dtype_size(NpyDtype d) {
  switch (d) {
    case NpyDtype::F16:
      return 2;
    case NpyDtype::F32:
    case NpyDtype::I32:
      return 4;
    case NpyDtype::F64:
    case NpyDtype::I64:
      return 8;
  }
  return 0;
}

inline bool npy_is_integer(NpyDtype d) { return d == NpyDtype::I32 || d == NpyDtype::I64; }

/// A validated header: data_offset + prod(shape) * itemsize is exactly the file size.
struct NpyHeader {
  NpyDtype dtype = NpyDtype::F32;
  std::vector<std::uint64_t> shape;  // empty: a scalar
  std::size_t data_offset = 0;
  bool fortran_order = false;  // only ever true where it does not change the element order

  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;  // cannot overflow: checked when parsed
    return n;
  }
};

namespace detail {

inline constexpr std::string_view kNpyMagic = "\x93NUMPY";
/// numpy's own headers are < 200 bytes for these dtypes; the bound keeps hostile lengths cheap.
inline constexpr std::uint64_t kMaxNpyHeaderBytes = 1u << 20;

inline std::string npy_shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// Header text for messages: at most 60 characters, non-printable bytes as \xNN.
inline std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < text.size() && i < 60; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      s += static_cast<char>(c);
    } else {
      s += "\\x";
      s += kHex[c >> 4];
      s += kHex[c & 15];
    }
  }
  return text.size() > 60 ? s + "..." : s;
}

/// The subset of Python literals a .npy header uses: strings, integers, True/False/None,
/// tuples, lists and dicts. `source` is the literal as written, quoted back in messages.
struct PyValue {
  enum class Kind { String, Integer, Bool, None, Tuple, List, Dict };
  Kind kind = Kind::None;
  std::string_view source;
  std::string text;            // String: the contents; Integer: sign and digits
  bool flag = false;           // Bool
  std::vector<PyValue> items;  // Tuple, List: elements; Dict: key, value, key, value, ...
};

class PyLiteralParser {
 public:
  PyLiteralParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

  /// The whole text as one dict literal, with nothing but whitespace after it.
  PyValue parse_dict() {
    skip_space();
    if (at_end() || text_[pos_] != '{') fail("is not a Python dict literal: '" + printable(text_) + "'");
    PyValue dict = parse_value(0);
    skip_space();
    if (!at_end())
      fail("has unexpected text after the dict at byte " + std::to_string(pos_) + ": '" +
           printable(text_.substr(pos_)) + "'");
    return dict;
  }

 private:
  static constexpr int kMaxDepth = 16;  // hostile "((((((..." must not exhaust the stack

  bool at_end() const { return pos_ >= text_.size(); }
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(name_, "header " + what); }
  void unterminated(std::string_view what) const {
    if (at_end()) fail(std::string(what) + " is not terminated (header ends at byte " + std::to_string(pos_) + ")");
  }
  [[noreturn]] void unexpected(std::string_view expected) const {
    fail("expected " + std::string(expected) + " at byte " + std::to_string(pos_) + ", found '" +
         printable(text_.substr(pos_, 1)) + "'");
  }
  void skip_space() {
    while (!at_end() && std::string_view(" \t\n\r\f\v").find(text_[pos_]) != std::string_view::npos) ++pos_;
  }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_word(char c) { return c == '_' || is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

  PyValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("nests deeper than " + std::to_string(kMaxDepth) + " levels");
    skip_space();
    unterminated("value");
    const std::size_t begin = pos_;
    PyValue v;
    const char c = text_[pos_];
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Kind::String;
      ++pos_;
      while (true) {
        unterminated("string");
        const char ch = text_[pos_++];
        if (ch == c) break;
        if (ch == '\n') fail("string starting at byte " + std::to_string(begin) + " is not terminated");
        if (ch == '\\') {
          unterminated("string");
          v.text += text_[pos_++];
        } else {
          v.text += ch;
        }
      }
    } else if (c == '-' || c == '+' || is_digit(c)) {
      v.kind = PyValue::Kind::Integer;
      if (c == '-' || c == '+') v.text += text_[pos_++];
      while (!at_end() && is_digit(text_[pos_])) v.text += text_[pos_++];
      if (v.text.empty() || !is_digit(v.text.back())) unexpected("a digit");
      if (!at_end() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2 numpy wrote 3L
      if (!at_end() && is_word(text_[pos_])) unexpected("an integer");
    } else if (is_word(c)) {
      while (!at_end() && is_word(text_[pos_])) ++pos_;
      const std::string_view word = text_.substr(begin, pos_ - begin);
      if (word == "True" || word == "False") {
        v.kind = PyValue::Kind::Bool;
        v.flag = word == "True";
      } else if (word == "None") {
        v.kind = PyValue::Kind::None;
      } else {
        pos_ = begin;
        unexpected("a value");
      }
    } else if (c == '(' || c == '[') {
      v.kind = c == '(' ? PyValue::Kind::Tuple : PyValue::Kind::List;
      const char close = c == '(' ? ')' : ']';
      const std::string_view what = c == '(' ? "tuple" : "list";
      ++pos_;
      bool comma = false;
      while (true) {
        skip_space();
        unterminated(what);
        if (text_[pos_] == close) break;
        v.items.push_back(parse_value(depth + 1));
        skip_space();
        unterminated(what);
        if (text_[pos_] == close) break;
        if (text_[pos_] != ',') unexpected("',' or '" + std::string(1, close) + "'");
        ++pos_;
        comma = true;
      }
      ++pos_;
      // Python: "(5)" is the integer 5, not a tuple.
      if (c == '(' && v.items.size() == 1 && !comma) {
        PyValue inner = std::move(v.items.front());
        inner.source = text_.substr(begin, pos_ - begin);
        return inner;
      }
    } else if (c == '{') {
      v.kind = PyValue::Kind::Dict;
      ++pos_;
      while (true) {
        skip_space();
        unterminated("dict");
        if (text_[pos_] == '}') break;
        v.items.push_back(parse_value(depth + 1));
        skip_space();
        unterminated("dict");
        if (text_[pos_] != ':') unexpected("':'");
        ++pos_;
        v.items.push_back(parse_value(depth + 1));
        skip_space();
        unterminated("dict");
        if (text_[pos_] == '}') break;
        if (text_[pos_] != ',') unexpected("',' or '}'");
        ++pos_;
      }
      ++pos_;
    } else {
      unexpected("a value");
    }
    v.source = text_.substr(begin, pos_ - begin);
    return v;
  }

  std::string_view text_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, bool& overflow) {
  if (b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b) overflow = true;
  return a * b;
}

}  // namespace detail

/// Validates the header of a complete .npy file held in `file` (the data is not read, only
/// its size checked). `name` names the file in errors. Pure: suitable for tests and fuzzing.
inline NpyHeader parse_npy_header(std::span<const std::byte> file, const std::string& name) {
  using detail::PyValue;
  const std::string_view bytes(reinterpret_cast<const char*>(file.data()), file.size());
  const auto& magic = detail::kNpyMagic;
  if (bytes.substr(0, magic.size()) != magic.substr(0, bytes.size())) {
    throw FormatError(name, "is not a .npy file (it does not start with \\x93NUMPY: '" +
                                detail::printable(bytes.substr(0, magic.size())) + "')");
  }
  if (bytes.size() < magic.size() + 2) {
    throw FormatError(name, "file is " + std::to_string(bytes.size()) +
                                " bytes, shorter than the .npy magic and version (file truncated?)");
  }
  const auto major = static_cast<unsigned char>(bytes[6]);
  const auto minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    throw FormatError(name, "format version " + std::to_string(major) + "." + std::to_string(minor) +
                                " is not supported (expected 1.0, 2.0 or 3.0)");
  }
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  const std::size_t preamble = 8 + length_bytes;
  if (bytes.size() < preamble) {
    throw FormatError(name, "file is " + std::to_string(bytes.size()) + " bytes, shorter than the version " +
                                std::to_string(major) + ".0 preamble of " + std::to_string(preamble) +
                                " bytes (file truncated?)");
  }
  std::uint64_t header_len = 0;
  for (std::size_t i = 0; i < length_bytes; ++i)
    header_len |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  if (header_len > bytes.size() - preamble) {
    throw FormatError(name, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                                std::to_string(bytes.size()) + " bytes)");
  }
  if (header_len > detail::kMaxNpyHeaderBytes) {
    throw FormatError(name, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                                std::to_string(detail::kMaxNpyHeaderBytes) + " bytes");
  }
  const std::string_view text = bytes.substr(preamble, static_cast<std::size_t>(header_len));
  const PyValue dict = detail::PyLiteralParser(text, name).parse_dict();

  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape = nullptr;
  for (std::size_t i = 0; i < dict.items.size(); i += 2) {
    const PyValue& key = dict.items[i];
    const PyValue** slot = nullptr;
    if (key.kind == PyValue::Kind::String && key.text == "descr") slot = &descr;
    if (key.kind == PyValue::Kind::String && key.text == "fortran_order") slot = &fortran;
    if (key.kind == PyValue::Kind::String && key.text == "shape") slot = &shape;
    if (!slot) {
      throw FormatError(name, "header has unexpected key " + detail::printable(key.source) +
                                  " (expected 'descr', 'fortran_order' and 'shape')");
    }
    if (*slot) throw FormatError(name, "header has key " + detail::printable(key.source) + " twice");
    *slot = &dict.items[i + 1];
  }
  for (const auto& [value, key] : {std::pair{descr, "descr"}, {fortran, "fortran_order"}, {shape, "shape"}}) {
    if (!value) throw FormatError(name, std::string("header has no '") + key + "' key");
  }

  NpyHeader h;
  bool known = false;
  if (descr->kind == PyValue::Kind::String) {
    for (const auto& [dtype, text_name] : kNpyDtypeNames) {
      if (descr->text == text_name) {
        h.dtype = dtype;
        known = true;
      }
    }
  }
  if (!known) {
    std::string hint;
    if (descr->kind == PyValue::Kind::String && descr->text.size() > 1 && descr->text[0] == '>') {
      const std::string little = "<" + descr->text.substr(1);
      for (const auto& entry : kNpyDtypeNames)
        if (entry.second == little) hint = "; big-endian: convert with arr.astype('" + little + "')";
    }
    throw FormatError(name, "dtype " + detail::printable(descr->source) +
                                " is not supported (expected '<f4' or '<f2'; also '<f8', and '<i4' or '<i8' for "
                                "integer positions)" +
                                hint);
  }

  if (fortran->kind != PyValue::Kind::Bool) {
    throw FormatError(name, "fortran_order " + detail::printable(fortran->source) + " is not True or False");
  }
  h.fortran_order = fortran->flag;

  if (shape->kind != PyValue::Kind::Tuple) {
    throw FormatError(name, "shape " + detail::printable(shape->source) + " is not a tuple of integers");
  }
  for (const PyValue& dim : shape->items) {
    const std::string where = "shape " + detail::printable(shape->source) + ": dimension ";
    if (dim.kind != PyValue::Kind::Integer)
      throw FormatError(name, where + detail::printable(dim.source) + " is not an integer");
    const bool negative = dim.text[0] == '-';
    std::uint64_t d = 0;
    bool absurd = false;
    for (char c : dim.text) {
      if (c < '0' || c > '9') continue;
      const auto digit = static_cast<std::uint64_t>(c - '0');
      if (d > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) absurd = true;
      d = d * 10 + digit;
    }
    if (negative && (d != 0 || absurd)) throw FormatError(name, where + dim.text + " is negative");
    if (absurd || d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw FormatError(name, where + dim.text + " is too large");
    }
    h.shape.push_back(d);
  }
  // Fortran order only changes the element order when two or more dimensions exceed 1.
  std::size_t long_dims = 0;
  for (auto d : h.shape) long_dims += d > 1;
  if (h.fortran_order && long_dims > 1) {
    throw FormatError(name,
                      "fortran_order is True (column-major data): save the array in C order, e.g. "
                      "np.save(path, np.ascontiguousarray(arr))");
  }

  // The row width alone must fit too: rows() == 0 would otherwise hide an overflowing width.
  bool overflow = false;
  std::uint64_t bytes_needed = npy_dtype_size(h.dtype);
  for (std::size_t i = h.shape.size(); i-- > 0;) bytes_needed = detail::checked_mul(bytes_needed, h.shape[i], overflow);
  if (overflow) {
    throw FormatError(name, "shape " + detail::npy_shape_text(h.shape) + " of '" +
                                std::string(npy_dtype_name(h.dtype)) + "' overflows 64-bit byte counts");
  }
  h.data_offset = preamble + static_cast<std::size_t>(header_len);
  const std::uint64_t actual = bytes.size() - h.data_offset;
  if (bytes_needed != actual) {
    throw FormatError(name, "shape " + detail::npy_shape_text(h.shape) + " of '" +
                                std::string(npy_dtype_name(h.dtype)) + "' needs " + std::to_string(bytes_needed) +
                                " data bytes but the file has " + std::to_string(actual) +
                                (actual < bytes_needed ? " (file truncated?)" : " (trailing bytes after the array)"));
  }
  return h;
}

namespace detail {

/// A read-only mapping of a whole file (an empty file maps nothing). Move-only.
class MappedFile {
 public:
  MappedFile() = default;
  static MappedFile open(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError(path.string(), "cannot open for reading: " + std::generic_category().message(errno));
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int err = errno;
      ::close(fd);
      throw IoError(path.string(), S_ISREG(st.st_mode) ? "cannot stat: " + std::generic_category().message(err)
                                                       : std::string("is not a regular file"));
    }
    MappedFile m;
    m.size_ = static_cast<std::size_t>(st.st_size);
    if (m.size_ > 0) {
      void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int err = errno;
        ::close(fd);
        throw IoError(path.string(), "cannot memory-map: " + std::generic_category().message(err));
      }
      m.data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping keeps the file alive
    return m;
  }
  MappedFile(MappedFile&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { release(); }

  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  void release() noexcept {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = nullptr;
  }
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail

/// A memory-mapped .npy file (or raw little-endian float32 rows) read row by row: pages are
/// touched only when their rows are read, so a 4 GB dump needs no 4 GB of RAM. Rows are
/// shape[0] (a scalar is one row); a row is the product of the other dimensions. The reads
/// are const and may run concurrently. The file must not be truncated while it is open.
class NpyArray {
 public:
  static NpyArray open(const std::filesystem::path& path) {
    NpyArray a;
    a.name_ = path.string();
    a.file_ = detail::MappedFile::open(path);
    a.header_ = parse_npy_header(a.file_.bytes(), a.name_);
    a.rows_ = a.header_.shape.empty() ? 1 : a.header_.shape[0];
    a.row_width_ = 1;
    for (std::size_t i = 1; i < a.header_.shape.size(); ++i) a.row_width_ *= a.header_.shape[i];
    return a;
  }

  /// Headerless float32 rows of `width` values each (e.g. a tensor's .numpy().tofile()).
  static NpyArray open_raw_f32(const std::filesystem::path& path, std::uint64_t width) {
    if (width == 0 || width > std::numeric_limits<std::uint64_t>::max() / 4)
      throw ShapeError(path.string() + ": raw float32 row width " + std::to_string(width) + " is out of range");
    NpyArray a;
    a.name_ = path.string();
    a.file_ = detail::MappedFile::open(path);
    const std::uint64_t size = a.file_.bytes().size();
    if (size % (4 * width) != 0) {
      throw FormatError(a.name_, "raw float32 file of " + std::to_string(size) +
                                     " bytes is not a whole number of rows of " + std::to_string(width) + " values (" +
                                     std::to_string(4 * width) + " bytes each; file truncated or wrong width?)");
    }
    a.rows_ = size / (4 * width);
    a.row_width_ = width;
    a.header_ = NpyHeader{NpyDtype::F32, {a.rows_, width}, 0, false};
    return a;
  }

  const NpyHeader& header() const { return header_; }
  const std::string& name() const { return name_; }
  NpyDtype dtype() const { return header_.dtype; }
  std::uint64_t rows() const { return rows_; }
  std::uint64_t row_width() const { return row_width_; }

  /// Rows [first_row, first_row + count) as float into out[count * row_width()]: '<f4' copies,
  /// '<f2' and '<f8' convert. ShapeError outside the rows, FormatError for integer arrays.
  void read_rows_f32(std::uint64_t first_row, std::uint64_t count, float* out) const {
    if (npy_is_integer(dtype())) {
      throw FormatError(name_, "dtype '" + std::string(npy_dtype_name(dtype())) +
                                   "' is an integer array; read it with read_rows_i64");
    }
    const std::byte* p = rows_begin(first_row, count);
    const std::size_t n = static_cast<std::size_t>(count * row_width_);
    switch (dtype()) {
      case NpyDtype::F32:
        if (n) std::memcpy(out, p, n * 4);
        break;
      case NpyDtype::F16:
        for (std::size_t i = 0; i < n; ++i) out[i] = f16_to_float(load<std::uint16_t>(p + 2 * i));
        break;
      case NpyDtype::F64:
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load<double>(p + 8 * i));
        break;
      default:
        break;
    }
  }

  /// Rows as int64 (token positions): '<i4' widens, '<i8' copies. FormatError for float arrays.
  void read_rows_i64(std::uint64_t first_row, std::uint64_t count, std::int64_t* out) const {
    if (!npy_is_integer(dtype())) {
      throw FormatError(name_, "dtype '" + std::string(npy_dtype_name(dtype())) +
                                   "' is not an integer array (read_rows_i64 needs '<i4' or '<i8')");
    }
    const std::byte* p = rows_begin(first_row, count);
    const std::size_t n = static_cast<std::size_t>(count * row_width_);
    if (dtype() == NpyDtype::I64) {
      if (n) std::memcpy(out, p, n * 8);
    } else {
      for (std::size_t i = 0; i < n; ++i) out[i] = load<std::int32_t>(p + 4 * i);
    }
  }

 private:
  NpyArray() = default;

  template <class T>
  static T load(const std::byte* p) {  // memcpy: mapped data need not be aligned for T
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }

  const std::byte* rows_begin(std::uint64_t first_row, std::uint64_t count) const {
    if (first_row > rows_ || count > rows_ - first_row) {
      throw ShapeError(name_ + ": cannot read " + std::to_string(count) + " rows from row " +
                       std::to_string(first_row) + ": the array has " + std::to_string(rows_) + " rows");
    }
    const std::uint64_t offset = first_row * row_width_ * npy_dtype_size(dtype());
    return file_.bytes().data() + header_.data_offset + offset;
  }

  std::string name_;
  detail::MappedFile file_;
  NpyHeader header_;
  std::uint64_t rows_ = 0;
  std::uint64_t row_width_ = 1;
};

namespace detail {

inline void write_npy(const std::filesystem::path& path, NpyDtype dtype, const void* data,
                      const std::vector<std::uint64_t>& shape) {
  bool overflow = false;
  std::uint64_t bytes = npy_dtype_size(dtype);
  for (auto d : shape) bytes = checked_mul(bytes, d, overflow);
  if (overflow) throw ShapeError(path.string() + ": shape " + npy_shape_text(shape) + " overflows 64-bit byte counts");
  if (bytes > 0 && !data) throw ShapeError(path.string() + ": no data for shape " + npy_shape_text(shape));
  const std::string dict = "{'descr': '" + std::string(npy_dtype_name(dtype)) +
                           "', 'fortran_order': False, 'shape': " + npy_shape_text(shape) + ", }";
  // As numpy: spaces and a final newline pad the header so the data starts at a multiple of
  // 64 bytes; version 2.0 (4-byte length) only when v1.0's 2-byte length is too small.
  std::string head;
  for (const std::size_t preamble : {std::size_t{10}, std::size_t{12}}) {
    std::string header = dict;
    header.append((64 - (preamble + header.size() + 1) % 64) % 64, ' ');
    header += '\n';
    if (preamble == 10 && header.size() > 65535) continue;
    head = std::string(kNpyMagic) + static_cast<char>(preamble == 10 ? 1 : 2) + '\0';
    for (std::size_t i = 0; i < preamble - 8; ++i) head += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    head += header;
    break;
  }
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    if (bytes) out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  });
}

}  // namespace detail

/// Writes a C-order '<f4' array of prod(shape) values, readable by np.load and NpyArray.
inline void write_npy_f32(const std::filesystem::path& path, const float* data, std::vector<std::uint64_t> shape) {
  detail::write_npy(path, NpyDtype::F32, data, shape);
}

/// Writes a C-order '<i8' array (token positions).
inline void write_npy_i64(const std::filesystem::path& path, const std::int64_t* data,
                          std::vector<std::uint64_t> shape) {
  detail::write_npy(path, NpyDtype::I64, data, shape);
}

}  // namespace synthsae::io
