#pragma once
// MatryoshkaAuxK: the per-level auxiliary loss of Matryoshka BatchTopK with
// use_matryoshka_aux_loss (reference §8.5). Only when some latents are dead; for each level
// [w_prev, w) (the outer level included) with d_l dead latents:
//   r_l = stopgrad(x - x_hat_w)   (prefix reconstruction through width w, b_dec included)
//   k_l = min(D/2, d_l), scale_l = min(d_l / (D/2), 1)
//   a = the k_l largest ranking keys among the level's dead latents per sample (raw h values;
//       with decoder-norm rescaling the norms cancel as in AuxK)
//   loss = coefficient * sum_l scale_l mean_b |sum_selected h_bj W_dec_j - r_l|^2
// Levels without dead latents are skipped. `widths` must be the Matryoshka nesting's widths.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/aux_term.hpp"

namespace synthsae {

struct MatryoshkaAuxK {
  static constexpr std::string_view name = "matryoshka_auxk";
  static constexpr bool reads_residual = true;  ///< compares with the input (Sae::output_map_covers_loss)
  /// Needs the Matryoshka nesting (its levels); checked at compile time by Sae.
  static constexpr bool needs_matryoshka_nesting = true;
  static constexpr bool sparse_step_reads_feature_acts = true;  ///< accumulate_sparse reads b.z
  double coefficient = 1.0;  ///< aux_loss_coefficient
  /// The nesting's matryoshka_widths: left empty, the Sae takes the nesting's (their one source);
  /// different widths are a ConfigError at construction.
  std::vector<int> widths = {};

  void validate(std::size_t, std::size_t) const { require_coefficient("aux_loss_coefficient", coefficient); }
  /// Whether a step reads pre-activations beyond the kept entries: each level's dead columns, for
  /// the screened encoder (kernels/screened_encoder.hpp).
  bool reads_dead_columns(std::size_t num_dead) const { return num_dead > 0 && coefficient != 0; }
  /// Takes the levels from the Matryoshka nesting.
  template <class Nesting>
  void bind(const Nesting& n) {
    if (!widths.empty() && widths != n.widths) {
      auto list = [](const std::vector<int>& w) {
        std::string t;
        for (int v : w) t += (t.empty() ? "" : ", ") + std::to_string(v);
        return "[" + t + "]";
      };
      throw ConfigError("MatryoshkaAuxK.widths", list(widths),
                        "must equal matryoshka_widths = " + list(n.widths) +
                            "; leave them unset (docs/policies.md#composition-rules)");
    }
    widths = n.widths;
  }

  template <class T>
  struct State {
    Kokkos::View<std::uint8_t*, MemSpace> allowed;
    Matrix<T> prefix;
    ActiveSet<T> coefficients;
    detail::SparseAuxTerm<T> term;
  };

  /// Dense step: adds the gradient to g.w_dec and b.dh.
  template <class T>
  double accumulate(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st,
                    const DeadMask& dead, std::size_t num_dead) const {
    if (num_dead == 0 || coefficient == 0) return 0.0;
    const auto c = b.c;
    st.coefficients.gather(
        b.batch(), p.num_latents(), KOKKOS_LAMBDA(int i, int j, T& v) {
          v = c(i, j);
          return v != T(0);
        });
    return levels(b, p, g, st, dead, /*dense=*/true);
  }

  /// Sparse step (b.c is not written there): the coefficients are h on the entries where the
  /// reported activations z are non-zero (c = h on the TopK family's kept entries); adds to
  /// g.w_dec, g.w_enc and g.b_enc.
  template <class T>
  double accumulate_sparse(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st,
                           const DeadMask& dead, std::size_t num_dead) const {
    if (num_dead == 0 || coefficient == 0) return 0.0;
    const auto z = b.z, h = b.h;
    st.coefficients.gather(
        b.batch(), p.num_latents(), KOKKOS_LAMBDA(int i, int j, T& v) {
          const bool on = z(i, j) != T(0);
          if (on) v = h(i, j);
          return on;
        });
    return levels(b, p, g, st, dead, /*dense=*/false);
  }

  /// dh(i, col(e)) += grad(e).
  template <class T>
  static void add_to_dense(const ActiveSet<T>& sel, const Matrix<T>& dh) {
    const auto starts = sel.row_start;
    const auto cols = sel.col;
    const auto grad = sel.grad;
    Kokkos::parallel_for(
        "synthsae::matryoshka_aux_dh", Kokkos::RangePolicy<ExecSpace>(0, sel.rows()), KOKKOS_LAMBDA(int i) {
          for (int e = starts(i); e < starts(i + 1); ++e) dh(i, cols(e)) += grad(e);
        });
  }

  /// The per-level losses over st.coefficients; each level's dLoss/dh entries go to b.dh
  /// (dense step) or straight into the encoder gradient (sparse step).
  template <class T>
  double levels(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st, const DeadMask& dead,
                bool dense) const {
    const std::size_t rows = b.batch(), d = p.input_dim(), s = p.num_latents();
    if (st.prefix.extent(0) != rows || st.prefix.extent(1) != d) st.prefix = Matrix<T>("maux_prefix", rows, d);
    if (st.allowed.extent(0) != s) st.allowed = decltype(st.allowed)("maux_allowed", s);
    std::vector<int> bounds;
    for (int w : widths)
      if (w < static_cast<int>(s)) bounds.push_back(w);
    bounds.push_back(static_cast<int>(s));
    double total = 0;
    int lo = 0;
    for (const int hi : bounds) {
      // The level's dead latents, as a mask on the device (SparseAuxTerm lists them on the host).
      std::size_t dead_here = 0;
      const auto allowed = st.allowed;
      const auto dd = dead;
      Kokkos::parallel_reduce(
          "synthsae::maux_level_mask", Kokkos::RangePolicy<ExecSpace>(0, s),
          KOKKOS_LAMBDA(int j, std::size_t& acc) {
            const std::uint8_t on = (j >= lo && j < hi && dd(j)) ? 1 : 0;
            allowed(j) = on;
            acc += on;
          },
          dead_here);
      lo = hi;
      if (dead_here == 0) continue;
      const auto budget = detail::aux_budget(d, dead_here);
      kernels::sparse_decode(st.coefficients, p.w_dec, p.b_dec, st.prefix, hi);  // x_hat through width hi
      const double sq = st.term.run(b, p, g, DeadMask(st.allowed), budget.k, st.prefix,
                                    2.0 * coefficient * budget.scale / double(rows));
      total += budget.scale * sq / double(rows);
      if (dense)
        add_to_dense(st.term.selected, b.dh);
      else
        st.term.encoder_grad(b, g);
    }
    return coefficient * total;
  }
};

}  // namespace synthsae
