#pragma once
// Geometry of tegum factors (../shared/reference/dark-matter.md §2.12): the members of a group
// are placed inside an r-dimensional subspace Q_g (d x r, orthonormal columns), and the
// subspaces are placed in R^d mutually orthogonal (an exact tegum product), at random
// (overlapping, a control), or not at all (members at random global directions, the control
// without shared subspaces).
//
// Inside a subspace: a regular polytope where one exists (antipodal pair, regular polygon,
// tetrahedron, trigonal bipyramid, octahedron and cross-polytope, simplex, orthonormal frame),
// random unit vectors, or a Thomson packing (the minimum of sum 1/|x_i - x_j| on the sphere,
// found by projected gradient descent from a seeded random start).
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <Eigen/QR>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"

namespace synthsae::tegum {

enum class Arrangement { polytope, random, thomson };
enum class SubspacePlacement { orthogonal, random, none };

inline Arrangement arrangement_from(const std::string& name, const char* field = "arrangement") {
  if (name == "polytope") return Arrangement::polytope;
  if (name == "random") return Arrangement::random;
  if (name == "thomson") return Arrangement::thomson;
  throw ConfigError(field, "\"" + name + "\"", "must be polytope, random or thomson");
}
inline SubspacePlacement placement_from(const std::string& name, const char* field = "placement") {
  if (name == "orthogonal") return SubspacePlacement::orthogonal;
  if (name == "random") return SubspacePlacement::random;
  if (name == "none") return SubspacePlacement::none;
  throw ConfigError(field, "\"" + name + "\"", "must be orthogonal, random or none");
}

namespace detail {

/// rows x cols standard normal entries from one seeded stream.
inline Eigen::MatrixXd gaussian(int rows, int cols, std::uint64_t seed, std::uint64_t stream) {
  RandomStream rs(seed, stream);
  Eigen::MatrixXd m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = rs.normal<double>();
  return m;
}

inline void normalise_rows(Eigen::MatrixXd& m) {
  for (int i = 0; i < m.rows(); ++i) m.row(i).normalize();
}

/// d x r with orthonormal columns (Q of a Gaussian matrix's QR).
inline Eigen::MatrixXd random_orthonormal(int d, int r, std::uint64_t seed, std::uint64_t stream) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(gaussian(d, r, seed, stream));
  return qr.householderQ() * Eigen::MatrixXd::Identity(d, r);
}

}  // namespace detail

/// Whether `regular_polytope(members, dim)` exists.
inline bool has_regular_polytope(int members, int dim) {
  if (members < 1 || dim < 1) return false;
  if (members <= dim) return true;                  // orthonormal frame
  if (members == dim + 1) return true;              // simplex (antipodal pair, triangle, tetrahedron)
  if (members == 2 * dim) return true;              // cross-polytope (square, octahedron)
  if (dim == 2) return true;                        // regular polygon
  return dim == 3 && members == 5;                  // trigonal bipyramid
}

/// members x dim unit rows of a regular arrangement; ConfigError when there is none.
inline Eigen::MatrixXd regular_polytope(int members, int dim) {
  if (!has_regular_polytope(members, dim))
    throw ConfigError("arrangement", "polytope",
                      "no regular polytope with " + std::to_string(members) + " vertices in " + std::to_string(dim) +
                          " dimensions (use random or thomson)");
  Eigen::MatrixXd p = Eigen::MatrixXd::Zero(members, dim);
  if (members <= dim) {
    for (int j = 0; j < members; ++j) p(j, j) = 1;
  } else if (dim == 2 && members != 3 && members != 4) {
    for (int j = 0; j < members; ++j) {
      const double a = 2 * std::numbers::pi * j / members;
      p(j, 0) = std::cos(a), p(j, 1) = std::sin(a);
    }
  } else if (members == dim + 1) {
    // e_j - centroid in R^members lies in the sum-zero hyperplane; express it in an orthonormal
    // basis of that hyperplane (the first `dim` Householder columns of the centred vertices).
    Eigen::MatrixXd v = Eigen::MatrixXd::Identity(members, members);
    v.array() -= 1.0 / members;
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(v);
    const Eigen::MatrixXd basis = qr.householderQ() * Eigen::MatrixXd::Identity(members, dim);
    p = v * basis;
    detail::normalise_rows(p);
  } else if (members == 2 * dim) {
    for (int j = 0; j < dim; ++j) p(2 * j, j) = 1, p(2 * j + 1, j) = -1;
  } else {  // trigonal bipyramid: two apexes and an equilateral triangle on the equator
    p(0, 2) = 1, p(1, 2) = -1;
    for (int j = 0; j < 3; ++j) {
      const double a = 2 * std::numbers::pi * j / 3;
      p(2 + j, 0) = std::cos(a), p(2 + j, 1) = std::sin(a);
    }
  }
  return p;
}

/// Seeded Thomson packing: unit rows minimising sum_{i<j} 1 / |x_i - x_j|.
inline Eigen::MatrixXd thomson_packing(int members, int dim, std::uint64_t seed, std::uint64_t stream,
                                       int iterations = 3000) {
  Eigen::MatrixXd x = detail::gaussian(members, dim, seed, stream);
  detail::normalise_rows(x);
  if (members < 2) return x;
  for (int it = 0; it < iterations; ++it) {
    const double step = 0.1 / (1.0 + it / 300.0) / members;
    Eigen::MatrixXd force = Eigen::MatrixXd::Zero(members, dim);
    for (int i = 0; i < members; ++i)
      for (int j = 0; j < members; ++j) {
        if (i == j) continue;
        const Eigen::RowVectorXd diff = x.row(i) - x.row(j);
        const double r = std::max(diff.norm(), 1e-9);
        force.row(i) += diff / (r * r * r);  // -grad of 1/r
      }
    for (int i = 0; i < members; ++i) {
      // Move along the tangent part of the force only, then back onto the sphere.
      const Eigen::RowVectorXd tangent = force.row(i) - force.row(i).dot(x.row(i)) * x.row(i);
      x.row(i) += step * tangent;
      x.row(i).normalize();
    }
  }
  return x;
}

struct FactorGeometryConfig {
  std::vector<int> subspace_dims;  ///< r_g for each group (one value: the same for every group)
  Arrangement arrangement = Arrangement::polytope;
  SubspacePlacement placement = SubspacePlacement::orthogonal;
  bool ungrouped_orthogonal = true;  ///< ungrouped directions orthogonal to every Q_g
  std::uint64_t seed = 0;
};

/// A dictionary of unit feature directions (n x d rows) and each group's subspace (d x r_g).
struct TegumDictionary {
  Eigen::MatrixXd directions;
  std::vector<Eigen::MatrixXd> subspaces;
};

/// Places the features of `group_sizes` (then `ungrouped` more) in R^d.
inline TegumDictionary place_factors(const std::vector<int>& group_sizes, int ungrouped, int d,
                                     const FactorGeometryConfig& cfg) {
  const int groups = static_cast<int>(group_sizes.size());
  if (d < 1) throw ConfigError("hidden_dim", show(d), "must be >= 1");
  std::vector<int> dims = cfg.subspace_dims;
  if (dims.size() == 1) dims.assign(groups, dims[0]);
  if (int(dims.size()) != groups)
    throw ConfigError("subspace_dims", show(dims.size()) + " values",
                      "needs one value or one per group (" + std::to_string(groups) + ")");
  int total = 0, n = ungrouped;
  for (int g = 0; g < groups; ++g) {
    if (dims[g] < 1 || dims[g] > d)
      throw ConfigError("subspace_dims[" + std::to_string(g) + "]", show(dims[g]),
                        "must be in [1, hidden_dim = " + std::to_string(d) + "]");
    total += dims[g], n += group_sizes[g];
  }
  if (cfg.placement == SubspacePlacement::orthogonal && total > d)
    throw ConfigError("subspace_dims", "sum " + std::to_string(total),
                      "orthogonal factors need sum r_g <= hidden_dim = " + std::to_string(d));

  TegumDictionary out;
  out.directions.resize(n, d);
  const Eigen::MatrixXd frame =
      cfg.placement == SubspacePlacement::orthogonal ? detail::random_orthonormal(d, total, cfg.seed, 1) : Eigen::MatrixXd();
  int row = 0, column = 0;
  for (int g = 0; g < groups; ++g) {
    const int r = dims[g], m = group_sizes[g];
    const std::uint64_t stream = 100 + std::uint64_t(g);
    Eigen::MatrixXd q = cfg.placement == SubspacePlacement::orthogonal ? frame.middleCols(column, r)
                                                                       : detail::random_orthonormal(d, r, cfg.seed, stream);
    column += r;
    if (cfg.placement == SubspacePlacement::none) {
      Eigen::MatrixXd x = detail::gaussian(m, d, cfg.seed, stream + (std::uint64_t(1) << 32));
      detail::normalise_rows(x);
      out.directions.middleRows(row, m) = x;
      // The span of the members stands in for Q_g (what an analysis restricted to the group sees).
      Eigen::HouseholderQR<Eigen::MatrixXd> qr(x.transpose());
      q = qr.householderQ() * Eigen::MatrixXd::Identity(d, std::min(m, d));
    } else {
      const Eigen::MatrixXd local = cfg.arrangement == Arrangement::polytope ? regular_polytope(m, r)
                                    : cfg.arrangement == Arrangement::thomson
                                        ? thomson_packing(m, r, cfg.seed, stream + (std::uint64_t(2) << 32))
                                        : [&] {
                                            Eigen::MatrixXd x = detail::gaussian(m, r, cfg.seed, stream + (std::uint64_t(3) << 32));
                                            detail::normalise_rows(x);
                                            return x;
                                          }();
      out.directions.middleRows(row, m) = local * q.transpose();
    }
    out.subspaces.push_back(q);
    row += m;
  }
  if (ungrouped > 0) {
    Eigen::MatrixXd x = detail::gaussian(ungrouped, d, cfg.seed, 2);
    if (cfg.ungrouped_orthogonal) {
      // Project out the span of every factor at once (the factors may overlap each other).
      Eigen::MatrixXd all(d, 0);
      for (const auto& q : out.subspaces) {
        all.conservativeResize(d, all.cols() + q.cols());
        all.rightCols(q.cols()) = q;
      }
      Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(all);
      const int rank = static_cast<int>(qr.rank());
      if (rank >= d)
        throw ConfigError("ungrouped_orthogonal", "true",
                          "the factors span all of R^" + std::to_string(d) + ": nothing is left for ungrouped features");
      const Eigen::MatrixXd basis = qr.householderQ() * Eigen::MatrixXd::Identity(d, rank);
      x -= (x * basis) * basis.transpose();
    }
    detail::normalise_rows(x);
    out.directions.bottomRows(ungrouped) = x;
  }
  return out;
}

}  // namespace synthsae::tegum
