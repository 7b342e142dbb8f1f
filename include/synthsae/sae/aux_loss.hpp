#pragma once
// Auxiliary losses (reference §8.3).
//   NoAux
//   AuxK: only when some latents are dead: r = stopgrad(x - x_hat); k_aux = min(D/2, #dead),
//         scale = min(#dead / (D/2), 1); a = the k_aux largest ranking keys among dead latents per
//         sample (raw values, may be negative); e = sum over selected h_bj W_dec_j (the decoder
//         norms cancel as in the main path; no b_dec); loss = coef * scale * mean_b |e - r|^2.
#include <algorithm>
#include <cstdint>
#include <string_view>

#include "synthsae/core/gemm.hpp"
#include "synthsae/sae/active_set.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_buffers.hpp"
#include "synthsae/sae/top_k_select.hpp"

namespace synthsae {

using DeadMask = Kokkos::View<const std::uint8_t*, MemSpace>;

namespace detail {
/// sum_b |e_b - (x_b - x_hat_b)|^2 for a given reconstruction x_hat, writing
/// r = factor * (e - (x - x_hat)), with x - x_hat the stopped-gradient residual.
template <class T>
double aux_residual_to(const Matrix<T>& x, const Matrix<T>& xh, const Matrix<T>& e, const Matrix<T>& r, double factor) {
  const T f = static_cast<T>(factor);
  const int d = static_cast<int>(x.extent(1));
  double sq = 0;
  Kokkos::parallel_reduce("synthsae::aux_residual", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)), KOKKOS_LAMBDA(int i, double& acc) {
    for (int k = 0; k < d; ++k) {
      const T diff = e(i, k) - (x(i, k) - xh(i, k));
      acc += double(diff) * double(diff);
      r(i, k) = f * diff;
    }
  }, sq);
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

  double run(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, const DeadMask& allowed, int k, const Matrix<T>& x_hat_ref,
             double factor) {
    const std::size_t rows = b.batch(), d = p.input_dim(), s = p.num_latents();
    if (mask.extent(0) != rows || mask.extent(1) != s) mask = decltype(mask)("aux_mask", rows, s);
    if (residual.extent(0) != rows || residual.extent(1) != d) {
      residual = Matrix<T>("aux_residual", rows, d);
      e_hat = Matrix<T>("aux_e_hat", rows, d);
    }
    if (zero_bias.extent(0) != d) zero_bias = Vector<T>("aux_zero_bias", d);
    row_top_k(b.key, k, mask, allowed);
    select(b);
    const int si = static_cast<int>(s);
    kernels::sparse_decode(selected, p.w_dec, zero_bias, e_hat, si);  // e = a W_dec, no b_dec
    const double sq = aux_residual_to(b.x, x_hat_ref, e_hat, residual, factor);
    kernels::sparse_decoder_grad(selected, residual, g.w_dec, true, si);
    kernels::sparse_row_dots(selected, residual, p.w_dec, false, si);  // dLoss/da = dLoss/dh there
    return sq;
  }

  void select(const StepBuffers<T>& b) {
    const auto m = mask;
    const auto h = b.h;
    selected.gather(b.batch(), b.h.extent(1), KOKKOS_LAMBDA(int i, int j, T& v) {
      v = h(i, j);
      return m(i, j) != 0;
    });
  }
};
}  // namespace detail

struct NoAux {
  static constexpr std::string_view name = "none";
  template <class T>
  struct State {};
  template <class T>
  double accumulate(StepBuffers<T>&, const SaeParameters<T>&, SaeParameters<T>&, State<T>&, const DeadMask&, std::size_t) const {
    return 0.0;
  }  template <class T>
  double accumulate_sparse(StepBuffers<T>&, const SaeParameters<T>&, SaeParameters<T>&, State<T>&, const DeadMask&, std::size_t) const {
    return 0.0;
  }
};

struct AuxK {
  static constexpr std::string_view name = "auxk";
  double coefficient = 1.0;  ///< aux_loss_coefficient

  template <class T>
  struct State {
    Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask;
    Matrix<T> a, residual, e_hat, da;
    detail::SparseAuxTerm<T> sparse;  // the sparse step's form
  };

  /// The sparse step's version: the k_aux selected dead latents per row form an active set;
  /// adds the loss's gradient to g.w_dec, g.w_enc and g.b_enc.
  template <class T>
  double accumulate_sparse(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st, const DeadMask& dead,
                           std::size_t num_dead) const {
    if (num_dead == 0 || coefficient == 0) return 0.0;
    const auto budget = detail::aux_budget(p.input_dim(), num_dead);
    const double rows = double(b.batch());
    const double sq = st.sparse.run(b, p, g, dead, budget.k, b.x_hat, 2.0 * coefficient * budget.scale / rows);
    kernels::sparse_encoder_grad(st.sparse.selected, b.xc, g.w_enc, g.b_enc, true);
    return coefficient * budget.scale * sq / rows;
  }

  /// Adds the loss's gradient to g.w_dec and b.dh (call after the activation's backward).
  template <class T>
  double accumulate(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st, const DeadMask& dead,
                    std::size_t num_dead) const {
    if (num_dead == 0 || coefficient == 0) return 0.0;
    const std::size_t rows = b.batch(), d = p.input_dim(), s = p.num_latents();
    const auto [k_aux, scale] = detail::aux_budget(d, num_dead);
    if (st.a.extent(0) != rows || st.a.extent(1) != s) {
      st.mask = decltype(st.mask)("aux_mask", rows, s);
      st.a = Matrix<T>("aux_a", rows, s);
      st.da = Matrix<T>("aux_da", rows, s);
      st.residual = Matrix<T>("aux_residual", rows, d);
      st.e_hat = Matrix<T>("aux_e_hat", rows, d);
    }
    row_top_k(b.key, k_aux, st.mask, dead);
    const auto mask = st.mask;
    const auto a = st.a, h = b.h;
    const int si = static_cast<int>(s);
    Kokkos::parallel_for("synthsae::aux_a", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
      for (int j = 0; j < si; ++j) a(i, j) = mask(i, j) ? h(i, j) : T(0);
    });
    gemm(Op::N, Op::N, T(1), st.a, p.w_dec, T(0), st.e_hat);  // e = a W_dec
    const double sq = detail::aux_residual(b, st.e_hat, st.residual, 2.0 * coefficient * scale / double(rows));
    gemm(Op::T, Op::N, T(1), st.a, st.residual, T(1), g.w_dec);  // dW_dec += a^T g_e
    gemm(Op::N, Op::T, T(1), st.residual, p.w_dec, T(0), st.da);  // da = g_e W_dec^T
    const auto da = st.da, dh = b.dh;
    Kokkos::parallel_for("synthsae::aux_dh", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
      for (int j = 0; j < si; ++j)
        if (mask(i, j)) dh(i, j) += da(i, j);
    });
    return coefficient * scale * sq / double(rows);
  }
};

}  // namespace synthsae
