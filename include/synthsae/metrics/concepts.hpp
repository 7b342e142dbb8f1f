#pragma once
// What evaluate() needs from an SAE (the accumulators' own concept, MetricAccumulator, lives with
// them in accumulators.hpp). Metrics see only arrays: any float SAE that encodes and decodes
// batches and exposes its decoder is evaluable (Sae<...>, GatedSae, MatchingPursuitSae, InferenceSae).
#include <concepts>
#include <cstddef>

#include "synthsae/core/backend.hpp"

namespace synthsae {

/// What evaluate() needs from an SAE: batch encode/decode on device matrices and its decoder.
template <class S>
concept EvaluableSae = requires(S& sae, const Matrix<float>& x, const Matrix<float>& z, const Matrix<float>& x_hat) {
  { sae.num_latents() } -> std::convertible_to<std::size_t>;
  { sae.input_dim() } -> std::convertible_to<std::size_t>;
  sae.encode(x, z);                                                 // z: [B, S]
  sae.decode(z, x_hat);                                             // x_hat: [B, D]
  { sae.decoder_weights() } -> std::convertible_to<Matrix<float>>;  // W_dec [S, D]
};

}  // namespace synthsae
