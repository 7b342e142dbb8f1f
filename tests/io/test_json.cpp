// JSON files and typed fields: errors name the file, the field and the value.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "synthsae/io/atomic_file.hpp"
#include "synthsae/io/json.hpp"

using namespace synthsae;
using namespace synthsae::io;

TEST_CASE("json_field checks types and ranges and names the field", "[io][json]") {
  const Json cfg = Json::parse(R"({"k": 25, "lr": 3e-4, "neg": -3, "frac": 2.5, "name": "topk", "on": true})");
  CHECK(json_field<int>(cfg, "k", "sae") == 25);
  CHECK(json_field<double>(cfg, "lr", "sae") == 3e-4);
  CHECK(json_field<double>(cfg, "k", "sae") == 25.0);  // an integer is a valid number
  CHECK(json_field<std::string>(cfg, "name", "sae") == "topk");
  CHECK(json_field<bool>(cfg, "on", "sae"));
  CHECK_THROWS_WITH(json_field<unsigned>(cfg, "neg", "hierarchy"), Catch::Contains("hierarchy.neg = -3"));
  CHECK_THROWS_WITH(json_field<int>(cfg, "frac", "sae"),
                    Catch::Contains("sae.frac = 2.5") && Catch::Contains("integer"));
  CHECK_THROWS_WITH(json_field<int>(cfg, "missing", "sae"),
                    Catch::Contains("sae.missing") && Catch::Contains("required"));
  CHECK(json_field<std::uint8_t>(cfg, "k", "x") == 25);
  CHECK_THROWS_WITH(json_field<std::int8_t>(Json::parse(R"({"v": 300})"), "v", "x"), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(json_field<std::string>(cfg, "k", "sae"), Catch::Contains("must be a string"));
  CHECK(json_field_or<int>(cfg, "absent", "sae", 7) == 7);
}

TEST_CASE("JSON files: atomic write, read back, and parse errors naming the file", "[io][json]") {
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_test_json";
  std::filesystem::create_directories(dir);
  const Json value = {{"num_features", 16384}, {"hidden_dim", 768}};
  write_json_file(dir / "cfg.json", value);
  CHECK(read_json_file(dir / "cfg.json") == value);
  { std::ofstream(dir / "broken.json") << "{\"a\": [1, 2"; }
  CHECK_THROWS_WITH(read_json_file(dir / "broken.json"),
                    Catch::Contains("broken.json") && Catch::Contains("invalid JSON"));
  CHECK_THROWS_AS(read_json_file(dir / "absent.json"), IoError);
  std::filesystem::remove_all(dir);
}

TEST_CASE("JSON: a number too large for a double is a FormatError, not nlohmann's out_of_range", "[io][json]") {
  // Found by the world_config fuzz target (tests/data/fuzz/world_config/regression-number-overflow).
  CHECK_THROWS_AS(parse_json(R"({"bias": 1e999})", "cfg.json"), FormatError);
  CHECK_THROWS_WITH(parse_json("[222e222222222]", "cfg.json"), Catch::Contains("cfg.json") && Catch::Contains("overflow"));
}

TEST_CASE("unknown keys of a config object are errors naming the key and the known ones", "[io][json]") {
  const Json j = {{"rank", 2}, {"rnak", 3}};
  CHECK_NOTHROW(require_known_keys(Json{{"rank", 2}}, {"rank", "seed"}, "correlation"));
  CHECK_THROWS_WITH(require_known_keys(j, {"rank", "seed"}, "correlation"),
                    "correlation.rnak = 3: is not a key of correlation (its keys: rank, seed)");
}

TEST_CASE("temporaries of killed writers are removed; a live process's are kept", "[io][atomic]") {
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_test_stale_tmp";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string live = std::to_string(::getpid());
  for (const std::string& name :
       std::vector<std::string>{"a.json.tmp-" + live + "-0", "a.json.tmp-2147483647999-3", "a.json.tmp-x-1", "a.json"})
    std::ofstream(dir / name) << "x";
  CHECK(pid_after("out.partial-123", "out.partial-") == 123);
  CHECK(pid_after(".tmp-45-6", ".tmp-") == 45);
  CHECK(pid_after(".tmp-x-6", ".tmp-") == -1);
  CHECK(process_is_gone(2147483647999LL));
  CHECK_FALSE(process_is_gone(::getpid()));
  CHECK(remove_stale_temporaries(dir) == 1);  // only the impossible PID's
  CHECK(std::filesystem::exists(dir / ("a.json.tmp-" + live + "-0")));
  CHECK(std::filesystem::exists(dir / "a.json.tmp-x-1"));
  CHECK(std::filesystem::exists(dir / "a.json"));
  std::filesystem::remove_all(dir);
}
