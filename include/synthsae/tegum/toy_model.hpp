#pragma once
// The toy model of superposition (Elhage et al. 2022) as the compressor side of the tegum-factor
// experiments (../shared/reference/dark-matter.md §2.12 (B)): u in R^n is squeezed through
// m < n dimensions and read back, u_hat = ReLU(W^T W u + b), W in R^{m x n}, trained with Adam on
// the importance-weighted MSE  L = mean over rows of sum_i I_i (u_i - u_hat_i)^2.
// What the model learns about which features share dimensions is the question; the
// geometry of W is measured by factor_geometry.hpp.
//
// Host code in double precision on purpose: the models are tiny (n and m in the tens), so a
// device adds nothing, and double makes the finite-difference gradient check exact to 1e-8.
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/tegum/mutex_groups.hpp"

namespace synthsae::tegum {

struct ToyModelConfig {
  int hidden = 8;                 ///< m
  double importance_decay = 1.0;  ///< I_i = decay^i (1: every feature equally important)
  double lr = 1e-3;
  int batch = 1024;
  long steps = 10000;
  std::uint64_t seed = 0;  ///< initial weights; the data come from the sampler's own seed

  void validate() const {
    if (hidden < 1 || hidden > 100000) throw ConfigError("hidden", show(hidden), "must be in [1, 100000]");
    if (!(importance_decay > 0 && importance_decay <= 1))
      throw ConfigError("importance_decay", show(importance_decay), "must be in (0, 1]");
    if (!(lr > 0 && lr < 10)) throw ConfigError("lr", show(lr), "must be in (0, 10)");
    if (batch < 1 || batch > 1 << 24) throw ConfigError("batch", show(batch), "must be in [1, 16777216]");
    if (steps < 1 || steps > (1L << 40)) throw ConfigError("steps", show(steps), "must be in [1, 2^40]");
  }
};

class ToyModel {
 public:
  ToyModel(int features, const ToyModelConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    if (features < 1) throw ConfigError("features", show(features), "must be >= 1");
    // Xavier-normal W, zero b (as the original toy models).
    RandomStream rs(cfg_.seed, 0x70f);
    const double sd = std::sqrt(2.0 / (cfg_.hidden + features));
    w_.resize(cfg_.hidden, features);
    for (int j = 0; j < features; ++j)
      for (int i = 0; i < cfg_.hidden; ++i) w_(i, j) = sd * rs.normal<double>();
    b_ = Eigen::RowVectorXd::Zero(features);
    importance_.resize(features);
    for (int i = 0; i < features; ++i) importance_[i] = std::pow(cfg_.importance_decay, i);
  }

  const Eigen::MatrixXd& w() const { return w_; }
  Eigen::MatrixXd& w() { return w_; }
  const Eigen::RowVectorXd& b() const { return b_; }
  Eigen::RowVectorXd& b() { return b_; }
  const Eigen::RowVectorXd& importance() const { return importance_; }
  int features() const { return static_cast<int>(w_.cols()); }

  /// u_hat for rows of u (rows x n).
  Eigen::MatrixXd reconstruct(const Eigen::MatrixXd& u) const {
    Eigen::MatrixXd z = (u * w_.transpose()) * w_;
    z.rowwise() += b_;
    return z.cwiseMax(0.0);
  }

  double loss(const Eigen::MatrixXd& u) const {
    const Eigen::MatrixXd e = reconstruct(u) - u;
    return (e.array().square().rowwise() * importance_.array()).sum() / double(u.rows());
  }

  /// The loss and its gradients with respect to W and b.
  double loss_and_gradient(const Eigen::MatrixXd& u, Eigen::MatrixXd& grad_w, Eigen::RowVectorXd& grad_b) const {
    const Eigen::MatrixXd h = u * w_.transpose();                   // rows x m
    Eigen::MatrixXd z = h * w_;  // rows x n
    z.rowwise() += b_;
    const Eigen::MatrixXd e = z.cwiseMax(0.0) - u;
    const double rows = double(u.rows());
    // dL/dz = 2 I e / rows where z > 0.
    Eigen::MatrixXd dz = (2.0 / rows) * (e.array().rowwise() * importance_.array()).matrix();
    dz = (z.array() > 0).select(dz, 0.0);
    grad_b = dz.colwise().sum();
    // W appears twice: z = h W (+ b) and h = u W^T.
    grad_w = h.transpose() * dz + (dz * w_.transpose()).transpose() * u;
    return (e.array().square().rowwise() * importance_.array()).sum() / rows;
  }

 private:
  ToyModelConfig cfg_;
  Eigen::MatrixXd w_;
  Eigen::RowVectorXd b_, importance_;
};

/// Rows of the sampler as an Eigen matrix (rows x n).
inline Eigen::MatrixXd sample_matrix(const MutexGroupSampler& sampler, std::uint64_t first_row, int rows) {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(rows, sampler.num_features());
  for (int i = 0; i < rows; ++i) {
    const TegumRow t = sampler.row(first_row + std::uint64_t(i));
    for (std::size_t a = 0; a < t.features.size(); ++a) m(i, t.features[a]) = t.values[a];
  }
  return m;
}

struct ToyTrainingProgress {
  long step = 0, steps = 0;
  double loss = 0;  ///< mean loss over the steps since the last report
};

/// Trains on fresh rows of `sampler` (rows step * batch ..), Adam (0.9, 0.999, 1e-8).
/// `progress` (optional) is called every `report_every` steps and at the end.
inline ToyModel train_toy_model(const MutexGroupSampler& sampler, const ToyModelConfig& cfg,
                                const std::function<void(const ToyTrainingProgress&)>& progress = {},
                                long report_every = 1000) {
  ToyModel model(sampler.num_features(), cfg);
  const int n = sampler.num_features(), m = cfg.hidden;
  Eigen::MatrixXd gw(m, n), mw = Eigen::MatrixXd::Zero(m, n), vw = Eigen::MatrixXd::Zero(m, n);
  Eigen::RowVectorXd gb(n), mb = Eigen::RowVectorXd::Zero(n), vb = Eigen::RowVectorXd::Zero(n);
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double loss_sum = 0;
  long loss_n = 0;
  for (long step = 1; step <= cfg.steps; ++step) {
    const Eigen::MatrixXd u = sample_matrix(sampler, std::uint64_t(step - 1) * std::uint64_t(cfg.batch), cfg.batch);
    const double loss = model.loss_and_gradient(u, gw, gb);
    if (!std::isfinite(loss)) throw NumericalError("toy model: the loss became " + show(loss) + " at step " + show(step));
    loss_sum += loss, ++loss_n;
    const double c1 = 1 - std::pow(b1, double(step)), c2 = 1 - std::pow(b2, double(step));
    mw = b1 * mw + (1 - b1) * gw, vw = b2 * vw + (1 - b2) * gw.cwiseAbs2();
    mb = b1 * mb + (1 - b1) * gb, vb = b2 * vb + (1 - b2) * gb.cwiseAbs2();
    model.w().array() -= cfg.lr * (mw.array() / c1) / ((vw.array() / c2).sqrt() + eps);
    model.b().array() -= cfg.lr * (mb.array() / c1) / ((vb.array() / c2).sqrt() + eps);
    if (progress && (step % report_every == 0 || step == cfg.steps)) {
      progress({step, cfg.steps, loss_sum / double(loss_n)});
      loss_sum = 0, loss_n = 0;
    }
  }
  return model;
}

}  // namespace synthsae::tegum
