// gemm against a triple loop for every transpose combination, alpha/beta cases,
// row-strided subviews, and shape errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <utility>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/gemm.hpp"

using namespace synthsae;

namespace {

template <class T>
Matrix<T> random_matrix(int rows, int cols, std::uint64_t stream) {
  Matrix<T> m("m", rows, cols);
  auto h = Kokkos::create_mirror_view(m);
  RandomStream s(17, stream);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) h(i, j) = s.normal<T>();
  Kokkos::deep_copy(m, h);
  return m;
}

// Reference: C = alpha op(A) op(B) + beta C0 in long double on the host.
template <class T, class VA, class VB, class VC0, class VC>
long double max_error(Op oa, Op ob, T alpha, const VA& A, const VB& B, T beta, const VC0& C0, const VC& C) {
  auto a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), A);
  auto b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), B);
  auto c0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C0);
  auto c = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C);
  const int k = oa == Op::N ? int(a.extent(1)) : int(a.extent(0));
  long double worst = 0;
  for (int i = 0; i < int(c.extent(0)); ++i)
    for (int j = 0; j < int(c.extent(1)); ++j) {
      long double acc = 0;
      for (int p = 0; p < k; ++p) {
        const long double x = oa == Op::N ? a(i, p) : a(p, i);
        const long double y = ob == Op::N ? b(p, j) : b(j, p);
        acc += x * y;
      }
      const long double expected = alpha * acc + (beta == T(0) ? 0.0L : beta * (long double)c0(i, j));
      worst = std::max(worst, std::fabs(expected - (long double)c(i, j)));
    }
  return worst;
}

}  // namespace

TEMPLATE_TEST_CASE("gemm matches a triple loop for every transpose combination", "[core][gemm]", float, double) {
  using T = TestType;
  // Inputs are N(0,1); each entry sums k = 37 products, so |error| <= k * eps * sum|a||b|,
  // about 37 * eps * 37 in the worst case; 64 * k * eps is a safe bound that still catches
  // any wrong index (an error of order 1).
  const T tol = T(64 * 37) * std::numeric_limits<T>::epsilon();
  const int m = 13, n = 29, k = 37;
  for (Op oa : {Op::N, Op::T})
    for (Op ob : {Op::N, Op::T})
      for (auto [alpha, beta] : {std::pair<T, T>{1, 0}, {T(-0.5), T(2)}, {T(2), T(1)}}) {
        auto A = oa == Op::N ? random_matrix<T>(m, k, 1) : random_matrix<T>(k, m, 1);
        auto B = ob == Op::N ? random_matrix<T>(k, n, 2) : random_matrix<T>(n, k, 2);
        auto C0 = random_matrix<T>(m, n, 3);
        Matrix<T> C("C", m, n);
        Kokkos::deep_copy(C, C0);
        gemm(oa, ob, alpha, A, B, beta, C);
        INFO("op_a " << int(oa) << " op_b " << int(ob) << " alpha " << alpha << " beta " << beta);
        CHECK(max_error<T>(oa, ob, alpha, A, B, beta, C0, C) < tol);
      }
}

TEST_CASE("gemm splits C into panels of rows or columns correctly, for every transpose combination",
          "[core][gemm]") {
  // The host GEMM runs panels of at least 128 rows (m >= n) or columns (n > m): 300 x 40 has three
  // row panels, 40 x 300 three column panels, the last one short. k = 23 products per entry:
  // 64 k eps bounds the float error of N(0, 1) inputs and catches any misplaced panel.
  const int k = 23;
  const float tol = float(64 * k) * std::numeric_limits<float>::epsilon();
  for (auto [m, n] : {std::pair<int, int>{300, 40}, {40, 300}, {257, 257}})
    for (Op oa : {Op::N, Op::T})
      for (Op ob : {Op::N, Op::T}) {
        auto A = oa == Op::N ? random_matrix<float>(m, k, 6) : random_matrix<float>(k, m, 6);
        auto B = ob == Op::N ? random_matrix<float>(k, n, 7) : random_matrix<float>(n, k, 7);
        auto C0 = random_matrix<float>(m, n, 8);
        Matrix<float> C("C", m, n);
        Kokkos::deep_copy(C, C0);
        gemm(oa, ob, -0.5f, A, B, 2.0f, C);
        INFO("m " << m << " n " << n << " op_a " << int(oa) << " op_b " << int(ob));
        CHECK(max_error<float>(oa, ob, -0.5f, A, B, 2.0f, C0, C) < tol);
      }
}

TEST_CASE("gemm with beta = 0 ignores NaN already in C", "[core][gemm]") {
  auto A = random_matrix<double>(4, 3, 4);
  auto B = random_matrix<double>(3, 5, 5);
  Matrix<double> C("C", 4, 5);
  Kokkos::deep_copy(C, std::nan(""));
  gemm(Op::N, Op::N, 1.0, A, B, 0.0, C);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 5; ++j) CHECK(std::isfinite(h(i, j)));
}

TEST_CASE("gemm works in place on row-range and column-range subviews", "[core][gemm]") {
  // Row 2..7 of a 10 x 8 matrix (LayoutRight, ld 8) and columns 1..4 (LayoutStride, ld 8).
  auto big_a = random_matrix<double>(10, 8, 6);
  auto big_b = random_matrix<double>(8, 9, 7);
  auto big_c = random_matrix<double>(10, 9, 8);
  auto A = Kokkos::subview(big_a, Kokkos::make_pair(2, 7), Kokkos::make_pair(1, 5));  // 5 x 4
  auto B = Kokkos::subview(big_b, Kokkos::make_pair(3, 7), Kokkos::ALL());            // 4 x 9
  auto C = Kokkos::subview(big_c, Kokkos::make_pair(5, 10), Kokkos::ALL());           // 5 x 9
  Matrix<double> C0("C0", 5, 9);
  Kokkos::deep_copy(C0, C);
  auto before = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), big_c);
  gemm(Op::N, Op::N, 1.5, A, B, -1.0, C);
  CHECK(max_error<double>(Op::N, Op::N, 1.5, A, B, -1.0, C0, C) < 1e-12);
  auto after = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), big_c);
  int touched_outside = 0;  // rows 0..4 of big_c must be untouched
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 9; ++j) touched_outside += before(i, j) != after(i, j);
  CHECK(touched_outside == 0);
}

TEST_CASE("gemm with an empty inner dimension scales C by beta", "[core][gemm]") {
  Matrix<double> A("A", 3, 0), B("B", 0, 2), C("C", 3, 2);
  Kokkos::deep_copy(C, 4.0);
  gemm(Op::N, Op::N, 1.0, A, B, 0.5, C);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C);
  CHECK(h(2, 1) == 2.0);
}

TEST_CASE("gemm rejects shapes that do not fit, naming them", "[core][gemm]") {
  Matrix<float> A("A", 3, 4), B("B", 5, 2), C("C", 3, 2);
  CHECK_THROWS_WITH(gemm(Op::N, Op::N, 1.0f, A, B, 0.0f, C),
                    Catch::Contains("[3 x 4]") && Catch::Contains("[5 x 2]") && Catch::Contains("[3 x 2]"));
  CHECK_THROWS_AS(gemm(Op::N, Op::T, 1.0f, A, B, 0.0f, C), ShapeError);
  Kokkos::View<float**, Kokkos::LayoutLeft> left("left", 4, 2);  // column-major: rows not contiguous
  CHECK_THROWS_WITH(gemm(Op::N, Op::N, 1.0f, A, left, 0.0f, C), Catch::Contains("column stride"));
}
