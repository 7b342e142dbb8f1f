#pragma once
// The synthsae program's subcommands; each lives in its own translation unit so that the
// heavy templates it instantiates are compiled once and in parallel.
#include <chrono>
#include <string>
#include <vector>

namespace synthsae::cli {

/// Wall seconds since `start` (the per-phase timings the subcommands report).
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Exit codes: 0 success, 1 failure (bad file, failed run), 2 usage.
int run_model(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_architectures(const std::vector<std::string>& args);
int run_darkmatter(const std::vector<std::string>& args);
int run_tegum(const std::vector<std::string>& args);
int run_circuits(const std::vector<std::string>& args);

}  // namespace synthsae::cli
