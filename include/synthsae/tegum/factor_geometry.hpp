#pragma once
// Geometry of learned feature directions against a grouping of the features
// (../shared/reference/dark-matter.md §2.12 (B)). The directions are rows: the columns W_i of a
// toy model's W, or the rows of an SAE's decoder; the grouping says which features are
// mutually exclusive (ground truth), or which latents never fire together (found from codes by
// `never_coactive_groups`). The tegum-factor hypothesis predicts that a compressor puts
// the interference of a feature inside its own group.
//
//   within-group interference share  s_i = sum_{j in G(i), j != i} (W_i.W_j)^2 / sum_{j != i} (W_i.W_j)^2,
//                                    chance (|G(i)| - 1) / (n - 1)
//   feature dimensionality           D_i = |W_i|^2 / sum_j (W_i/|W_i| . W_j)^2  (pentagon 2/5; bipyramid
//                                    1/2 at the apexes and 2/3 on the equator, 3/5 on average)
//   a group's effective rank          (sum s^2)^2 / sum s^4 over the singular values s of its rows
//   a group's subspace               right singular vectors with s >= rank_tolerance * s_max
//   cross-group overlap               |P_g P_h|_F^2 / min(r_g, r_h): 0 orthogonal, 1 nested
//   represented features              |W_i| > represented_norm
// Means of s_i and D_i are over represented features in groups of two or more (s_i over those
// with any interference at all); a feature with no interference has s_i undefined (NaN).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include "synthsae/core/error.hpp"

namespace synthsae::tegum {

struct GeometryOptions {
  double represented_norm = 0.5;
  double rank_tolerance = 0.1;
};

struct FactorGeometry {
  // Per feature.
  std::vector<double> norm, dimensionality, within_share, chance;
  // Per group.
  std::vector<double> effective_rank;
  std::vector<int> rank;                  ///< (with subspaces)
  std::vector<Eigen::MatrixXd> subspace;  ///< d x rank orthonormal (with subspaces)
  Eigen::MatrixXd overlap;                ///< groups x groups, 1 on the diagonal (with subspaces)
  // Summaries.
  int represented = 0;
  double mean_within_share = 0, mean_chance = 0, mean_dimensionality = 0;
  double mean_effective_rank = 0, mean_cross_overlap = 0;
};

/// Mean cos^2 of the principal angles between two subspaces given by orthonormal columns:
/// |A^T B|_F^2 / min(cols A, cols B).
inline double subspace_alignment(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  if (a.rows() != b.rows()) throw ShapeError("subspace_alignment: " + show(a.rows()) + " vs " + show(b.rows()) + " rows");
  const auto k = std::min(a.cols(), b.cols());
  return k == 0 ? 0.0 : (a.transpose() * b).squaredNorm() / double(k);
}

/// Orthonormal basis (d x r) of the span of `rows` (k x d): right singular vectors with
/// s >= tolerance * s_max.
inline Eigen::MatrixXd row_span(const Eigen::MatrixXd& rows, double tolerance) {
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(rows, Eigen::ComputeThinV);
  const Eigen::VectorXd s = svd.singularValues();
  const double s_max = s.size() ? s(0) : 0.0;
  int r = 0;
  while (r < s.size() && s_max > 0 && s(r) >= tolerance * s_max) ++r;
  return svd.matrixV().leftCols(r);
}

/// Per direction i of a Gram matrix: all(i) = sum_j (W_i.W_j)^2 (j = i included) and others(i)
/// = the same over j != i, summed directly (all - |W_i|^4 would leave rounding noise where there
/// is no interference). They do not depend on the grouping, so a null over many groupings of the
/// same directions computes them once.
struct GramRowSums {
  std::vector<double> all, others;
  explicit GramRowSums(const Eigen::MatrixXd& gram) : all(gram.rows()), others(gram.rows()) {
    for (Eigen::Index i = 0; i < gram.rows(); ++i) {
      double a = 0, o = 0;
      for (Eigen::Index j = 0; j < gram.cols(); ++j) {
        const double sq = gram(i, j) * gram(i, j);
        a += sq;
        if (j != i) o += sq;
      }
      all[i] = a, others[i] = o;
    }
  }
};

/// `directions`: n x d; `gram` = directions directions^T (given when many groupings of the same
/// directions are measured); `group_of`: n entries, a group index in [0, groups) or -1
/// (ungrouped). Without `with_subspaces` the per-group subspaces, ranks and overlaps are left
/// empty (the effective ranks come from the Gram blocks either way). Overlaps are computed for up
/// to `max_overlap_groups` groups (pairs grow quadratically); beyond, mean_cross_overlap is NaN.
/// `row_sums`: GramRowSums(gram), when the caller keeps them across groupings.
inline FactorGeometry factor_geometry(const Eigen::MatrixXd& directions, const Eigen::MatrixXd& gram,
                                      const std::vector<int>& group_of, const GeometryOptions& opt = {},
                                      bool with_subspaces = true, int max_overlap_groups = 512,
                                      const GramRowSums* row_sums = nullptr) {
  const int n = static_cast<int>(directions.rows());
  if (int(group_of.size()) != n)
    throw ShapeError("factor_geometry: " + show(group_of.size()) + " group labels for " + show(n) + " directions");
  if (gram.rows() != n || gram.cols() != n)
    throw ShapeError("factor_geometry: a " + show(gram.rows()) + " x " + show(gram.cols()) + " Gram matrix for " + show(n) +
                     " directions");
  int groups = 0;
  for (int i = 0; i < n; ++i) {
    if (group_of[i] < -1) throw ConfigError("group_of[" + show(i) + "]", show(group_of[i]), "must be >= -1");
    groups = std::max(groups, group_of[i] + 1);
  }
  std::vector<std::vector<int>> members(groups);
  for (int i = 0; i < n; ++i)
    if (group_of[i] >= 0) members[group_of[i]].push_back(i);

  std::optional<GramRowSums> own_sums;
  if (!row_sums) row_sums = &own_sums.emplace(gram);
  if (row_sums->all.size() != std::size_t(n))
    throw ShapeError("factor_geometry: row sums of " + show(row_sums->all.size()) + " directions for " + show(n));

  FactorGeometry out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.norm.resize(n), out.dimensionality.resize(n), out.within_share.assign(n, nan), out.chance.assign(n, 0.0);
  double share_sum = 0, chance_sum = 0, dim_sum = 0;
  int share_n = 0, dim_n = 0;
  for (int i = 0; i < n; ++i) {
    const double sq = gram(i, i);
    out.norm[i] = std::sqrt(sq);
    const bool represented = out.norm[i] > opt.represented_norm;
    out.represented += represented;
    const double all = row_sums->all[i];
    out.dimensionality[i] = all > 0 ? sq * sq / all : 0.0;
    const int g = group_of[i];
    if (g < 0 || members[g].size() < 2) continue;
    out.chance[i] = double(members[g].size() - 1) / double(n - 1);
    double within = 0;
    for (int j : members[g])
      if (j != i) within += gram(i, j) * gram(i, j);
    // Interference below 1e-24 of |W_i|^4 counts as none.
    const double others = row_sums->others[i];
    const bool interferes = others > 1e-24 * sq * sq;
    if (interferes) out.within_share[i] = within / others;
    if (!represented) continue;
    dim_sum += out.dimensionality[i], ++dim_n;
    if (interferes) share_sum += out.within_share[i], chance_sum += out.chance[i], ++share_n;
  }
  out.mean_within_share = share_n ? share_sum / share_n : nan;
  out.mean_chance = share_n ? chance_sum / share_n : nan;
  out.mean_dimensionality = dim_n ? dim_sum / dim_n : nan;

  // Effective rank from the eigenvalues of the group's Gram block (the squared singular values).
  out.effective_rank.resize(groups);
  for (int g = 0; g < groups; ++g) {
    const int k = static_cast<int>(members[g].size());
    Eigen::MatrixXd block(k, k);
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) block(a, b) = gram(members[g][a], members[g][b]);
    const Eigen::VectorXd lambda = Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(block, Eigen::EigenvaluesOnly)
                                       .eigenvalues()
                                       .cwiseMax(0.0);
    const double s2 = lambda.sum(), s4 = lambda.squaredNorm();
    out.effective_rank[g] = s4 > 0 ? s2 * s2 / s4 : 0.0;
    out.mean_effective_rank += out.effective_rank[g] / groups;
  }
  out.mean_cross_overlap = nan;
  if (!with_subspaces) return out;
  out.rank.resize(groups), out.subspace.resize(groups);
  for (int g = 0; g < groups; ++g) {
    Eigen::MatrixXd rows(members[g].size(), directions.cols());
    for (std::size_t a = 0; a < members[g].size(); ++a) rows.row(a) = directions.row(members[g][a]);
    out.subspace[g] = row_span(rows, opt.rank_tolerance);
    out.rank[g] = static_cast<int>(out.subspace[g].cols());
  }
  if (groups > max_overlap_groups) return out;
  out.overlap = Eigen::MatrixXd::Identity(groups, groups);
  double cross = 0;
  for (int g = 0; g < groups; ++g)
    for (int h = g + 1; h < groups; ++h) {
      out.overlap(g, h) = out.overlap(h, g) = subspace_alignment(out.subspace[g], out.subspace[h]);
      cross += out.overlap(g, h);
    }
  if (groups > 1) out.mean_cross_overlap = cross / (groups * (groups - 1) / 2.0);
  return out;
}

inline FactorGeometry factor_geometry(const Eigen::MatrixXd& directions, const std::vector<int>& group_of,
                                      const GeometryOptions& opt = {}) {
  return factor_geometry(directions, directions * directions.transpose(), group_of, opt);
}

/// Co-activation counts of latents over rows of codes (rows x n; a latent fires when != 0):
/// counts(i, j) = rows where both fire; counts(i, i) = rows where i fires.
inline Eigen::MatrixXd coactivation_counts(const Eigen::MatrixXd& codes) {
  const Eigen::MatrixXd fires = (codes.array() != 0).cast<double>().matrix();
  return fires.transpose() * fires;
}

/// Groups of latents that never fire together, from co-activation counts: latents in order of
/// firing count (most first, then index); each one not yet placed that fires at least
/// `min_firing` times opens a group, which then takes every later unplaced latent that never
/// fired with any member. Groups of one are returned as -1 (ungrouped). Greedy, so a grouping,
/// not the best one; deterministic.
inline std::vector<int> never_coactive_groups(const Eigen::MatrixXd& counts, double min_firing = 1) {
  const int n = static_cast<int>(counts.rows());
  if (counts.cols() != n) throw ShapeError("never_coactive_groups: counts must be square");
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return counts(a, a) > counts(b, b); });
  std::vector<int> group(n, -1);
  std::vector<char> placed(n, 0);
  int next = 0;
  for (int a = 0; a < n; ++a) {
    const int i = order[a];
    if (placed[i] || counts(i, i) < min_firing) continue;
    std::vector<int> members{i};
    placed[i] = 1;
    for (int b = a + 1; b < n; ++b) {
      const int j = order[b];
      if (placed[j] || counts(j, j) < min_firing) continue;
      if (std::all_of(members.begin(), members.end(), [&](int k) { return counts(j, k) == 0; }))
        members.push_back(j), placed[j] = 1;
    }
    if (members.size() > 1)
      for (int k : members) group[k] = next;
    next += members.size() > 1;
  }
  return group;
}

}  // namespace synthsae::tegum
