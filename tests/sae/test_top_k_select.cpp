// Selection kernels against brute force: the batch-wide top-m threshold (exact radix passes,
// and on host backends the candidate path with its fallback) and per-row top-k.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/kernels/row_top_k_lists.hpp"
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
  // One workspace reused by every call below, across matrices of three shapes (as a training
  // run reuses it): nothing a call leaves in it may change a later answer.
  BatchTopMWorkspace ws;
  for (std::size_t m :
       {std::size_t(1), std::size_t(25 * 1024), std::size_t(100000), std::size_t(262143), std::size_t(400000)}) {
    INFO("m = " << m);
    CHECK(batch_top_m_threshold(plain, m) == brute_threshold(flat, m));
    CHECK(batch_top_m_threshold(plain, m, ws) == brute_threshold(flat, m));
    CHECK(detail::exact_batch_top_m_threshold(plain, m, ws) == brute_threshold(flat, m));
  }
  CHECK(batch_top_m_threshold(plain, 0) == std::numeric_limits<float>::infinity());
  // First rows far larger than the rest: the sample's bound leaves fewer than m candidates,
  // so the candidate path must give up and the exact passes answer.
  const auto skewed = keys(1024, 512, 2, flat, [](int i) { return i < 64 ? 100.0f : 1.0f; });
  if constexpr (host_accessible_v<MemSpace>)
    CHECK_FALSE(detail::threshold_from_candidates(skewed, 25 * 1024, ws).has_value());
  CHECK(batch_top_m_threshold(skewed, 25 * 1024, ws) == brute_threshold(flat, 25 * 1024));
  // Ties: many equal values straddling the threshold.
  const auto ties = keys(1024, 64, 3, flat, [](int) { return 1.0f; });
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), ties);
  for (int i = 0; i < 1024; ++i)
    for (int j = 0; j < 64; j += 2) h(i, j) = 0.5f, flat[std::size_t(i) * 64 + j] = 0.5f;
  Kokkos::deep_copy(ties, h);
  CHECK(batch_top_m_threshold(ties, 20000, ws) == brute_threshold(flat, 20000));
  // Back to the first, larger matrix with the grown workspace.
  const auto again = keys(1024, 512, 1, flat, [](int) { return 1.0f; });
  const float answer = brute_threshold(flat, 25 * 1024);
  CHECK(batch_top_m_threshold(again, 25 * 1024, ws) == answer);
  // The previous answer only narrows the sample's search: any hint, from none to far above
  // every value (the sample then holds too few values above half of it and is searched whole),
  // gives the same exact threshold, and the workspace then remembers that threshold.
  for (float hint : {0.0f, 1e-6f, 0.5f * answer, answer, 1.9f * answer, 4.0f * answer, 1e30f}) {
    INFO("previous " << hint);
    ws.previous = hint;
    CHECK(batch_top_m_threshold(again, 25 * 1024, ws) == answer);
    if constexpr (host_accessible_v<MemSpace>) CHECK(ws.previous == answer);
  }
}

TEST_CASE("the host's fused pass writes every row once and answers as batch_top_m_threshold", "[sae][select]") {
  if constexpr (host_accessible_v<MemSpace>) {  // host backends only (a training step's keys)
    std::vector<float> flat;
    BatchTopMWorkspace ws;
    // (rows, scale of the first 64 rows, m): the candidate path; its fallbacks when the first rows
    // mislead the sample, with a bound above the m-th value (too few candidates) or far below it
    // (too many: each chunk stops listing); a batch too small for a sample; m = 0.
    struct Case {
      int rows;
      float first_rows;
      std::size_t m;
    };
    for (const Case& c : {Case{1024, 1.0f, 25 * 1024}, Case{1024, 100.0f, 25 * 1024}, Case{1024, 0.01f, 1000},
                          Case{200, 1.0f, 1000}, Case{1024, 1.0f, 0}}) {
      INFO("rows " << c.rows << ", first rows x" << c.first_rows << ", m " << c.m);
      const auto source = keys(c.rows, 512, 5, flat, [&](int i) { return i < 64 ? c.first_rows : 1.0f; });
      Matrix<float> written("written", c.rows, 512);
      Kokkos::deep_copy(written, std::numeric_limits<float>::quiet_NaN());
      std::vector<int> writes(c.rows, 0);  // one writer per row, so plain ints
      const float answer = batch_top_m_threshold_writing(written, c.m, ws, [&](int i) {
        ++writes[i];
        for (int j = 0; j < 512; ++j) written(i, j) = source(i, j);
      });
      CHECK(answer == brute_threshold(flat, c.m));
      CHECK(std::count(writes.begin(), writes.end(), 1) == c.rows);
      bool same = true;
      for (int i = 0; i < c.rows; ++i)
        for (int j = 0; j < 512; ++j) same = same && written(i, j) == source(i, j);
      CHECK(same);
      const bool from_list = c.rows == 1024 && c.first_rows == 1.0f && c.m > 0;
      CHECK((ws.listed_from == written.data()) == from_list);
      if (from_list) {  // answered from its list: what gather_listed relies on
        std::size_t at_or_above = 0, listed_at_or_above = 0;
        for (float v : flat) at_or_above += v >= answer;
        for (std::size_t e = 0; e < ws.listed; ++e) {
          const std::int64_t p = ws.candidate_positions(e);
          if (e > 0) REQUIRE(p > ws.candidate_positions(e - 1));  // row-major order
          listed_at_or_above += flat[p] >= answer;
        }
        CHECK(listed_at_or_above == at_or_above);
      }
    }
  }
}

namespace {

// The rows' k largest keys by sorting (key descending, column ascending), as the heap ranks.
std::vector<std::uint8_t> brute_row_top_k(const std::vector<float>& flat, int rows, int cols, int k,
                                          const std::vector<std::uint8_t>& allowed) {
  std::vector<std::uint8_t> mask(flat.size(), 0);
  for (int i = 0; i < rows; ++i) {
    std::vector<int> idx;
    for (int j = 0; j < cols; ++j)
      if (allowed.empty() || allowed[j]) idx.push_back(j);
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return flat[i * cols + a] > flat[i * cols + b]; });
    for (int q = 0; q < k && q < static_cast<int>(idx.size()); ++q) mask[i * cols + idx[q]] = 1;
  }
  return mask;
}

enum class RowForm { public_entry, radix, teams, among, of_row };

std::vector<std::uint8_t> device_row_top_k(const Matrix<float>& key, int k, const std::vector<std::uint8_t>& allowed,
                                           RowForm form) {
  Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask("mask", key.extent(0), key.extent(1));
  Kokkos::View<std::uint8_t*, MemSpace> allow("allowed", allowed.size());
  auto ha = Kokkos::create_mirror_view(allow);
  for (std::size_t j = 0; j < allowed.size(); ++j) ha(j) = allowed[j];
  Kokkos::deep_copy(allow, ha);
  const Kokkos::View<const std::uint8_t*, MemSpace> allowed_view(allow);
  if (form == RowForm::of_row) {  // the host's selection of a whole row (TopK's training step)
    REQUIRE(allowed.empty());
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), key);
    const int cols = static_cast<int>(key.extent(1));
    std::vector<detail::OrderedBits<float>> bits(cols);
    std::vector<int> listed(cols), out(cols);
    auto hm = Kokkos::create_mirror_view(mask);
    Kokkos::deep_copy(hm, 0);
    for (int i = 0; i < static_cast<int>(key.extent(0)); ++i) {
      const int kk = std::clamp(k, 0, cols);
      if (kk == 0) continue;
      const int m =
          kk == cols ? cols : detail::top_k_of_row(&h(i, 0), cols, kk, bits.data(), listed.data(), out.data());
      if (kk == cols) std::iota(out.begin(), out.end(), 0);
      REQUIRE(m == kk);
      for (int q = 0; q < m; ++q) {
        if (q > 0) REQUIRE(out[q] > out[q - 1]);  // columns ascending
        hm(i, out[q]) = 1;
      }
    }
    Kokkos::deep_copy(mask, hm);
  } else if (form == RowForm::among) {  // the host's selection among listed candidates (AuxK's)
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), key);
    std::vector<int> candidates, out(key.extent(1));
    for (int j = 0; j < static_cast<int>(key.extent(1)); ++j)
      if (allowed.empty() || allowed[j]) candidates.push_back(j);
    std::vector<detail::OrderedBits<float>> scratch(candidates.size());
    std::vector<int> kept(candidates.size());
    auto hm = Kokkos::create_mirror_view(mask);
    Kokkos::deep_copy(hm, 0);
    for (int i = 0; i < static_cast<int>(key.extent(0)); ++i) {
      const int m = detail::top_k_among(&h(i, 0), candidates.data(), static_cast<int>(candidates.size()), k,
                                        scratch.data(), kept.data(), out.data());
      REQUIRE(m == std::clamp(k, 0, static_cast<int>(candidates.size())));
      for (int q = 0; q < m; ++q) {
        if (q > 0) REQUIRE(out[q] > out[q - 1]);  // columns ascending
        hm(i, out[q]) = 1;
      }
    }
    Kokkos::deep_copy(mask, hm);
  } else if (form == RowForm::radix) {
    if constexpr (host_accessible_v<ExecSpace>) detail::row_top_k_radix(key, k, mask, allowed_view);
    else detail::row_top_k_by_teams(key, k, mask, allowed_view);  // a GPU has no per-thread form
  } else if (form == RowForm::teams) {
    detail::row_top_k_by_teams(key, k, mask, allowed_view);  // the GPU's form, here on the host
  } else {
    row_top_k(key, k, mask, allowed_view);
  }
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), mask);
  return std::vector<std::uint8_t>(h.data(), h.data() + h.size());
}

}  // namespace

TEST_CASE("per-row top-k has no limit on k: radix selection (per thread and by teams) equals brute force and the heap",
          "[sae][select]") {
  std::vector<float> flat;
  // d_in = 4,096 gives AuxK k_aux = 2,048, twice the heap's limit.
  const int rows = 6, cols = 8192;
  const auto key = keys(rows, cols, 11, flat, [](int) { return 1.0f; });
  std::vector<std::uint8_t> none, every_third(cols, 0);
  for (int j = 0; j < cols; j += 3) every_third[j] = 1;
  for (int k : {0, 1, 25, 1024, 1025, 2048, 4000, 8191, 8192, 9000}) {
    INFO("k = " << k);
    const auto expected = brute_row_top_k(flat, rows, cols, k, none);
    CHECK(device_row_top_k(key, k, none, RowForm::radix) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::teams) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::public_entry) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::among) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::of_row) == expected);
    const auto filtered = brute_row_top_k(flat, rows, cols, k, every_third);
    CHECK(device_row_top_k(key, k, every_third, RowForm::public_entry) == filtered);
    CHECK(device_row_top_k(key, k, every_third, RowForm::teams) == filtered);
    CHECK(device_row_top_k(key, k, every_third, RowForm::among) == filtered);
    if (k <= kMaxHeapTopK) CHECK(device_row_top_k(key, k, every_third, RowForm::radix) == filtered);
  }
  // Ties, signed zeros and negative keys: quantised keys so that the k-th value is shared by
  // many columns; the lowest columns win, as in the heap.
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), key);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      float v = std::round(flat[i * cols + j] * 2.0f) / 2.0f;
      if (v == 0.0f && (j % 2)) v = -0.0f;
      h(i, j) = v, flat[i * cols + j] = v;
    }
  Kokkos::deep_copy(key, h);
  for (int k : {3, 700, 1024, 2048, 5000}) {
    INFO("ties, k = " << k);
    const auto expected = brute_row_top_k(flat, rows, cols, k, none);
    CHECK(device_row_top_k(key, k, none, RowForm::radix) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::teams) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::public_entry) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::among) == expected);
    CHECK(device_row_top_k(key, k, none, RowForm::of_row) == expected);
    CHECK(device_row_top_k(key, k, every_third, RowForm::among) == brute_row_top_k(flat, rows, cols, k, every_third));
  }
}

TEST_CASE("top-k among candidates: a pivot set too high by an unrepresentative sample falls back to every candidate",
          "[sae][select]") {
  // The pivot comes from 64 keys at a stride of n / 64; here exactly those keys are the largest,
  // so only 64 reach the pivot and k = 100 needs the fallback. Brute force decides the answer.
  const int n = 1024;
  std::vector<float> flat;
  const auto key = keys(1, n, 21, flat, [](int) { return 1.0f; });
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), key);
  for (int j = 0; j < n; j += n / 64) h(0, j) = 100.0f, flat[j] = 100.0f;
  std::vector<int> candidates(n), kept(n), out(n);
  for (int j = 0; j < n; ++j) candidates[j] = j;
  std::vector<detail::OrderedBits<float>> scratch(n);
  for (int k : {60, 64, 65, 100, 700}) {
    INFO("k = " << k);
    const int m = detail::top_k_among(&h(0, 0), candidates.data(), n, k, scratch.data(), kept.data(), out.data());
    REQUIRE(m == k);
    std::vector<std::uint8_t> got(n, 0);
    for (int q = 0; q < m; ++q) got[out[q]] = 1;
    CHECK(got == brute_row_top_k(flat, 1, n, k, {}));
    CHECK(device_row_top_k(key, k, {}, RowForm::of_row) == brute_row_top_k(flat, 1, n, k, {}));
  }
}

TEST_CASE("top-k among a short candidate list (no pivot): ties, signed zeros and infinite keys as brute force",
          "[sae][select]") {
  // Fewer than 256 candidates: the whole list goes through the bit-wise search for the k-th key.
  const int rows = 4, cols = 150;
  std::vector<float> flat;
  const auto key = keys(rows, cols, 31, flat, [](int i) { return 1.0f + float(i); });
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), key);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      float v = std::round(flat[i * cols + j]);  // quantised: the k-th value is shared by many columns
      if (v == 0.0f && (j % 2)) v = -0.0f;
      if (i == 3 && j % 7 == 0) v = -std::numeric_limits<float>::infinity();
      if (i == 3 && j % 11 == 0) v = std::numeric_limits<float>::infinity();
      h(i, j) = v, flat[i * cols + j] = v;
    }
  Kokkos::deep_copy(key, h);
  std::vector<std::uint8_t> none, odd(cols, 0);
  for (int j = 1; j < cols; j += 2) odd[j] = 1;
  for (int k : {1, 2, 37, 64, 74, 75, 149, 150}) {
    INFO("k = " << k);
    CHECK(device_row_top_k(key, k, none, RowForm::among) == brute_row_top_k(flat, rows, cols, k, none));
    CHECK(device_row_top_k(key, k, none, RowForm::of_row) == brute_row_top_k(flat, rows, cols, k, none));
    CHECK(device_row_top_k(key, k, odd, RowForm::among) == brute_row_top_k(flat, rows, cols, k, odd));
  }
}

TEST_CASE("kth_largest_bits equals the k-th of the sorted values, for every k, with ties and any spread",
          "[sae][select]") {
  // Brute force: sort descending, take the k-th. Lists of 1 to 200 values drawn from a few
  // distributions: wide (every bit differs), narrow (a long common prefix), few distinct values
  // (ties at the answer, where the early stop must still return the k-th), all equal.
  auto check = [](auto tag, std::uint64_t seed) {
    using Bits = decltype(tag);
    RandomStream rng(seed, 0);
    for (int n : {1, 2, 3, 7, 64, 150, 200})
      for (int spread = 0; spread < 4; ++spread) {
        std::vector<Bits> v(n);
        for (auto& x : v) {
          const Bits wide = static_cast<Bits>(rng.next_u64());
          if (spread == 0) x = wide;
          else if (spread == 1) x = (Bits(0x5A) << (sizeof(Bits) * 8 - 8)) | (wide >> 20);
          else if (spread == 2) x = Bits(1000) + wide % 5;
          else x = Bits(77);
        }
        std::vector<Bits> sorted = v;
        std::sort(sorted.begin(), sorted.end(), std::greater<Bits>());
        int wrong = 0;
        for (int k = 1; k <= n; ++k) wrong += detail::kth_largest_bits(v.data(), n, k) != sorted[k - 1];
        INFO("n " << n << ", spread " << spread << ", bits " << sizeof(Bits) * 8);
        CHECK(wrong == 0);
      }
  };
  check(std::uint32_t{}, 5);
  check(std::uint64_t{}, 6);
}

TEST_CASE("list_row_at_least and append_above list exactly the keys a scalar scan lists, columns ascending",
          "[sae][select]") {
  // Lengths around the sixteen-key blocks (the vector form's unit) and a 1,024-key row; keys with
  // NaN, infinities, signed zeros, denormals and values one ulp either side of the floor.
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 0.0f, -0.0f,
                            std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min()};
  for (const float floor : {std::numeric_limits<float>::denorm_min(), 0.5f, 3.0f, std::numeric_limits<float>::infinity()}) {
    for (const int cols : {0, 1, 15, 16, 17, 31, 32, 33, 47, 1024}) {
      std::vector<float> row(cols);
      for (int j = 0; j < cols; ++j) {
        const std::uint32_t r = static_cast<std::uint32_t>(j) * 2654435761u ^ static_cast<std::uint32_t>(cols) * 40503u;
        switch (r % 5) {
          case 0: row[j] = specials[(r >> 3) % 7]; break;
          case 1: row[j] = std::nextafter(floor, 0.0f); break;
          case 2: row[j] = std::isinf(floor) ? floor : std::nextafter(floor, 10.0f); break;
          case 3: row[j] = floor; break;
          default: row[j] = float((r >> 8) % 1000) / 200.0f - 1.0f; break;
        }
      }
      INFO("floor " << floor << ", " << cols << " keys");
      std::vector<std::uint32_t> bits = {7u};  // appended to: what is there stays
      std::vector<std::int64_t> positions = {-7};
      const std::int64_t base = 5000;
      detail::list_row_at_least(row.data(), cols, floor, base, bits, positions);
      std::vector<std::uint32_t> want_bits = {7u};
      std::vector<std::int64_t> want_positions = {-7};
      for (int j = 0; j < cols; ++j)
        if (row[j] >= floor) want_bits.push_back(float_bits(row[j])), want_positions.push_back(base + j);
      CHECK(positions == want_positions);
      CHECK(bits == want_bits);
      if (cols == 1024) CHECK(want_bits.size() > 100);  // the long row lists many keys
      // The sample's scan: strictly above the cut (the floor here), NaN never.
      std::vector<float> above = {-7.0f}, want_above = {-7.0f};
      detail::append_above(row.data(), cols, floor, above);
      for (int j = 0; j < cols; ++j)
        if (row[j] > floor) want_above.push_back(row[j]);
      REQUIRE(above.size() == want_above.size());
      for (std::size_t q = 0; q < above.size(); ++q) CHECK(above[q] == want_above[q]);
    }
  }
}

TEST_CASE("write_keys_listing writes the keys and lists the candidates of the two-pass form, bit for bit",
          "[sae][select]") {
  // The fused candidate pass against ranking_key_row's product (h * scale, or h where scale is
  // null) followed by list_row_at_least's scalar rule: keys with NaN, infinities, signed zeros,
  // denormals and values one ulp either side of the floor, rows around the sixteen-key blocks
  // and a 1,024-key row, appended to a list that already holds entries, and a sentinel after
  // the row that must survive. Scaled rows start at a position past 2^31 (the 64-bit widening);
  // double rows take the two steps and must list what the float rule lists.
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            0.0f,
                            -0.0f,
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min()};
  for (const bool scaled : {false, true}) {
    for (const float floor :
         {std::numeric_limits<float>::denorm_min(), 0.5f, 3.0f, std::numeric_limits<float>::infinity()}) {
      for (const int cols : {0, 1, 15, 16, 17, 31, 32, 33, 47, 1024}) {
        std::vector<float> h(cols), scale(cols), key(cols + 1, -99.0f);
        for (int j = 0; j < cols; ++j) {
          const std::uint32_t r =
              static_cast<std::uint32_t>(j) * 2654435761u ^ static_cast<std::uint32_t>(cols) * 40503u;
          // Scales near 1 (decoder norms), and exactly 1 where h is set next to the floor, so the
          // product lands where the row puts it.
          scale[j] = (r >> 4) % 3 == 0 ? 1.0f : 0.75f + float((r >> 12) % 100) / 200.0f;
          switch (r % 5) {
            case 0:
              h[j] = specials[(r >> 3) % 7];
              break;
            case 1:
              h[j] = std::nextafter(floor, 0.0f), scale[j] = 1.0f;
              break;
            case 2:
              h[j] = std::nextafter(floor, 10.0f), scale[j] = 1.0f;
              break;
            case 3:
              h[j] = floor, scale[j] = 1.0f;
              break;
            default:
              h[j] = float((r >> 8) % 1000) / 200.0f - 1.0f;
              break;
          }
        }
        INFO((scaled ? "scaled" : "unscaled") << " keys, floor " << floor << ", " << cols << " keys");
        std::vector<std::uint32_t> bits = {7u};
        std::vector<std::int64_t> positions = {-7};
        const std::int64_t base = scaled ? (std::int64_t{1} << 33) + 5 : 5000;
        detail::write_keys_listing(h.data(), scaled ? scale.data() : nullptr, key.data(), cols, floor, base, bits,
                                   positions);
        std::vector<std::uint32_t> want_bits = {7u};
        std::vector<std::int64_t> want_positions = {-7};
        int wrong_keys = 0;
        for (int j = 0; j < cols; ++j) {
          const float want = scaled ? h[j] * scale[j] : h[j];
          wrong_keys += float_bits(key[j]) != float_bits(want) ? 1 : 0;
          if (want >= floor) want_bits.push_back(float_bits(want)), want_positions.push_back(base + j);
        }
        CHECK(wrong_keys == 0);
        CHECK(key[cols] == -99.0f);
        CHECK(positions == want_positions);
        CHECK(bits == want_bits);
        if (cols == 1024 && floor < 10.0f) CHECK(want_bits.size() > 100);  // the long row lists many keys
        // Double rows: keys h * scale in double, listed by their float values.
        const std::vector<double> hd(h.begin(), h.end()), scaled_by(scale.begin(), scale.end());
        std::vector<double> key_d(cols + 1, -99.0);
        std::vector<std::uint32_t> bits_d = {7u};
        std::vector<std::int64_t> positions_d = {-7};
        detail::write_keys_listing(hd.data(), scaled ? scaled_by.data() : nullptr, key_d.data(), cols, floor, base,
                                   bits_d, positions_d);
        std::vector<std::uint32_t> want_bits_d = {7u};
        std::vector<std::int64_t> want_positions_d = {-7};
        int wrong_double_keys = 0;
        for (int j = 0; j < cols; ++j) {
          const double want = scaled ? hd[j] * scaled_by[j] : hd[j];
          wrong_double_keys += !(key_d[j] == want || (std::isnan(key_d[j]) && std::isnan(want))) ? 1 : 0;
          if (static_cast<float>(want) >= floor)
            want_bits_d.push_back(float_bits(static_cast<float>(want))), want_positions_d.push_back(base + j);
        }
        CHECK(wrong_double_keys == 0);
        CHECK(key_d[cols] == -99.0);
        CHECK(positions_d == want_positions_d);
        CHECK(bits_d == want_bits_d);
      }
    }
  }
}

TEST_CASE("list_keys_at_least lists the ordered bits and columns a scalar scan lists, never past n", "[sae][select]") {
  // The per-row top-k's listing (AVX-512: sixteen keys compressed in registers and stored whole).
  // Pivots -inf (every key but NaN listed: the whole stores end exactly at n), the zeros of either
  // sign, a middle value and +inf; keys with NaN, infinities, signed zeros (one ordered bit
  // pattern for both), denormals and values one ulp either side of the pivot; lengths around the
  // sixteen-key blocks. Sentinels after n must survive.
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {
      std::numeric_limits<float>::quiet_NaN(),  inf, -inf, 0.0f, -0.0f, std::numeric_limits<float>::denorm_min(),
      -std::numeric_limits<float>::denorm_min()};
  for (const float pivot : {-inf, -0.0f, 0.0f, 0.75f, inf}) {
    for (const int n : {0, 1, 15, 16, 17, 31, 32, 33, 47, 1024}) {
      std::vector<float> row(n);
      for (int j = 0; j < n; ++j) {
        const std::uint32_t r = static_cast<std::uint32_t>(j) * 2654435761u ^ static_cast<std::uint32_t>(n) * 40503u;
        switch (r % 5) {
          case 0:
            row[j] = specials[(r >> 3) % 7];
            break;
          case 1:
            row[j] = std::isinf(pivot) ? -1.5f : std::nextafter(pivot, -10.0f);
            break;
          case 2:
            row[j] = std::isinf(pivot) ? pivot : std::nextafter(pivot, 10.0f);
            break;
          case 3:
            row[j] = pivot;
            break;
          default:
            row[j] = float((r >> 8) % 1000) / 200.0f - 2.5f;
            break;
        }
      }
      INFO("pivot " << pivot << ", " << n << " keys");
      constexpr std::uint32_t kSentinelBits = 0xdeadbeefu;
      constexpr int kSentinelColumn = -3;
      std::vector<std::uint32_t> bits(n + 16, kSentinelBits);
      std::vector<int> listed(n + 16, kSentinelColumn);
      const int count = detail::list_keys_at_least(row.data(), n, pivot, bits.data(), listed.data());
      std::vector<std::uint32_t> want_bits;
      std::vector<int> want_listed;
      for (int j = 0; j < n; ++j)
        if (row[j] >= pivot) want_bits.push_back(detail::ordered_bits(row[j])), want_listed.push_back(j);
      REQUIRE(count == static_cast<int>(want_listed.size()));
      CHECK(std::vector<std::uint32_t>(bits.begin(), bits.begin() + count) == want_bits);
      CHECK(std::vector<int>(listed.begin(), listed.begin() + count) == want_listed);
      bool sentinels = true;
      for (int q = n; q < n + 16; ++q)
        sentinels = sentinels && bits[q] == kSentinelBits && listed[q] == kSentinelColumn;
      CHECK(sentinels);
      if (pivot == -inf && n == 1024) CHECK(count > 800);  // every key but the NaNs
      if (n == 1024 && pivot == 0.0f) {                    // both zeros order as one
        CHECK(detail::ordered_bits(-0.0f) == detail::ordered_bits(0.0f));
        CHECK(std::count(want_bits.begin(), want_bits.end(), detail::ordered_bits(0.0f)) > 1);
      }
    }
  }
}

TEST_CASE("list_candidates_reaching lists by ordered bits what the scalar compaction lists, never past n",
          "[sae][select]") {
  // AuxK's listing among the dead columns (AVX-512: sixteen gathered at a time). Candidate lists
  // of every length around the sixteen-key blocks, at scattered ascending columns of a 1,200-key
  // row holding NaNs of both signs, infinities, signed zeros and denormals; pivots at 0 (every
  // candidate), the bits of -0 / +0 (one pattern), a middle key, +inf and +NaN's bits.
  const int width = 1200;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float specials[] = {nan, -nan, inf, -inf, 0.0f, -0.0f, std::numeric_limits<float>::denorm_min()};
  std::vector<float> row(width);
  RandomStream r(61, 4);
  for (int j = 0; j < width; ++j) row[j] = j % 9 == 0 ? specials[(j / 9) % 7] : r.normal<float>();
  const std::uint32_t pivots[] = {0u, detail::ordered_bits(0.0f), detail::ordered_bits(0.8f), detail::ordered_bits(inf),
                                  detail::ordered_bits(nan)};
  for (const std::uint32_t pivot : pivots) {
    for (const int n : {0, 1, 15, 16, 17, 31, 32, 33, 100, 600}) {
      std::vector<int> candidates;
      for (int j = 0; static_cast<int>(candidates.size()) < n; j += 1 + (j * 7) % 3) candidates.push_back(j);
      INFO("pivot bits " << pivot << ", " << n << " candidates");
      constexpr std::uint32_t kSentinelBits = 0xdeadbeefu;
      constexpr int kSentinelColumn = -3;
      std::vector<std::uint32_t> bits(n + 16, kSentinelBits);
      std::vector<int> kept(n + 16, kSentinelColumn);
      const int listed =
          detail::list_candidates_reaching(row.data(), candidates.data(), n, pivot, bits.data(), kept.data());
      std::vector<std::uint32_t> want_bits;
      std::vector<int> want_kept;
      for (int q = 0; q < n; ++q)
        if (detail::ordered_bits(row[candidates[q]]) >= pivot)
          want_bits.push_back(detail::ordered_bits(row[candidates[q]])), want_kept.push_back(candidates[q]);
      REQUIRE(listed == static_cast<int>(want_kept.size()));
      CHECK(std::vector<std::uint32_t>(bits.begin(), bits.begin() + listed) == want_bits);
      CHECK(std::vector<int>(kept.begin(), kept.begin() + listed) == want_kept);
      bool sentinels = true;
      for (int q = n; q < n + 16; ++q) sentinels = sentinels && bits[q] == kSentinelBits && kept[q] == kSentinelColumn;
      CHECK(sentinels);
      if (pivot == 0u) CHECK(listed == n);
      if (n == 600 && pivot == detail::ordered_bits(0.8f)) CHECK((listed > 60 && listed < 300));  // some, not all
    }
  }
}

TEST_CASE("TopK's host step lists per row the entries that row_top_k's mask and a gather select", "[sae][select]") {
  if constexpr (host_accessible_v<MemSpace>) {  // host backends only (the host's training step)
    // Keys quantised to halves (many ties at the k-th key, signed zeros), one row with a NaN and one
    // with an infinity: the per-row lists must give the mask route's entries, values and order, for
    // TopK (chosen keys above 0) and AbsTopK (magnitudes, signs kept), rescaled or not.
    const int rows = 40, cols = 1500;
    std::vector<float> flat;
    const auto source = keys(rows, cols, 41, flat, [](int i) { return 1.0f + 0.1f * float(i % 5); });
    StepBuffers<float> b;
    b.resize(rows, 4, cols);
    RandomStream r(42, 1);
    for (int j = 0; j < cols; ++j) b.norms(j) = 0.5f + r.uniform<float>();
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) {
        float v = std::round(source(i, j) * 2.0f) / 2.0f;
        if (v == 0.0f && (j % 2)) v = -0.0f;
        b.h(i, j) = v;
      }
    b.h(3, 700) = std::numeric_limits<float>::quiet_NaN();
    b.h(5, 11) = std::numeric_limits<float>::infinity();
    b.h(6, 12) = -std::numeric_limits<float>::infinity();
    for (const bool magnitude : {false, true})
      for (const bool rescale : {false, true})
        for (int k : {1, 3, 25, 700, 1024, 1025, 1499, 1500, 2000}) {
          INFO("magnitude " << magnitude << ", rescale " << rescale << ", k = " << k);
          detail::ranking_key(b, rescale, magnitude);
          Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask("mask", rows, cols);
          row_top_k(b.key, std::min(k, cols), mask, Kokkos::View<const std::uint8_t*, MemSpace>());
          ActiveSet<float> expected, got;
          expected.gather(rows, cols, [&](int i, int j, float& v) {
            const bool keep = mask(i, j) && (magnitude || b.key(i, j) > 0.0f);
            if (keep) v = b.h(i, j);
            return keep;
          });
          const Matrix<float> key_before("key_before", rows, cols);
          Kokkos::deep_copy(key_before, b.key);
          Kokkos::deep_copy(b.key, 7.0f);  // row_top_k_active writes every key itself
          RowTopKLists<float> ws;
          row_top_k_active(b, k, rescale, magnitude, ws, got);
          REQUIRE(got.entries == expected.entries);
          CHECK(expected.entries > 0);
          bool same = true;
          for (int i = 0; i <= rows; ++i) same = same && got.row_start(i) == expected.row_start(i);
          for (std::size_t e = 0; e < got.entries; ++e)
            same = same && got.col(e) == expected.col(e) &&
                   std::memcmp(&got.value(e), &expected.value(e), sizeof(float)) == 0;
          CHECK(same);
          bool keys_same = true;
          for (int i = 0; i < rows; ++i)
            for (int j = 0; j < cols; ++j)
              keys_same = keys_same && std::memcmp(&b.key(i, j), &key_before(i, j), sizeof(float)) == 0;
          CHECK(keys_same);
        }
  }
}

TEST_CASE("the whole-row top-k of double keys (the scalar listing) equals brute force", "[sae][select]") {
  // Double rows take the scalar listing at or above the sampled pivot; quantised keys give ties at
  // the k-th key, which go to the lower column.
  const int n = 1000;
  RandomStream r(51, 2);
  std::vector<double> row(n);
  std::vector<detail::OrderedBits<double>> bits(n);
  std::vector<int> listed(n), out(n);
  for (int trial = 0; trial < 3; ++trial) {
    for (int j = 0; j < n; ++j) {
      double v = r.normal<double>();
      if (trial > 0) v = std::round(v * 4.0) / 4.0;  // ties
      if (trial == 2 && v == 0.0 && j % 2) v = -0.0;
      row[j] = v;
    }
    for (int k : {1, 5, 40, 300, 999}) {
      INFO("trial " << trial << ", k = " << k);
      std::vector<int> idx(n);
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return row[a] > row[b]; });
      std::vector<int> expected(idx.begin(), idx.begin() + k);
      std::sort(expected.begin(), expected.end());
      const int m = detail::top_k_of_row(row.data(), n, k, bits.data(), listed.data(), out.data());
      REQUIRE(m == k);
      CHECK(std::vector<int>(out.begin(), out.begin() + m) == expected);
    }
  }
}
