// safetensors: byte-exact layout of a hand-built file, round trips of every dtype and
// rank, and a catalogue of malformed files that must be clear errors.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "synthsae/io/safetensors.hpp"

using namespace synthsae;
using namespace synthsae::io;

namespace {

std::vector<std::byte> raw_file(const std::string& header, const std::vector<std::uint8_t>& data) {
  std::vector<std::byte> out(8 + header.size() + data.size());
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

std::string parse_error(const std::vector<std::byte>& bytes) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a hand-built file parses to the values it encodes", "[io][safetensors]") {
  // One F32 [2] tensor holding 1.0 and -2.0 (0x3F800000, 0xC0000000 little-endian).
  const auto bytes =
      raw_file(R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
               {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0});
  const auto file = parse_safetensors(bytes, "hand");
  CHECK(file.metadata.at("format") == "pt");
  CHECK(tensor_values<double>(file.at("x")) == std::vector<double>{1.0, -2.0});
}

TEST_CASE("the writer's layout: 8-byte length, space-padded header, widest dtypes first", "[io][safetensors]") {
  SafetensorsFile file;
  file.tensors["a_small"] = make_tensor<int>(Dtype::I8, {3}, std::vector<int>{-1, 0, 1});
  file.tensors["b_wide"] = make_tensor<double>(Dtype::F64, {1}, std::vector<double>{0.25});
  file.metadata["k"] = "v";
  const auto bytes = serialize_safetensors(file);
  std::uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  const std::string header(reinterpret_cast<const char*>(bytes.data() + 8), n);
  CHECK(header.find(R"("b_wide":{"data_offsets":[0,8])") != std::string::npos);
  CHECK(header.find(R"("a_small":{"data_offsets":[8,11])") != std::string::npos);
  CHECK(bytes.size() == 8 + n + 11);
  double first;
  std::memcpy(&first, bytes.data() + 8 + n, 8);
  CHECK(first == 0.25);
}

TEST_CASE("every dtype and rank round-trips exactly through a file", "[io][safetensors]") {
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_test_safetensors";
  std::filesystem::create_directories(dir);
  SafetensorsFile file;
  const std::vector<double> small{0, 1, -1, 2, -3, 5};
  const std::vector<double> positive{0, 1, 1, 2, 3, 5};
  const std::vector<double> fractions{0.5, -0.25, 0.125, 3.0, -7.5, 1e4};  // exact in F16, BF16, F32
  file.tensors["f64"] = make_tensor<double>(Dtype::F64, {2, 3}, fractions);
  file.tensors["f32"] = make_tensor<double>(Dtype::F32, {3, 2}, fractions);
  file.tensors["f16"] = make_tensor<double>(Dtype::F16, {6}, fractions);
  file.tensors["bf16"] = make_tensor<double>(Dtype::BF16, {1, 2, 3}, fractions);
  file.tensors["i64"] = make_tensor<double>(Dtype::I64, {6, 1}, small);
  file.tensors["i32"] = make_tensor<double>(Dtype::I32, {2, 1, 3, 1}, small);
  file.tensors["u8"] = make_tensor<double>(Dtype::U8, {6}, positive);
  file.tensors["bool"] = make_tensor<int>(Dtype::BOOL, {2, 2}, std::vector<int>{1, 0, 0, 1});
  file.tensors["scalar"] = make_tensor<float>(Dtype::F32, {}, std::vector<float>{3.5f});
  file.tensors["empty"] = make_tensor<float>(Dtype::F32, {0, 4}, std::vector<float>{});
  file.metadata["format"] = "pt";
  write_safetensors(dir / "all.safetensors", file);
  const auto back = read_safetensors(dir / "all.safetensors");
  CHECK(back.metadata == file.metadata);
  REQUIRE(back.tensors.size() == file.tensors.size());
  for (const auto& [name, t] : file.tensors) {
    INFO(name);
    const auto& u = back.at(name);
    CHECK(u.dtype == t.dtype);
    CHECK(u.shape == t.shape);
    CHECK(u.bytes == t.bytes);
  }
  CHECK(tensor_values<double>(back.at("f32")) == fractions);  // all exactly representable in F32
  CHECK(tensor_values<float>(back.at("bf16"))[1] == -0.25f);
  CHECK(tensor_values<float>(back.at("f16"))[5] == 1e4f);  // 10000 is exact in F16
  CHECK(tensor_values<std::int64_t>(back.at("i32"))[4] == -3);
  CHECK(tensor_values<float>(back.at("scalar")) == std::vector<float>{3.5f});
  CHECK(back.at("empty").numel() == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("values that a dtype cannot hold are rejected, not truncated", "[io][safetensors]") {
  CHECK_THROWS_WITH(make_tensor<double>(Dtype::I32, {1}, std::vector<double>{0.5}, "counts"),
                    Catch::Contains("counts") && Catch::Contains("I32"));
  CHECK_THROWS_AS(make_tensor<int>(Dtype::U8, {1}, std::vector<int>{300}), ShapeError);
  CHECK_THROWS_AS(make_tensor<int>(Dtype::BOOL, {1}, std::vector<int>{2}), ShapeError);
  CHECK_THROWS_WITH(make_tensor<float>(Dtype::F32, {2, 2}, std::vector<float>{1, 2, 3}), Catch::Contains("[2, 2]"));
  const auto f = make_tensor<double>(Dtype::F32, {1}, std::vector<double>{2.5});
  CHECK_THROWS_WITH(tensor_values<int>(f, "ids"), Catch::Contains("ids") && Catch::Contains("2.5"));
}

TEST_CASE("malformed files are clear errors, never out-of-bounds reads", "[io][safetensors]") {
  const std::string ok_entry = R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::vector<std::uint8_t> eight(8, 0);

  SECTION("shorter than the length field") {
    CHECK_THAT(parse_error(std::vector<std::byte>(5)), Catch::Contains("shorter than the 8-byte header length"));
  }
  SECTION("header length past the end") {
    auto bytes = raw_file("{" + ok_entry + "}", eight);
    const std::uint64_t huge = bytes.size();
    std::memcpy(bytes.data(), &huge, 8);
    CHECK_THAT(parse_error(bytes), Catch::Contains("runs past the end of the file"));
    const std::uint64_t max = ~0ull;
    std::memcpy(bytes.data(), &max, 8);
    CHECK_THAT(parse_error(bytes), Catch::Contains("runs past the end of the file"));
  }
  SECTION("invalid JSON") {
    CHECK_THAT(parse_error(raw_file("{\"x\": {", {})), Catch::Contains("not valid JSON"));
    CHECK_THAT(parse_error(raw_file("[1,2]", {})), Catch::Contains("not a JSON object"));
  }
  SECTION("unknown dtype") {
    CHECK_THAT(parse_error(raw_file(R"({"x":{"dtype":"F8_E9","shape":[2],"data_offsets":[0,8]}})", eight)),
               Catch::Contains("'x'") && Catch::Contains("F8_E9"));
  }
  SECTION("shape that does not match the byte count") {
    CHECK_THAT(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight)),
               Catch::Contains("[3]") && Catch::Contains("8 data bytes"));
    CHECK_THAT(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)),
               Catch::Contains("invalid dimension"));
    CHECK_THAT(
        parse_error(raw_file(R"({"x":{"dtype":"F64","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}})", eight)),
        Catch::Contains("overflows"));
  }
  SECTION("offsets out of range (truncated data)") {
    CHECK_THAT(parse_error(raw_file("{" + ok_entry + "}", {0, 0, 0, 0})), Catch::Contains("past the end of the data"));
    CHECK_THAT(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight)),
               Catch::Contains("begin after end"));
  }
  SECTION("overlapping, unordered and uncovered spans") {
    CHECK_THAT(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                    eight)),
               Catch::Contains("overlaps"));
    CHECK_THAT(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight)),
               Catch::Contains("belong to no tensor"));
    CHECK_THAT(parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight)),
               Catch::Contains("cover 4"));
    // Listed out of order but contiguous once sorted: valid.
    CHECK_NOTHROW(parse_safetensors(raw_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                                             R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                             eight),
                                    "ok"));
  }
  SECTION("duplicate names and bad metadata") {
    CHECK_THAT(parse_error(raw_file("{" + ok_entry + "," + ok_entry + "}", eight)), Catch::Contains("twice"));
    CHECK_THAT(parse_error(raw_file(R"({"__metadata__":{"n":3},)" + ok_entry + "}", eight)),
               Catch::Contains("__metadata__['n']"));
  }
  SECTION("missing fields and invalid booleans") {
    CHECK_THAT(parse_error(raw_file(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", eight)),
               Catch::Contains("'shape'"));
    CHECK_THAT(parse_error(raw_file(R"({"x":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", {7})),
               Catch::Contains("byte value 7"));
  }
}

TEST_CASE("every truncation of a valid file is rejected", "[io][safetensors]") {
  SafetensorsFile file;
  file.tensors["w"] = make_tensor<double>(Dtype::F32, {3, 2}, std::vector<double>{1, 2, 3, 4, 5, 6});
  file.tensors["b"] = make_tensor<double>(Dtype::BF16, {2}, std::vector<double>{1, 2});
  const auto bytes = serialize_safetensors(file);
  int accepted = 0;
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    try {
      parse_safetensors(std::span<const std::byte>(bytes.data(), len), "cut");
      ++accepted;
    } catch (const FormatError&) {
    }
  }
  CHECK(accepted == 0);
  CHECK_NOTHROW(parse_safetensors(bytes, "whole"));
}

TEST_CASE("a failed write leaves no file behind and keeps the old one", "[io][safetensors]") {
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_test_atomic";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto target = dir / "w.safetensors";
  SafetensorsFile good;
  good.tensors["x"] = make_tensor<float>(Dtype::F32, {1}, std::vector<float>{1.0f});
  write_safetensors(target, good);
  SafetensorsFile bad;  // inconsistent tensor: the writer must refuse before touching the file
  bad.tensors["x"] = Tensor{Dtype::F32, {4}, std::vector<std::byte>(3)};
  CHECK_THROWS_AS(write_safetensors(target, bad), ShapeError);
  CHECK_THROWS_AS(write_file_atomically(target,
                                        [](std::ostream& out) {
                                          out << "partial";
                                          throw IoError("w", "simulated failure mid-write");
                                        }),
                  IoError);
  CHECK(tensor_values<float>(read_safetensors(target).at("x")) == std::vector<float>{1.0f});
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
  CHECK_THROWS_AS(read_safetensors(dir / "missing.safetensors"), IoError);
  std::filesystem::remove_all(dir);
}
