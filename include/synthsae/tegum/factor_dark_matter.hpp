#pragma once
// The SAE's error inside each tegum factor and how linearly predictable it is
// (../shared/reference/dark-matter.md §2.12 (C): §2.1 restricted to the factors). With
// co-activation inside a factor the sparse code cannot separate its features, and what it
// misses shows up as error in span(Q_g); the question is whether that error is the linear kind
// (predictable from x: LinearError) or the nonlinear kind.
//   LinearError = [x, 1] B, B the least squares of SaeError on [x, 1] over the train rows;
//   per factor g, on the test rows:
//     linear R²        1 - Σ‖Q_gᵀ NonlinearError‖² / Σ‖Q_gᵀ (SaeError - mean)‖²
//     FVU nonlinear    Σ‖Q_gᵀ NonlinearError‖² / Σ‖Q_gᵀ (x - mean x)‖²
//     error share      Σ‖Q_gᵀ SaeError‖² / Σ‖SaeError‖²   (and the same for NonlinearError)
// One pass: the train rows' normal equations and the test rows' second moments of [x, 1] and
// SaeError (both shifted by the first chunk's means) are accumulated together; every test sum
// above is a trace of those moments with B, so no row is read twice. Host code in double (tegum
// worlds have tens of dimensions).
#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "synthsae/analysis/linear_probe.hpp"
#include "synthsae/core/error.hpp"

namespace synthsae::tegum {

struct FactorLinearError {
  double linear_r2 = 0, fvu_nonlinear = 0, error_share = 0, nonlinear_share = 0;
};

class FactorErrorSplit {
 public:
  /// `subspaces[g]`: d x r_g orthonormal.
  FactorErrorSplit(std::vector<Eigen::MatrixXd> subspaces, std::size_t d) : q_(std::move(subspaces)), d_(d) {
    for (std::size_t g = 0; g < q_.size(); ++g) {
      if (std::size_t(q_[g].rows()) != d)
        throw ShapeError("FactorErrorSplit: subspace " + show(g) + " has " + show(q_[g].rows()) + " rows, not " + show(d));
      const double off = (q_[g].transpose() * q_[g] - Eigen::MatrixXd::Identity(q_[g].cols(), q_[g].cols())).cwiseAbs().maxCoeff();
      if (q_[g].cols() > 0 && off > 1e-6)
        throw ConfigError("subspace " + show(g), "|QᵀQ - I| = " + show(off), "needs orthonormal columns");
    }
    const Eigen::Index m = static_cast<Eigen::Index>(d + 1);
    train_xx_ = test_xx_ = Eigen::MatrixXd::Zero(m, m);
    train_xe_ = test_xe_ = Eigen::MatrixXd::Zero(m, static_cast<Eigen::Index>(d));
    test_ee_ = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(d), static_cast<Eigen::Index>(d));
  }

  /// Rows of x and of SaeError = x - Sae(x); train[i] says which side of the split row i is on.
  void add(const Eigen::MatrixXd& x, const Eigen::MatrixXd& err, const std::vector<bool>& train) {
    if (x.cols() != Eigen::Index(d_) || err.cols() != Eigen::Index(d_) || err.rows() != x.rows() ||
        train.size() != std::size_t(x.rows()))
      throw ShapeError("FactorErrorSplit::add: x is " + show(x.rows()) + " x " + show(x.cols()) + ", the error " +
                       show(err.rows()) + " x " + show(err.cols()) + ", " + show(train.size()) + " split flags, for d = " +
                       show(d_));
    if (x.rows() == 0) return;
    // Moments of rows shifted by the first chunk's means (the intercept absorbs the shift), so a
    // large common offset does not cost the expanded quadratic forms below their digits.
    if (!shifted_) shift_x_ = x.colwise().mean(), shift_e_ = err.colwise().mean(), shifted_ = true;
    Eigen::MatrixXd xa(x.rows(), x.cols() + 1);
    xa << (x.rowwise() - shift_x_), Eigen::VectorXd::Ones(x.rows());
    const Eigen::MatrixXd es_all = err.rowwise() - shift_e_;
    for (int side = 0; side < 2; ++side) {
      std::vector<Eigen::Index> rows;
      for (Eigen::Index i = 0; i < x.rows(); ++i)
        if (train[std::size_t(i)] == (side == 0)) rows.push_back(i);
      if (rows.empty()) continue;
      Eigen::MatrixXd xs(rows.size(), xa.cols()), es(rows.size(), err.cols());
      for (std::size_t r = 0; r < rows.size(); ++r) xs.row(r) = xa.row(rows[r]), es.row(r) = es_all.row(rows[r]);
      if (side == 0) {
        train_xx_.noalias() += xs.transpose() * xs, train_xe_.noalias() += xs.transpose() * es, train_rows_ += rows.size();
      } else {
        test_xx_.noalias() += xs.transpose() * xs, test_xe_.noalias() += xs.transpose() * es;
        test_ee_.noalias() += es.transpose() * es, test_rows_ += rows.size();
      }
    }
  }

  std::uint64_t train_rows() const { return train_rows_; }
  std::uint64_t test_rows() const { return test_rows_; }

  /// Per factor; needs train and test rows.
  std::vector<FactorLinearError> groups() const {
    const Eigen::Index d = static_cast<Eigen::Index>(d_);
    const double n = double(test_rows_);
    const Eigen::MatrixXd nn = nonlinear_moments();
    const Eigen::MatrixXd ee_c = centred_error_moments();
    const Eigen::VectorXd mean_x = test_xx_.col(d).head(d) / n;
    const Eigen::MatrixXd xx_c = test_xx_.topLeftCorner(d, d) - n * mean_x * mean_x.transpose();
    // Σ e eᵀ about 0 (the shares): Σ (e' + μ)(e' + μ)ᵀ with s = Σ e' the ones column's row.
    const Eigen::VectorXd s = test_xe_.row(d).transpose(), mu = shift_e_.transpose();
    const Eigen::MatrixXd ee = test_ee_ + s * mu.transpose() + mu * s.transpose() + n * mu * mu.transpose();
    const double err_total = ee.trace(), nonlin_total = std::max(0.0, nn.trace());
    std::vector<FactorLinearError> out(q_.size());
    for (std::size_t g = 0; g < q_.size(); ++g) {
      const auto& q = q_[g];
      // Expanded quadratic forms can dip below 0 by rounding where the error is all linear.
      const double nl = std::max(0.0, (q.transpose() * nn * q).trace()), e = (q.transpose() * ee * q).trace();
      const double e_c = (q.transpose() * ee_c * q).trace(), x_c = (q.transpose() * xx_c * q).trace();
      out[g].linear_r2 = e_c > 0 ? 1 - nl / e_c : std::nan("");
      out[g].fvu_nonlinear = x_c > 0 ? nl / x_c : std::nan("");
      out[g].error_share = err_total > 0 ? e / err_total : std::nan("");
      out[g].nonlinear_share = nonlin_total > 0 ? nl / nonlin_total : std::nan("");
    }
    return out;
  }

  /// The same over the whole space: R² of SaeError on x (the test rows).
  double total_linear_r2() const {
    return 1 - std::max(0.0, nonlinear_moments().trace()) / centred_error_moments().trace();
  }

 private:
  /// Σ over the test rows of NonlinearErrorᵀ NonlinearError, NonlinearError = e - [x 1] B with B
  /// fitted on the train rows.
  Eigen::MatrixXd nonlinear_moments() const {
    if (train_rows_ == 0 || test_rows_ == 0)
      throw ConfigError("factor error split", show(train_rows_) + " train / " + show(test_rows_) + " test rows",
                        "needs rows on both sides");
    const Eigen::MatrixXd b = analysis::solve_normal_equations(train_xx_, train_xe_, d_, true, train_rows_, 0.0).coef;
    return test_ee_ - b.transpose() * test_xe_ - test_xe_.transpose() * b + b.transpose() * test_xx_ * b;
  }
  /// Σ over the test rows of (e - ē)ᵀ (e - ē); the ones column's row of Σ [x 1]ᵀ e is Σ e.
  Eigen::MatrixXd centred_error_moments() const {
    const Eigen::VectorXd mean_e = test_xe_.row(Eigen::Index(d_)).transpose() / double(test_rows_);
    return test_ee_ - double(test_rows_) * mean_e * mean_e.transpose();
  }

  std::vector<Eigen::MatrixXd> q_;
  std::size_t d_;
  Eigen::MatrixXd train_xx_, train_xe_, test_xx_, test_xe_, test_ee_;
  Eigen::RowVectorXd shift_x_, shift_e_;
  bool shifted_ = false;
  std::uint64_t train_rows_ = 0, test_rows_ = 0;
};

}  // namespace synthsae::tegum
