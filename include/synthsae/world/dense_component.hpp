#pragma once
// Dense components of a world (the paper's Appendix B/C; reference dark-matter.md §2.6): a part
// of every sample that is not a sparse sum of features, x = Σ c_i d_i + b + Dense(x):
//   isotropic   N(0, σ² I_d)
//   low_rank    Σ_r a_r q_r, a_r ~ N(0, σ²), q_r an orthonormal basis of a random rank-r subspace
//   circles     Σ_j m (cos θ_j u_j + sin θ_j v_j), θ_j ~ U(0, 2π), (u_j, v_j) a random orthonormal
//               plane per circle: multi-dimensional features no sparse dictionary represents
// Each has a variance fraction f of the total variance of x (sparse part and every dense part),
// so with V the sparse part's total variance a component gets f V / (1 - Σ f). Config key
// "dense_components": a list of {"kind", "variance_fraction", "rank" | "count"}. The draws of a
// sample are a pure function of (sampling seed, sample index), like the sparse part's.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/QR>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"

namespace synthsae {

struct DenseComponentSpec {
  enum class Kind { isotropic, low_rank, circles } kind = Kind::isotropic;
  double variance_fraction = 0;
  std::int64_t rank = 0;   ///< low_rank: dimension of the subspace
  std::int64_t count = 0;  ///< circles: number of circle features

  static const char* kind_name(Kind k) {
    return k == Kind::isotropic ? "isotropic" : k == Kind::low_rank ? "low_rank" : "circles";
  }

  void validate(std::int64_t hidden_dim = 0) const {
    if (!(variance_fraction > 0 && variance_fraction < 1))
      throw ConfigError("dense_components.variance_fraction", show(variance_fraction), "must be in (0, 1)");
    if (kind == Kind::low_rank && (rank < 1 || (hidden_dim > 0 && rank > hidden_dim)))
      throw ConfigError("dense_components.rank", show(rank), "must be in [1, hidden_dim]");
    if (kind == Kind::circles && (count < 1 || (hidden_dim > 0 && 2 * count > hidden_dim)))
      throw ConfigError("dense_components.count", show(count), "must be in [1, hidden_dim / 2] (a plane per circle)");
  }

  io::Json to_json() const {
    io::Json j{{"kind", kind_name(kind)}, {"variance_fraction", variance_fraction}};
    if (kind == Kind::low_rank) j["rank"] = rank;
    if (kind == Kind::circles) j["count"] = count;
    return j;
  }

  static DenseComponentSpec from_json(const io::Json& j) {
    if (!j.is_object()) throw ConfigError("dense_components", j.dump(), "each entry must be a JSON object");
    io::require_known_keys(j, {"kind", "variance_fraction", "rank", "count"}, "dense_components");
    DenseComponentSpec s;
    const auto kind = io::json_field<std::string>(j, "kind", "dense_components");
    if (kind == "isotropic") s.kind = Kind::isotropic;
    else if (kind == "low_rank") s.kind = Kind::low_rank;
    else if (kind == "circles") s.kind = Kind::circles;
    else throw ConfigError("dense_components.kind", "\"" + kind + "\"", "must be isotropic, low_rank or circles");
    s.variance_fraction = io::json_field<double>(j, "variance_fraction", "dense_components");
    if (s.kind == Kind::low_rank) s.rank = io::json_field<std::int64_t>(j, "rank", "dense_components");
    else if (j.contains("rank")) throw ConfigError("dense_components.rank", j["rank"].dump(), "only low_rank has a rank");
    if (s.kind == Kind::circles) s.count = io::json_field<std::int64_t>(j, "count", "dense_components");
    else if (j.contains("count")) throw ConfigError("dense_components.count", j["count"].dump(), "only circles have a count");
    s.validate();
    return s;
  }
};

inline void validate_dense_components(const std::vector<DenseComponentSpec>& specs, std::int64_t hidden_dim) {
  double total = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    specs[i].validate(hidden_dim), total += specs[i].variance_fraction;
    for (std::size_t j = 0; j < i; ++j)
      if (specs[j].kind == specs[i].kind)
        throw ConfigError("dense_components.kind", std::string("\"") + DenseComponentSpec::kind_name(specs[i].kind) + "\"",
                          "appears twice; give each kind once");
  }
  if (!(total < 1)) throw ConfigError("dense_components", show(total), "the variance fractions must add up to less than 1");
}

/// The generated dense part: scales and directions (device), and its sampler.
struct DenseParts {
  float isotropic_std = 0;                 ///< σ per dimension
  float low_rank_std = 0;                  ///< σ per basis direction
  float circle_magnitude = 0;              ///< m
  Matrix<float> low_rank_basis;            ///< [r, d], orthonormal rows
  Matrix<float> circle_planes;             ///< [2c, d]: u_j in row 2j, v_j in row 2j + 1
  bool empty() const { return isotropic_std == 0 && low_rank_basis.extent(0) == 0 && circle_planes.extent(0) == 0; }
  std::size_t rank() const { return low_rank_basis.extent(0); }
  std::size_t circles() const { return circle_planes.extent(0) / 2; }

  /// Σ of each kind's total variance, as built (for tests and the report).
  double variance(std::size_t d) const {
    return double(isotropic_std) * isotropic_std * double(d) + double(low_rank_std) * low_rank_std * double(rank()) +
           double(circle_magnitude) * circle_magnitude * double(circles());
  }

  /// out [rows, d] = the dense part of samples [first, first + rows) of stream `seed`.
  void sample(std::uint64_t seed, std::uint64_t first, const Matrix<float>& out) const {
    const int d = static_cast<int>(out.extent(1)), r = static_cast<int>(rank()), c = static_cast<int>(circles());
    const float s_iso = isotropic_std, s_lr = low_rank_std, m = circle_magnitude;
    const auto q = low_rank_basis, planes = circle_planes;
    const auto o = out;
    Kokkos::parallel_for(
        "synthsae::dense_part", Kokkos::RangePolicy<ExecSpace>(0, out.extent(0)), KOKKOS_LAMBDA(int i) {
          RandomStream rng(seed, mix_stream(first + std::uint64_t(i), 0xDE45E000000ull));
          for (int k = 0; k < d; ++k) o(i, k) = s_iso != 0.0f ? s_iso * rng.normal<float>() : 0.0f;
          for (int t = 0; t < r; ++t) {
            const float a = s_lr * rng.normal<float>();
            for (int k = 0; k < d; ++k) o(i, k) += a * q(t, k);
          }
          for (int j = 0; j < c; ++j) {
            const float theta = 6.2831853071795864769f * rng.uniform<float>();
            const float cu = m * kmath::cos(theta), sv = m * kmath::sin(theta);
            for (int k = 0; k < d; ++k) o(i, k) += cu * planes(2 * j, k) + sv * planes(2 * j + 1, k);
          }
        });
  }
};

namespace detail {
/// `rows` orthonormal rows in R^d from the stream (seed, tag): Q of a Gaussian matrix.
inline Matrix<float> random_orthonormal_rows(std::size_t rows, std::size_t d, std::uint64_t seed, std::uint64_t tag) {
  Eigen::MatrixXd g(d, rows);
  RandomStream rng(seed, tag);
  for (std::size_t j = 0; j < rows; ++j)
    for (std::size_t k = 0; k < d; ++k) g(k, j) = rng.normal<double>();
  const Eigen::MatrixXd q = Eigen::HouseholderQR<Eigen::MatrixXd>(g).householderQ() * Eigen::MatrixXd::Identity(d, rows);
  Matrix<float> out("dense_directions", rows, d);
  auto h = Kokkos::create_mirror_view(out);
  for (std::size_t j = 0; j < rows; ++j)
    for (std::size_t k = 0; k < d; ++k) h(j, k) = static_cast<float>(q(k, j));
  Kokkos::deep_copy(out, h);
  return out;
}
}  // namespace detail

/// Builds the dense parts for a sparse part of total variance `sparse_variance` (each kind at
/// most once, as validate_dense_components requires).
inline DenseParts build_dense_parts(const std::vector<DenseComponentSpec>& specs, std::size_t d,
                                    double sparse_variance, std::uint64_t seed) {
  DenseParts p;
  if (specs.empty()) return p;
  double total_fraction = 0, f_iso = 0, f_lr = 0, f_c = 0;
  std::int64_t rank = 0, count = 0;
  for (const auto& s : specs) {
    total_fraction += s.variance_fraction;
    if (s.kind == DenseComponentSpec::Kind::isotropic) f_iso += s.variance_fraction;
    if (s.kind == DenseComponentSpec::Kind::low_rank) f_lr += s.variance_fraction, rank = std::max(rank, s.rank);
    if (s.kind == DenseComponentSpec::Kind::circles) f_c += s.variance_fraction, count = std::max(count, s.count);
  }
  const double total = sparse_variance / (1 - total_fraction);
  if (f_iso > 0) p.isotropic_std = static_cast<float>(std::sqrt(f_iso * total / double(d)));
  if (f_lr > 0) {
    p.low_rank_std = static_cast<float>(std::sqrt(f_lr * total / double(rank)));
    p.low_rank_basis = detail::random_orthonormal_rows(static_cast<std::size_t>(rank), d, seed, 0xDE45E1);
  }
  if (f_c > 0) {
    p.circle_magnitude = static_cast<float>(std::sqrt(f_c * total / double(count)));
    // Each plane orthonormal; planes independent of each other (they may overlap).
    p.circle_planes = Matrix<float>("circle_planes", 2 * count, d);
    for (std::int64_t j = 0; j < count; ++j) {
      const auto plane = detail::random_orthonormal_rows(2, d, seed, 0xDE45E2000000ull + std::uint64_t(j));
      Kokkos::deep_copy(Kokkos::subview(p.circle_planes, std::make_pair(2 * j, 2 * j + 2), Kokkos::ALL), plane);
    }
  }
  return p;
}

}  // namespace synthsae
