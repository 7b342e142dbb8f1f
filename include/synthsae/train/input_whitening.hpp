#pragma once
// The input normalisation a training run uses (SAELens's normalize_activations), the whitening
// estimate from a world for "covariance_whitening", and its fold into each SAE family
// (sae/input_whitening.hpp has the statistics, their application and the linear fold).
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "synthsae/sae/gated_sae.hpp"
#include "synthsae/sae/inference/activation_normalization.hpp"
#include "synthsae/sae/input_whitening.hpp"
#include "synthsae/sae/sae.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae {

/// SAELens's normalize_activations modes, every one of which a training run can use: the
/// activation-norm scale and the whitening are estimated before training and folded into the
/// weights at the end; constant_norm_rescale and layer_norm act per row at run time, in training
/// as at inference (train/runtime_normalization.hpp).
using InputNormalization = inference::ActivationNormalization;

inline const char* saelens_name(InputNormalization n) { return inference::normalization_name(n); }

inline std::optional<InputNormalization> parse_input_normalization(std::string_view name) {
  for (auto n : {InputNormalization::none, InputNormalization::expected_average_only_in,
                 InputNormalization::constant_norm_rescale, InputNormalization::layer_norm,
                 InputNormalization::covariance_whitening})
    if (name == saelens_name(n)) return n;
  return std::nullopt;
}

/// Estimates the whitening from `batches` batches of the world, from the stream region the
/// activation-norm estimate reads (one training never reaches).
inline InputWhitening estimate_input_whitening(SyntheticModel& world, std::size_t batches, std::size_t batch_size,
                                               double eps = 1e-3) {
  const std::size_t d = world.hidden_dim();
  SparseBatch<float> truth;
  Matrix<float> x("whitening_x", batch_size, d);
  std::vector<double> sum_x(d, 0.0), sum_outer(d * d, 0.0);
  Eigen::Map<Eigen::VectorXd> sx(sum_x.data(), static_cast<Eigen::Index>(d));
  Eigen::Map<detail::RowMajorXd> so(sum_outer.data(), static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(d));
  detail::RowMajorXd xd(static_cast<Eigen::Index>(batch_size), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < batches; ++i) {
    world.sample_features_at(truth, (std::uint64_t(1) << 61) + i * batch_size, batch_size);
    world.hidden_at(truth, (std::uint64_t(1) << 61) + i * batch_size, x);
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
    for (std::size_t r = 0; r < batch_size; ++r)
      for (std::size_t k = 0; k < d; ++k) xd(Eigen::Index(r), Eigen::Index(k)) = h(r, k);
    sx += xd.colwise().sum().transpose();
    so.selfadjointView<Eigen::Lower>().rankUpdate(xd.transpose());
  }
  so.triangularView<Eigen::StrictlyUpper>() = so.transpose();
  return whitening_from_moments(batches * batch_size, sum_x, sum_outer, eps);
}

/// A composed SAE: the linear fold; its activation's threshold (if any) is unchanged. The TopK
/// family with rescale_acts_by_decoder_norm folds its decoder norms first and turns the rescale
/// off (SAELens's TopKTrainingSAE.fold_activation_whitening), so its ranking survives the fold.
template <class A, class P, class X, class N, class T>
void fold_input_whitening(Sae<A, P, X, N, T>& sae, const InputWhitening& w) {
  bool fold_norms = false;
  if constexpr (requires { sae.activation().rescale_acts_by_decoder_norm = false; })
    fold_norms = sae.activation().rescale_acts_by_decoder_norm;
  fold_input_whitening_linear(sae.parameters(), w, sae.apply_b_dec_to_input(), fold_norms);
  if constexpr (requires { sae.activation().rescale_acts_by_decoder_norm = false; })
    sae.activation().rescale_acts_by_decoder_norm = false;
}

/// Gated: without apply_b_dec_to_input, b_gate and b_mag shift as b_enc would (b_mag by the
/// magnitude path's exp(r_mag) too), as SAELens's GatedSAE does.
template <class T>
void fold_input_whitening(GatedSae<T>& sae, const InputWhitening& w) {
  auto& p = sae.parameters();
  const std::vector<double> shift = fold_input_whitening_linear(p, w, sae.apply_b_dec_to_input());
  if (sae.apply_b_dec_to_input()) return;
  auto b_gate = Kokkos::create_mirror_view_and_copy(HostSpace(), p.extra.at("b_gate"));
  auto b_mag = Kokkos::create_mirror_view_and_copy(HostSpace(), p.extra.at("b_mag"));
  auto r_mag = Kokkos::create_mirror_view_and_copy(HostSpace(), p.extra.at("r_mag"));
  for (std::size_t j = 0; j < shift.size(); ++j) {
    b_gate(j) = static_cast<T>(double(b_gate(j)) - shift[j]);
    b_mag(j) = static_cast<T>(double(b_mag(j)) - shift[j] * std::exp(double(r_mag(j))));
  }
  Kokkos::deep_copy(p.extra.at("b_gate"), b_gate);
  Kokkos::deep_copy(p.extra.at("b_mag"), b_mag);
}

}  // namespace synthsae
