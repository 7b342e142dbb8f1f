#pragma once
// Streaming least squares (reference dark-matter.md §1.1): the normal equations of [x, 1] and
// y accumulated in double precision over float32 chunks, one GEMM per chunk through the
// library's gemm (so the accumulation runs where the data lives, GPU included); a Cholesky
// solve with an eigen-decomposition fallback for near-singular systems; test-set scores as
// per-dimension R² (averaged: the paper's R²_mean) and pooled FVU.
//
// Precision: rows are shifted by the first chunk's column means before the products are
// formed, so a large common offset (a residual stream's mean) does not square the condition
// number of the system; the intercept absorbs the shift. Float32 normal equations are not an
// option: the reference shows a test R² of -54 from them where the same problem gives 0.93.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/core/row_loops.hpp"

namespace synthsae::analysis {

struct ProbeOptions {
  bool intercept = true;
  /// λ ≥ 0: adds λ · (mean diagonal of the regressors' scatter) to that diagonal (not to the
  /// intercept), so λ is scale-free.
  double ridge = 0.0;
  void validate() const {
    if (!(ridge >= 0.0) || !std::isfinite(ridge)) throw ConfigError("ridge", show(ridge), "must be finite and >= 0");
  }
};

enum class SolveMethod { cholesky, eigen_pseudo_inverse };
inline const char* solve_method_name(SolveMethod m) {
  return m == SolveMethod::cholesky ? "cholesky" : "eigen_pseudo_inverse";
}

/// Row indices of a chunk (device), e.g. its train rows; an empty View means every row.
using RowIndex = Vector<std::int32_t>;

/// A host list of row indices as a device RowIndex.
inline RowIndex device_rows(const std::vector<std::int32_t>& rows) {
  RowIndex d(Kokkos::view_alloc(Kokkos::WithoutInitializing, "row_index"), rows.size());
  auto h = Kokkos::create_mirror_view(d);
  for (std::size_t i = 0; i < rows.size(); ++i) h(i) = rows[i];
  Kokkos::deep_copy(d, h);
  return d;
}

namespace detail {

/// out(i, k) = src(row_i, k) - shift(k) (k < p), out(i, p) = 1 when `ones`: the shifted design.
inline void gather_shifted(const Matrix<float>& src, const RowIndex& rows, const Vector<double>& shift, bool ones,
                           const Matrix<double>& out) {
  const std::size_t n = out.extent(0), p = src.extent(1);
  const bool all = rows.extent(0) == 0;
  const auto s = src;
  const auto r = rows;
  const auto sh = shift;
  const auto o = out;
  const int pp = static_cast<int>(p);
  for_each_entry(
      "synthsae::probe_gather", n, p + (ones ? 1 : 0), KOKKOS_LAMBDA(int i, int k) {
        const int row = all ? i : r(i);
        o(i, k) = k < pp ? double(s(row, k)) - sh(k) : 1.0;
      });
}

/// sums(j, 0..2) += Σ_i (y_ij, y_ij², (y_ij - ŷ_ij)²) for double [n, q] y and ŷ; rows in order
/// for every column on every backend (host: blocks of columns, rows outer; GPU: a thread per column).
inline void add_column_moments(const Matrix<double>& y, const Matrix<double>& y_hat, const Matrix<double>& sums) {
  const int n = static_cast<int>(y.extent(0)), q = static_cast<int>(y.extent(1));
  const auto yy = y;
  const auto yh = y_hat;
  const auto acc = sums;
  if constexpr (host_execution_v) {
    constexpr int block = 32;
    Kokkos::parallel_for(
        "synthsae::probe_moments", Kokkos::RangePolicy<ExecSpace>(0, (q + block - 1) / block), KOKKOS_LAMBDA(int b) {
          const int j0 = b * block, j1 = j0 + block < q ? j0 + block : q;
          for (int i = 0; i < n; ++i)
            for (int j = j0; j < j1; ++j) {
              const double v = yy(i, j), e = v - yh(i, j);
              acc(j, 0) += v, acc(j, 1) += v * v, acc(j, 2) += e * e;
            }
        });
  } else {
    Kokkos::parallel_for(
        "synthsae::probe_moments", Kokkos::RangePolicy<ExecSpace>(0, q), KOKKOS_LAMBDA(int j) {
          double a = 0, b = 0, c = 0;
          for (int i = 0; i < n; ++i) {
            const double v = yy(i, j), e = v - yh(i, j);
            a += v, b += v * v, c += e * e;
          }
          acc(j, 0) += a, acc(j, 1) += b, acc(j, 2) += c;
        });
  }
}

/// c += xᵀx on and below the diagonal blocks only: row panels of 192 columns, panel I times
/// columns [0, end of I), each one GEMM through the library's gemm (so the GPU build runs it on
/// the device); 62% of the full product's flops at p = 768, at the full product's efficiency.
/// The rest of the upper triangle is left as it was; read the result from the lower triangle.
inline void add_gram_lower(const Matrix<double>& x, const Matrix<double>& c) {
  constexpr std::size_t panel = 192;
  const std::size_t m = x.extent(1);
  for (std::size_t i = 0; i < m; i += panel) {
    const std::size_t end = std::min(m, i + panel);
    const auto rows = std::make_pair(i, end), cols = std::make_pair(std::size_t(0), end);
    gemm(Op::T, Op::N, 1.0, Kokkos::subview(x, Kokkos::ALL, rows), Kokkos::subview(x, Kokkos::ALL, cols), 1.0,
         Kokkos::subview(c, rows, cols));
  }
}

inline Matrix<double> ensure(Matrix<double>& m, std::size_t r, std::size_t c, const char* label) {
  if (m.extent(0) != r || m.extent(1) != c) m = Matrix<double>(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), r, c);
  return m;
}

}  // namespace detail

/// Test-set statistics of q targets against their predictions.
struct ProbeScore {
  std::uint64_t rows = 0;
  std::vector<double> sse, sst;  ///< per target: Σ(y - ŷ)², Σ(y - ȳ_test)²
  std::vector<double> mean;      ///< per target: mean of (y - center) so far (merges chunks' SST)

  /// 1 - SSE_j / SST_j; NaN where the target is constant on the test rows.
  double r2(std::size_t j) const { return sst[j] > 0 ? 1.0 - sse[j] / sst[j] : std::numeric_limits<double>::quiet_NaN(); }
  /// The paper's R²_mean: the mean of the per-target R² over targets that vary.
  double r2_mean() const { return r2_mean(0, sse.size()); }
  double r2_mean(std::size_t first, std::size_t count) const {
    double s = 0;
    std::size_t used = 0;
    for (std::size_t j = first; j < first + count; ++j)
      if (sst[j] > 0) s += r2(j), ++used;
    return used ? s / double(used) : std::numeric_limits<double>::quiet_NaN();
  }
  /// Pooled FVU: Σ SSE / Σ SST over targets [first, first + count).
  double fvu(std::size_t first, std::size_t count) const {
    double e = 0, t = 0;
    for (std::size_t j = first; j < first + count; ++j) e += sse[j], t += sst[j];
    return t > 0 ? e / t : std::numeric_limits<double>::quiet_NaN();
  }
  double fvu() const { return fvu(0, sse.size()); }
};

/// A solved probe: ŷ = (x - shift_x)ᵀ B + b + shift_y, kept in the shifted form it was solved in.
class ProbeFit {
 public:
  std::size_t inputs() const { return p_; }
  std::size_t outputs() const { return q_; }
  SolveMethod method() const { return method_; }
  /// Condition number of the Jacobi-scaled normal matrix (exact for p ≤ 2048, else LLT's estimate).
  double condition_number() const { return condition_; }
  bool condition_exact() const { return condition_exact_; }
  std::uint64_t train_rows() const { return n_; }
  /// Coefficients in the original units: [p, q].
  Eigen::MatrixXd coefficients() const { return coef_.topRows(p_); }
  /// Intercept in the original units: [q].
  Eigen::VectorXd intercept() const {
    Eigen::VectorXd b = shift_y_;
    if (intercept_) b += coef_.row(p_).transpose();
    b -= coef_.topRows(p_).transpose() * shift_x_;
    return b;
  }
  /// y_hat [n, q] (double) for the rows `rows` of x (every row when empty).
  void predict(const Matrix<float>& x, const RowIndex& rows, const Matrix<double>& y_hat) const {
    const std::size_t n = rows.extent(0) ? rows.extent(0) : x.extent(0);
    if (x.extent(1) != p_ || y_hat.extent(0) != n || y_hat.extent(1) != q_)
      throw ShapeError("ProbeFit::predict: x has " + show(x.extent(1)) + " columns for a probe of " + show(p_) +
                       " inputs, or y_hat is not [" + show(n) + " x " + show(q_) + "]");
    detail::ensure(design_, n, p_ + (intercept_ ? 1 : 0), "probe_design");
    detail::gather_shifted(x, rows, dev_shift_x_, intercept_, design_);
    gemm(Op::N, Op::N, 1.0, design_, dev_coef_, 0.0, y_hat);
    const auto sy = dev_shift_y_;
    const auto out = y_hat;
    for_each_entry(
        "synthsae::probe_unshift", n, q_, KOKKOS_LAMBDA(int i, int j) { out(i, j) += sy(j); });
  }
  /// Scores the rows `rows` of (x, y) into `score` (which starts empty or from an earlier chunk).
  void score(const Matrix<float>& x, const Matrix<float>& y, const RowIndex& rows, ProbeScore& score) const {
    const std::size_t n = rows.extent(0) ? rows.extent(0) : x.extent(0);
    if (n == 0) return;
    if (y.extent(1) != q_) throw ShapeError("ProbeFit::score: y has " + show(y.extent(1)) + " columns, probe " + show(q_));
    detail::ensure(pred_, n, q_, "probe_prediction");
    predict(x, rows, pred_);
    detail::ensure(target_, n, q_, "probe_target");
    const Vector<double> zero("zero_shift", q_);
    detail::gather_shifted(y, rows, zero, false, target_);
    add_scores(target_, pred_, score);
  }
  /// Scores double targets against double predictions (both [n, q], device), e.g. targets the
  /// caller derived from other predictions.
  void add_scores(const Matrix<double>& y, const Matrix<double>& y_hat, ProbeScore& score) const {
    accumulate_scores(y, y_hat, shift_y_, score);
  }
  /// Adds test statistics of arbitrary (y, ŷ) pairs; `center` [q] is a value near the mean of y
  /// (sums are taken about it, so SST does not lose digits).
  static void accumulate_scores(const Matrix<double>& y, const Matrix<double>& y_hat, const Eigen::VectorXd& center,
                                ProbeScore& score) {
    const std::size_t n = y.extent(0), q = y.extent(1);
    if (score.sse.empty()) score.sse.assign(q, 0.0), score.sst.assign(q, 0.0);
    if (score.sse.size() != q || y_hat.extent(0) != n || y_hat.extent(1) != q || std::size_t(center.size()) != q)
      throw ShapeError("ProbeScore: " + show(q) + " targets, expected " + show(score.sse.size()));
    // SST about the test mean from shifted sums: merge this chunk's (n, mean, M2) into the running ones.
    Matrix<double> yc("probe_centered", n, q), hc("probe_centered_hat", n, q);
    Vector<double> c("probe_center", q);
    auto hcenter = Kokkos::create_mirror_view(c);
    for (std::size_t j = 0; j < q; ++j) hcenter(j) = center(j);
    Kokkos::deep_copy(c, hcenter);
    const auto yy = y;
    const auto yh = y_hat;
    for_each_entry(
        "synthsae::probe_center", n, q, KOKKOS_LAMBDA(int i, int j) {
          yc(i, j) = yy(i, j) - c(j);
          hc(i, j) = yh(i, j) - c(j);
        });
    Matrix<double> sums("probe_sums", q, 3);
    detail::add_column_moments(yc, hc, sums);
    const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), sums);
    if (score.mean.empty()) score.mean.assign(q, 0.0);
    const double na = double(score.rows), nb = double(n), nt = na + nb;
    for (std::size_t j = 0; j < q; ++j) {
      const double mb = h(j, 0) / nb, m2b = std::max(0.0, h(j, 1) - h(j, 0) * mb);
      const double delta = mb - score.mean[j];
      score.sst[j] += m2b + delta * delta * na * nb / nt;
      score.mean[j] += delta * nb / nt;
      score.sse[j] += h(j, 2);
    }
    score.rows += n;
  }

 private:
  friend class LinearProbe;
  std::size_t p_ = 0, q_ = 0;
  bool intercept_ = true;
  SolveMethod method_ = SolveMethod::cholesky;
  double condition_ = 0;
  bool condition_exact_ = true;
  std::uint64_t n_ = 0;
  Eigen::MatrixXd coef_;  ///< [(p + intercept), q] in shifted coordinates
  Eigen::VectorXd shift_x_, shift_y_;
  Matrix<double> dev_coef_;
  Vector<double> dev_shift_x_, dev_shift_y_;
  mutable Matrix<double> design_, pred_, target_;
};

/// The solution of (A + ridge) B = Y for the normal equations A [m, m] (m = p + intercept; the
/// intercept is row/column p) accumulated over n rows.
struct NormalSolution {
  Eigen::MatrixXd coef;
  SolveMethod method = SolveMethod::cholesky;
  double condition = 0;          ///< of the Jacobi-scaled matrix
  bool condition_exact = true;   ///< eigenvalues (m ≤ 2048) or LLT's 1-norm estimate
};

inline NormalSolution solve_normal_equations(Eigen::MatrixXd a, const Eigen::MatrixXd& b, std::size_t p, bool intercept,
                                             std::uint64_t n, double ridge) {
  const std::size_t m = static_cast<std::size_t>(a.rows());
  if (ridge > 0 && p > 0) {
    // The regressors' scatter about their mean: diag(S) - (Σx)²/n when the intercept is on.
    double trace = 0;
    for (std::size_t k = 0; k < p; ++k) trace += a(k, k) - (intercept ? a(k, p) * a(k, p) / double(n) : 0.0);
    const double add = ridge * trace / double(p);
    for (std::size_t k = 0; k < p; ++k) a(k, k) += add;
  }
  // A regressor that is zero on every train row (a feature that never fired) gets coefficient 0.
  for (std::size_t k = 0; k < m; ++k)
    if (a(k, k) == 0) a(k, k) = 1;
  // Jacobi scaling: columns of very different scale do not make the system look singular.
  Eigen::VectorXd d(m);
  for (std::size_t k = 0; k < m; ++k) d(k) = 1.0 / std::sqrt(a(k, k));
  const Eigen::MatrixXd as = d.asDiagonal() * a * d.asDiagonal();
  const Eigen::MatrixXd bs = d.asDiagonal() * b;

  NormalSolution out;
  const Eigen::LLT<Eigen::MatrixXd> llt(as);
  out.condition_exact = m <= 2048;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig;
  out.condition = std::numeric_limits<double>::infinity();
  if (out.condition_exact) {
    eig.compute(as);
    const double lo = eig.eigenvalues()(0), hi = eig.eigenvalues()(m - 1);
    if (lo > 0) out.condition = hi / lo;
  } else if (llt.info() == Eigen::Success) {
    const double rc = llt.rcond();
    if (rc > 0) out.condition = 1.0 / rc;
  }
  // Cholesky while the system is comfortably definite; otherwise a pseudo-inverse that drops
  // eigenvalues below 1e-12 of the largest (numpy's lstsq rcond convention, in double).
  Eigen::MatrixXd coef;
  if (llt.info() == Eigen::Success && out.condition < 1e12) {
    coef = llt.solve(bs);
    out.method = SolveMethod::cholesky;
  } else {
    if (!out.condition_exact) eig.compute(as);
    const Eigen::VectorXd& ev = eig.eigenvalues();
    const double cut = ev(m - 1) * 1e-12;
    Eigen::VectorXd inv(m);
    for (std::size_t k = 0; k < m; ++k) inv(k) = ev(k) > cut ? 1.0 / ev(k) : 0.0;
    coef = eig.eigenvectors() * inv.asDiagonal() * (eig.eigenvectors().transpose() * bs);
    out.method = SolveMethod::eigen_pseudo_inverse;
  }
  out.coef = d.asDiagonal() * coef;
  return out;
}

/// Accumulates the normal equations of q targets on p regressors; solve() any time.
class LinearProbe {
 public:
  LinearProbe(std::size_t p, std::size_t q, ProbeOptions options = {}) : p_(p), q_(q), opt_(options) {
    opt_.validate();
    if (p == 0 && !opt_.intercept) throw ConfigError("probe inputs", "0", "need at least one regressor or the intercept");
    if (q == 0) throw ConfigError("probe outputs", "0", "need at least one target");
    const std::size_t m = p + (opt_.intercept ? 1 : 0);
    sxx_ = Matrix<double>("probe_sxx", m, m);
    sxy_ = Matrix<double>("probe_sxy", m, q);
    shift_x_ = Vector<double>("probe_shift_x", p);
    shift_y_ = Vector<double>("probe_shift_y", q);
  }

  std::size_t inputs() const { return p_; }
  std::size_t outputs() const { return q_; }
  std::uint64_t rows() const { return n_; }
  const ProbeOptions& options() const { return opt_; }

  /// Adds rows `rows` (every row when empty) of x [n, p] and y [n, q] (device, float32).
  void add(const Matrix<float>& x, const Matrix<float>& y, const RowIndex& rows = {}) {
    const std::size_t n = rows.extent(0) ? rows.extent(0) : x.extent(0);
    if (x.extent(1) != p_ || y.extent(1) != q_ || (rows.extent(0) == 0 && y.extent(0) != x.extent(0)))
      throw ShapeError("LinearProbe::add: x " + synthsae::detail::shape_text(x.extent(0), x.extent(1)) + " and y " +
                       synthsae::detail::shape_text(y.extent(0), y.extent(1)) + " for a probe of " + show(p_) + " inputs and " +
                       show(q_) + " outputs");
    if (n == 0) return;
    if (n_ == 0 && opt_.intercept) set_shifts(x, y, rows, n);
    detail::ensure(xd_, n, p_ + (opt_.intercept ? 1 : 0), "probe_design");
    detail::ensure(yd_, n, q_, "probe_targets");
    detail::gather_shifted(x, rows, shift_x_, opt_.intercept, xd_);
    detail::gather_shifted(y, rows, shift_y_, false, yd_);
    detail::add_gram_lower(xd_, sxx_);
    gemm(Op::T, Op::N, 1.0, xd_, yd_, 1.0, sxy_);
    n_ += n;
  }

  /// Mean of the regressors over the rows added so far (the train mean).
  Eigen::VectorXd mean_x() const {
    Eigen::VectorXd m = host_vector(shift_x_);
    if (opt_.intercept && n_ > 0) {
      const auto s = Kokkos::create_mirror_view_and_copy(HostSpace(), sxx_);
      for (std::size_t k = 0; k < p_; ++k) m(k) += s(p_, k) / double(n_);  // lower triangle
    }
    return m;
  }

  ProbeFit solve() const {
    if (n_ == 0) throw ConfigError("probe train rows", "0", "nothing to fit");
    const std::size_t m = p_ + (opt_.intercept ? 1 : 0);
    const auto hs = Kokkos::create_mirror_view_and_copy(HostSpace(), sxx_);
    const auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), sxy_);
    Eigen::MatrixXd a(m, m), b(m, q_);
    for (std::size_t i = 0; i < m; ++i)  // the Gram matrix is accumulated on its lower block triangle
      for (std::size_t j = 0; j < m; ++j) a(i, j) = i >= j ? hs(i, j) : hs(j, i);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < q_; ++j) b(i, j) = hb(i, j);
    auto sol = solve_normal_equations(std::move(a), b, p_, opt_.intercept, n_, opt_.ridge);
    ProbeFit fit;
    fit.p_ = p_, fit.q_ = q_, fit.intercept_ = opt_.intercept, fit.n_ = n_;
    fit.method_ = sol.method, fit.condition_ = sol.condition, fit.condition_exact_ = sol.condition_exact;
    fit.coef_ = std::move(sol.coef);
    fit.shift_x_ = host_vector(shift_x_);
    fit.shift_y_ = host_vector(shift_y_);
    fit.dev_coef_ = Matrix<double>("probe_coef", m, q_);
    auto hc = Kokkos::create_mirror_view(fit.dev_coef_);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < q_; ++j) hc(i, j) = fit.coef_(i, j);
    Kokkos::deep_copy(fit.dev_coef_, hc);
    fit.dev_shift_x_ = shift_x_;
    fit.dev_shift_y_ = shift_y_;
    return fit;
  }

 private:
  static Eigen::VectorXd host_vector(const Vector<double>& v) {
    const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
    Eigen::VectorXd out(v.extent(0));
    for (std::size_t i = 0; i < v.extent(0); ++i) out(i) = h(i);
    return out;
  }

  /// The first chunk's column means become the shifts of every later row.
  void set_shifts(const Matrix<float>& x, const Matrix<float>& y, const RowIndex& rows, std::size_t n) {
    auto mean_of = [&](const Matrix<float>& src, const Vector<double>& out) {
      const std::size_t c = src.extent(1);
      Matrix<double> tmp("probe_first_chunk", n, c);
      detail::gather_shifted(src, rows, Vector<double>("zero", c), false, tmp);
      const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), tmp);
      auto m = Kokkos::create_mirror_view(out);
      for (std::size_t k = 0; k < c; ++k) m(k) = 0;
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < c; ++k) m(k) += h(i, k);
      for (std::size_t k = 0; k < c; ++k) m(k) /= double(n);
      Kokkos::deep_copy(out, m);
    };
    mean_of(x, shift_x_);
    mean_of(y, shift_y_);
  }

  std::size_t p_, q_;
  ProbeOptions opt_;
  std::uint64_t n_ = 0;
  Matrix<double> sxx_, sxy_, xd_, yd_;
  Vector<double> shift_x_, shift_y_;
};

}  // namespace synthsae::analysis
