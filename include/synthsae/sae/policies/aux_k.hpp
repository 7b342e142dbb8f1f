#pragma once
// Auxiliary losses (reference §8.3).
//   NoAux
//   AuxK: only when some latents are dead: r = stopgrad(x - x_hat); k_aux = min(D/2, #dead),
//         scale = min(#dead / (D/2), 1); a = the k_aux largest ranking keys among dead latents per
//         sample (raw values, may be negative); e = sum over selected h_bj W_dec_j (the decoder
//         norms cancel as in the main path; no b_dec); loss = coef * scale * mean_b |e - r|^2.
#include <cmath>
#include <string_view>

#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/sae/kernels/aux_term.hpp"

namespace synthsae {

struct AuxK {
  static constexpr std::string_view name = "auxk";
  static constexpr bool reads_residual = true;  ///< compares with the input (Sae::output_map_covers_loss)
  double coefficient = 1.0;  ///< aux_loss_coefficient

  void validate(std::size_t, std::size_t) const { require_coefficient("aux_loss_coefficient", coefficient); }
  /// Whether a step reads the dead latents' pre-activations (its per-row selection among them),
  /// for the screened encoder (kernels/screened_encoder.hpp).
  bool reads_dead_columns(std::size_t num_dead) const { return num_dead > 0 && coefficient != 0; }

  template <class T>
  struct State {
    Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask;
    Matrix<T> a, residual, e_hat, da;
    detail::SparseAuxTerm<T> sparse;  // the sparse step's form
  };

  /// The sparse step's version: the k_aux selected dead latents per row form an active set;
  /// adds the loss's gradient to g.w_dec, g.w_enc and g.b_enc.
  template <class T>
  double accumulate_sparse(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st,
                           const DeadMask& dead, std::size_t num_dead) const {
    if (num_dead == 0 || coefficient == 0) return 0.0;
    const auto budget = detail::aux_budget(p.input_dim(), num_dead);
    const double rows = double(b.batch());
    const double sq = st.sparse.run(b, p, g, dead, budget.k, b.x_hat, 2.0 * coefficient * budget.scale / rows);
    st.sparse.encoder_grad(b, g);
    return coefficient * budget.scale * sq / rows;
  }

  /// Adds the loss's gradient to g.w_dec and b.dh (call after the activation's backward).
  template <class T>
  double accumulate(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st,
                    const DeadMask& dead, std::size_t num_dead) const {
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
    Kokkos::parallel_for(
        "synthsae::aux_a", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
          for (int j = 0; j < si; ++j) a(i, j) = mask(i, j) ? h(i, j) : T(0);
        });
    gemm(Op::N, Op::N, T(1), st.a, p.w_dec, T(0), st.e_hat);  // e = a W_dec
    const double sq = detail::aux_residual(b, st.e_hat, st.residual, 2.0 * coefficient * scale / double(rows));
    gemm(Op::T, Op::N, T(1), st.a, st.residual, T(1), g.w_dec);   // dW_dec += a^T g_e
    gemm(Op::N, Op::T, T(1), st.residual, p.w_dec, T(0), st.da);  // da = g_e W_dec^T
    const auto da = st.da, dh = b.dh;
    Kokkos::parallel_for(
        "synthsae::aux_dh", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
          for (int j = 0; j < si; ++j)
            if (mask(i, j)) dh(i, j) += da(i, j);
        });
    return coefficient * scale * sq / double(rows);
  }
};

}  // namespace synthsae
