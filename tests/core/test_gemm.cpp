// gemm against a triple loop for every transpose combination, alpha/beta cases,
// row-strided subviews, and shape errors; gemm_onto_rows against a fill then gemm.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
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

namespace {

// C = v in every row, then gemm with beta = 1: what gemm_onto_rows must equal, bit for bit.
template <class T, class VA, class VB, class VC>
void fill_then_gemm(Op oa, Op ob, T alpha, const VA& A, const VB& B, const Vector<T>& v, const VC& C,
                    GemmMath math = default_gemm_math()) {
  auto h = Kokkos::create_mirror_view(C);
  auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  for (int i = 0; i < int(C.extent(0)); ++i)
    for (int j = 0; j < int(C.extent(1)); ++j) h(i, j) = hv(j);
  Kokkos::deep_copy(C, h);
  gemm(oa, ob, alpha, A, B, T(1), C, math);
}

template <class T>
Vector<T> random_vector(int n, std::uint64_t stream) {
  Vector<T> v("v", n);
  auto h = Kokkos::create_mirror_view(v);
  RandomStream s(19, stream);
  for (int j = 0; j < n; ++j) h(j) = s.normal<T>();
  Kokkos::deep_copy(v, h);
  return v;
}

// Entries whose bits differ (so -0 against +0, or two NaNs with different payloads, count).
template <class VC, class VD>
int differing_entries(const VC& C, const VD& D) {
  auto c = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C);
  auto d = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), D);
  int differ = 0;
  for (int i = 0; i < int(c.extent(0)); ++i)
    for (int j = 0; j < int(c.extent(1)); ++j) differ += std::memcmp(&c(i, j), &d(i, j), sizeof(c(i, j))) != 0;
  return differ;
}

}  // namespace

TEMPLATE_TEST_CASE("gemm_onto_rows equals a fill of C's rows then gemm with beta = 1, bit for bit", "[core][gemm]",
                   float, double) {
  using T = TestType;
  // Row panels (300 x 40), column panels (40 x 300), both sides a panel and a bit (257 x 257), and
  // the encoder's shape at cpu-1k (1,024 x 1,024, k = 128: threaded). C starts as NaN: the fused
  // form must not read it (beta * C with beta = 0 would still be NaN).
  for (auto [m, n, k] : {std::tuple<int, int, int>{300, 40, 23}, {40, 300, 23}, {257, 257, 23}, {1024, 1024, 128}})
    for (Op oa : {Op::N, Op::T})
      for (Op ob : {Op::N, Op::T}) {
        if (m == 1024 && (oa == Op::T || ob == Op::T)) continue;  // the encoder's product only
        auto A = oa == Op::N ? random_matrix<T>(m, k, 9) : random_matrix<T>(k, m, 9);
        auto B = ob == Op::N ? random_matrix<T>(k, n, 10) : random_matrix<T>(n, k, 10);
        const Vector<T> v = random_vector<T>(n, 11);
        Matrix<T> fused("fused", m, n), separate("separate", m, n);
        Kokkos::deep_copy(fused, std::numeric_limits<T>::quiet_NaN());
        gemm_onto_rows(oa, ob, T(-0.75), A, B, v, fused);
        fill_then_gemm(oa, ob, T(-0.75), A, B, v, separate);
        INFO("m " << m << " n " << n << " k " << k << " op_a " << int(oa) << " op_b " << int(ob));
        CHECK(differing_entries(fused, separate) == 0);
        // And the sum itself, v + alpha A B, to the panel test's bound above (64 k eps for N(0, 1)
        // inputs, |alpha| < 1 and one N(0, 1) term added).
        Matrix<T> c0("c0", m, n);
        const T tol = T(64 * k) * std::numeric_limits<T>::epsilon();
        auto hc0 = Kokkos::create_mirror_view(c0);
        auto hv = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) hc0(i, j) = hv(j);
        Kokkos::deep_copy(c0, hc0);
        if (m < 1024) CHECK(max_error<T>(oa, ob, T(-0.75), A, B, T(1), c0, fused) < tol);
      }
}

TEST_CASE("gemm_onto_rows: a column range of a wider C, BF16 arithmetic, an empty inner dimension, a wrong v",
          "[core][gemm]") {
  // Columns 3..203 of a 150 x 210 matrix (row stride 210): the fused fill writes only the range.
  auto A = random_matrix<float>(150, 31, 12);
  auto B = random_matrix<float>(31, 200, 13);
  const Vector<float> v = random_vector<float>(200, 14);
  Matrix<float> big("big", 150, 210), big_separate("big_separate", 150, 210);
  Kokkos::deep_copy(big, 5.0f), Kokkos::deep_copy(big_separate, 5.0f);
  const auto range = std::make_pair(3, 203);
  gemm_onto_rows(Op::N, Op::N, 1.0f, A, B, v, Kokkos::subview(big, Kokkos::ALL(), range));
  fill_then_gemm(Op::N, Op::N, 1.0f, A, B, v, Kokkos::subview(big_separate, Kokkos::ALL(), range));
  CHECK(differing_entries(big, big_separate) == 0);  // columns outside the range still 5 in both
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), big);
  CHECK(hb(7, 2) == 5.0f);
  CHECK(hb(149, 209) == 5.0f);
  // Rows 0..299 and columns 0..40 of a 300 x 50 matrix: row panels with a leading dimension of 50.
  auto A2 = random_matrix<float>(300, 17, 15);
  auto B2 = random_matrix<float>(17, 40, 16);
  const Vector<float> v2 = random_vector<float>(40, 17);
  Matrix<float> tall("tall", 300, 50), tall_separate("tall_separate", 300, 50);
  Kokkos::deep_copy(tall, -1.0f), Kokkos::deep_copy(tall_separate, -1.0f);
  const auto first40 = std::make_pair(0, 40);
  gemm_onto_rows(Op::N, Op::N, 2.0f, A2, B2, v2, Kokkos::subview(tall, Kokkos::ALL(), first40));
  fill_then_gemm(Op::N, Op::N, 2.0f, A2, B2, v2, Kokkos::subview(tall_separate, Kokkos::ALL(), first40));
  CHECK(differing_entries(tall, tall_separate) == 0);
  auto ht = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), tall);
  CHECK(ht(299, 45) == -1.0f);

  // BF16 arithmetic starts its sums from v (on every unit: test_gemm_bf16.cpp): the same bits as
  // the fill then the product.
  Matrix<float> bf16_fused("bf16_fused", 150, 200), bf16_separate("bf16_separate", 150, 200);
  gemm_onto_rows(Op::N, Op::N, 1.0f, A, B, v, bf16_fused, GemmMath::bf16);
  fill_then_gemm(Op::N, Op::N, 1.0f, A, B, v, bf16_separate, GemmMath::bf16);
  CHECK(differing_entries(bf16_fused, bf16_separate) == 0);

  // k = 0: C is v in every row.
  Matrix<double> A0("A0", 3, 0), B0("B0", 0, 2), C0("C0", 3, 2);
  Vector<double> v0("v0", 2);
  auto hv0 = Kokkos::create_mirror_view(v0);
  hv0(0) = 1.5, hv0(1) = -2.0;
  Kokkos::deep_copy(v0, hv0);
  Kokkos::deep_copy(C0, std::nan(""));
  gemm_onto_rows(Op::N, Op::N, 1.0, A0, B0, v0, C0);
  auto h0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C0);
  for (int i = 0; i < 3; ++i) {
    CHECK(h0(i, 0) == 1.5);
    CHECK(h0(i, 1) == -2.0);
  }

  Vector<float> wrong("wrong", 199);
  Matrix<float> C("C", 150, 200);
  CHECK_THROWS_WITH(gemm_onto_rows(Op::N, Op::N, 1.0f, A, B, wrong, C),
                    Catch::Contains("199") && Catch::Contains("200"));
  // Operands that do not fit: a ShapeError before anything is written, in FP32 and in BF16.
  auto B_short = random_matrix<float>(30, 200, 18);  // 30 rows where A has 31 columns
  Kokkos::deep_copy(C, 3.0f);
  for (GemmMath math : {GemmMath::fp32, GemmMath::bf16}) {
    CHECK_THROWS_WITH(gemm_onto_rows(Op::N, Op::N, 1.0f, A, B_short, v, C, math), Catch::Contains("[30 x 200]"));
    auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), C);
    int written = 0;
    for (int i = 0; i < 150; ++i)
      for (int j = 0; j < 200; ++j) written += hc(i, j) != 3.0f;
    CHECK(written == 0);
  }
}
