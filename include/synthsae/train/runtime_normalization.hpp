#pragma once
// Training behind a per-row normalisation (SAELens's normalize_activations = constant_norm_rescale
// or layer_norm): each batch row is normalised on the way in, and the reconstruction is mapped back
// with that row's statistics before the MSE against the raw row, as SAELens's training forward
// pass does (sae.py: process_sae_in, decode, mse against sae_in). Nothing is folded at the end: the
// saved SAE keeps the mode in cfg.json and applies it at inference (inference_sae.hpp).
#include <cstddef>

#include "synthsae/sae/inference/activation_normalization.hpp"
#include "synthsae/sae/kernels/output_map.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

/// An SAE whose every loss term can compare through an output map (Sae::output_map_covers_loss).
/// Not: a Matryoshka nesting (inner reconstructions), AuxK (the residual) - SAELens raises for
/// both - nor Gated, whose gate reconstruction SAELens computes from the raw input.
template <class SaeT>
concept TrainsBehindRowNormalization = requires { requires SaeT::output_map_covers_loss; };

/// One step of `sae` on the raw rows `x`: x_norm <- the rows normalised by `norm` (its mode), then
/// the step with the reconstruction compared as x_hat a_i + m_i against x.
template <TrainsBehindRowNormalization SaeT>
StepLosses normalized_forward_backward(SaeT& sae, inference::RuntimeNormalization& norm, const Matrix<float>& x,
                                       Matrix<float>& x_norm, SaeParameters<float>& grads, const DeadMask& dead = {},
                                       std::size_t num_dead = 0, PenaltyScale scale = {}) {
  if (x_norm.extent(0) != x.extent(0) || x_norm.extent(1) != x.extent(1))
    x_norm = Matrix<float>("normalized_batch", x.extent(0), x.extent(1));
  norm.normalize(x, x_norm);
  sae.set_output_map(OutputMap<float>{x, norm.out_scale(), norm.shift()});
  const StepLosses losses = sae.forward_backward(x_norm, grads, dead, num_dead, scale);
  sae.set_output_map({});  // holds no view of this batch beyond the step
  return losses;
}

}  // namespace synthsae
