// The evaluation's decode (kernels/adaptive_decode.hpp): the sparse form against the GEMM and a
// float64 oracle, the crossover's choice, and decode_row's register form against std::fma.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "sae_test_support.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/sae/kernels/adaptive_decode.hpp"

using namespace synthsae;

namespace {

/// rows x cols with `per_row` nonzero entries in row i (fewer where the row is short), at latents
/// (i * 7 + q * 13) mod cols: distinct for per_row <= cols when cols is not a multiple of 13.
Matrix<float> sparse_codes(int rows, int cols, int per_row, std::uint64_t seed) {
  Matrix<float> z("z", rows, cols);
  auto h = Kokkos::create_mirror_view(z);
  RandomStream s(seed, 0);
  for (int i = 0; i < rows; ++i) {
    const int n = i % 5 == 4 ? 0 : per_row;  // every fifth row empty: its x_hat is the bias alone
    for (int q = 0; q < n; ++q) h(i, (i * 7 + q * 13) % cols) = 0.5f + s.uniform<float>();
  }
  Kokkos::deep_copy(z, h);
  return z;
}

/// x_hat = (z / divisor) W + bias in float64 on the host, every product.
std::vector<double> oracle(const Matrix<float>& z, const Vector<float>& divisor, const Matrix<float>& w,
                           const Vector<float>& bias) {
  auto zh = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
  auto wh = Kokkos::create_mirror_view_and_copy(HostSpace(), w);
  auto dh = Kokkos::create_mirror_view_and_copy(HostSpace(), divisor);
  auto bh = Kokkos::create_mirror_view_and_copy(HostSpace(), bias);
  const int rows = static_cast<int>(z.extent(0)), s = static_cast<int>(z.extent(1)), d = static_cast<int>(w.extent(1));
  std::vector<double> out(std::size_t(rows) * d);
  for (int i = 0; i < rows; ++i)
    for (int k = 0; k < d; ++k) {
      double acc = bias.extent(0) ? double(bh(k)) : 0.0;
      for (int j = 0; j < s; ++j) {
        const double c = divisor.extent(0) ? double(zh(i, j)) / double(dh(j)) : double(zh(i, j));
        acc += c * double(wh(j, k));
      }
      out[std::size_t(i) * d + k] = acc;
    }
  return out;
}

/// max |x_hat - oracle| over the batch.
double worst_gap(const Matrix<float>& x_hat, const std::vector<double>& want) {
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), x_hat);
  double worst = 0;
  for (std::size_t e = 0; e < want.size(); ++e) worst = std::max(worst, std::fabs(double(h.data()[e]) - want[e]));
  return worst;
}

}  // namespace

TEST_CASE("Adaptive decode: the sparse form and the GEMM both give (z / divisor) W + bias", "[sae][decode]") {
  // 70 = 64 + 6: the register chunk and the scalar tail of every row. Each element sums at most
  // 9 float products of size ~3 (|z| < 1.5 over a divisor >= 0.5, |w| ~ N(0, 1)): float rounding
  // keeps it within 9 * 3 * 2^-23 * a few of the float64 oracle; 1e-4 leaves room for the GEMM's
  // blocked order and still fails any misplaced or dropped entry (each is ~0.5 or larger).
  const int rows = 37, s = 150, d = 70;
  const auto w = test::random_input<float>(s, d, 3);
  const auto z = sparse_codes(rows, s, 9, 4);
  Vector<float> divisor("divisor", s), bias("bias", d);
  {
    auto dh = Kokkos::create_mirror_view(divisor);
    auto bh = Kokkos::create_mirror_view(bias);
    for (int j = 0; j < s; ++j) dh(j) = 0.5f + 0.01f * j;
    for (int k = 0; k < d; ++k) bh(k) = 0.25f - 0.01f * k;
    Kokkos::deep_copy(divisor, dh);
    Kokkos::deep_copy(bias, bh);
  }
  for (const bool divide : {false, true})
    for (const bool add_bias : {false, true}) {
      INFO("divide " << divide << ", bias " << add_bias);
      const Vector<float> div = divide ? divisor : Vector<float>(), b = add_bias ? bias : Vector<float>();
      const auto want = oracle(z, div, w, b);
      Matrix<float> sparse_out("sparse_out", rows, d), dense_out("dense_out", rows, d);
      AdaptiveDecode<float> decoder;  // 9 of 150 per row (6 % of the entries, fewer with the empty rows)
      decoder.set_max_density(0.1);
      decoder.decode(z, div, w, b, sparse_out);
      CHECK(decoder.last_was_sparse());
      CHECK(worst_gap(sparse_out, want) < 1e-4);
      decoder.set_max_density(0.0);
      decoder.decode(z, div, w, b, dense_out);
      CHECK_FALSE(decoder.last_was_sparse());
      CHECK(worst_gap(dense_out, want) < 1e-4);
    }
}

TEST_CASE("Adaptive decode: the batch's density picks the form", "[sae][decode]") {
  // 30 rows, every fifth empty: 24 x 9 = 216 of 30 x 150 = 4,500 entries, 4.8 %.
  const auto w = test::random_input<float>(150, 8, 5);
  const auto z = sparse_codes(30, 150, 9, 6);
  Matrix<float> out("out", 30, 8);
  AdaptiveDecode<float> decoder;
  CHECK(decoder.max_density() == AdaptiveDecode<float>::default_max_density);
  CHECK(AdaptiveDecode<float>::default_max_density == (host_accessible_v<ExecSpace> ? 0.05 : 0.0));
  decoder.set_max_density(216.5 / 4500.0);  // room for 216 entries, the count: still sparse
  decoder.decode(z, Vector<float>(), w, Vector<float>(), out);
  CHECK(decoder.last_was_sparse());
  decoder.set_max_density(215.5 / 4500.0);  // room for one entry fewer: the GEMM
  decoder.decode(z, Vector<float>(), w, Vector<float>(), out);
  CHECK_FALSE(decoder.last_was_sparse());
  decoder.set_max_density(1.0);
  decoder.decode(z, Vector<float>(), w, Vector<float>(), out);
  CHECK(decoder.last_was_sparse());
  CHECK_THROWS_AS(decoder.set_max_density(1.5), ConfigError);
  CHECK_THROWS_AS(decoder.set_max_density(-0.1), ConfigError);
  CHECK_THROWS_AS(decoder.set_max_density(std::nan("")), ConfigError);
  // Shapes that do not fit are refused on either path (the sparse form would index past W).
  Matrix<float> short_out("short_out", 29, 8), narrow_w("narrow_w", 149, 8);
  for (const double density : {0.0, 1.0}) {
    decoder.set_max_density(density);
    CHECK_THROWS_AS(decoder.decode(z, Vector<float>(), w, Vector<float>(), short_out), ShapeError);
    CHECK_THROWS_AS(decoder.decode(z, Vector<float>(), narrow_w, Vector<float>(), out), ShapeError);
    CHECK_THROWS_AS(decoder.decode(z, Vector<float>("divisor", 149), w, Vector<float>(), out), ShapeError);
    CHECK_THROWS_AS(decoder.decode(z, Vector<float>(), w, Vector<float>("bias", 7), out), ShapeError);
  }
}

TEST_CASE("decode_row: the register chunks give std::fma's bits, entry by entry", "[sae][decode]") {
  // (std::fma where the build has FMA hardware: decode_step's rounding; a plain sum elsewhere.)
  // Every length around the 64- and 128-element chunks, and 0 to 6 entries: bit equality with the scalar
  // sum in entry order (one rounding per entry) is what lets the sparse decode replace the axpys.
  const int s = 11, width = 300;
  Kokkos::View<float**, Kokkos::LayoutRight, HostSpace> w("w", s, width);
  Kokkos::View<int*, HostSpace> cols("cols", 6);
  Kokkos::View<float*, HostSpace> vals("vals", 6);
  RandomStream rng(9, 0);
  for (int j = 0; j < s; ++j)
    for (int k = 0; k < width; ++k) w(j, k) = rng.normal<float>();
  for (int e = 0; e < 6; ++e) cols(e) = (e * 4 + 1) % s, vals(e) = 0.3f * float(e) - 0.7f;
  vals(2) = 0.0f;  // skipped, as a JumpReLU's window entry is: the same bits as adding 0 * w
  std::vector<float> bias(width);
  for (int k = 0; k < width; ++k) bias[k] = 0.01f * float(k) - 1.0f;
  for (int d : {0, 1, 63, 64, 65, 127, 128, 131, 192, 200, 256, 300})
    for (int n = 0; n <= 6; ++n) {
      INFO("d " << d << ", entries " << n);
      std::vector<float> out(std::max(d, 1), 99.0f);
      kernels::decode_row(cols, vals, w, bias.data(), 0, n, out.data(), d);
      int mismatches = 0;
      for (int k = 0; k < d; ++k) {
        float want = bias[k];
        for (int e = 0; e < n; ++e) {
#if defined(__FMA__)
          want = std::fma(vals(e), w(cols(e), k), want);  // one rounding per entry
#else
          want = want + vals(e) * w(cols(e), k);  // no FMA hardware: product and sum rounded apart
#endif
        }
        mismatches += out[k] != want;
      }
      CHECK(mismatches == 0);
    }
}

TEST_CASE("sum_scaled_rows: by latent, through an order, from zero, a start or out itself", "[sae][decode]") {
  // The weight gradients by latent sum g or xc rows through by_column (order) and entry_row
  // (row_of), from zero or accumulating onto out: the same bits as the scalar chain in term order,
  // zero coefficients skipped, for every length around the 64- and 128-element chunks.
  const int s = 9, width = 300, terms = 7;
  Kokkos::View<float**, Kokkos::LayoutRight, HostSpace> rows("rows", s, width);
  RandomStream rng(21, 0);
  for (int j = 0; j < s; ++j)
    for (int k = 0; k < width; ++k) rows(j, k) = rng.normal<float>();
  const int order[terms] = {3, 0, 6, 1, 5, 2, 4};
  const int row_of[terms] = {8, 2, 2, 5, 0, 7, 3};  // a row may repeat
  float coef[terms];
  for (int e = 0; e < terms; ++e) coef[e] = 0.45f * float(e) - 1.1f;
  coef[5] = 0.0f;  // skipped (order[4] = 5)
  auto chain = [&](float start, int n, int k) {
    float want = start;
    for (int p = 0; p < n; ++p) {
      const float c = coef[order[p]];
      if (c == 0.0f) continue;
#if defined(__FMA__)
      want = std::fma(c, rows(row_of[p], k), want);
#else
      want = want + c * rows(row_of[p], k);
#endif
    }
    return want;
  };
  for (int d : {0, 1, 63, 64, 65, 127, 128, 131, 191, 192, 200, 256, 257, 300})
    for (int n = 0; n <= terms; ++n) {
      INFO("d " << d << ", terms " << n);
      std::vector<float> start(std::max(d, 1)), out(std::max(d, 1), 99.0f), inplace(std::max(d, 1));
      for (int k = 0; k < d; ++k) start[k] = inplace[k] = 0.02f * float(k) - 2.0f;
      int from_zero = 0, from_start = 0, accumulated = 0;
      kernels::sum_scaled_rows<float>(nullptr, coef, order, row_of, rows.data(), rows.stride(0), 0, n, out.data(), d);
      for (int k = 0; k < d; ++k) from_zero += out[k] != chain(0.0f, n, k);
      kernels::sum_scaled_rows<float>(start.data(), coef, order, row_of, rows.data(), rows.stride(0), 0, n, out.data(), d);
      for (int k = 0; k < d; ++k) from_start += out[k] != chain(start[k], n, k);
      kernels::sum_scaled_rows<float>(inplace.data(), coef, order, row_of, rows.data(), rows.stride(0), 0, n,
                                      inplace.data(), d);
      for (int k = 0; k < d; ++k) accumulated += inplace[k] != chain(start[k], n, k);
      CHECK(from_zero == 0);
      CHECK(from_start == 0);
      CHECK(accumulated == 0);
    }
}
