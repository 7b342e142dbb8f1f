// synthsae architectures: the library's list of architectures as a markdown table (what
// docs/architectures.md shows; a test checks the two agree).
#include <cstdio>

#include <synthsae/architectures.hpp>

#include "commands.hpp"

namespace synthsae::cli {

int run_architectures(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] != "--help") {
    std::fprintf(stderr, "synthsae architectures: takes no options\n");
    return 2;
  }
  std::fputs(architectures::markdown_table().c_str(), stdout);
  return 0;
}

}  // namespace synthsae::cli
