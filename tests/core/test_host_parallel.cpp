// host_parallel.hpp: the row loops that thread the Serial-Kokkos build over OpenMP visit every
// row once, count exactly, and sum with the same bits at one and two threads; for_each_column
// sums each column's rows in order.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "synthsae/core/host_copy.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/core/huge_pages.hpp"
#include "synthsae/core/row_loops.hpp"

using namespace synthsae;

namespace {
/// Runs f with `threads` OpenMP threads (no-op without OpenMP), restoring the previous count.
template <class F>
auto with_threads(int threads, const F& f) {
#if defined(_OPENMP)
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto result = f();
  omp_set_num_threads(before);
  return result;
#else
  (void)threads;
  return f();
#endif
}
}  // namespace

TEST_CASE("host_rows, host_rows_count and host_rows_sum: every row once, the same bits at 1 and 2 threads",
          "[core][threads]") {
  const int n = 200003;  // not a multiple of the 64 chunks
  Kokkos::View<int*, MemSpace> hits("hits", n);
  Kokkos::View<double*, MemSpace> a("a", n);
  // Terms of mixed sign and magnitude, so that a different summation order changes the bits.
  Kokkos::parallel_for(
      "fill", Kokkos::RangePolicy<ExecSpace>(0, n),
      KOKKOS_LAMBDA(int i) { a(i) = (i % 2 ? -1.0 : 1.0) * (1.0 + 1e8 * (i % 97 == 0)) / (1.0 + i % 1013); });
  for (int threads : {1, 2}) {
    with_threads(threads, [&] {
      host_rows("hits", n, 64, KOKKOS_LAMBDA(int i) { hits(i) += 1; });
      return 0;
    });
  }
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), hits);
  int wrong = 0;
  for (int i = 0; i < n; ++i) wrong += h(i) != 2;
  CHECK(wrong == 0);

  const auto count = [&] {
    return host_rows_count("count", n, 64, KOKKOS_LAMBDA(int i, int& c) { c += i % 7 == 0; });
  };
  CHECK(with_threads(1, count) == (n + 6) / 7);
  CHECK(with_threads(2, count) == (n + 6) / 7);

  const auto sum = [&] { return host_rows_sum("sum", n, 64, KOKKOS_LAMBDA(int i, double& acc) { acc += a(i); }); };
  const double one = with_threads(1, sum), two = with_threads(2, sum);
  CHECK(one == two);  // bitwise
  // Against the plain sum, to rounding (the chunked order differs from it in the last bits).
  auto ha = Kokkos::create_mirror_view_and_copy(HostSpace(), a);
  long double exact = 0;
  for (int i = 0; i < n; ++i) exact += ha(i);
  CHECK(std::fabs(one - static_cast<double>(exact)) < 1e-6 * std::fabs(static_cast<double>(exact)) + 1e-6);
  if constexpr (host_rows_use_openmp_v) {
    // The fixed chunking by hand: 64 chunks in row order, then the chunk sums in order.
    double total = 0;
    for (long long c = 0; c < 64; ++c) {
      double part = 0;
      for (long long i = n * c / 64; i < n * (c + 1) / 64; ++i) part += ha(i);
      total += part;
    }
    CHECK(one == total);
  }
}

TEST_CASE("on_huge_pages: a large matrix comes back as a copy with every value, a small one as itself", "[core]") {
  Matrix<float> big("big", 3000, 1000);  // 12 MB: above the 8 MB floor
  auto h = Kokkos::create_mirror_view(big);
  for (int i = 0; i < 3000; ++i)
    for (int k = 0; k < 1000; ++k) h(i, k) = static_cast<float>(i) * 1000.0f + static_cast<float>(k) * 0.5f;
  Kokkos::deep_copy(big, h);
  const Matrix<float> moved = on_huge_pages(big);
  REQUIRE(moved.extent(0) == 3000);
  REQUIRE(moved.extent(1) == 1000);
  const auto back = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), moved);
  int differing = 0;
  for (int i = 0; i < 3000; ++i)
    for (int k = 0; k < 1000; ++k) differing += back(i, k) != h(i, k);
  CHECK(differing == 0);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if constexpr (host_accessible_v<ExecSpace>) CHECK(moved.data() != big.data());
#endif
  Matrix<float> small("small", 10, 10);
  CHECK(on_huge_pages(small).data() == small.data());
}

TEST_CASE("for_each_column: each column's rows in order, its entries written, at 1 and 2 threads",
          "[core][threads]") {
  // Column counts around the host's block of 16 (a ragged last block, one block, several).
  for (const int cols : {1, 15, 16, 17, 37, 64}) {
    CAPTURE(cols);
    const int rows = 23;
    Matrix<float> x("x", rows, cols);
    auto hx = Kokkos::create_mirror_view(x);
    for (int i = 0; i < rows; ++i)  // magnitudes far apart: a float sum in another order rounds otherwise
      for (int j = 0; j < cols; ++j) hx(i, j) = std::ldexp(float(1 + (i * 7 + j * 3) % 11), (i * 5 + j) % 29 - 14);
    Kokkos::deep_copy(x, hx);
    // Plain loops: the running sum of each column, written into its entries, and its total.
    std::vector<float> want_total(cols);
    std::vector<float> want_running(std::size_t(rows) * cols);
    for (int j = 0; j < cols; ++j) {
      float s = float(j);  // init(j)
      for (int i = 0; i < rows; ++i) {
        s += hx(i, j);
        want_running[std::size_t(i) * cols + j] = s;
      }
      want_total[j] = s;
    }
    for (const int threads : {1, 2}) {
      CAPTURE(threads);
      Matrix<float> running("running", rows, cols);
      Vector<float> total("total", cols);
      with_threads(threads, [&] {
        for_each_column(
            "test_columns", rows, cols, KOKKOS_LAMBDA(int j) { return float(j); },
            KOKKOS_LAMBDA(int i, int j, float& s) {
              s += x(i, j);
              running(i, j) = s;
            },
            KOKKOS_LAMBDA(int j, float s) { total(j) = s; });
        return 0;
      });
      auto hr = Kokkos::create_mirror_view_and_copy(HostSpace(), running);
      auto ht = Kokkos::create_mirror_view_and_copy(HostSpace(), total);
      for (int j = 0; j < cols; ++j) {
        REQUIRE(ht(j) == want_total[j]);
        for (int i = 0; i < rows; ++i) REQUIRE(hr(i, j) == want_running[std::size_t(i) * cols + j]);
      }
    }
  }
}

TEST_CASE("copy_view and fill_view: every byte, in pieces with a short last one, and the fallbacks", "[core][host_copy]") {
  // 1,001 x 333 floats: 1.27 MB, 20 pieces of 64 KB and a short one (where the host splits).
  Matrix<float> src("src", 1001, 333), dst("dst", 1001, 333);
  auto hs = Kokkos::create_mirror_view(src);
  for (std::size_t e = 0; e < hs.size(); ++e) hs.data()[e] = static_cast<float>(e) * 0.5f - 7.0f;
  Kokkos::deep_copy(src, hs);
  copy_view(dst, src);
  auto hd = Kokkos::create_mirror_view_and_copy(HostSpace(), dst);
  std::size_t differ = 0;
  for (std::size_t e = 0; e < hd.size(); ++e) differ += hd.data()[e] != hs.data()[e];
  CHECK(differ == 0);
  fill_view(dst, 3.25f);
  Kokkos::deep_copy(hd, dst);
  std::size_t unfilled = 0;
  for (std::size_t e = 0; e < hd.size(); ++e) unfilled += hd.data()[e] != 3.25f;
  CHECK(unfilled == 0);
  // A strided destination (every other column) is Kokkos::deep_copy's: the same values land.
  Matrix<float> wide("wide", 1001, 666);
  const auto strided = Kokkos::subview(wide, Kokkos::ALL, Kokkos::pair<int, int>(0, 333));
  copy_view(strided, src);
  auto hw = Kokkos::create_mirror_view_and_copy(HostSpace(), wide);
  differ = 0;
  for (int i = 0; i < 1001; ++i)
    for (int j = 0; j < 666; ++j) differ += hw(i, j) != (j < 333 ? hs(i, j) : 0.0f);
  CHECK(differ == 0);
}
