#pragma once
// The tegum-factor test on a trained SAE, where no grouping is known
// (../shared/reference/dark-matter.md §2.12 (B), last paragraph): count how often latents fire
// together on rows of activations, group latents that never do (`never_coactive_groups`), and
// measure whether the decoder puts each group's directions in a shared subspace, against the
// same measure for random groupings of the same sizes over the same latents (the null).
//
//   LatentCoactivation  counts(i, j) = rows where latents i and j both fire, accumulated as
//                       F^T F over chunks (F the 0/1 firing matrix) with the library's GEMM in
//                       double, so it runs on the device too; exact to 2^53 rows.
//   analyse_latent_groups  the grouping, the geometry of the unit decoder rows (factor_geometry)
//                       and the null: `shuffles` random relabellings of the grouped latents.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include <Eigen/Core>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/core/memory_check.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/tegum/factor_geometry.hpp"

namespace synthsae::tegum {

class LatentCoactivation {
 public:
  explicit LatentCoactivation(std::size_t latents) : latents_(latents) {
    if (latents == 0) throw ConfigError("latents", "0", "must be at least 1");
    // The counts on the device, their host copy, the eligible copy and the analysis's Gram matrix.
    require_memory("latents", show(latents), 4.0L * latents * latents * 8,
                   "co-activation counts of every pair of latents (four latents x latents arrays of doubles)");
    counts_ = Matrix<double>("latent_coactivation", latents, latents);
  }

  /// Adds the rows of `codes` [rows, latents]; a latent fires where its code is != 0.
  void add(const Matrix<float>& codes) {
    if (codes.extent(1) != latents_)
      throw ShapeError("LatentCoactivation: codes have " + show(codes.extent(1)) + " latents, expected " + show(latents_));
    const std::size_t rows = codes.extent(0);
    if (fires_.extent(0) != rows) fires_ = Matrix<double>("latent_fires", rows, latents_);
    const auto f = fires_;
    const auto z = codes;
    for_each_entry(
        "synthsae::latent_fires", rows, latents_, KOKKOS_LAMBDA(int i, int j) { f(i, j) = z(i, j) != 0.0f ? 1.0 : 0.0; });
    gemm(Op::T, Op::N, 1.0, fires_, fires_, 1.0, counts_);
    rows_ += rows;
  }

  std::uint64_t rows() const { return rows_; }

  Eigen::MatrixXd counts() const {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), counts_);
    Eigen::MatrixXd out(latents_, latents_);
    for (std::size_t i = 0; i < latents_; ++i)
      for (std::size_t j = 0; j < latents_; ++j) out(i, j) = h(i, j);
    return out;
  }

 private:
  std::size_t latents_;
  std::uint64_t rows_ = 0;
  Matrix<double> counts_, fires_;
};

struct LatentGroupOptions {
  double min_firing = 20;   ///< latents that fired fewer times stay ungrouped (rare ones never co-fire by chance)
  /// A latent whose decoder row has |cos| >= this with a more frequent latent's is a duplicate of
  /// it and stays ungrouped: duplicates of one feature share the feature's firing between them,
  /// so they never co-fire, and being parallel they would fake a shared subspace (a TopK SAE on
  /// independent features makes such pairs). 1 keeps them.
  double duplicate_cos = 0.9;
  int shuffles = 100;       ///< random groupings for the null
  std::uint64_t seed = 0;   ///< of the shuffles
  GeometryOptions geometry{0.5, 0.1};
};

struct LatentGroupReport {
  std::uint64_t rows = 0;
  int latents = 0, eligible = 0, duplicates = 0, grouped = 0, groups = 0, largest_group = 0;
  std::vector<int> group_of;  ///< per latent; -1 ungrouped
  FactorGeometry geometry;    ///< of the unit decoder rows under the grouping
  // The null: the same statistics under random groupings of the same sizes over the same latents
  // (NaN with fewer than two groups).
  double null_share_mean = 0, null_share_sd = 0, share_z = 0;
  double null_rank_mean = 0, null_rank_sd = 0, rank_z = 0;
};

/// `decoder`: latents x d (an SAE's W_dec rows); `counts` from LatentCoactivation.
inline LatentGroupReport analyse_latent_groups(const Eigen::MatrixXd& decoder, const Eigen::MatrixXd& counts,
                                               std::uint64_t rows, const LatentGroupOptions& opt = {}) {
  const int s = static_cast<int>(decoder.rows());
  if (counts.rows() != s || counts.cols() != s)
    throw ShapeError("analyse_latent_groups: counts " + show(counts.rows()) + " x " + show(counts.cols()) + " for " +
                     show(s) + " decoder rows");
  if (!(opt.min_firing >= 1)) throw ConfigError("min_firing", show(opt.min_firing), "must be >= 1");
  if (opt.shuffles < 2 || opt.shuffles > 100000) throw ConfigError("shuffles", show(opt.shuffles), "must be in [2, 100000]");
  if (!(opt.duplicate_cos > 0 && opt.duplicate_cos <= 1))
    throw ConfigError("duplicate_cos", show(opt.duplicate_cos), "must be in (0, 1]");
  LatentGroupReport r;
  r.rows = rows;
  r.latents = s;
  // Directions only: the decoder's norms carry the SAE's scale, not its geometry.
  Eigen::MatrixXd unit = decoder;
  for (int i = 0; i < s; ++i)
    if (const double n = unit.row(i).norm(); n > 0) unit.row(i) /= n;
  const Eigen::MatrixXd gram = unit * unit.transpose();
  // Duplicates leave the eligible set: most frequent first, each kept latent claims its near-copies.
  Eigen::MatrixXd eligible_counts = counts;
  std::vector<int> order(s);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return counts(a, a) > counts(b, b); });
  std::vector<int> kept;
  for (int i : order) {
    if (counts(i, i) < opt.min_firing) continue;
    const bool duplicate = opt.duplicate_cos < 1 && std::any_of(kept.begin(), kept.end(), [&](int j) {
                             return std::fabs(gram(i, j)) >= opt.duplicate_cos;
                           });
    if (duplicate) {
      eligible_counts(i, i) = 0, ++r.duplicates;
    } else {
      kept.push_back(i), ++r.eligible;
    }
  }
  r.group_of = never_coactive_groups(eligible_counts, opt.min_firing);
  std::vector<int> members;  // grouped latents
  for (int i = 0; i < s; ++i)
    if (r.group_of[i] >= 0) members.push_back(i), r.groups = std::max(r.groups, r.group_of[i] + 1);
  r.grouped = static_cast<int>(members.size());
  std::vector<int> sizes(r.groups, 0);
  for (int i : members) ++sizes[r.group_of[i]];
  for (int g : sizes) r.largest_group = std::max(r.largest_group, g);

  const GramRowSums row_sums(gram);  // shared by the grouping and every shuffle
  r.geometry = factor_geometry(unit, gram, r.group_of, opt.geometry, true, 512, &row_sums);
  // Relabelling needs two groups at least: with one, every shuffle is the grouping itself.
  if (r.groups < 2) {
    r.null_share_mean = r.null_share_sd = r.share_z = std::numeric_limits<double>::quiet_NaN();
    r.null_rank_mean = r.null_rank_sd = r.rank_z = std::numeric_limits<double>::quiet_NaN();
    return r;
  }

  // Null: shuffle which grouped latent carries which label (sizes and the latent set fixed).
  std::vector<int> labels;
  for (int i : members) labels.push_back(r.group_of[i]);
  std::vector<double> shares, ranks;
  RandomStream rs(opt.seed, 0x6e75);
  for (int k = 0; k < opt.shuffles; ++k) {
    for (int i = static_cast<int>(labels.size()) - 1; i > 0; --i)
      std::swap(labels[i], labels[rs.uniform_below(static_cast<std::uint32_t>(i + 1))]);
    std::vector<int> shuffled(s, -1);
    for (std::size_t a = 0; a < members.size(); ++a) shuffled[members[a]] = labels[a];
    const FactorGeometry g = factor_geometry(unit, gram, shuffled, opt.geometry, false, 512, &row_sums);
    shares.push_back(g.mean_within_share), ranks.push_back(g.mean_effective_rank);
  }
  auto moments = [](const std::vector<double>& v, double& mean, double& sd) {
    mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
    double ss = 0;
    for (double x : v) ss += (x - mean) * (x - mean);
    sd = std::sqrt(ss / double(v.size() - 1));
  };
  moments(shares, r.null_share_mean, r.null_share_sd);
  moments(ranks, r.null_rank_mean, r.null_rank_sd);
  const double nan = std::numeric_limits<double>::quiet_NaN();  // a null without spread has no z
  r.share_z = r.null_share_sd > 0 ? (r.geometry.mean_within_share - r.null_share_mean) / r.null_share_sd : nan;
  r.rank_z = r.null_rank_sd > 0 ? (r.geometry.mean_effective_rank - r.null_rank_mean) / r.null_rank_sd : nan;
  return r;
}

}  // namespace synthsae::tegum
