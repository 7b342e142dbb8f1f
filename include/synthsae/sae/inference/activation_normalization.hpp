#pragma once
// SAELens's normalize_activations at inference (SAELens 6.54, SAE._setup_activation_normalization):
//   none, expected_average_only_in, covariance_whitening   identity at inference: the scale or the
//                       whitening lives in the trainer's checkpoint and is folded into the weights
//                       at the end of training; SAE.load_from_disk applies nothing
//   constant_norm_rescale   in: x c with c = sqrt(d_in) / |x| per row;  out: y / c
//   layer_norm              in: (x - mu) / (sd + 1e-5), mu the row mean, sd its unbiased standard
//                           deviation;  out: y sd + mu (no epsilon, as SAELens)
// The two runtime modes remember each row's (shift, scales) from encode for the decode that
// follows, as SAELens's module does; a decode of a different batch size is an error.
#include <cmath>
#include <string>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"

namespace synthsae::inference {

enum class ActivationNormalization { none, expected_average_only_in, constant_norm_rescale, layer_norm, covariance_whitening };

inline const char* normalization_name(ActivationNormalization n) {
  switch (n) {
    case ActivationNormalization::none: return "none";
    case ActivationNormalization::expected_average_only_in: return "expected_average_only_in";
    case ActivationNormalization::constant_norm_rescale: return "constant_norm_rescale";
    case ActivationNormalization::layer_norm: return "layer_norm";
    case ActivationNormalization::covariance_whitening: return "covariance_whitening";
  }
  return "none";
}

/// The mode named in cfg.json; ConfigError naming the field and listing the choices otherwise.
inline ActivationNormalization parse_normalization(const std::string& name) {
  for (auto n : {ActivationNormalization::none, ActivationNormalization::expected_average_only_in,
                 ActivationNormalization::constant_norm_rescale, ActivationNormalization::layer_norm,
                 ActivationNormalization::covariance_whitening}) {
    if (name == normalization_name(n)) return n;
  }
  throw ConfigError("normalize_activations", "\"" + name + "\"",
                    "must be one of none, expected_average_only_in, constant_norm_rescale, layer_norm, "
                    "covariance_whitening");
}

/// Applies a mode to the input rows and undoes it on the output rows.
class RuntimeNormalization {
 public:
  ActivationNormalization mode = ActivationNormalization::none;

  RuntimeNormalization() = default;
  explicit RuntimeNormalization(ActivationNormalization m) : mode(m) {}

  /// Whether the mode changes anything at inference.
  bool acts() const {
    return mode == ActivationNormalization::constant_norm_rescale || mode == ActivationNormalization::layer_norm;
  }

  /// out = the normalised rows of x (call only when acts()); keeps each row's statistics.
  void normalize(const Matrix<float>& x, const Matrix<float>& out) {
    const int rows = static_cast<int>(x.extent(0)), d = static_cast<int>(x.extent(1));
    if (shift_.extent(0) != x.extent(0)) {
      shift_ = Vector<float>("norm_shift", rows);
      in_scale_ = Vector<float>("norm_in_scale", rows);
      out_scale_ = Vector<float>("norm_out_scale", rows);
    }
    const auto xx = x, o = out;
    const auto shift = shift_, in_scale = in_scale_, out_scale = out_scale_;
    const bool layer = mode == ActivationNormalization::layer_norm;
    Kokkos::parallel_for(
        "synthsae::normalize_rows", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
          if (layer) {
            float mean = 0;
            for (int k = 0; k < d; ++k) mean += xx(i, k);
            mean /= float(d);
            float ss = 0;
            for (int k = 0; k < d; ++k) ss += (xx(i, k) - mean) * (xx(i, k) - mean);
            const float sd = kmath::sqrt(ss / float(d - 1));
            shift(i) = mean, in_scale(i) = 1.0f / (sd + 1e-5f), out_scale(i) = sd;
          } else {
            float ss = 0;
            for (int k = 0; k < d; ++k) ss += xx(i, k) * xx(i, k);
            const float c = kmath::sqrt(float(d)) / kmath::sqrt(ss);
            shift(i) = 0.0f, in_scale(i) = c, out_scale(i) = 1.0f / c;
          }
        });
    for_each_entry(
        "synthsae::normalize_in", rows, d,
        KOKKOS_LAMBDA(int i, int k) { o(i, k) = (xx(i, k) - shift(i)) * in_scale(i); });
  }

  /// The statistics of the last normalize(): per row, out = y out_scale + shift.
  const Vector<float>& out_scale() const { return out_scale_; }
  const Vector<float>& shift() const { return shift_; }

  /// y <- y out_scale + shift per row, with the statistics of the last normalize().
  void denormalize(const Matrix<float>& y) const {
    if (y.extent(0) != shift_.extent(0)) {
      throw ShapeError(std::string("normalize_activations = ") + normalization_name(mode) + ": decode of " +
                       show(y.extent(0)) + " rows needs the encode of the same batch first (it has " +
                       show(shift_.extent(0)) + ")");
    }
    const auto yy = y;
    const auto shift = shift_, out_scale = out_scale_;
    for_each_entry(
        "synthsae::normalize_out", y.extent(0), y.extent(1),
        KOKKOS_LAMBDA(int i, int k) { yy(i, k) = yy(i, k) * out_scale(i) + shift(i); });
  }

 private:
  Vector<float> shift_, in_scale_, out_scale_;
};

}  // namespace synthsae::inference
