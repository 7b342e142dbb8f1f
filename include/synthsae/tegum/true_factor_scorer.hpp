#pragma once
// An SAE scored against a tegum world's true factors (../shared/reference/dark-matter.md §2.12
// (A) and (C)) in one pass over chunks of rows: FactorRecovery (matching, subspaces, F1, sibling
// confusion, FVU and error share per factor) and FactorErrorSplit (how linearly the error inside
// each factor follows from x), the latter fitted on a RowSplit's train rows (60 %) and scored on
// the others. `synthsae tegum --sae` and its ρ_co sweep both read their figures from here.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/analysis/row_split.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/host_eigen.hpp"
#include "synthsae/sae/inference_sae.hpp"
#include "synthsae/tegum/factor_dark_matter.hpp"
#include "synthsae/tegum/factor_recovery.hpp"

namespace synthsae::tegum {

struct TrueFactorScores {
  std::vector<GroupRecovery> recovery;   ///< per factor
  std::vector<FactorLinearError> linear; ///< per factor: the error's linear R², FVU_nonlinear, share
  double whole_space_linear_r2 = NAN;    ///< the same fit over all of x's space
  std::uint64_t train_rows = 0, test_rows = 0;
  /// Ground truth of co-activation per factor: rows where any member fired, and where two or more did.
  std::vector<std::uint64_t> active_rows, cofiring_rows;
  GroupRecovery mean() const { return FactorRecovery::mean_of(recovery); }
  /// P(two or more members fired | one or more did), pooled over the factors (NaN: none fired).
  double cofiring_share() const {
    double active = 0, cofiring = 0;
    for (std::size_t g = 0; g < active_rows.size(); ++g) active += double(active_rows[g]), cofiring += double(cofiring_rows[g]);
    return active > 0 ? cofiring / active : NAN;
  }
};

class TrueFactorScorer {
 public:
  /// `truth`: n x d true directions; `group_of`: each feature's factor (-1: none); `subspaces`:
  /// Q_g (d x r_g, orthonormal); `decoder`: S x d; `rows`: how many rows add() will see.
  TrueFactorScorer(const Eigen::MatrixXd& truth, std::vector<int> group_of, std::vector<Eigen::MatrixXd> subspaces,
                   const Eigen::MatrixXd& decoder, std::uint64_t rows)
      : groups_(subspaces.size()),
        split_(checked_rows(rows, static_cast<std::size_t>(truth.cols())), rows * 6 / 10, 0),
        errors_(subspaces, static_cast<std::size_t>(truth.cols())),
        recovery_(truth, group_of, std::move(subspaces), decoder),
        group_of_(std::move(group_of)),
        active_(groups_, 0),
        cofiring_(groups_, 0),
        features_(static_cast<int>(truth.rows())) {}

  /// Rows first .. first + n: x, the SAE's codes z and reconstruction x_hat, the true coefficients.
  void add(std::uint64_t first, const Matrix<float>& x, const Matrix<float>& z, const Matrix<float>& x_hat,
           const SparseBatch<float>& truth) {
    const std::size_t n = x.extent(0);
    const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), truth.ids);
    const auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), truth.counts);
    Eigen::MatrixXd fired = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(n), features_);
    std::vector<int> members(active_.size());
    for (std::size_t i = 0; i < n; ++i) {
      std::fill(members.begin(), members.end(), 0);
      for (int q = 0; q < counts(i); ++q) {
        fired(static_cast<Eigen::Index>(i), ids(i, q)) = 1;
        if (const int g = group_of_[ids(i, q)]; g >= 0) ++members[g];
      }
      for (std::size_t g = 0; g < members.size(); ++g) active_[g] += members[g] > 0, cofiring_[g] += members[g] > 1;
    }
    const Eigen::MatrixXd hx = host_eigen(x), hx_hat = host_eigen(x_hat);
    recovery_.add(hx, hx_hat, host_eigen(z), fired);
    std::vector<bool> train(n);
    for (std::size_t i = 0; i < n; ++i) train[i] = split_.is_train(first + i);
    errors_.add(hx, hx - hx_hat, train);
  }

  /// The fewest rows that leave the error's linear fit (60 % of them) more rows than unknowns.
  static std::uint64_t min_rows(std::size_t d) { return (10 * (static_cast<std::uint64_t>(d) + 2) + 5) / 6; }

  TrueFactorScores scores() const {
    return {recovery_.groups(), errors_.groups(), errors_.total_linear_r2(), errors_.train_rows(), errors_.test_rows(),
            active_, cofiring_};
  }

 private:
  static std::uint64_t checked_rows(std::uint64_t rows, std::size_t d) {
    if (rows < min_rows(d))
      throw ConfigError("rows", show(rows), "the error inside the factors is fitted on 60 % of the rows; " + show(d) +
                                               " dimensions need at least " + show(min_rows(d)) + " rows");
    return rows;
  }
  std::size_t groups_;  // first: the others take the subspaces apart
  analysis::RowSplit split_;
  FactorErrorSplit errors_;
  FactorRecovery recovery_;
  std::vector<int> group_of_;
  std::vector<std::uint64_t> active_, cofiring_;
  int features_;
};

/// The whole pass: rows 0 .. rows of a synthetic source (one with ground truth) through `sae`,
/// in chunks of 4,096; `progress(rows done)` after each.
inline TrueFactorScores score_true_factors(InferenceSae& sae, analysis::ActivationSource& source, std::uint64_t rows,
                                           const Eigen::MatrixXd& truth, const std::vector<int>& group_of,
                                           const std::vector<Eigen::MatrixXd>& subspaces,
                                           const std::function<void(std::uint64_t)>& progress = {}) {
  rows = std::min<std::uint64_t>(rows, source.rows());
  TrueFactorScorer scorer(truth, group_of, subspaces, host_eigen(sae.params.w_dec), rows);
  analysis::ActivationChunk c;
  Matrix<float> z, x_hat;
  for (std::uint64_t first = 0; first < rows; first += 4096) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(4096, rows - first));
    source.read(first, n, c);
    if (!c.truth) throw ConfigError("source", source.describe(), "has no ground truth to score true factors against");
    if (z.extent(0) != n) z = Matrix<float>("factor_codes", n, sae.num_latents()), x_hat = Matrix<float>("factor_x_hat", n, sae.input_dim());
    sae.encode(c.x, z);
    sae.decode(z, x_hat);
    scorer.add(first, c.x, z, x_hat, *c.truth);
    if (progress) progress(first + n);
  }
  return scorer.scores();
}

}  // namespace synthsae::tegum
