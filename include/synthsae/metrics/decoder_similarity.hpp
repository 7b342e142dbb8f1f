#pragma once
// |cos| between SAE decoder rows and true feature directions (reference §6): the [S, N]
// matrix every decoder-based metric starts from. Norms are clamped at 1e-8 as the reference.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/core/row_loops.hpp"

namespace synthsae {

struct DecoderSimilarity {
  std::size_t num_latents = 0, num_features = 0;
  std::vector<double> abs_cos;             ///< row-major [S, N], on the host
  std::vector<std::int32_t> best_feature;  ///< [S] argmax_i |cos(d_j, f_i)| (first on ties)
};

inline DecoderSimilarity decoder_similarity(const Matrix<float>& w_dec, const Matrix<float>& w_feat) {
  const std::size_t s = w_dec.extent(0), n = w_feat.extent(0), d = w_dec.extent(1);
  if (w_feat.extent(1) != d) {
    throw ShapeError("decoder rows have " + show(d) + " dimensions, true features " + show(w_feat.extent(1)));
  }
  Matrix<float> dots("decoder_feature_dots", s, n);
  // Exact FP32 whatever the run's GemmMath: MCC and uniqueness take argmaxes over these
  // cosines, and BF16 inputs (2^-8 relative) would flip near ties.
  const ScopedGemmMath exact(GemmMath::fp32);
  gemm(Op::N, Op::T, 1.0f, w_dec, w_feat, 0.0f, dots);
  auto row_norms = [](const Matrix<float>& m) {
    Vector<float> norms("norms", m.extent(0));
    const auto mm = m;
    for_each_row_sum<double>(
        "synthsae::row_norms", m.extent(0), m.extent(1),
        KOKKOS_LAMBDA(int i, int k) { return double(mm(i, k)) * mm(i, k); },
        KOKKOS_LAMBDA(int i, double acc) {
          const double norm = kmath::sqrt(acc);
          norms(i) = static_cast<float>(norm > 1e-8 ? norm : 1e-8);
        });
    return Kokkos::create_mirror_view_and_copy(HostSpace(), norms);
  };
  const auto dn = row_norms(w_dec), fn = row_norms(w_feat);
  const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), dots);
  DecoderSimilarity out{s, n, std::vector<double>(s * n), std::vector<std::int32_t>(s, 0)};
  for (std::size_t j = 0; j < s; ++j) {
    double best = -1;
    for (std::size_t i = 0; i < n; ++i) {
      const double c = std::fabs(double(h(j, i)) / (double(dn(j)) * double(fn(i))));
      out.abs_cos[j * n + i] = c;
      if (c > best) best = c, out.best_feature[j] = static_cast<std::int32_t>(i);
    }
  }
  return out;
}

/// SAELens's find_best_feature_ordering: the latents sorted by the index of their best-matching
/// true feature, so that a latent-by-feature |cos| heat map shows a diagonal. Ties (latents with
/// the same best feature) keep latent order; torch's argsort leaves their order unspecified.
inline std::vector<std::size_t> best_feature_ordering(const DecoderSimilarity& sim) {
  std::vector<std::size_t> latents(sim.num_latents);
  for (std::size_t j = 0; j < latents.size(); ++j) latents[j] = j;
  std::stable_sort(latents.begin(), latents.end(),
                   [&](std::size_t a, std::size_t b) { return sim.best_feature[a] < sim.best_feature[b]; });
  return latents;
}

}  // namespace synthsae
