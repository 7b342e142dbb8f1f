// .npy: numpy's own files (scripts/npy_fixtures.py) read to exact values, the writer
// byte-identical to np.save, raw float32 rows, row ranges, and a catalogue of hostile
// headers that must be clear errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "synthsae/io/npy.hpp"

using namespace synthsae;
using namespace synthsae::io;

namespace {

std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(SYNTHSAE_SOURCE_DIR "/tests/data/npy") / name;
}

/// A v1.0 (or v2.0) file: magic, version, length, `dict` padded like numpy, `data_bytes` zeros.
std::vector<std::byte> npy_file(const std::string& dict, std::size_t data_bytes, int major = 1) {
  const std::size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  header.append((64 - (preamble + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string s = "\x93NUMPY";
  s += static_cast<char>(major);
  s += '\0';
  for (std::size_t i = 0; i < preamble - 8; ++i) s += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  s += header;
  s.append(data_bytes, '\0');
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

std::string npy_parse_error(const std::vector<std::byte>& bytes) {
  try {
    parse_npy_header(bytes, "acts.npy");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string header_error(const std::string& dict, std::size_t data_bytes = 48) {
  return npy_parse_error(npy_file(dict, data_bytes));
}

std::vector<float> all_f32(const NpyArray& a) {
  std::vector<float> v(a.rows() * a.row_width());
  a.read_rows_f32(0, a.rows(), v.data());
  return v;
}

std::vector<std::byte> file_bytes(const std::filesystem::path& path) {
  const auto chars = read_file_bytes(path);
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

const std::string kOk = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";

}  // namespace

TEST_CASE("numpy's files read to their exact values", "[io][npy]") {
  SECTION("'<f4' (3, 4)") {
    const auto a = NpyArray::open(fixture("f4_3x4.npy"));
    CHECK(a.dtype() == NpyDtype::F32);
    CHECK(a.header().shape == std::vector<std::uint64_t>{3, 4});
    CHECK(a.header().data_offset == 128);
    CHECK(a.rows() == 3);
    CHECK(a.row_width() == 4);
    std::vector<float> expected;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) expected.push_back(static_cast<float>(i * 4 + j) + 0.5f);
    CHECK(all_f32(a) == expected);
  }
  SECTION("'<f2' (2, 3) converts to float") {
    const auto a = NpyArray::open(fixture("f2_2x3.npy"));
    CHECK(a.dtype() == NpyDtype::F16);
    CHECK(all_f32(a) == std::vector<float>{0.5f, -1.25f, 2.0f, 65504.0f, std::ldexp(1.0f, -24), -3.0f});
  }
  SECTION("version 2.0 and 3.0 headers") {
    for (const char* name : {"f4_v2.npy", "f4_v3.npy"}) {
      INFO(name);
      const auto a = NpyArray::open(fixture(name));
      CHECK(a.header().data_offset == 128);  // 12-byte preamble, padded to 64 like v1.0
      CHECK(all_f32(a) == std::vector<float>{0.25f, 0.5f, 0.75f, 1.0f});
    }
  }
  SECTION("rank 1, rank 3 and a scalar") {
    const auto r1 = NpyArray::open(fixture("f4_rank1.npy"));
    CHECK(r1.rows() == 4);
    CHECK(r1.row_width() == 1);
    CHECK(all_f32(r1) == std::vector<float>{1.5f, -2.5f, 3.25f, 0.0f});
    const auto r3 = NpyArray::open(fixture("f4_2x2x2.npy"));
    CHECK(r3.rows() == 2);
    CHECK(r3.row_width() == 4);
    std::vector<float> row(4);
    r3.read_rows_f32(1, 1, row.data());
    CHECK(row == std::vector<float>{4.25f, 5.25f, 6.25f, 7.25f});
    const auto s = NpyArray::open(fixture("f4_scalar.npy"));
    CHECK(s.header().shape.empty());
    CHECK(s.rows() == 1);
    CHECK(all_f32(s) == std::vector<float>{42.5f});
  }
  SECTION("integer positions") {
    const auto i4 = NpyArray::open(fixture("i4_positions.npy"));
    CHECK(i4.dtype() == NpyDtype::I32);
    std::vector<std::int64_t> p(5);
    i4.read_rows_i64(0, 5, p.data());
    CHECK(p == std::vector<std::int64_t>{0, 7, 123456, 2147483647, -1});
    const auto i8 = NpyArray::open(fixture("i8_positions.npy"));
    std::vector<std::int64_t> q(2);
    i8.read_rows_i64(1, 1, q.data());
    CHECK(q == std::vector<std::int64_t>{std::int64_t{1} << 40, -(std::int64_t{1} << 40)});
    std::vector<float> f(5);
    CHECK_THROWS_WITH(i4.read_rows_f32(0, 1, f.data()), Catch::Contains("'<i4'") && Catch::Contains("read_rows_i64"));
    CHECK_THROWS_AS(NpyArray::open(fixture("f4_3x4.npy")).read_rows_i64(0, 1, p.data()), FormatError);
  }
  SECTION("numpy files that are refused") {
    CHECK_THROWS_WITH(NpyArray::open(fixture("f4_fortran.npy")), Catch::Contains("f4_fortran.npy") &&
                                                                     Catch::Contains("fortran_order") &&
                                                                     Catch::Contains("np.ascontiguousarray"));
    CHECK_THROWS_WITH(NpyArray::open(fixture("f4_big_endian.npy")),
                      Catch::Contains("f4_big_endian.npy") && Catch::Contains("dtype '>f4' is not supported") &&
                          Catch::Contains("astype('<f4')"));
  }
}

TEST_CASE("the writer produces np.save's bytes and reads back", "[io][npy]") {
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_test_npy";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<float> values;
  for (int k = 0; k < 12; ++k) values.push_back(static_cast<float>(k) + 0.5f);
  write_npy_f32(dir / "w.npy", values.data(), {3, 4});
  CHECK(file_bytes(dir / "w.npy") == file_bytes(fixture("f4_3x4.npy")));

  write_npy_f32(dir / "r1.npy", values.data(), {4});
  CHECK(file_bytes(dir / "r1.npy").size() == 128 + 16);
  const auto r1 = NpyArray::open(dir / "r1.npy");
  CHECK(r1.header().shape == std::vector<std::uint64_t>{4});
  CHECK(r1.header().data_offset % 64 == 0);

  const float scalar = 42.5f;
  write_npy_f32(dir / "s.npy", &scalar, {});
  CHECK(file_bytes(dir / "s.npy") == file_bytes(fixture("f4_scalar.npy")));

  write_npy_f32(dir / "empty.npy", nullptr, {0, 7});
  const auto empty = NpyArray::open(dir / "empty.npy");
  CHECK(empty.rows() == 0);
  CHECK(empty.row_width() == 7);
  empty.read_rows_f32(0, 0, nullptr);

  const std::vector<std::int64_t> positions{0, 1, std::int64_t{1} << 40, -(std::int64_t{1} << 40)};
  write_npy_i64(dir / "p.npy", positions.data(), {2, 2});
  CHECK(file_bytes(dir / "p.npy") == file_bytes(fixture("i8_positions.npy")));

  const std::vector<std::uint64_t> long_shape(300, 1);  // a long header, still padded to 64
  write_npy_f32(dir / "long.npy", values.data(), long_shape);
  CHECK(all_f32(NpyArray::open(dir / "long.npy")) == std::vector<float>{0.5f});
  CHECK_THROWS_AS(write_npy_f32(dir / "big.npy", values.data(), {std::uint64_t{1} << 40, std::uint64_t{1} << 40}),
                  ShapeError);
  CHECK_FALSE(std::filesystem::exists(dir / "big.npy"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("row ranges and out-of-range reads", "[io][npy]") {
  const auto a = NpyArray::open(fixture("f4_3x4.npy"));
  std::vector<float> two(8);
  a.read_rows_f32(1, 2, two.data());
  CHECK(two == std::vector<float>{4.5f, 5.5f, 6.5f, 7.5f, 8.5f, 9.5f, 10.5f, 11.5f});
  a.read_rows_f32(3, 0, two.data());  // an empty read at the end is fine
  CHECK_THROWS_AS(a.read_rows_f32(2, 2, two.data()), ShapeError);
  CHECK_THROWS_WITH(a.read_rows_f32(4, 0, two.data()), Catch::Contains("f4_3x4.npy") && Catch::Contains("3 rows"));
  CHECK_THROWS_AS(a.read_rows_f32(1, ~std::uint64_t{0}, two.data()), ShapeError);  // first + count overflows
  CHECK_THROWS_AS(a.read_rows_f32(~std::uint64_t{0}, 2, two.data()), ShapeError);
}

TEST_CASE("raw little-endian float32 rows", "[io][npy]") {
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_test_npy_raw";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::vector<float> values{1, -2, 3.5f, 4, 5, -6.25f};
  {
    std::ofstream out(dir / "acts.f32", std::ios::binary);
    out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * 4));
  }
  const auto a = NpyArray::open_raw_f32(dir / "acts.f32", 3);
  CHECK(a.rows() == 2);
  CHECK(a.row_width() == 3);
  CHECK(a.header().shape == std::vector<std::uint64_t>{2, 3});
  std::vector<float> row(3);
  a.read_rows_f32(1, 1, row.data());
  CHECK(row == std::vector<float>{4, 5, -6.25f});
  CHECK(all_f32(NpyArray::open_raw_f32(dir / "acts.f32", 1)) == values);
  CHECK_THROWS_WITH(NpyArray::open_raw_f32(dir / "acts.f32", 4),
                    Catch::Contains("acts.f32") && Catch::Contains("24 bytes") && Catch::Contains("16 bytes each"));
  CHECK_THROWS_AS(NpyArray::open_raw_f32(dir / "acts.f32", 0), ShapeError);
  { std::ofstream empty(dir / "empty.f32", std::ios::binary); }
  CHECK(NpyArray::open_raw_f32(dir / "empty.f32", 8).rows() == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("missing files and directories are IoErrors naming the path", "[io][npy]") {
  CHECK_THROWS_WITH(NpyArray::open("/nonexistent/acts.npy"), Catch::Contains("/nonexistent/acts.npy"));
  CHECK_THROWS_AS(NpyArray::open("/nonexistent/acts.npy"), IoError);
  CHECK_THROWS_AS(NpyArray::open_raw_f32("/nonexistent/acts.f32", 4), IoError);
  CHECK_THROWS_AS(NpyArray::open(std::filesystem::temp_directory_path()), IoError);
}

TEST_CASE("header dicts in any order, spacing and trailing commas", "[io][npy]") {
  const auto shape_of = [](const std::string& dict, std::size_t data) {
    return parse_npy_header(npy_file(dict, data), "ok.npy").shape;
  };
  using Shape = std::vector<std::uint64_t>;
  CHECK(shape_of(kOk, 48) == Shape{3, 4});
  CHECK(shape_of("{\"shape\":(3,4),\"fortran_order\":False,\"descr\":\"<f4\"}", 48) == Shape{3, 4});
  CHECK(shape_of("{ 'fortran_order' :False , 'shape' : ( 5 , ) ,\t'descr':'<f2',}", 10) == Shape{5});
  CHECK(shape_of("{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4) == Shape{});
  CHECK(shape_of("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 7)}", 0) == Shape{0, 7});
  CHECK(shape_of("{'descr': '<i8', 'fortran_order': False, 'shape': (2L, 1L)}", 16) == Shape{2, 1});  // Python 2
  // Fortran order is harmless where at most one dimension exceeds 1 (the bytes are the same).
  const auto h = parse_npy_header(npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6)}", 24), "ok");
  CHECK(h.fortran_order);
  CHECK(parse_npy_header(npy_file(kOk, 48, 2), "v2").data_offset == 128);
}

TEST_CASE("hostile headers are FormatErrors naming the field, never out-of-bounds reads", "[io][npy]") {
  SECTION("magic, version and preamble") {
    CHECK_THAT(npy_parse_error({}), Catch::Contains("acts.npy") && Catch::Contains("truncated"));
    CHECK_THAT(npy_parse_error(bytes_of("\x93NUM")), Catch::Contains("truncated"));
    CHECK_THAT(npy_parse_error(bytes_of("PK\x03\x04 zip file")), Catch::Contains("not a .npy file"));
    CHECK_THAT(npy_parse_error(bytes_of("\x93NUMPX\x01\x00")), Catch::Contains("not a .npy file"));
    CHECK_THAT(npy_parse_error(bytes_of(std::string("\x93NUMPY\x04\x00", 8) + "xx")), Catch::Contains("version 4.0"));
    CHECK_THAT(npy_parse_error(bytes_of(std::string("\x93NUMPY\x01\x01", 8) + "xx")), Catch::Contains("version 1.1"));
    CHECK_THAT(npy_parse_error(bytes_of(std::string("\x93NUMPY\x01\x00\x05", 9))), Catch::Contains("preamble"));
    CHECK_THAT(npy_parse_error(bytes_of(std::string("\x93NUMPY\x02\x00\x05\x00\x00", 11))), Catch::Contains("preamble"));
  }
  SECTION("header length past the end of the file") {
    auto bytes = npy_file(kOk, 48);
    bytes[8] = std::byte{0xFF};
    bytes[9] = std::byte{0xFF};
    CHECK_THAT(npy_parse_error(bytes), Catch::Contains("header length 65535 runs past the end"));
    auto v2 = npy_file(kOk, 48, 2);
    for (int i = 8; i < 12; ++i) v2[static_cast<std::size_t>(i)] = std::byte{0xFF};
    CHECK_THAT(npy_parse_error(v2), Catch::Contains("header length 4294967295 runs past the end"));
  }
  SECTION("every truncation of a valid file is rejected") {
    const auto bytes = file_bytes(fixture("f4_3x4.npy"));
    int accepted = 0;
    for (std::size_t len = 0; len < bytes.size(); ++len) {
      try {
        parse_npy_header(std::span<const std::byte>(bytes.data(), len), "cut");
        ++accepted;
      } catch (const FormatError&) {
      }
    }
    CHECK(accepted == 0);
    CHECK(parse_npy_header(bytes, "whole").shape == std::vector<std::uint64_t>{3, 4});
  }
  SECTION("not a dict, unterminated, malformed literals") {
    CHECK_THAT(header_error("['descr', '<f4']"), Catch::Contains("not a Python dict"));
    CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)"),
               Catch::Contains("dict is not terminated"));
    CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4"),
               Catch::Contains("tuple is not terminated"));
    CHECK_THAT(header_error("{'descr': '<f4, 'fortran_order': False}"), Catch::Contains("expected ',' or '}'"));
    CHECK_THAT(header_error("{'descr': '<f4"), Catch::Contains("string starting at byte 10 is not terminated"));
    CHECK_THAT(header_error("{'descr' '<f4'}"), Catch::Contains("expected ':'"));
    CHECK_THAT(header_error("{'descr': '<f4' 'shape': ()}"), Catch::Contains("expected ',' or '}'"));
    CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': false, 'shape': (3, 4)}"),
               Catch::Contains("expected a value") && Catch::Contains("'f'"));
    CHECK_THAT(header_error("{'shape': (3,,4)}"), Catch::Contains("expected a value"));
    CHECK_THAT(header_error("{'shape': (3x)}"), Catch::Contains("expected an integer"));
    CHECK_THAT(header_error(kOk + " junk"), Catch::Contains("unexpected text after the dict"));
    CHECK_THAT(header_error("{'shape': " + std::string(100, '(') + "}"), Catch::Contains("nests deeper"));
    CHECK_THAT(header_error(std::string("{'descr': '<f4',\0 }", 19)), Catch::Contains("\\x00"));
  }
  SECTION("missing, unknown and repeated keys") {
    CHECK_THAT(header_error("{'fortran_order': False, 'shape': (3, 4)}"), Catch::Contains("no 'descr' key"));
    CHECK_THAT(header_error("{'descr': '<f4', 'shape': (3, 4)}"), Catch::Contains("no 'fortran_order' key"));
    CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False}"), Catch::Contains("no 'shape' key"));
    CHECK_THAT(header_error("{}"), Catch::Contains("no 'descr' key"));
    CHECK_THAT(header_error(kOk.substr(0, kOk.size() - 1) + "'extra': 1}"), Catch::Contains("unexpected key 'extra'"));
    CHECK_THAT(header_error(kOk.substr(0, kOk.size() - 1) + "'shape': (3, 4)}"), Catch::Contains("'shape' twice"));
    CHECK_THAT(header_error("{3: 4}"), Catch::Contains("unexpected key 3"));
  }
  SECTION("dtypes") {
    const auto with = [](const std::string& descr) {
      return header_error("{'descr': " + descr + ", 'fortran_order': False, 'shape': (3, 4), }");
    };
    CHECK_THAT(with("'>f4'"), Catch::Contains("acts.npy: dtype '>f4' is not supported (expected '<f4' or '<f2'"));
    CHECK_THAT(with("'|u1'"), Catch::Contains("dtype '|u1'"));
    CHECK_THAT(with("'=f4'"), Catch::Contains("dtype '=f4'"));
    CHECK_THAT(with("'<c8'"), Catch::Contains("dtype '<c8'"));
    CHECK_THAT(with("[('a', '<f4'), ('b', '<f4')]"), Catch::Contains("dtype [('a', '<f4'), ('b', '<f4')]"));
    CHECK_THAT(with("4"), Catch::Contains("dtype 4 is not supported"));
  }
  SECTION("fortran_order") {
    CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4)}"),
               Catch::Contains("fortran_order is True") && Catch::Contains("np.ascontiguousarray"));
    CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': 0, 'shape': (3, 4)}"),
               Catch::Contains("fortran_order 0 is not True or False"));
  }
  SECTION("shapes") {
    const auto with = [](const std::string& shape, std::size_t data = 48) {
      return header_error("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + "}", data);
    };
    CHECK_THAT(with("[3, 4]"), Catch::Contains("shape [3, 4] is not a tuple"));
    CHECK_THAT(with("(12)"), Catch::Contains("shape (12) is not a tuple"));
    CHECK_THAT(with("None"), Catch::Contains("shape None is not a tuple"));
    CHECK_THAT(with("(3, -4)"), Catch::Contains("shape (3, -4): dimension -4 is negative"));
    CHECK_THAT(with("(3, '4')"), Catch::Contains("dimension '4' is not an integer"));
    CHECK_THAT(with("(3, 4.0)"), Catch::Contains("expected"));
    CHECK_THAT(with("(99999999999999999999999,)"), Catch::Contains("99999999999999999999999 is too large"));
    CHECK_THAT(with("(-99999999999999999999999,)"), Catch::Contains("is negative"));
    CHECK_THAT(with("(9223372036854775808,)"), Catch::Contains("too large"));
    CHECK_THAT(with("(4294967296, 4294967296)"), Catch::Contains("overflows"));
    CHECK_THAT(with("(4611686018427387904,)"), Catch::Contains("overflows"));       // 2^62 elements * 4 bytes
    CHECK_THAT(with("(0, 4294967296, 4294967296)"), Catch::Contains("overflows"));  // zero rows hide nothing
  }
  SECTION("data size against the file size") {
    CHECK_THAT(header_error(kOk, 40),
               Catch::Contains("shape (3, 4) of '<f4' needs 48 data bytes but the file has 40 (file truncated?)"));
    CHECK_THAT(header_error(kOk, 52), Catch::Contains("needs 48 data bytes but the file has 52"));
    CHECK_THAT(header_error("{'descr': '<f2', 'fortran_order': False, 'shape': (5,)}", 0),
               Catch::Contains("shape (5,) of '<f2' needs 10"));
  }
}
