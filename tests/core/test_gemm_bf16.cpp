// GemmMath::bf16 on the host (core/gemm_bf16_host.hpp): every unit this processor has (the AMX
// tile unit, AVX-512 BF16's dot products) and the emulation that runs elsewhere, against a
// long-double product of the operands rounded to BF16, with FP32 accumulation's error bound.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>
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
  using gemm_impl::HostBf16Unit;
  std::vector<Path> paths;
  for (const HostBf16Unit unit : {HostBf16Unit::emulated, HostBf16Unit::avx512_bf16, HostBf16Unit::amx_tiles}) {
    if (!gemm_impl::host_bf16_unit_available(unit)) {
      WARN("this processor has no " << gemm_impl::host_bf16_unit_name(unit) << " (or Linux refused it): not tested");
      continue;
    }
    paths.push_back({gemm_impl::host_bf16_unit_name(unit),
                     [unit](bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha,
                            const RowMajorOperand<float>& a, const RowMajorOperand<float>& b, float beta,
                            const RowMajorOperand<float>& c) {
                       gemm_impl::host_gemm_bf16_on(unit, ta, tb, m, n, k, alpha, a, b, beta, c);
                     }});
  }
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
  const Shape shapes[] = {{1, 1, 1}, {32, 32, 32}, {36, 64, 48}, {17, 33, 31}, {40, 70, 100}, {64, 96, 64}, {33, 17, 129}};
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
          // The bound is tight enough to tell the two references apart on these operands, so a
          // product of unrounded operands would have failed the check above.
          CHECK(d.unrounded_gap > 1.0);
        }
}

TEST_CASE("bf16 gemm rounds each operand to nearest even, exactly, ties included", "[core][gemm][bf16]") {
  // K = 1: each entry is one product of two BF16 values (exact in FP32), so C must equal it bit
  // for bit. The operands' low 16 bits are ties (0x8000: odd BF16 rounds up, even stays), just
  // above and below them, and zero (no value or product below FP32's normal range, which the
  // tile unit flushes to zero).
  const std::uint32_t highs[] = {0x3F80, 0x3F81, 0xBFC0, 0x4049, 0x3E4C, 0xC2F7, 0x3F7F, 0x3A83};
  const std::uint32_t lows[] = {0x8000, 0x8001, 0x7FFF, 0x0000, 0xFFFF};
  std::vector<float> values;
  for (std::uint32_t h : highs)
    for (std::uint32_t l : lows) values.push_back(bits_float(h << 16 | l));
  const std::size_t m = values.size(), n = values.size();
  std::vector<float> a = values, b = values;  // A: m x 1, B: 1 x n
  for (const auto& path : bf16_paths()) {
    std::vector<float> c(m * n, -1.0f);
    path.product(false, false, m, n, 1, 1.0f, RowMajorOperand<float>{a.data(), m, 1, 1},
                 RowMajorOperand<float>{b.data(), 1, n, n}, 0.0f, RowMajorOperand<float>{c.data(), m, n, n});
    int wrong = 0;
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) wrong += c[i * n + j] != to_bf16(a[i]) * to_bf16(b[j]);
    INFO(path.name);
    CHECK(wrong == 0);
  }
  CHECK(to_bf16(bits_float(0x3F808000u)) == bits_float(0x3F800000u));  // the tie rule the oracle uses
  CHECK(to_bf16(bits_float(0x3F818000u)) == bits_float(0x3F820000u));
}

TEST_CASE("bf16 gemm honours leading dimensions longer than the rows, and reads no padding", "[core][gemm][bf16]") {
  // Every operand's rows are padded with NaN: a read of the padding would put NaN into C, and a
  // write into C's padding would overwrite the NaN there.
  const std::size_t m = 40, n = 70, k = 50, pad = 7;
  for (const auto& path : bf16_paths())
    for (int ops = 0; ops < 4; ++ops)
      for (const auto& [alpha, beta] : {std::pair{1.0f, 1.0f}, std::pair{0.5f, -2.0f}}) {
        Problem p = problem(ops & 1, ops & 2, m, n, k, 1300 + ops);
        auto padded = [&](const std::vector<float>& x, std::size_t rows, std::size_t cols) {
          std::vector<float> out(rows * (cols + pad), std::numeric_limits<float>::quiet_NaN());
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < cols; ++j) out[r * (cols + pad) + j] = x[r * cols + j];
          return out;
        };
        const std::size_t a_rows = p.ta ? k : m, a_cols = p.ta ? m : k, b_rows = p.tb ? n : k, b_cols = p.tb ? k : n;
        auto a = padded(p.a, a_rows, a_cols), b = padded(p.b, b_rows, b_cols), c = padded(p.c0, m, n);
        path.product(p.ta, p.tb, m, n, k, alpha, RowMajorOperand<float>{a.data(), a_rows, a_cols, a_cols + pad},
                     RowMajorOperand<float>{b.data(), b_rows, b_cols, b_cols + pad}, beta,
                     RowMajorOperand<float>{c.data(), m, n, n + pad});
        std::vector<float> dense(m * n);
        int padding_touched = 0;
        for (std::size_t r = 0; r < m; ++r) {
          for (std::size_t j = 0; j < n; ++j) dense[r * n + j] = c[r * (n + pad) + j];
          for (std::size_t j = n; j < n + pad; ++j) padding_touched += !std::isnan(c[r * (n + pad) + j]);
        }
        INFO(path.name << ", trans " << (ops & 1) << (ops >> 1) << ", alpha " << alpha << ", beta " << beta);
        CHECK(padding_touched == 0);
        CHECK(deviation(p, alpha, beta, dense).over_bound <= 1.0);  // NaN fails this too
      }
}

TEST_CASE("gemm in GemmMath::bf16 on host Views follows the BF16 contract; tf32 runs as FP32", "[core][gemm][bf16]") {
  const int m = 45, n = 70, k = 90;
  Problem p = problem(false, true, m, n, k, 900);
  // Host Views: in a CUDA build the default memory space would send the products to cuBLAS.
  using HostMatrix = Matrix<float, Kokkos::HostSpace>;
  HostMatrix A("A", m, k), B("B", n, k), C("C", m, n), C32("C32", m, n), Ctf("Ctf", m, n);
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
  // Twice the tile path's threading threshold (8x the FP32 product's), so that both threads work.
  const std::size_t m = 520, n = 512;
  const auto k = static_cast<std::size_t>(std::ceil(2 * 8 * gemm_impl::gemm_parallel_min_work / (m * n) / 32)) * 32;
  for (const auto& path : bf16_paths()) {
    Problem p = problem(false, false, m, n, k, 1500);
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

TEST_CASE("bf16 gemm starting every row from row_init equals a fill of C then beta = 1, bit for bit, on every unit",
          "[core][gemm][bf16]") {
  using gemm_impl::HostBf16Unit;
  // 70 x 100: whole 32 x 32 tile blocks and clipped ones on both sides (the tile unit loads a
  // whole block's start from row_init with a stride of 0, and adds it to a clipped one last), and
  // the AVX-512 kernel's 12-row panels with a short last one. alpha = 1 takes the sums-from-C
  // route, -0.75 the scaled one. C starts as NaN: with row_init it must not be read. beta = 0 is
  // passed with row_init on purpose (row_init overrides it to 1; a path that ignored row_init
  // would then lose v).
  const std::size_t m = 70, n = 100, k = 45;
  for (const HostBf16Unit unit : {HostBf16Unit::emulated, HostBf16Unit::avx512_bf16, HostBf16Unit::amx_tiles}) {
    if (!gemm_impl::host_bf16_unit_available(unit)) continue;  // bf16_paths() warns about it
    for (const float alpha : {1.0f, -0.75f})
      for (const bool ta : {false, true})
        for (const bool tb : {false, true}) {
          Problem p = problem(ta, tb, m, n, k, 1700);
          const std::vector<float> init = normals(n, 1703);
          std::vector<float> filled(m * n), started(m * n, std::numeric_limits<float>::quiet_NaN());
          for (std::size_t i = 0; i < m; ++i) std::copy(init.begin(), init.end(), filled.begin() + i * n);
          const auto a = p.op(p.a, ta, m, k), b = p.op(p.b, tb, k, n);
          gemm_impl::host_gemm_bf16_on(unit, ta, tb, m, n, k, alpha, a, b, 1.0f, {filled.data(), m, n, n});
          gemm_impl::host_gemm_bf16_on(unit, ta, tb, m, n, k, alpha, a, b, 0.0f, {started.data(), m, n, n},
                                       init.data());
          INFO(gemm_impl::host_bf16_unit_name(unit) << " alpha " << alpha << " trans_a " << ta << " trans_b " << tb);
          int differ = 0;
          for (std::size_t e = 0; e < m * n; ++e) differ += std::memcmp(&filled[e], &started[e], sizeof(float)) != 0;
          CHECK(differ == 0);
          // And it is a product at all: the fill form against the reference's bound.
          p.c0 = init;
          p.c0.resize(m * n);
          for (std::size_t i = 1; i < m; ++i) std::copy(init.begin(), init.end(), p.c0.begin() + i * n);
          CHECK(deviation(p, alpha, 1.0f, started).over_bound <= 1.0);
        }
  }
}
