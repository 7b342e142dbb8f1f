#pragma once
// Work arrays of one SAE training step, shared by the composed SAE and its policies.
//   x [B, D]     input (after any activation scaling)
//   xc [B, D]    x - b_dec
//   h [B, S]     pre-activations xc W_enc + b_enc
//   key [B, S]   what the activation ranks/thresholds (h, or h * |W_dec_j| when rescaling)
//   c [B, S]     decoder coefficients: x_hat = c W_dec + b_dec
//   z [B, S]     feature activations as SAELens reports them (c * |W_dec_j| when rescaling)
//   norms [S]    |W_dec_j|
//   g_xhat [B,D] dLoss/dx_hat;  dc [B, S] dLoss/dc;  dh [B, S] dLoss/dh;  dnorms [S] dLoss/d|W_dec_j|
#include <type_traits>

#if defined(__AVX2__) && defined(__FMA__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

#include "synthsae/core/backend.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/core/huge_pages.hpp"
#include "synthsae/sae/kernels/output_map.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"

namespace synthsae {

template <class T>
struct StepBuffers {
  Matrix<T> x, xc, h, key, c, z, x_hat, g_xhat, dc, dh;
  Vector<T> norms, dnorms;
  BatchTopMWorkspace top_m;  ///< the batch-wide selection's work arrays (BatchTopK), kept across steps

  void resize(std::size_t batch, std::size_t d_in, std::size_t d_sae) {
    if (x.extent(0) == batch && x.extent(1) == d_in && h.extent(1) == d_sae) return;
    auto mat = [](const char* name, std::size_t r, std::size_t c) { return zero_matrix_on_huge_pages<T>(name, r, c); };
    x = mat("x", batch, d_in);
    xc = mat("xc", batch, d_in);
    x_hat = mat("x_hat", batch, d_in);
    g_xhat = mat("g_xhat", batch, d_in);
    h = mat("h", batch, d_sae);
    key = mat("key", batch, d_sae);
    c = mat("c", batch, d_sae);
    z = mat("z", batch, d_sae);
    dc = mat("dc", batch, d_sae);
    dh = mat("dh", batch, d_sae);
    norms = Vector<T>("norms", d_sae);
    dnorms = Vector<T>("dnorms", d_sae);
  }
  std::size_t batch() const { return x.extent(0); }
};

namespace kernels {

/// a . b over n contiguous elements, with 32 independent partial sums: the compiler may not
/// reorder a single floating-point sum, and with eight (one AVX register of floats) the loop was
/// bound by the FMA's latency (a fifth of a sparse step's reconstruction on the host). The sums
/// meet in a fixed tree: the same bits on every thread count and backend. This is the form every
/// build can compile; dot_contiguous below picks the host's AVX2 form of the same sums for floats.
template <class T>
SYNTHSAE_HD T dot_contiguous_portable(const T* a, const T* b, int n) {
  constexpr int kSums = 32;
  T s[kSums] = {};
  int k = 0;
  for (; k + kSums <= n; k += kSums)
    for (int u = 0; u < kSums; ++u) s[u] += a[k + u] * b[k + u];
  for (int u = 0; u < kSums; ++u)  // the tail: s[u] gets element k + u (constant indices: registers on a GPU)
    if (k + u < n) s[u] += a[k + u] * b[k + u];
  return sum_in_tree(s);
}

#if defined(__AVX2__) && defined(__FMA__) && !defined(__CUDACC__)
#define SYNTHSAE_DOT_AVX 1
namespace detail {
/// dot_contiguous_portable's sums for floats in four AVX registers (s[8q + l] in lane l of
/// register q), each term one FMA: the portable loop compiled with contraction (GCC and Clang
/// contract `s[u] += a * b` by default) gives the same bits. Written by hand because compilers
/// kept the 32 sums in memory, zeroed them with a string store and summed them in a loop: at
/// D = 128 that overhead was half of each dot product.
inline float dot_contiguous_avx(const float* a, const float* b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int k = 0;
  for (; k + 32 <= n; k += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 16), _mm256_loadu_ps(b + k + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 24), _mm256_loadu_ps(b + k + 24), s3);
  }
  if (k < n) {  // the tail through masked loads: a lane past n reads nothing and adds 0 * 0
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int rest = n - k;
    auto term = [&](int q, __m256 s) {
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest - 8 * q), lane);
      return _mm256_fmadd_ps(_mm256_maskload_ps(a + k + 8 * q, m), _mm256_maskload_ps(b + k + 8 * q, m), s);
    };
    s0 = term(0, s0);
    if (rest > 8) s1 = term(1, s1);
    if (rest > 16) s2 = term(2, s2);
    if (rest > 24) s3 = term(3, s3);
  }
  // sum_in_tree: s[u] += s[u + 16], s[u + 8], s[u + 4], s[u + 2], s[u + 1] in turn.
  const __m256 s8 = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2x = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2x, _mm_shuffle_ps(s2x, s2x, 1)));
}
}  // namespace detail
#endif

/// a . b over n contiguous elements in dot_contiguous_portable's fixed tree of 32 sums.
template <class T>
SYNTHSAE_HD T dot_contiguous(const T* a, const T* b, int n) {
#ifdef SYNTHSAE_DOT_AVX
  if constexpr (std::is_same_v<T, float>) return detail::dot_contiguous_avx(a, b, n);
#endif
  return dot_contiguous_portable(a, b, n);
}

/// out(j) = |rows(j, :)|, clamped at 1e-8.
template <class T>
void row_norms(const Matrix<T>& rows, const Vector<T>& out) {
  const int d = static_cast<int>(rows.extent(1));
  host_rows(
      "synthsae::row_norms", static_cast<std::int64_t>(rows.extent(0)), d, KOKKOS_LAMBDA(int j) {
        const T n = kmath::sqrt(dot_contiguous(&rows(j, 0), &rows(j, 0), d));
        out(j) = n > T(1e-8) ? n : T(1e-8);
      });
}

/// out(k) (+)= scale * sum_i m(i, k): column sums, deterministic (each column's rows in order).
template <class T>
void column_sums(const Matrix<T>& m, const Vector<T>& out, T scale, bool accumulate) {
  const int rows = static_cast<int>(m.extent(0)), cols = static_cast<int>(m.extent(1));
  // Host: 16 adjacent columns per item, summed row by row as one vector (a column alone reads a
  // cache line per row); GPU: a column per thread. Each column sums its rows in order either way.
  constexpr int kBlock = host_accessible_v<ExecSpace> ? 16 : 1;
  host_rows(
      "synthsae::column_sums", static_cast<std::int64_t>((cols + kBlock - 1) / kBlock), std::int64_t{rows} * kBlock,
      KOKKOS_LAMBDA(int block) {
        const int k0 = block * kBlock, n = cols - k0 < kBlock ? cols - k0 : kBlock;
        T acc[kBlock] = {};
        for (int i = 0; i < rows; ++i)
          for (int u = 0; u < n; ++u) acc[u] += m(i, k0 + u);
        for (int u = 0; u < n; ++u) out(k0 + u) = (accumulate ? out(k0 + u) : T(0)) + scale * acc[u];
      });
}

/// mean_b |x_hat_b - x_b|^2, writing its gradient g = 2 (x_hat - x) / B. With an active output
/// map: mean_b |x_hat_b a_b + m_b - target_b|^2 and g = 2 a_b (x_hat a + m - target) / B
/// (output_map.hpp); x is then unused.
template <class T>
double mse_and_gradient(const Matrix<T>& x, const Matrix<T>& x_hat, const Matrix<T>& g, const OutputMap<T>& map = {}) {
  const int d = static_cast<int>(x_hat.extent(1));
  const T factor = static_cast<T>(2.0 / double(x_hat.extent(0)));
  const bool mapped = map.active();
  const auto target = mapped ? map.target : x;
  const auto a = map.scale, m = map.shift;
  const double sq = host_rows_sum(
      "synthsae::mse", static_cast<std::int64_t>(x_hat.extent(0)), 4 * d,
      KOKKOS_LAMBDA(int i, double& acc) {
        const T scale = mapped ? a(i) : T(1), shift = mapped ? m(i) : T(0);
        for (int k = 0; k < d; ++k) {
          const T diff = mapped ? x_hat(i, k) * scale + shift - target(i, k) : x_hat(i, k) - target(i, k);
          acc += double(diff) * double(diff);
          g(i, k) = mapped ? factor * scale * diff : factor * diff;
        }
      });
  return sq / double(x_hat.extent(0));
}

/// m(i, :) = v for every row i.
template <class T>
void fill_rows(const Matrix<T>& m, const Vector<T>& v) {
  const int cols = static_cast<int>(m.extent(1));
  host_rows(
      "synthsae::fill_rows", static_cast<std::int64_t>(m.extent(0)), cols, KOKKOS_LAMBDA(int i) {
        for (int k = 0; k < cols; ++k) m(i, k) = v(k);
      });
}

/// m(i, :) += v for every row i (biases).
template <class T>
void add_to_rows(const Matrix<T>& m, const Vector<T>& v) {
  const int cols = static_cast<int>(m.extent(1));
  host_rows(
      "synthsae::add_to_rows", static_cast<std::int64_t>(m.extent(0)), cols, KOKKOS_LAMBDA(int i) {
        for (int k = 0; k < cols; ++k) m(i, k) += v(k);
      });
}

/// gw(j, :) += dnorms_j W_dec_j / n_j: a loss's gradient w.r.t. the decoder norms n_j = |W_dec_j|
/// carried to the decoder rows.
template <class T>
void add_norm_gradient(const Matrix<T>& w_dec, const Vector<T>& norms, const Vector<T>& dnorms, const Matrix<T>& gw) {
  const int d = static_cast<int>(w_dec.extent(1));
  host_rows(
      "synthsae::dnorms", static_cast<std::int64_t>(w_dec.extent(0)), d, KOKKOS_LAMBDA(int j) {
        if (dnorms(j) == T(0)) return;
        const T f = dnorms(j) / norms(j);
        for (int k = 0; k < d; ++k) gw(j, k) += f * w_dec(j, k);
      });
}

/// xc(i, :) = x(i, :) - b for every row i (the encoder input x - b_dec).
template <class T>
void subtract_from_rows(const Matrix<T>& x, const Vector<T>& b, const Matrix<T>& xc) {
  const int cols = static_cast<int>(x.extent(1));
  host_rows(
      "synthsae::center", static_cast<std::int64_t>(x.extent(0)), cols, KOKKOS_LAMBDA(int i) {
        for (int k = 0; k < cols; ++k) xc(i, k) = x(i, k) - b(k);
      });
}

/// out(k) -= sum_j w(k, j) v(j): b_dec's gradient through the encoder input xc = x - b_dec.
template <class T>
void subtract_encoder_image(const Matrix<T>& w, const Vector<T>& v, const Vector<T>& out) {
  const int s = static_cast<int>(w.extent(1));
  host_rows(
      "synthsae::db_dec_through_input", static_cast<std::int64_t>(w.extent(0)), s,
      KOKKOS_LAMBDA(int k) { out(k) -= dot_contiguous(&w(k, 0), &v(0), s); });
}

}  // namespace kernels
}  // namespace synthsae
