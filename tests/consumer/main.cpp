// Uses the installed headers end to end: a Philox known answer, a GEMM on Views, and a
// safetensors round trip. Exit code 0 only if all three agree with their expectations.
#include <cstdio>
#include <filesystem>

#include <synthsae/synthsae.hpp>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  const auto block = synthsae::philox4x32_10({{0, 0, 0, 0}}, {{0, 0}});
  if (block != synthsae::U32x4{{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}) return 1;

  synthsae::Matrix<double, synthsae::HostSpace> a("a", 2, 3), b("b", 3, 2), c("c", 2, 2);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) a(i, j) = i + j, b(j, i) = i * j + 1;
  synthsae::gemm(synthsae::Op::N, synthsae::Op::N, 1.0, a, b, 0.0, c);
  if (c(1, 1) != 1 * 1 + 2 * 2 + 3 * 3) return 2;  // row (1,2,3) . column (1,2,3)

  synthsae::io::SafetensorsFile file;
  file.tensors["c"] = synthsae::io::make_tensor<double>(synthsae::io::Dtype::F32, {2, 2},
                                                        std::vector<double>{c(0, 0), c(0, 1), c(1, 0), c(1, 1)});
  const auto path = std::filesystem::temp_directory_path() / "synthsae_consumer.safetensors";
  synthsae::io::write_safetensors(path, file);
  const auto back = synthsae::io::tensor_values<double>(synthsae::io::read_safetensors(path).at("c"));
  std::filesystem::remove(path);
  if (back[3] != c(1, 1)) return 3;
  std::printf("consumer ok: Kokkos %d, C(1,1) = %g\n", synthsae::kokkos_version, c(1, 1));
  return 0;
}
