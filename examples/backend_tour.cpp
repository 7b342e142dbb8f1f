// A tour of synthsae's backend core: which Kokkos backend runs, counter-based random
// draws, a GEMM on Views, and a safetensors file written atomically and read back.
//
//   backend_tour [--out DIR] [--rows N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <synthsae/synthsae.hpp>

namespace {

int usage(const char* message) {
  std::fprintf(stderr, "backend_tour: %s\nusage: backend_tour [--out DIR] [--rows N]\n", message);
  return 2;
}

}  // namespace

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  std::filesystem::path out = "out/backend_tour";
  int rows = 1024;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (arg == "--rows" && i + 1 < argc) {
      char* end = nullptr;
      const long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v < 1 || v > 1 << 20)
        return usage(("--rows = " + std::string(argv[i]) + ": must be an integer in [1, 1048576]").c_str());
      rows = static_cast<int>(v);
    } else {
      return usage(("unknown or incomplete flag '" + arg + "'").c_str());
    }
  }

  using namespace synthsae;
  std::printf("Kokkos %d.%d.%d, execution space %s, concurrency %d\n", kokkos_version / 10000,
              kokkos_version / 100 % 100, kokkos_version % 100, ExecSpace::name(), ExecSpace().concurrency());

  // Gaussian matrices from counter-based streams: row i uses stream i, whatever the thread.
  const int d = 768, n = 4096;
  Matrix<float> x("x", rows, d), w("w", d, n), y("y", rows, n);
  Kokkos::parallel_for(
      "fill_x", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
        RandomStream s(1, static_cast<std::uint64_t>(i));
        for (int j = 0; j < d; ++j) x(i, j) = s.normal<float>();
      });
  Kokkos::parallel_for(
      "fill_w", Kokkos::RangePolicy<ExecSpace>(0, d), KOKKOS_LAMBDA(int i) {
        RandomStream s(2, static_cast<std::uint64_t>(i));
        for (int j = 0; j < n; ++j) w(i, j) = s.normal<float>() / 27.7128f;  // 1/sqrt(768)
      });
  const auto t0 = std::chrono::steady_clock::now();
  gemm(Op::N, Op::N, 1.0f, x, w, 0.0f, y);
  ExecSpace().fence();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double sum_sq = 0;
  Kokkos::parallel_reduce(
      "sum_sq", Kokkos::RangePolicy<ExecSpace>(0, rows),
      KOKKOS_LAMBDA(int i, double& acc) {
        for (int j = 0; j < n; ++j) acc += double(y(i, j)) * y(i, j);
      },
      sum_sq);
  std::printf("GEMM %d x %d x %d: %.3f s (%.1f GFLOP/s); mean y^2 = %.4f (expected 1 +- 0.01)\n", rows, d, n, seconds,
              2.0 * rows * d * n / seconds * 1e-9, sum_sq / (double(rows) * n));

  std::filesystem::create_directories(out);
  auto host =
      Kokkos::create_mirror_view_and_copy(HostSpace(), Kokkos::subview(y, Kokkos::make_pair(0, 4), Kokkos::ALL()));
  io::SafetensorsFile file;
  file.tensors["y_first_rows"] =
      io::make_tensor<float>(io::Dtype::F32, {4, n}, std::span<const float>(host.data(), host.size()));
  file.metadata["producer"] = "synthsae backend_tour";
  io::write_safetensors(out / "y.safetensors", file);
  const auto back = io::read_safetensors(out / "y.safetensors");
  std::printf("wrote %s (%zu tensor, y[0][0] = %.6f read back)\n", (out / "y.safetensors").c_str(), back.tensors.size(),
              io::tensor_values<float>(back.at("y_first_rows"))[0]);
  return 0;
}
