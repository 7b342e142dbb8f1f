#pragma once
// What an analysis needs of an SAE on a chunk of rows: its reconstruction, as a function of the
// chunk. Oracles read the chunk's ground truth; trained SAEs encode and decode its activations.
#include <functional>
#include <memory>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/analysis/oracle_sae.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::analysis {

/// x_hat [n, dim] of a chunk's rows (chunk.x is the activation; chunk.truth its ground truth).
using ChunkReconstruction = std::function<void(const ActivationChunk&, const Matrix<float>&)>;

/// An oracle SAE's reconstruction (any selection and introduced error).
inline ChunkReconstruction oracle_reconstruction(std::shared_ptr<const OracleSae> oracle) {
  return [oracle](const ActivationChunk& chunk, const Matrix<float>& x_hat) { oracle->reconstruct(chunk, x_hat); };
}

/// A trained SAE run on the chunk's activations.
inline ChunkReconstruction sae_reconstruction(std::shared_ptr<InferenceSae> sae) {
  auto z = std::make_shared<Matrix<float>>();
  return [sae, z](const ActivationChunk& chunk, const Matrix<float>& x_hat) {
    if (sae->input_dim() != chunk.x.extent(1))
      throw ShapeError("an SAE of " + show(sae->input_dim()) + " inputs on activations of " + show(chunk.x.extent(1)));
    if (z->extent(0) != chunk.rows()) *z = Matrix<float>("reconstruction_z", chunk.rows(), sae->num_latents());
    sae->encode(chunk.x, *z);
    sae->decode(*z, x_hat);
  };
}

}  // namespace synthsae::analysis
