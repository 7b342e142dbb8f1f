#pragma once
// export_inference: the inference SAE a trained SAE is saved as (a deep copy of its parameters),
// the way the reference exports. A composed Sae<A, ...> exports by its activation A through
// InferenceExport<A>, so any composition over a shipped activation exports with no new code:
//   Relu -> standard;  TopK -> topk, AbsTopK -> abstopk, with their decoder norms folded;
//   BatchTopK -> jumprelu with folded norms and threshold = the running theta;
//   JumpRelu -> jumprelu with threshold = theta (exp(log_threshold) when trained as log theta).
// GatedSae and MatchingPursuitSae save as themselves. A new activation adds a specialisation.
#include <type_traits>

#include "synthsae/sae/gated_sae.hpp"
#include "synthsae/sae/inference_sae.hpp"
#include "synthsae/sae/matching_pursuit_sae.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae {

/// Specialise for an activation A: static InferenceForm form(const SaeT&, SaeParameters<float>&)
/// returns the form and may rewrite the (copied) parameters, e.g. fold decoder norms.
template <class Activation>
struct InferenceExport {
  static_assert(sizeof(Activation) == 0,
                "export_inference: no SAELens inference form for this activation; specialise InferenceExport");
};

namespace detail {

/// W_dec_j /= n_j, W_enc[:, j] *= n_j, b_enc_j *= n_j (and the threshold, if any).
inline void fold_decoder_norms(SaeParameters<float>& p, const Vector<float>& threshold_or_empty) {
  Vector<float> norms("fold_norms", p.num_latents());
  kernels::row_norms(p.w_dec, norms);
  const auto w_dec = p.w_dec, w_enc = p.w_enc;
  const auto b_enc = p.b_enc, theta = threshold_or_empty;
  const int d = static_cast<int>(p.input_dim());
  const bool has_theta = threshold_or_empty.extent(0) > 0;
  Kokkos::parallel_for(
      "synthsae::fold_decoder_norms", Kokkos::RangePolicy<ExecSpace>(0, p.num_latents()), KOKKOS_LAMBDA(int j) {
        const float n = norms(j);
        for (int q = 0; q < d; ++q) {
          w_dec(j, q) /= n;
          w_enc(q, j) *= n;
        }
        b_enc(j) *= n;
        if (has_theta) theta(j) *= n;
      });
}

}  // namespace detail

template <>
struct InferenceExport<Relu> {
  template <class S>
  static InferenceForm form(const S&, SaeParameters<float>&) {
    return inference::ReluForm{};
  }
};

/// TopK -> "topk", AbsTopK -> "abstopk", as SAELens saves a trained TopK: norms folded into the
/// weights and the flag kept (a no-op on unit rows; the ranking is unchanged by the fold).
template <bool ByMagnitude>
struct InferenceExport<RowTopK<ByMagnitude>> {
  template <class S>
  static InferenceForm form(const S& sae, SaeParameters<float>& p) {
    inference::RowTopKForm<ByMagnitude> f;
    f.k = sae.activation().k;
    if (sae.activation().rescale_acts_by_decoder_norm) detail::fold_decoder_norms(p, Vector<float>());
    f.rescale_acts_by_decoder_norm = sae.activation().rescale_acts_by_decoder_norm;
    return f;
  }
};

template <>
struct InferenceExport<BatchTopK> {
  template <class S>
  static InferenceForm form(const S& sae, SaeParameters<float>& p) {
    // Fold first: keys h |W_dec_j| become the folded pre-activations, theta's own space.
    if (sae.activation().rescale_acts_by_decoder_norm) detail::fold_decoder_norms(p, Vector<float>());
    inference::JumpReluForm f;
    f.threshold = Vector<float>("threshold", sae.num_latents());
    Kokkos::deep_copy(f.threshold, static_cast<float>(sae.activation_state().threshold));
    return f;
  }
};

template <>
struct InferenceExport<JumpRelu> {
  template <class S>
  static InferenceForm form(const S& sae, SaeParameters<float>&) {
    inference::JumpReluForm f;
    f.threshold = Vector<float>("threshold", sae.num_latents());
    const auto theta_of = jumprelu_threshold(sae.parameters());
    const auto theta = f.threshold;
    // As SAELens saves it: the last update may have left a direct theta just below 0, which the
    // inference form's ReLU makes harmless.
    Kokkos::parallel_for(
        "synthsae::export_threshold", Kokkos::RangePolicy<ExecSpace>(0, theta.extent(0)),
        KOKKOS_LAMBDA(int j) { theta(j) = theta_of(j); });
    return f;
  }
};

template <class A, class P, class X, class N>
InferenceSae export_inference(const Sae<A, P, X, N, float>& sae) {
  InferenceSae out;
  out.params = sae.parameters().clone();
  out.params.extra.clear();
  out.form = InferenceExport<A>::form(sae, out.params);
  out.apply_b_dec_to_input = sae.apply_b_dec_to_input();
  out.validate();
  return out;
}

/// A Gated SAE saves as itself (SAELens does not fold its decoder norms on save).
inline InferenceSae export_inference(const GatedSae<float>& sae) {
  InferenceSae out;
  out.form = inference::GatedForm{};
  out.apply_b_dec_to_input = sae.apply_b_dec_to_input();
  out.params = sae.parameters().clone();
  out.validate();
  return out;
}

/// A Matching Pursuit SAE saves as itself (tied: only W_dec and b_dec).
inline InferenceSae export_inference(const MatchingPursuitSae<float>& sae) {
  InferenceSae out;
  inference::MatchingPursuitForm f;
  f.pursuit = sae.pursuit();
  out.form = f;
  out.apply_b_dec_to_input = sae.apply_b_dec_to_input();
  out.params = sae.parameters().clone();
  out.validate();
  return out;
}

}  // namespace synthsae
