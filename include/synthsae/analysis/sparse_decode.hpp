#pragma once
// Decoding a batch of sparse codes on the host without the dense [B, S] x [S, D] product: a
// TopK SAE of 4,096 latents with k = 16 reads 0.4 % of its decoder per row. The analyses
// decode every row of their sources once per SAE, so this is most of their GEMM time; on a
// GPU (and for dense codes) InferenceSae::decode's GEMM stays the path.
#include "synthsae/core/backend.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::analysis {

/// x_hat = the SAE's decode of z, exactly as InferenceSae::decode defines it (the sum is taken
/// in latent order per row, so the bits differ from the GEMM's by rounding).
inline void decode_codes(InferenceSae& sae, const Matrix<float>& z, const Matrix<float>& x_hat) {
  const std::size_t rows = z.extent(0), s = z.extent(1), d = sae.input_dim();
  if constexpr (!host_execution_v) {
    sae.decode(z, x_hat);
    return;
  }
  std::size_t nnz = 0;
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < s; ++j) nnz += z(i, j) != 0.0f;
  if (sae.normalization.acts() || nnz * 16 >= rows * s) {  // sparse below one active latent in 16
    sae.decode(z, x_hat);
    return;
  }
  const bool rescale = std::visit([](const auto& f) { return f.rescales_on_decode(); }, sae.form);
  Vector<float> scale("decode_scale", s);
  Kokkos::deep_copy(scale, 1.0f);
  if (rescale) {
    kernels::row_norms(sae.params.w_dec, scale);
    const auto sc = scale;
    Kokkos::parallel_for(
        "synthsae::decode_inverse_norms", Kokkos::RangePolicy<ExecSpace>(0, s), KOKKOS_LAMBDA(int j) { sc(j) = 1.0f / sc(j); });
  }
  const auto zz = z;
  const auto w = sae.params.w_dec;
  const auto b = sae.params.b_dec;
  const auto out = x_hat;
  const auto sc = scale;
  const int si = static_cast<int>(s), di = static_cast<int>(d);
  Kokkos::parallel_for(
      "synthsae::decode_sparse", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
        for (int k = 0; k < di; ++k) out(i, k) = 0.0f;
        for (int j = 0; j < si; ++j) {
          const float v = zz(i, j);
          if (v == 0.0f) continue;
          const float c = v * sc(j);
          for (int k = 0; k < di; ++k) out(i, k) += c * w(j, k);
        }
        for (int k = 0; k < di; ++k) out(i, k) += b(k);
      });
}

}  // namespace synthsae::analysis
