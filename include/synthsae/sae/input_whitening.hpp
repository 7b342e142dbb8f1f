#pragma once
// SAELens's normalize_activations = "covariance_whitening" (6.54, training/activation_scaler.py
// and SAE.fold_activation_whitening): the SAE trains on z = (x - mean) M, whose mean is 0 and
// whose covariance is (nearly) the identity, and the affine maps are folded into its weights at
// the end so the saved SAE takes raw activations. This header: the statistics, their application
// to batches, and the linear fold every untied SAE shares; train/input_whitening.hpp has the
// estimate from a world and fold_input_whitening per SAE family (Matching Pursuit has none: its
// encoder is tied to the decoder, and SAELens refuses it too).
//
//   C = E diag(lambda) E^T  (sample covariance, n - 1 in the denominator, in double precision)
//   M = E diag(lambda + eps)^(-1/2),  M^-1 = diag(lambda + eps)^(1/2) E^T,  lambda clamped >= 0
//   fold: W_enc <- M W_enc;  b_enc <- b_enc - mean (M W_enc) without apply_b_dec_to_input;
//         W_dec <- W_dec M^-1;  b_dec <- b_dec M^-1 + mean
// The fold is computed in double and leaves the pre-activations unchanged, so a threshold
// (JumpReLU, BatchTopK) stays as it is, as in SAELens. An SAE that ranks by decoder-norm-scaled
// activations (the TopK family with rescale_acts_by_decoder_norm) would see its ranking change
// with W_dec M^-1, so, as SAELens's TopKTrainingSAE.fold_activation_whitening does, its decoder
// norms are folded first (W_enc columns and b_enc times |W_dec_j|, unit rows) and the caller turns
// the rescale off: keys h |W_dec_j| and BatchTopK's threshold survive exactly. Eigenvectors come from Eigen
// rather than torch, so M may differ from SAELens's by the signs (and, for repeated eigenvalues,
// a rotation) of its columns: the whitened data have the same statistics.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

/// The whitening statistics, in double precision (row-major D x D matrices).
struct InputWhitening {
  std::vector<double> mean;     ///< [D]
  std::vector<double> matrix;   ///< M: z = (x - mean) M
  std::vector<double> inverse;  ///< M^-1: x = z M^-1 + mean
  std::size_t dim() const { return mean.size(); }
  bool empty() const { return mean.empty(); }
};

namespace detail {
using RowMajorXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}

/// M and M^-1 from n samples' sums: sum_x [D] and sum_outer = sum_b x_b^T x_b [D, D].
inline InputWhitening whitening_from_moments(std::size_t n, const std::vector<double>& sum_x,
                                             const std::vector<double>& sum_outer, double eps = 1e-3) {
  const auto d = static_cast<Eigen::Index>(sum_x.size());
  if (n < 2) throw ConfigError("whitening samples", show(n), "must be >= 2 to estimate a covariance");
  if (!(eps > 0)) throw ConfigError("whitening eps", show(eps), "must be > 0");
  if (sum_outer.size() != sum_x.size() * sum_x.size())
    throw ShapeError("whitening: sum_outer has " + show(sum_outer.size()) + " entries, want D^2");
  InputWhitening w;
  w.mean.resize(sum_x.size());
  for (std::size_t k = 0; k < sum_x.size(); ++k) w.mean[k] = sum_x[k] / double(n);
  const Eigen::Map<const Eigen::VectorXd> mean(w.mean.data(), d);
  const Eigen::Map<const detail::RowMajorXd> outer(sum_outer.data(), d, d);
  const detail::RowMajorXd cov = (outer - double(n) * mean * mean.transpose()) / double(n - 1);
  const Eigen::SelfAdjointEigenSolver<detail::RowMajorXd> eig(cov);
  if (eig.info() != Eigen::Success) throw ConfigError("whitening", "covariance", "eigendecomposition failed");
  const Eigen::VectorXd lambda = eig.eigenvalues().cwiseMax(0.0).array() + eps;
  const detail::RowMajorXd m = eig.eigenvectors() * lambda.cwiseSqrt().cwiseInverse().asDiagonal();
  const detail::RowMajorXd inv = lambda.cwiseSqrt().asDiagonal() * eig.eigenvectors().transpose();
  w.matrix.assign(m.data(), m.data() + m.size());
  w.inverse.assign(inv.data(), inv.data() + inv.size());
  return w;
}

/// Applies a whitening to batches in float on the device: whiten (x - mean) M, unwhiten z M^-1 + mean.
class WhiteningMap {
 public:
  WhiteningMap() = default;
  explicit WhiteningMap(const InputWhitening& w) {
    const std::size_t d = w.dim();
    mean_ = Vector<float>("whitening_mean", d);
    matrix_ = Matrix<float>("whitening_matrix", d, d);
    inverse_ = Matrix<float>("whitening_inverse", d, d);
    auto hm = Kokkos::create_mirror_view(mean_);
    auto hM = Kokkos::create_mirror_view(matrix_), hI = Kokkos::create_mirror_view(inverse_);
    for (std::size_t k = 0; k < d; ++k) {
      hm(k) = static_cast<float>(w.mean[k]);
      for (std::size_t q = 0; q < d; ++q) {
        hM(k, q) = static_cast<float>(w.matrix[k * d + q]);
        hI(k, q) = static_cast<float>(w.inverse[k * d + q]);
      }
    }
    Kokkos::deep_copy(mean_, hm);
    Kokkos::deep_copy(matrix_, hM);
    Kokkos::deep_copy(inverse_, hI);
  }
  bool empty() const { return mean_.extent(0) == 0; }

  /// out = (x - mean) M; out must not alias x.
  void whiten(const Matrix<float>& x, const Matrix<float>& out) {
    resize_centred(x.extent(0));
    const auto c = centred_, xx = x;
    const auto mean = mean_;
    const int d = static_cast<int>(mean_.extent(0));
    Kokkos::parallel_for(
        "synthsae::whiten_centre", Kokkos::RangePolicy<ExecSpace>(0, x.extent(0)), KOKKOS_LAMBDA(int i) {
          for (int k = 0; k < d; ++k) c(i, k) = xx(i, k) - mean(k);
        });
    gemm(Op::N, Op::N, 1.0f, centred_, matrix_, 0.0f, out);
  }

  /// w_dec M^-1 [S, D]: decoder directions of an SAE trained on whitened input, in raw space
  /// (what the fold makes of W_dec).
  Matrix<float> raw_directions(const Matrix<float>& w_dec) const {
    Matrix<float> out("raw_decoder_directions", w_dec.extent(0), w_dec.extent(1));
    gemm(Op::N, Op::N, 1.0f, w_dec, inverse_, 0.0f, out);
    return out;
  }

  /// y <- y M^-1 + mean, in place.
  void unwhiten(const Matrix<float>& y) {
    resize_centred(y.extent(0));
    Kokkos::deep_copy(centred_, y);
    gemm(Op::N, Op::N, 1.0f, centred_, inverse_, 0.0f, y);
    const auto yy = y;
    const auto mean = mean_;
    const int d = static_cast<int>(mean_.extent(0));
    Kokkos::parallel_for(
        "synthsae::unwhiten_shift", Kokkos::RangePolicy<ExecSpace>(0, y.extent(0)), KOKKOS_LAMBDA(int i) {
          for (int k = 0; k < d; ++k) yy(i, k) += mean(k);
        });
  }

 private:
  void resize_centred(std::size_t rows) {
    if (centred_.extent(0) != rows || centred_.extent(1) != mean_.extent(0))
      centred_ = Matrix<float>("whitening_centred", rows, mean_.extent(0));
  }
  Vector<float> mean_;
  Matrix<float> matrix_, inverse_, centred_;
};

/// The fold shared by every untied SAE (SAELens's SAE.fold_activation_whitening), in double,
/// after SAELens's fold_W_dec_norm when `fold_decoder_norms_first`. Returns mean (M W_enc) [S],
/// the shift an architecture applies to its other encoder biases without apply_b_dec_to_input
/// (Gated: b_gate, b_mag).
template <class T>
std::vector<double> fold_input_whitening_linear(SaeParameters<T>& p, const InputWhitening& w,
                                                bool apply_b_dec_to_input, bool fold_decoder_norms_first = false) {
  const auto d = static_cast<Eigen::Index>(p.input_dim()), s = static_cast<Eigen::Index>(p.num_latents());
  if (w.dim() != p.input_dim())
    throw ShapeError("whitening has dimension " + show(w.dim()) + ", the SAE's d_in is " + show(p.input_dim()));
  auto to_eigen = [](const auto& view, Eigen::Index rows, Eigen::Index cols) {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), view);
    detail::RowMajorXd m(rows, cols);
    for (Eigen::Index i = 0; i < rows * cols; ++i) m.data()[i] = double(h.data()[i]);
    return m;
  };
  auto from_eigen = [](const detail::RowMajorXd& m, const auto& view) {
    auto h = Kokkos::create_mirror_view(view);
    for (Eigen::Index i = 0; i < m.size(); ++i) h.data()[i] = static_cast<T>(m.data()[i]);
    Kokkos::deep_copy(view, h);
  };
  const Eigen::Map<const detail::RowMajorXd> m(w.matrix.data(), d, d), inv(w.inverse.data(), d, d);
  const Eigen::Map<const Eigen::RowVectorXd> mean(w.mean.data(), d);
  detail::RowMajorXd w_enc = to_eigen(p.w_enc, d, s), w_dec = to_eigen(p.w_dec, s, d);
  const bool has_b_enc = p.b_enc.extent(0) > 0;
  detail::RowMajorXd b_enc = has_b_enc ? to_eigen(p.b_enc, 1, s) : detail::RowMajorXd(1, 0);
  if (fold_decoder_norms_first) {
    const Eigen::VectorXd norms = w_dec.rowwise().norm();
    w_enc = w_enc * norms.asDiagonal();
    w_dec = norms.cwiseInverse().asDiagonal() * w_dec;
    if (has_b_enc) b_enc = b_enc * norms.asDiagonal();
  }
  w_enc = m * w_enc;
  const Eigen::RowVectorXd shift = mean * w_enc;
  from_eigen(w_enc, p.w_enc);
  if (has_b_enc) {
    if (!apply_b_dec_to_input) b_enc -= shift;
    if (!apply_b_dec_to_input || fold_decoder_norms_first) from_eigen(b_enc, p.b_enc);
  }
  from_eigen(w_dec * inv, p.w_dec);
  from_eigen(detail::RowMajorXd(to_eigen(p.b_dec, 1, d) * inv + mean), p.b_dec);
  return std::vector<double>(shift.data(), shift.data() + shift.size());
}

}  // namespace synthsae
