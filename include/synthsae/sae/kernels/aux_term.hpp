#pragma once
// What the auxiliary losses share: the dead-latent mask type, AuxK's budget and residual, and the
// sparse form of one AuxK term (used by AuxK and MatryoshkaAuxK).
#include <algorithm>
#include <cstdint>
#include <utility>
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
  return host_rows_sum(
      "synthsae::aux_residual", static_cast<std::int64_t>(x.extent(0)), 4 * d, KOKKOS_LAMBDA(int i, double& acc) {
        constexpr int kSums = 8;  // independent float64 sums: one would bind the loop to the add's latency
        double row[kSums] = {};
        for (int k0 = 0; k0 < d; k0 += kSums) {
          const int n = d - k0 < kSums ? d - k0 : kSums;
          for (int u = 0; u < n; ++u) {
            const T diff = e(i, k0 + u) - (x(i, k0 + u) - xh(i, k0 + u));
            row[u] += double(diff) * double(diff);
            r(i, k0 + u) = f * diff;
          }
        }
        acc += sum_in_tree(row);
      });
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
/// and writes dLoss/dh into selected.grad; encoder_grad then adds the encoder's share (or the
/// caller routes selected.grad elsewhere). Returns sum_b |e_b - r_b|^2.
///
/// When k reaches the number of allowed latents (every dead latent selected: AuxK's usual
/// state once at most D/2 latents are dead), `selected` is the same dense rows x n block in every
/// row, and the term's four products are GEMMs over those n columns instead of sparse kernels.
template <class T>
struct SparseAuxTerm {
  Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask;
  ActiveSet<T> selected;
  Matrix<T> e_hat, residual;
  Vector<T> zero_bias;
  std::vector<int> candidates;  ///< host: the allowed columns
  std::vector<OrderedBits<T>> chunk_keys;  ///< host: per thread chunk, room for every candidate's key bits
  std::vector<int> chunk_kept;   ///< host: the same for the kept candidates
  bool dense_when_all = true;    ///< the GEMM form when every allowed latent is selected (tests compare both)
  bool all_selected = false;     ///< the last run used the GEMM form
  Kokkos::View<int*, MemSpace> listed;  ///< the allowed columns on the device (GEMM form)
  Matrix<T> listed_w_dec, listed_grad;  ///< [room, D]: W_dec's listed rows, and their gradient
  Matrix<T> listed_enc;                 ///< [D, room]: the encoder gradient's listed columns

  double run(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, const DeadMask& allowed, int k,
             const Matrix<T>& x_hat_ref, double factor) {
    const std::size_t rows = b.batch(), d = p.input_dim(), s = p.num_latents();
    if (residual.extent(0) != rows || residual.extent(1) != d) {
      residual = Matrix<T>("aux_residual", rows, d);
      e_hat = Matrix<T>("aux_e_hat", rows, d);
    }
    if (zero_bias.extent(0) != d) zero_bias = Vector<T>("aux_zero_bias", d);
    list_allowed(allowed, static_cast<int>(s));
    all_selected = dense_when_all && !candidates.empty() && k >= static_cast<int>(candidates.size());
    if (all_selected) return run_all_selected(b, p, g, x_hat_ref, factor);
    if constexpr (host_accessible_v<MemSpace>) {
      select_on_host(b, k);
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

  /// Adds the last run's encoder gradient, xc^T dLoss/da and the column sums of dLoss/da, to
  /// g.w_enc and g.b_enc.
  void encoder_grad(const StepBuffers<T>& b, SaeParameters<T>& g) {
    if (!all_selected) {
      kernels::sparse_encoder_grad(selected, b.xc, g.w_enc, g.b_enc, true);
      return;
    }
    const int rows = static_cast<int>(b.batch()), d = static_cast<int>(b.xc.extent(1));
    const int n = static_cast<int>(candidates.size());
    const Matrix<T> da(selected.grad.data(), rows, n);
    const auto enc = Kokkos::subview(listed_enc, Kokkos::ALL, std::make_pair(0, n));
    gemm(Op::T, Op::N, T(1), b.xc, da, T(0), enc);  // [D, n]
    const auto cols = listed;
    const auto gw = g.w_enc;
    const auto gb = g.b_enc;
    host_rows(
        "synthsae::aux_listed_encoder_grad", n, 2 * (d + rows), KOKKOS_LAMBDA(int q) {
          const int j = cols(q);
          for (int k = 0; k < d; ++k) gw(k, j) += enc(k, q);
          T sum = 0;
          for (int i = 0; i < rows; ++i) sum += da(i, q);
          gb(j) += sum;
        });
  }

  /// candidates = the allowed columns, ascending (every column when `allowed` is empty).
  void list_allowed(const DeadMask& allowed, int s) {
    const auto on_host = Kokkos::create_mirror_view_and_copy(HostSpace(), allowed);
    candidates.clear();
    for (int j = 0; j < s; ++j)
      if (on_host.extent(0) == 0 || on_host(j)) candidates.push_back(j);
  }

  /// The GEMM form: a = h's listed columns (selected.value, row-major rows x n), e = a W_L with
  /// W_L the listed rows of W_dec, g.w_dec's listed rows += a^T r, dLoss/da = r W_L^T
  /// (selected.grad).
  double run_all_selected(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g,
                          const Matrix<T>& x_hat_ref, double factor) {
    const int rows = static_cast<int>(b.batch()), d = static_cast<int>(p.input_dim());
    const int n = static_cast<int>(candidates.size());
    if (listed.extent(0) < static_cast<std::size_t>(n) || listed_w_dec.extent(1) != static_cast<std::size_t>(d)) {
      const std::size_t room = p.num_latents();  // once per shape: n never exceeds the width
      listed = Kokkos::View<int*, MemSpace>("aux_listed", room);
      listed_w_dec = Matrix<T>("aux_listed_w_dec", room, d);
      listed_grad = Matrix<T>("aux_listed_grad", room, d);
      listed_enc = Matrix<T>("aux_listed_enc", d, room);
    }
    {
      const auto on_host = Kokkos::create_mirror_view(listed);
      std::copy(candidates.begin(), candidates.end(), on_host.data());
      Kokkos::deep_copy(listed, on_host);
    }
    selected.assign_uniform_rows(rows, n);
    const Matrix<T> a(selected.value.data(), rows, n), da(selected.grad.data(), rows, n);
    const auto cols = listed;
    const auto col = selected.col;
    const auto h = b.h;
    host_rows(
        "synthsae::aux_listed_values", rows, 2 * n, KOKKOS_LAMBDA(int i) {
          for (int q = 0; q < n; ++q) {
            col(std::size_t(i) * n + q) = cols(q);
            a(i, q) = h(i, cols(q));
          }
        });
    const auto w = Kokkos::subview(listed_w_dec, std::make_pair(0, n), Kokkos::ALL);
    const auto gw = Kokkos::subview(listed_grad, std::make_pair(0, n), Kokkos::ALL);
    const auto w_dec = p.w_dec;
    host_rows(
        "synthsae::aux_listed_w_dec", n, d, KOKKOS_LAMBDA(int q) {
          for (int k = 0; k < d; ++k) w(q, k) = w_dec(cols(q), k);
        });
    gemm(Op::N, Op::N, T(1), a, w, T(0), e_hat);  // e = a W_L, no b_dec
    const double sq = aux_residual_to(b.x, x_hat_ref, e_hat, residual, factor);
    gemm(Op::T, Op::N, T(1), a, residual, T(0), gw);  // [n, D]
    gemm(Op::N, Op::T, T(1), residual, w, T(0), da);  // dLoss/da, [rows, n]
    const auto g_dec = g.w_dec;
    host_rows(
        "synthsae::aux_listed_decoder_grad", n, 2 * d, KOKKOS_LAMBDA(int q) {
          for (int k = 0; k < d; ++k) g_dec(cols(q), k) += gw(q, k);
        });
    return sq;
  }

  /// The host's form of row_top_k + select: among the listed candidates, per row a
  /// selection written straight into `selected` (the same entries: the same rule for
  /// ties, columns ascending). No rows x latents mask is written or scanned.
  void select_on_host(const StepBuffers<T>& b, int k) {
    const int rows = static_cast<int>(b.batch());
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
    // Whole next rows are worth asking for only where the candidates cover much of them.
    const bool prefetch = 4 * static_cast<std::size_t>(n) >= key.extent(1);
    // About 16 operations per candidate and row (a gather, a compare, the short list's selection).
    host_rows("synthsae::aux_select", chunks, std::int64_t{rows} / chunks * (16 * n + 64 * per_row), [&](int c) {
      int r0 = 0, r1 = 0;
      chunk_range(rows, c, chunks, r0, r1);
      OrderedBits<T>* scratch = chunk_keys.data() + std::size_t(c) * n;
      int* kept = chunk_kept.data() + std::size_t(c) * n;
      for (int i = r0; i < r1; ++i) {
        if (prefetch && i + 1 < r1) prefetch_row(&key(i + 1, 0), &h(i + 1, 0), key.extent(1));
        int* out = cols.data() + std::size_t(i) * per_row;
        top_k_among(&key(i, 0), cand, n, per_row, scratch, kept, out);  // fills all per_row
        for (int q = 0; q < per_row; ++q) vals(std::size_t(i) * per_row + q) = h(i, out[q]);
      }
    });
  }

  /// Asks for the next row's keys and pre-activations while this row is selected: its
  /// candidates' keys and the chosen values are read at scattered places of rows that the
  /// threshold pass and the GEMM left beyond the L2 cache.
  static void prefetch_row(const T* key_row, const T* h_row, std::size_t n) {
    constexpr std::size_t kLine = 64 / sizeof(T);
    for (std::size_t k = 0; k < n; k += kLine) {
      __builtin_prefetch(key_row + k);
      __builtin_prefetch(h_row + k);
    }
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
