// Selection kernels against brute force: the batch-wide top-m threshold (exact radix passes,
// and on host backends the candidate path with its fallback) and per-row top-k.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"

using namespace synthsae;

namespace {

// The m-th largest positive value by sorting, with the documented conventions.
float brute_threshold(std::vector<float> values, std::size_t m) {
  if (m == 0) return std::numeric_limits<float>::infinity();
  values.erase(std::remove_if(values.begin(), values.end(), [](float v) { return !(v > 0.0f); }), values.end());
  if (values.size() <= m) return 0.0f;
  std::sort(values.begin(), values.end(), std::greater<float>());
  return values[m - 1];
}

// rows x cols normals; `scale_row(i)` multiplies row i (to make the first rows unrepresentative).
Matrix<float> keys(int rows, int cols, std::uint64_t seed, std::vector<float>& flat,
                   const std::function<float(int)>& scale_row) {
  Matrix<float> m("keys", rows, cols);
  auto h = Kokkos::create_mirror_view(m);
  RandomStream s(seed, 3);
  flat.clear();
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) flat.push_back(h(i, j) = scale_row(i) * s.normal<float>());
  Kokkos::deep_copy(m, h);
  return m;
}

}  // namespace

TEST_CASE("batch top-m threshold equals the brute-force m-th largest positive value", "[sae][select]") {
  std::vector<float> flat;
  // 1,024 x 512: large enough for the host candidate path (sample = first 64 rows).
  const auto plain = keys(1024, 512, 1, flat, [](int) { return 1.0f; });
  for (std::size_t m :
       {std::size_t(1), std::size_t(25 * 1024), std::size_t(100000), std::size_t(262143), std::size_t(400000)}) {
    INFO("m = " << m);
    CHECK(batch_top_m_threshold(plain, m) == brute_threshold(flat, m));
    CHECK(detail::exact_batch_top_m_threshold(plain, m) == brute_threshold(flat, m));
  }
  CHECK(batch_top_m_threshold(plain, 0) == std::numeric_limits<float>::infinity());
  // First rows far larger than the rest: the sample's bound leaves fewer than m candidates,
  // so the candidate path must give up and the exact passes answer.
  const auto skewed = keys(1024, 512, 2, flat, [](int i) { return i < 64 ? 100.0f : 1.0f; });
  if constexpr (host_accessible_v<MemSpace>)
    CHECK_FALSE(detail::threshold_from_candidates(skewed, 25 * 1024).has_value());
  CHECK(batch_top_m_threshold(skewed, 25 * 1024) == brute_threshold(flat, 25 * 1024));
  // Ties: many equal values straddling the threshold.
  const auto ties = keys(1024, 64, 3, flat, [](int) { return 1.0f; });
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), ties);
  for (int i = 0; i < 1024; ++i)
    for (int j = 0; j < 64; j += 2) h(i, j) = 0.5f, flat[std::size_t(i) * 64 + j] = 0.5f;
  Kokkos::deep_copy(ties, h);
  CHECK(batch_top_m_threshold(ties, 20000) == brute_threshold(flat, 20000));
}
