// synthsae: the command-line program over the library.
//   synthsae model ...   build, load, save and describe synthetic worlds
//   synthsae train ...   train an SAE; synthsae eval ...: evaluate a saved one
//   synthsae bench ...   several architectures at several L0s; synthsae architectures: the list
//   synthsae darkmatter  the dark-matter error decomposition of one or more SAEs
//   synthsae tegum       the tegum-factor hypothesis on the toy model of superposition
//   synthsae circuits    a layer's SAE error predicted from its components' SAEs (synthetic circuit)
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <Kokkos_Core.hpp>

#include "commands.hpp"

namespace {

constexpr const char* kProgramUsage =
    "usage: synthsae <command> [options]\n"
    "\n"
    "commands:\n"
    "  model    build a synthetic world from a preset or config, or load one saved in\n"
    "           SAELens's layout; print its statistics; save it\n"
    "  train    train an SAE on a world; save it in SAELens's layout with its evaluation\n"
    "  eval     ground-truth metrics of any SAE saved in SAELens's layout\n"
    "  bench    train several architectures at several L0s; table, CSV, JSON and plots\n"
    "  architectures  the SAE architectures train and bench accept, as a table\n"
    "  darkmatter     split SAE error into linear and nonlinear parts (Engels et al.), with\n"
    "           ground truth on synthetic worlds; on your own .npy activations too\n"
    "  tegum    the tegum-factor hypothesis: do features that never fire together share a\n"
    "           low-dimensional subspace in a compressor? (toy model of superposition)\n"
    "  circuits how much of a layer's SAE error do the SAEs of the components that write it\n"
    "           explain? (a synthetic circuit: previous layer, MLP, attention)\n"
    "\n"
    "Run 'synthsae <command> --help' for the options of a command.\n"
    "Kokkos options (--kokkos-num-threads=N, ...) are accepted before the command.\n";

}  // namespace

int main(int argc, char* argv[]) {
  // Kokkos sees only the --kokkos-* arguments before the command: given the whole command line,
  // Kokkos 3.4 answers a command's --help (and --threads, ...) with its own help text.
  std::vector<char*> kokkos_argv{argv[0]};
  int first = 1;
  while (first < argc && std::strncmp(argv[first], "--kokkos-", 9) == 0) kokkos_argv.push_back(argv[first++]);
  int kokkos_argc = static_cast<int>(kokkos_argv.size());
  kokkos_argv.push_back(nullptr);
  char** kokkos_args = kokkos_argv.data();
  Kokkos::ScopeGuard kokkos(kokkos_argc, kokkos_args);
  std::vector<std::string> args(argv + first, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kProgramUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "model") return synthsae::cli::run_model(args);
  if (command == "train") return synthsae::cli::run_train(args);
  if (command == "eval") return synthsae::cli::run_eval(args);
  if (command == "bench") return synthsae::cli::run_bench(args);
  if (command == "architectures") return synthsae::cli::run_architectures(args);
  if (command == "darkmatter") return synthsae::cli::run_darkmatter(args);
  if (command == "tegum") return synthsae::cli::run_tegum(args);
  if (command == "circuits") return synthsae::cli::run_circuits(args);
  std::fprintf(stderr, "synthsae: unknown command '%s'\n\n%s", command.c_str(), kProgramUsage);
  return 2;
}
