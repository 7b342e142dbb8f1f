// GemmMath::bf16 on the host (core/gemm_bf16_host.hpp): the AMX tile path where this processor
// has it, and the emulation that runs elsewhere, against a long-double product of the operands
// rounded to BF16, with FP32 accumulation's error bound.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/float16.hpp"
#include "synthsae/core/gemm.hpp"
#ifdef _OPENMP
#include <omp.h>
#endif

using namespace synthsae;
using gemm_impl::RowMajorOperand;

namespace {

using Product = std::function<void(bool, bool, std::size_t, std::size_t, std::size_t, float,
                                   const RowMajorOperand<float>&, const RowMajorOperand<float>&, float,
                                   const RowMajorOperand<float>&)>;

struct Path {
  const char* name;
  Product product;
};

std::vector<Path> bf16_paths() {
  std::vector<Path> paths{{"emulated", gemm_impl::host_gemm_bf16_emulated}};
  if (gemm_impl::host_bf16_tiles_available()) paths.push_back({"AMX tiles", gemm_impl::host_gemm_bf16});
  return paths;
}

std::vector<float> normals(std::size_t count, std::uint64_t stream) {
  std::vector<float> v(count);
  RandomStream s(29, stream);
  for (auto& x : v) x = s.normal<float>();
  return v;
}

float to_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

struct Problem {
  bool ta, tb;
  std::size_t m, n, k;
  std::vector<float> a, b, c0;
  RowMajorOperand<float> op(std::vector<float>& x, bool trans, std::size_t rows, std::size_t cols) const {
    return trans ? RowMajorOperand<float>{x.data(), cols, rows, rows} : RowMajorOperand<float>{x.data(), rows, cols, cols};
  }
  float at_a(std::size_t i, std::size_t p) const { return ta ? a[p * m + i] : a[i * k + p]; }
  float at_b(std::size_t p, std::size_t j) const { return tb ? b[j * k + p] : b[p * n + j]; }
};

Problem problem(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, std::uint64_t stream) {
  return {ta, tb, m, n, k, normals(m * k, stream), normals(k * n, stream + 1), normals(m * n, stream + 2)};
}

struct Deviation {
  double over_bound = 0;      // largest |C - reference on BF16 operands| / bound
  double unrounded_gap = 0;   // largest |C - reference on the FP32 operands| / bound
};

// Reference on the BF16-rounded operands in long double. Bound: FP32 accumulation of k exact
// products plus the alpha and beta terms, (k + 2) units of 2^-23 of the sum of magnitudes (the
// classical gamma_k bound with room for the tile unit's pairwise order). Without the rounding
// the error is about sqrt(k) * 2^-9 of a product's size, far above it.
Deviation deviation(const Problem& p, float alpha, float beta, const std::vector<float>& c, std::size_t row_step = 1) {
  Deviation d;
  for (std::size_t i = 0; i < p.m; i += row_step)
    for (std::size_t j = 0; j < p.n; ++j) {
      long double rounded = 0, exact = 0, magnitude = 0;
      for (std::size_t q = 0; q < p.k; ++q) {
        const long double x = to_bf16(p.at_a(i, q)), y = to_bf16(p.at_b(q, j));
        rounded += x * y;
        magnitude += std::fabs(x * y);
        exact += (long double)p.at_a(i, q) * p.at_b(q, j);
      }
      const long double c0 = beta == 0.0f ? 0.0L : (long double)beta * p.c0[i * p.n + j];
      const long double bound =
          (p.k + 2) * std::ldexp(1.0L, -23) * (std::fabs(alpha) * magnitude + std::fabs(c0)) + 1e-30L;
      const long double got = c[i * p.n + j];
      d.over_bound = std::max<double>(d.over_bound, std::fabs(got - (alpha * rounded + c0)) / bound);
      d.unrounded_gap = std::max<double>(d.unrounded_gap, std::fabs(got - (alpha * exact + c0)) / bound);
    }
  return d;
}

std::vector<float> run(const Product& product, Problem& p, float alpha, float beta) {
  std::vector<float> c = p.c0;
  product(p.ta, p.tb, p.m, p.n, p.k, alpha, p.op(p.a, p.ta, p.m, p.k), p.op(p.b, p.tb, p.k, p.n), beta,
          RowMajorOperand<float>{c.data(), p.m, p.n, p.n});
  return c;
}

}  // namespace

TEST_CASE("bf16 gemm rounds its operands to BF16 and sums in FP32, every transpose and ragged shape",
          "[core][gemm][bf16]") {
  struct Shape {
    std::size_t m, n, k;
  };
  // Whole 32 x 32 blocks and K steps of 32, and every kind of remainder of each.
  const Shape shapes[] = {{1, 1, 1}, {32, 32, 32}, {17, 33, 31}, {40, 70, 100}, {64, 96, 64}, {33, 17, 129}};
  const std::pair<float, float> scalings[] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, 1.0f}, {-1.25f, -0.5f}};
  std::uint64_t stream = 0;
  for (const auto& path : bf16_paths())
    for (const auto& s : shapes)
      for (int ops = 0; ops < 4; ++ops)
        for (const auto& [alpha, beta] : scalings) {
          Problem p = problem(ops & 1, ops & 2, s.m, s.n, s.k, stream += 3);
          const Deviation d = deviation(p, alpha, beta, run(path.product, p, alpha, beta));
          INFO(path.name << ": " << s.m << " x " << s.n << " x " << s.k << ", trans " << (ops & 1) << (ops >> 1)
                         << ", alpha " << alpha << ", beta " << beta);
          CHECK(d.over_bound <= 1.0);
          CHECK(d.unrounded_gap > 1.0);  // the FP32 operands' product is out of reach: they were rounded
        }
}

TEST_CASE("gemm in GemmMath::bf16 on host Views follows the BF16 contract; tf32 runs as FP32", "[core][gemm][bf16]") {
  const int m = 45, n = 70, k = 90;
  Problem p = problem(false, true, m, n, k, 900);
  Matrix<float> A("A", m, k), B("B", n, k), C("C", m, n), C32("C32", m, n), Ctf("Ctf", m, n);
  auto ha = Kokkos::create_mirror_view(A);
  auto hb = Kokkos::create_mirror_view(B);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < k; ++j) ha(i, j) = p.a[i * k + j];
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < k; ++j) hb(i, j) = p.b[i * k + j];
  Kokkos::deep_copy(A, ha);
  Kokkos::deep_copy(B, hb);
  gemm(Op::N, Op::T, 1.0f, A, B, 0.0f, C, GemmMath::bf16);
  gemm(Op::N, Op::T, 1.0f, A, B, 0.0f, C32, GemmMath::fp32);
  {
    const ScopedGemmMath tf32(GemmMath::tf32);  // the thread's default reaches gemm
    gemm(Op::N, Op::T, 1.0f, A, B, 0.0f, Ctf);
  }
  auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C);
  auto h32 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C32);
  auto htf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), Ctf);
  std::vector<float> c(m * n);
  int tf32_differences = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      c[i * n + j] = hc(i, j);
      tf32_differences += htf(i, j) != h32(i, j);
    }
  const Deviation d = deviation(p, 1.0f, 0.0f, c);
  CHECK(d.over_bound <= 1.0);
  CHECK(d.unrounded_gap > 1.0);
  CHECK(tf32_differences == 0);
}

TEST_CASE("bf16 gemm with beta = 0 ignores NaN in C, in whole and partial blocks", "[core][gemm][bf16]") {
  for (const auto& path : bf16_paths()) {
    Problem p = problem(false, false, 50, 64, 40, 1200);
    std::fill(p.c0.begin(), p.c0.end(), std::numeric_limits<float>::quiet_NaN());
    for (const float alpha : {1.0f, 2.0f}) {
      const auto c = run(path.product, p, alpha, 0.0f);
      int nans = 0;
      for (float x : c) nans += std::isnan(x);
      INFO(path.name << ", alpha " << alpha);
      CHECK(nans == 0);
      CHECK(deviation(p, alpha, 0.0f, c).over_bound <= 1.0);
    }
  }
}

TEST_CASE("bf16 gemm gives the same bits on 1 and 2 threads, above the threading threshold", "[core][gemm][bf16]") {
  // 520 x 512 x 128 multiply-adds exceed the tile path's threading threshold (8 * 2^22).
  for (const auto& path : bf16_paths()) {
    Problem p = problem(false, false, 520, 512, 128, 1500);
    auto with_threads = [&](int threads) {
#ifdef _OPENMP
      const int before = omp_get_max_threads();
      omp_set_num_threads(threads);
#endif
      auto c = run(path.product, p, 1.0f, 0.0f);
#ifdef _OPENMP
      omp_set_num_threads(before);
#endif
      (void)threads;
      return c;
    };
    const auto one = with_threads(1), two = with_threads(2);
    INFO(path.name);
    CHECK(one == two);
    CHECK(deviation(p, 1.0f, 0.0f, two, 37).over_bound <= 1.0);  // every 37th row against the reference
  }
}
