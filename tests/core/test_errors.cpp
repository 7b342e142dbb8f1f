// Error messages name the field, the value and the requirement.
#include <catch2/catch.hpp>

#include "synthsae/core/error.hpp"

TEST_CASE("ConfigError names the field, the value and the rule", "[core][errors]") {
  const synthsae::ConfigError e("hierarchy.branching_factor", "-3", "must be at least 1");
  CHECK(std::string(e.what()) == "hierarchy.branching_factor = -3: must be at least 1");
  CHECK(e.field() == "hierarchy.branching_factor");
  const synthsae::Error& base = e;  // one family: callers can catch synthsae::Error
  CHECK(std::string(base.what()).find("-3") != std::string::npos);
}

TEST_CASE("FormatError and IoError name the file", "[core][errors]") {
  CHECK(std::string(synthsae::FormatError("w.safetensors", "truncated").what()) == "w.safetensors: truncated");
  CHECK(std::string(synthsae::IoError("/x/y", "cannot open").what()) == "/x/y: cannot open");
}
