#pragma once
// What the auxiliary losses share: the dead-latent mask type, AuxK's budget and residual, and the
// sparse form of one AuxK term (used by AuxK and MatryoshkaAuxK).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "synthsae/core/gemm.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

namespace detail {
/// sum_b |e_b - (x_b - x_hat_b)|^2 for a given reconstruction x_hat, writing
/// r = factor * (e - (x - x_hat)), with x - x_hat the stopped-gradient residual.
template <class T>
double aux_residual_to(const Matrix<T>& x, const Matrix<T>& xh, const Matrix<T>& e, const Matrix<T>& r, double factor) {
  const T f = static_cast<T>(factor);
  const int d = static_cast<int>(x.extent(1));
  double sq = 0;
  Kokkos::parallel_reduce(
      "synthsae::aux_residual", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)),
      KOKKOS_LAMBDA(int i, double& acc) {
        for (int k = 0; k < d; ++k) {
          const T diff = e(i, k) - (x(i, k) - xh(i, k));
          acc += double(diff) * double(diff);
          r(i, k) = f * diff;
        }
      },
      sq);
  return sq;
}

/// The same against the step's own reconstruction b.x_hat.
template <class T>
double aux_residual(const StepBuffers<T>& b, const Matrix<T>& e, const Matrix<T>& r, double factor) {
  return aux_residual_to(b.x, b.x_hat, e, r, factor);
}

/// AuxK's budget for `dead` candidate latents: k = min(D/2, dead), scale = min(dead / (D/2), 1).
struct AuxBudget {
  int k;
  double scale;
};
inline AuxBudget aux_budget(std::size_t d_in, std::size_t dead) {
  const std::size_t half = std::max<std::size_t>(d_in / 2, 1);
  return {static_cast<int>(std::min(half, dead)), std::min(double(dead) / double(half), 1.0)};
}

/// The sparse form of one AuxK term: per row, the k largest ranking keys among the `allowed`
/// latents become the active set `selected` (values h); e = sum h_bj W_dec_j (no b_dec) is
/// compared with the stopped residual x - x_hat_ref. Adds factor-scaled gradients to g.w_dec
/// and writes dLoss/dh into selected.grad (the caller routes it to the encoder). Returns
/// sum_b |e_b - r_b|^2.
template <class T>
struct SparseAuxTerm {
  Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask;
  ActiveSet<T> selected;
  Matrix<T> e_hat, residual;
  Vector<T> zero_bias;
  std::vector<int> candidates;  ///< host: the allowed columns
  std::vector<T> chunk_keys;     ///< host: per thread chunk, room for every candidate's key
  std::vector<int> chunk_kept;   ///< host: the same for the kept candidates

  double run(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, const DeadMask& allowed, int k,
             const Matrix<T>& x_hat_ref, double factor) {
    const std::size_t rows = b.batch(), d = p.input_dim(), s = p.num_latents();
    if (residual.extent(0) != rows || residual.extent(1) != d) {
      residual = Matrix<T>("aux_residual", rows, d);
      e_hat = Matrix<T>("aux_e_hat", rows, d);
    }
    if (zero_bias.extent(0) != d) zero_bias = Vector<T>("aux_zero_bias", d);
    if constexpr (host_accessible_v<MemSpace>) {
      select_on_host(b, allowed, k);
    } else {
      if (mask.extent(0) != rows || mask.extent(1) != s) mask = decltype(mask)("aux_mask", rows, s);
      row_top_k(b.key, k, mask, allowed);
      select(b);
    }
    const int si = static_cast<int>(s);
    kernels::sparse_decode(selected, p.w_dec, zero_bias, e_hat, si);  // e = a W_dec, no b_dec
    const double sq = aux_residual_to(b.x, x_hat_ref, e_hat, residual, factor);
    kernels::sparse_decoder_grad(selected, residual, g.w_dec, true, si);
    kernels::sparse_row_dots(selected, residual, p.w_dec, false, si);  // dLoss/da = dLoss/dh there
    return sq;
  }

  /// The host's form of row_top_k + select: the allowed columns listed once, then per row a
  /// selection among them written straight into `selected` (the same entries: the same rule for
  /// ties, columns ascending). No rows x latents mask is written or scanned.
  void select_on_host(const StepBuffers<T>& b, const DeadMask& allowed, int k) {
    const int s = static_cast<int>(b.h.extent(1)), rows = static_cast<int>(b.batch());
    candidates.clear();
    for (int j = 0; j < s; ++j)
      if (allowed.extent(0) == 0 || allowed(j)) candidates.push_back(j);
    const int n = static_cast<int>(candidates.size());
    const int per_row = std::clamp(k, 0, n);
    selected.assign_uniform_rows(rows, per_row);
    if (per_row == 0) return;
    const int chunks = host_chunks(static_cast<std::size_t>(rows));
    const auto key = b.key, h = b.h;
    const auto cols = selected.col;
    const auto vals = selected.value;
    const int* cand = candidates.data();
    const std::size_t room = static_cast<std::size_t>(chunks) * static_cast<std::size_t>(n);
    if (chunk_keys.size() < room) chunk_keys.resize(room), chunk_kept.resize(room);  // once, not per step
    // About 16 operations per candidate and row (a gather, a compare, the short list's selection).
    host_rows("synthsae::aux_select", chunks, std::int64_t{rows} / chunks * (16 * n + 64 * per_row), [&](int c) {
      int r0 = 0, r1 = 0;
      chunk_range(rows, c, chunks, r0, r1);
      T* scratch = chunk_keys.data() + std::size_t(c) * n;
      int* kept = chunk_kept.data() + std::size_t(c) * n;
      for (int i = r0; i < r1; ++i) {
        int* out = cols.data() + std::size_t(i) * per_row;
        top_k_among(&key(i, 0), cand, n, per_row, scratch, kept, out);  // fills all per_row
        for (int q = 0; q < per_row; ++q) vals(std::size_t(i) * per_row + q) = h(i, out[q]);
      }
    });
  }

  void select(const StepBuffers<T>& b) {
    const auto m = mask;
    const auto h = b.h;
    selected.gather(
        b.batch(), b.h.extent(1), KOKKOS_LAMBDA(int i, int j, T& v) {
          v = h(i, j);
          return m(i, j) != 0;
        });
  }
};
}  // namespace detail

}  // namespace synthsae
