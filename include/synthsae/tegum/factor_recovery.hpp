#pragma once
// How well an SAE recovers the tegum factors of a world with known groups
// (../shared/reference/dark-matter.md §2.12 (A)). Each true feature is matched to the latent
// whose decoder row has the largest |cos| with it. Per group:
//   max-cos        mean over members of that |cos| (the MCC of the group's features)
//   subspace       mean cos^2 of the principal angles between span(matched decoder rows) and Q_g
//                  (over min(rank, r_g) angles: a span collapsed onto one line inside Q_g scores 1)
//   coverage       |B^T Q_g|_F^2 / r_g, B a basis of that span: the share of Q_g the matched rows
//                  span (the same collapse scores 1 / r_g)
//   F1             of "the matched latent fires" against "the feature fires", pooled over members
//   confusion      P(matched latent of i fires | a sibling of i fires and i does not)
//   FVU            sum |Q_g^T (x - x_hat)|^2 / sum |Q_g^T (x - mean x)|^2: the error inside the factor
//   error share    sum |Q_g^T (x - x_hat)|^2 / sum |x - x_hat|^2: how much of the SAE's error lies in it
// Rows are added in chunks (host arrays); the decoder part needs no rows.
#include <cmath>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "synthsae/core/error.hpp"
#include "synthsae/tegum/factor_geometry.hpp"

namespace synthsae::tegum {

struct GroupRecovery {
  double max_cos = 0, subspace = 0, coverage = 0, f1 = 0, confusion = 0, fvu = 0, error_share = 0;
};

class FactorRecovery {
 public:
  /// `truth`: n x d true directions; `decoder`: S x d; `subspaces[g]`: d x r_g orthonormal.
  FactorRecovery(const Eigen::MatrixXd& truth, std::vector<int> group_of, std::vector<Eigen::MatrixXd> subspaces,
                 const Eigen::MatrixXd& decoder)
      : group_of_(std::move(group_of)), q_(std::move(subspaces)) {
    const int n = static_cast<int>(truth.rows());
    if (int(group_of_.size()) != n) throw ShapeError("FactorRecovery: " + show(group_of_.size()) + " labels for " + show(n) + " features");
    if (decoder.cols() != truth.cols())
      throw ShapeError("FactorRecovery: decoder rows of " + show(decoder.cols()) + " for features of " + show(truth.cols()));
    const int groups = static_cast<int>(q_.size());
    for (int i = 0; i < n; ++i)
      if (group_of_[i] < -1 || group_of_[i] >= groups)
        throw ShapeError("FactorRecovery: group_of[" + show(i) + "] = " + show(group_of_[i]) + " of " + show(groups) + " groups");
    Eigen::MatrixXd t = truth, w = decoder;
    for (Eigen::Index i = 0; i < t.rows(); ++i) t.row(i).normalize();
    for (Eigen::Index i = 0; i < w.rows(); ++i)
      if (w.row(i).norm() > 0) w.row(i).normalize();
    const Eigen::MatrixXd cos = t * w.transpose();  // n x S
    match_.resize(n), max_cos_.resize(n);
    for (int i = 0; i < n; ++i) {
      Eigen::Index j = 0;
      max_cos_[i] = cos.row(i).cwiseAbs().maxCoeff(&j);
      match_[i] = static_cast<int>(j);
    }
    stats_.assign(groups, {});
    for (int g = 0; g < groups; ++g) {
      if (q_[g].rows() != truth.cols())
        throw ShapeError("FactorRecovery: subspace " + show(g) + " has " + show(q_[g].rows()) + " rows, not " + show(truth.cols()));
      stats_[g].x_sum = Eigen::VectorXd::Zero(q_[g].cols());
    }
    members_.assign(groups, {});
    for (int i = 0; i < n; ++i)
      if (group_of_[i] >= 0) members_[group_of_[i]].push_back(i);
    subspace_.assign(groups, 0.0), coverage_.assign(groups, 0.0);
    for (int g = 0; g < groups; ++g) {
      Eigen::MatrixXd rows(members_[g].size(), w.cols());
      for (std::size_t a = 0; a < members_[g].size(); ++a) rows.row(a) = w.row(match_[members_[g][a]]);
      const Eigen::MatrixXd span = row_span(rows, 0.1);
      subspace_[g] = subspace_alignment(span, q_[g]);
      coverage_[g] = q_[g].cols() ? (span.transpose() * q_[g]).squaredNorm() / double(q_[g].cols()) : 0.0;
    }
  }

  /// Rows of x, the SAE's x_hat and codes (latent fires where != 0), and which true features
  /// fired (rows x n, != 0 where fired).
  void add(const Eigen::MatrixXd& x, const Eigen::MatrixXd& x_hat, const Eigen::MatrixXd& codes,
           const Eigen::MatrixXd& fired) {
    const Eigen::Index rows = x.rows();
    if (x_hat.rows() != rows || codes.rows() != rows || fired.rows() != rows || fired.cols() != Eigen::Index(group_of_.size()))
      throw ShapeError("FactorRecovery::add: inconsistent chunk shapes");
    const Eigen::MatrixXd err = x - x_hat;
    err_sq_ += err.squaredNorm();
    rows_ += rows;
    for (std::size_t g = 0; g < q_.size(); ++g) {
      auto& s = stats_[g];
      const Eigen::MatrixXd pe = err * q_[g], px = x * q_[g];
      s.err_sq += pe.squaredNorm();
      s.x_sq += px.squaredNorm();
      s.x_sum += px.colwise().sum().transpose().eval();
      for (Eigen::Index r = 0; r < rows; ++r) {
        int fired_members = 0;
        for (int i : members_[g]) fired_members += fired(r, i) != 0;
        for (int i : members_[g]) {
          const bool f = fired(r, i) != 0, l = codes(r, match_[i]) != 0;
          s.tp += f && l, s.fp += !f && l, s.fn += f && !l;
          if (!f && fired_members > 0) s.sibling_rows += 1, s.sibling_fires += l;
        }
      }
    }
  }

  std::vector<GroupRecovery> groups() const {
    std::vector<GroupRecovery> out(q_.size());
    for (std::size_t g = 0; g < q_.size(); ++g) {
      const auto& s = stats_[g];
      auto& o = out[g];
      for (int i : members_[g]) o.max_cos += max_cos_[i] / double(members_[g].size());
      o.subspace = subspace_[g];
      o.coverage = coverage_[g];
      o.f1 = s.tp > 0 ? 2.0 * s.tp / (2.0 * s.tp + s.fp + s.fn) : 0.0;
      o.confusion = s.sibling_rows > 0 ? s.sibling_fires / s.sibling_rows : std::nan("");
      // Centred variance inside Q_g: sum |Q^T x|^2 - rows |Q^T mean|^2.
      const double centred = rows_ > 0 ? s.x_sq - s.x_sum.squaredNorm() / double(rows_) : 0.0;
      o.fvu = centred > 0 ? s.err_sq / centred : std::nan("");
      o.error_share = err_sq_ > 0 ? s.err_sq / err_sq_ : std::nan("");
    }
    return out;
  }

  /// Means over groups.
  GroupRecovery mean() const { return mean_of(groups()); }

  /// Means over the groups of a groups() result (to compute the groups once).
  static GroupRecovery mean_of(const std::vector<GroupRecovery>& g) {
    GroupRecovery m;
    for (const auto& r : g) {
      const double w = 1.0 / double(g.size());
      m.max_cos += w * r.max_cos, m.subspace += w * r.subspace, m.coverage += w * r.coverage, m.f1 += w * r.f1;
      m.confusion += w * r.confusion;
      m.fvu += w * r.fvu, m.error_share += w * r.error_share;
    }
    return m;
  }

  const std::vector<int>& matched_latent() const { return match_; }

 private:
  struct Stats {
    double err_sq = 0, x_sq = 0, tp = 0, fp = 0, fn = 0, sibling_rows = 0, sibling_fires = 0;
    Eigen::VectorXd x_sum;
  };
  std::vector<int> group_of_;
  std::vector<Eigen::MatrixXd> q_;
  std::vector<std::vector<int>> members_;
  std::vector<int> match_;
  std::vector<double> max_cos_, subspace_, coverage_;
  std::vector<Stats> stats_;
  double err_sq_ = 0;
  std::int64_t rows_ = 0;
};

}  // namespace synthsae::tegum
