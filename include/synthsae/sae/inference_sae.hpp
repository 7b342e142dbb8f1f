#pragma once
// The inference SAE, as SAELens saves and loads it: shared parameters (W_enc [D, S], b_enc [S],
// W_dec [S, D], b_dec [D], extras by name) plus one of a closed set of small forms, each a
// SAELens inference architecture that encodes itself (inference/*_form.hpp):
//   standard (ReLU) | topk | abstopk | jumprelu | gated | matching_pursuit
// The list of forms below is the one place the SAELens loader reads (saelens/sae_directory.hpp);
// a new form is one header and one entry here. Training SAEs export to a form through
// export_inference (inference/export.hpp).
#include <string>
#include <variant>

#include "synthsae/core/gemm.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/adaptive_decode.hpp"
#include "synthsae/sae/inference/activation_normalization.hpp"
#include "synthsae/sae/inference/gated_form.hpp"
#include "synthsae/sae/inference/jumprelu_form.hpp"
#include "synthsae/sae/inference/matching_pursuit_form.hpp"
#include "synthsae/sae/inference/relu_form.hpp"
#include "synthsae/sae/inference/topk_form.hpp"

namespace synthsae {

/// Every inference form the library reads and writes, by SAELens architecture name.
using InferenceForm = std::variant<inference::ReluForm, inference::TopKForm, inference::AbsTopKForm,
                                   inference::JumpReluForm, inference::GatedForm, inference::MatchingPursuitForm>;

struct InferenceSae {
  InferenceForm form;
  bool apply_b_dec_to_input = true;
  SaeParameters<float> params;
  /// SAELens's normalize_activations (inference/activation_normalization.hpp).
  inference::RuntimeNormalization normalization;

  /// The SAELens architecture name of the form ("standard", "topk", ...).
  std::string architecture() const {
    return std::visit([](const auto& f) { return std::string(f.saelens_name); }, form);
  }
  template <class Form>
  bool is() const {
    return std::holds_alternative<Form>(form);
  }
  template <class Form>
  const Form& as() const {
    return std::get<Form>(form);
  }

  std::size_t input_dim() const { return params.input_dim(); }
  std::size_t num_latents() const { return params.num_latents(); }
  Matrix<float> decoder_weights() const { return params.w_dec; }

  void validate() const {
    std::visit([&](const auto& f) { f.validate(params); }, form);
  }

  /// z [B, S] = the form's activations of x [B, D]. Buffers persist between calls.
  void encode(const Matrix<float>& x, const Matrix<float>& z) {
    if (xc_.extent(0) != x.extent(0) || xc_.extent(1) != input_dim())
      xc_ = Matrix<float>("inference_xc", x.extent(0), input_dim());
    if (normalization.acts()) {
      normalization.normalize(x, xc_);  // then centred in place
      inference::kernels::center(xc_, params.b_dec, apply_b_dec_to_input, xc_);
    } else {
      inference::kernels::center(x, params.b_dec, apply_b_dec_to_input, xc_);
    }
    std::visit([&](auto& f) { f.encode(params, xc_, z); }, form);
  }

  /// x_hat = (rescaling form ? z / |W_dec_j| : z) W_dec + b_dec, then the normalisation undone
  /// (a tied form adds b_dec only with apply_b_dec_to_input, as SAELens's matching pursuit).
  /// From z's nonzero entries when they are few (kernels/adaptive_decode.hpp).
  void decode(const Matrix<float>& z, const Matrix<float>& x_hat) {
    const bool rescale = std::visit([](const auto& f) { return f.rescales_on_decode(); }, form);
    if (rescale) {
      if (norms_.extent(0) != num_latents()) norms_ = Vector<float>("inference_norms", num_latents());
      kernels::row_norms(params.w_dec, norms_);
    }
    const bool tied = std::visit([](const auto& f) { return requires { f.b_dec_tied_to_input; }; }, form);
    const bool add_bias = apply_b_dec_to_input || !tied;
    decoder_.decode(z, rescale ? norms_ : Vector<float>(), params.w_dec, add_bias ? params.b_dec : Vector<float>(), x_hat);
    if (normalization.acts()) normalization.denormalize(x_hat);
  }
  /// The decoder's choice between the GEMM and the sparse form.
  AdaptiveDecode<float>& decoder() { return decoder_; }

 private:
  Matrix<float> xc_;
  Vector<float> norms_;
  AdaptiveDecode<float> decoder_;
};

}  // namespace synthsae
