#pragma once
// The inference SAE, as SAELens saves and loads it: architecture "standard" (ReLU), "topk"
// (per-sample top k), "jumprelu" (ReLU(h) [h > threshold_j]), "gated" (ReLU(m) [p > 0] with
// p = H + b_gate, m = H exp(r_mag) + b_mag, H = (x - b_dec) W_enc) or "matching_pursuit";
// W_enc [D, S], b_enc [S], W_dec [S, D], b_dec [D], threshold [S]; gated keeps b_gate, r_mag,
// b_mag in params.extra and has no b_enc. Training SAEs export to it the way the reference does:
// TopK folds its decoder norms (so inference needs no rescaling); BatchTopK and Matryoshka
// BatchTopK fold their norms and become JumpReLU with threshold = the running theta; JumpReLU
// saves exp(log_threshold).
#include <cmath>
#include <cstdint>
#include <string>

#include "synthsae/core/gemm.hpp"
#include "synthsae/sae/gated_sae.hpp"
#include "synthsae/sae/matching_pursuit.hpp"
#include "synthsae/sae/sae.hpp"

namespace synthsae {

struct InferenceSae {
  std::string architecture = "standard";  ///< standard | topk | jumprelu | gated | matching_pursuit
  MatchingPursuit pursuit;                ///< matching_pursuit only (tied: W_enc, b_enc unused)
  int k = 0;                              ///< topk only
  bool rescale_acts_by_decoder_norm = false;
  bool apply_b_dec_to_input = true;
  SaeParameters<float> params;
  Vector<float> threshold;  ///< jumprelu only

  std::size_t input_dim() const { return params.input_dim(); }
  std::size_t num_latents() const { return params.num_latents(); }
  Matrix<float> decoder_weights() const { return params.w_dec; }

  void validate() const {
    if (architecture != "standard" && architecture != "topk" && architecture != "jumprelu" && architecture != "gated" &&
        architecture != "matching_pursuit") {
      throw ConfigError("architecture", "\"" + architecture + "\"", "supported: standard, topk, jumprelu, gated, matching_pursuit");
    }
    if (architecture == "gated") {
      for (const char* name : {"b_gate", "r_mag", "b_mag"}) {
        const auto it = params.extra.find(name);
        if (it == params.extra.end() || it->second.extent(0) != num_latents()) {
          throw ShapeError(std::string("gated SAE needs ") + name + " with d_sae = " + show(num_latents()) + " entries");
        }
      }
    }
    if (architecture == "matching_pursuit") pursuit.validate();
    if (architecture == "topk" && (k < 1 || static_cast<std::size_t>(k) > num_latents())) {
      throw ConfigError("k", show(k), "must be in [1, d_sae = " + show(num_latents()) + "]");
    }
    if (architecture == "jumprelu" && threshold.extent(0) != num_latents()) {
      throw ShapeError("threshold has " + show(threshold.extent(0)) + " entries, d_sae is " + show(num_latents()));
    }
  }

  void encode(const Matrix<float>& x, const Matrix<float>& z) {
    if (architecture == "matching_pursuit") {
      encode_pursuit(x, z);
      return;
    }
    const std::size_t rows = x.extent(0);
    const int d = static_cast<int>(input_dim()), s = static_cast<int>(num_latents());
    if (xc_.extent(0) != rows || xc_.extent(1) != input_dim()) xc_ = Matrix<float>("inference_xc", rows, input_dim());
    const auto xx = x, xc = xc_;
    const auto b_dec = params.b_dec;
    const bool subtract = apply_b_dec_to_input;
    Kokkos::parallel_for("synthsae::inference_center", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
      for (int q = 0; q < d; ++q) xc(i, q) = xx(i, q) - (subtract ? b_dec(q) : 0.0f);
    });
    gemm(Op::N, Op::N, 1.0f, xc_, params.w_enc, 0.0f, z);
    if (architecture == "gated") {
      gated_activation(z);
      return;
    }
    const auto zz = z;
    const auto b_enc = params.b_enc;
    const auto theta = threshold;
    const bool jump = architecture == "jumprelu";
    Kokkos::parallel_for("synthsae::inference_act", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
      for (int j = 0; j < s; ++j) {
        const float h = zz(i, j) + b_enc(j);
        zz(i, j) = (h > 0.0f && (!jump || h > theta(j))) ? h : 0.0f;
      }
    });
    if (architecture == "topk") {
      norms_ = Vector<float>("inference_norms", num_latents());
      kernels::row_norms(params.w_dec, norms_);
      if (key_.extent(0) != rows || key_.extent(1) != num_latents()) {
        key_ = Matrix<float>("inference_key", rows, num_latents());
        mask_ = decltype(mask_)("inference_mask", rows, num_latents());
      }
      const auto key = key_;
      const auto norms = norms_;
      const bool rescale = rescale_acts_by_decoder_norm;
      Kokkos::parallel_for("synthsae::inference_key", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
        for (int j = 0; j < s; ++j) key(i, j) = rescale ? zz(i, j) * norms(j) : zz(i, j);
      });
      row_top_k(key_, k, mask_, Kokkos::View<const std::uint8_t*, MemSpace>());
      const auto mask = mask_;
      Kokkos::parallel_for("synthsae::inference_topk", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
        for (int j = 0; j < s; ++j) zz(i, j) = mask(i, j) ? key(i, j) : 0.0f;
      });
    }
  }

  void decode(const Matrix<float>& z, const Matrix<float>& x_hat) {
    const int s = static_cast<int>(num_latents());
    const std::size_t rows = z.extent(0);
    if (rescale_acts_by_decoder_norm) {
      norms_ = Vector<float>("inference_norms", num_latents());
      kernels::row_norms(params.w_dec, norms_);
      if (c_.extent(0) != rows || c_.extent(1) != num_latents()) c_ = Matrix<float>("inference_c", rows, num_latents());
      const auto c = c_, zz = z;
      const auto norms = norms_;
      Kokkos::parallel_for("synthsae::inference_unscale", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
        for (int j = 0; j < s; ++j) c(i, j) = zz(i, j) / norms(j);
      });
      gemm(Op::N, Op::N, 1.0f, c_, params.w_dec, 0.0f, x_hat);
    } else {
      gemm(Op::N, Op::N, 1.0f, z, params.w_dec, 0.0f, x_hat);
    }
    kernels::add_to_rows(x_hat, params.b_dec);
  }

 public: // Kernel-launching helpers are public only because nvcc forbids extended
  // __host__ __device__ lambdas inside private member functions; not part of the API.
  /// z holds H = xc W_enc on entry; z = ReLU(H exp(r_mag) + b_mag) [H + b_gate > 0] on exit.
  void gated_activation(const Matrix<float>& z) const {
    const auto zz = z;
    const auto b_gate = params.extra.at("b_gate"), r_mag = params.extra.at("r_mag"), b_mag = params.extra.at("b_mag");
    const int s = static_cast<int>(num_latents());
    Kokkos::parallel_for("synthsae::inference_gated", Kokkos::RangePolicy<ExecSpace>(0, z.extent(0)), KOKKOS_LAMBDA(int i) {
      for (int j = 0; j < s; ++j) {
        const float h = zz(i, j);
        const float m = h * kmath::exp(r_mag(j)) + b_mag(j);
        zz(i, j) = (h + b_gate(j) > 0.0f && m > 0.0f) ? m : 0.0f;
      }
    });
  }

  void encode_pursuit(const Matrix<float>& x, const Matrix<float>& z) {
    const std::size_t rows = x.extent(0), s = num_latents(), d = input_dim();
    Matrix<float> xc("mp_xc", rows, d), scores("mp_scores", rows, s), gram("mp_gram", s, s), val("mp_val", rows, pursuit.max_iterations);
    Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace> sel("mp_sel", rows, pursuit.max_iterations);
    const auto xx = x;
    const auto b_dec = params.b_dec;
    const bool subtract = apply_b_dec_to_input;
    const int di = static_cast<int>(d);
    Kokkos::parallel_for("synthsae::inference_mp_center", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
      for (int q = 0; q < di; ++q) xc(i, q) = xx(i, q) - (subtract ? b_dec(q) : 0.0f);
    });
    detail::matching_pursuit_encode(pursuit, xc, params.w_dec, scores, gram, sel, val, z);
  }


 private:
  Matrix<float> xc_, key_, c_;
  Vector<float> norms_;
  Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask_;
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
  Kokkos::parallel_for("synthsae::fold_decoder_norms", Kokkos::RangePolicy<ExecSpace>(0, p.num_latents()), KOKKOS_LAMBDA(int j) {
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

/// The inference SAE a trained SAE is saved as (a deep copy of its parameters).
template <class A, class P, class X, class N>
InferenceSae export_inference(const Sae<A, P, X, N, float>& sae) {
  InferenceSae out;
  out.params = sae.parameters().clone();
  out.params.extra.clear();
  if constexpr (std::is_same_v<A, Relu>) {
    out.architecture = "standard";
  } else if constexpr (std::is_same_v<A, TopK>) {
    out.architecture = "topk";
    out.k = sae.activation().k;
    if (sae.activation().rescale_acts_by_decoder_norm) detail::fold_decoder_norms(out.params, Vector<float>());
  } else if constexpr (std::is_same_v<A, BatchTopK>) {
    // Fold first: keys h |W_dec_j| become the folded pre-activations, theta's own space.
    out.architecture = "jumprelu";
    if (sae.activation().rescale_acts_by_decoder_norm) detail::fold_decoder_norms(out.params, Vector<float>());
    out.threshold = Vector<float>("threshold", sae.num_latents());
    Kokkos::deep_copy(out.threshold, static_cast<float>(sae.activation_state().threshold));
  } else if constexpr (std::is_same_v<A, JumpRelu>) {
    out.architecture = "jumprelu";
    out.threshold = Vector<float>("threshold", sae.num_latents());
    const auto log_theta = sae.parameters().extra.at("log_threshold");
    const auto theta = out.threshold;
    Kokkos::parallel_for("synthsae::export_threshold", Kokkos::RangePolicy<ExecSpace>(0, theta.extent(0)),
                         KOKKOS_LAMBDA(int j) { theta(j) = kmath::exp(log_theta(j)); });
  } else {
    static_assert(sizeof(A) == 0, "export_inference: no SAELens inference form for this activation");
  }
  out.validate();
  return out;
}

/// A Gated SAE saves as itself (SAELens does not fold its decoder norms on save).
inline InferenceSae export_inference(const GatedSae<float>& sae) {
  InferenceSae out;
  out.architecture = "gated";
  out.params = sae.parameters().clone();
  out.validate();
  return out;
}

/// A Matching Pursuit SAE saves as itself (tied: only W_dec and b_dec).
inline InferenceSae export_inference(const MatchingPursuitSae<float>& sae) {
  InferenceSae out;
  out.architecture = "matching_pursuit";
  out.pursuit = sae.pursuit();
  out.params = sae.parameters().clone();
  out.validate();
  return out;
}

}  // namespace synthsae
