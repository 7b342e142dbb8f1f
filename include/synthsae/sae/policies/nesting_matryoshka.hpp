#pragma once
// Nesting (reference §8.5). Matryoshka: for every listed width w below d_sae the
// prefix reconstruction x_hat_w = b_dec + sum_{j < w} c_j W_dec_j adds mean_b |x_hat_w - x|^2
// (weight 1) to the loss. Widths must be strictly increasing; d_sae is appended if missing.
#include <string>
#include <string_view>
#include <vector>

#include "synthsae/core/gemm.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

struct Matryoshka {
  static constexpr std::string_view name = "matryoshka";
  std::vector<int> widths;  ///< matryoshka_widths (inner levels; d_sae implied as the last)

  template <class T>
  struct State {
    Matrix<T> x_hat_w;
  };

  void validate(std::size_t /*d_in*/, std::size_t d_sae) const {
    for (std::size_t i = 0; i < widths.size(); ++i) {
      if (widths[i] < 1 || static_cast<std::size_t>(widths[i]) > d_sae || (i > 0 && widths[i] <= widths[i - 1])) {
        std::string list;
        for (int w : widths) list += (list.empty() ? "" : ", ") + std::to_string(w);
        throw ConfigError("matryoshka_widths", "[" + list + "]",
                          "must be strictly increasing, within [1, d_sae = " + std::to_string(d_sae) + "]");
      }
    }
  }

  /// The sparse step's version: the inner reconstructions use the active entries below each
  /// width (a prefix of every row); adds to a.grad (dLoss/dc), g.w_dec and g.b_dec.
  template <class T>
  double accumulate_sparse(StepBuffers<T>& b, const ActiveSet<T>& a, const SaeParameters<T>& p, SaeParameters<T>& g,
                           State<T>& st) const {
    const std::size_t rows = b.batch(), d = p.input_dim();
    if (st.x_hat_w.extent(0) != rows || st.x_hat_w.extent(1) != d) st.x_hat_w = Matrix<T>("matryoshka_x_hat", rows, d);
    double total = 0;
    for (const int w : widths) {
      if (static_cast<std::size_t>(w) >= p.num_latents()) continue;
      // x_hat_w, overwritten by dLoss/dx_hat_w; adds to dLoss/dc below the width
      total += kernels::sparse_reconstruct(a, p.w_dec, p.b_dec, b.x, st.x_hat_w, st.x_hat_w, w, true);
      kernels::sparse_decoder_grad(a, st.x_hat_w, g.w_dec, true, w);
      kernels::column_sums(st.x_hat_w, g.b_dec, T(1), true);
    }
    return total;
  }

  /// Adds the inner losses' gradients to b.dc, g.w_dec and g.b_dec (call after the outer dc).
  template <class T>
  double accumulate(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g, State<T>& st) const {
    const std::size_t rows = b.batch(), d = p.input_dim();
    if (st.x_hat_w.extent(0) != rows || st.x_hat_w.extent(1) != d) st.x_hat_w = Matrix<T>("matryoshka_x_hat", rows, d);
    double total = 0;
    for (const int w : widths) {
      if (static_cast<std::size_t>(w) >= p.num_latents()) continue;  // the outer level is the main loss
      const auto cols = Kokkos::make_pair(0, w);
      const auto c_w = Kokkos::subview(b.c, Kokkos::ALL(), cols);
      const auto w_dec_w = Kokkos::subview(p.w_dec, cols, Kokkos::ALL());
      gemm(Op::N, Op::N, T(1), c_w, w_dec_w, T(0), st.x_hat_w);
      const auto xw = st.x_hat_w, x = b.x;
      const auto b_dec = p.b_dec;
      const int di = static_cast<int>(d);
      const T factor = static_cast<T>(2.0 / double(rows));
      double sq = 0;
      Kokkos::parallel_reduce(
          "synthsae::matryoshka_inner", Kokkos::RangePolicy<ExecSpace>(0, rows),
          KOKKOS_LAMBDA(int i, double& acc) {
            for (int k = 0; k < di; ++k) {
              const T diff = xw(i, k) + b_dec(k) - x(i, k);
              acc += double(diff) * double(diff);
              xw(i, k) = factor * diff;  // now dLoss/dx_hat_w
            }
          },
          sq);
      total += sq / double(rows);
      gemm(Op::N, Op::T, T(1), st.x_hat_w, w_dec_w, T(1), Kokkos::subview(b.dc, Kokkos::ALL(), cols));
      gemm(Op::T, Op::N, T(1), c_w, st.x_hat_w, T(1), Kokkos::subview(g.w_dec, cols, Kokkos::ALL()));
      kernels::column_sums(st.x_hat_w, g.b_dec, T(1), true);
    }
    return total;
  }
};

}  // namespace synthsae
