#pragma once
// The downstream effect of the error components (reference dark-matter.md §2.9; the paper's §5.3,
// Fig. 8). There is no language model in a synthetic world, so the downstream loss is a functor
// the user supplies, f(y) per row, and two come built in. For an SAE:
//   recovered(comp) = (L(Sae) - L(Sae + comp)) / (L(Sae) - L(x)),  comp ∈ {LinearError, NonlinearError},
// beside the paper's two "expected" values: the component's mean norm relative to SaeError's (and,
// the paper's literal wording, to Sae(x)'s), and the share of the variance between Sae(x) and x
// that the component recovers, 1 - Σ‖SaeError - comp‖² / Σ‖SaeError‖².
// LinearError is fitted on train rows (least squares of SaeError on x, linear_probe.hpp); every
// figure is a mean over the test rows. Losses run on the host in double precision, one chunk at
// a time (a user's loss is ordinary Eigen code).
#include <Eigen/Dense>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/analysis/chunk_reconstruction.hpp"
#include "synthsae/analysis/error_regression.hpp"
#include "synthsae/analysis/linear_probe.hpp"
#include "synthsae/analysis/row_split.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/host_eigen.hpp"
#include "synthsae/io/json.hpp"

namespace synthsae::analysis {

/// A downstream loss: one value per row of y [n, d] (activations, or a reconstruction plus an
/// error component, for the rows of `chunk`), given the chunk (its ground truth, for losses
/// defined on the true features).
struct DownstreamLoss {
  std::string name;
  std::function<Eigen::VectorXd(const Eigen::MatrixXd& y, const ActivationChunk& chunk)> per_row;
};

namespace detail {

/// The true coefficients of a chunk on the host: per row, (feature, value) pairs.
struct HostTruth {
  std::vector<std::vector<std::pair<int, double>>> rows;
  explicit HostTruth(const ActivationChunk& chunk) {
    if (!chunk.truth) throw ConfigError("downstream loss", "a true-feature loss", "needs a source with ground truth");
    const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), chunk.truth->ids);
    const auto vals = Kokkos::create_mirror_view_and_copy(HostSpace(), chunk.truth->values);
    const auto cnt = Kokkos::create_mirror_view_and_copy(HostSpace(), chunk.truth->counts);
    rows.resize(cnt.extent(0));
    for (std::size_t b = 0; b < cnt.extent(0); ++b)
      for (int u = 0; u < cnt(b); ++u) rows[b].emplace_back(ids(b, u), double(vals(b, u)));
  }
};

/// The decoding map of a dictionary D [N, d] (x = c D + b): P = D⁺ [d, N], c_hat = (x - b) P (the
/// minimum-norm coefficients when N ≥ d, the least-squares ones when N < d; eigenvalues of the
/// Gram below 1e-12 of the largest dropped), and G = P Pᵀ [d, d].
struct PseudoInverse {
  Eigen::MatrixXd p, g;
  explicit PseudoInverse(const Eigen::MatrixXd& dict) {
    const Eigen::Index n = dict.rows(), d = dict.cols();
    auto pinv_psd = [](const Eigen::MatrixXd& a) {
      const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(a);
      const Eigen::VectorXd& ev = eig.eigenvalues();
      const double cut = ev(ev.size() - 1) * 1e-12;
      Eigen::VectorXd inv(ev.size());
      for (Eigen::Index k = 0; k < ev.size(); ++k) inv(k) = ev(k) > cut ? 1.0 / ev(k) : 0.0;
      return Eigen::MatrixXd(eig.eigenvectors() * inv.asDiagonal() * eig.eigenvectors().transpose());
    };
    if (n >= d) {  // (DᵀD)⁺ Dᵀ; then P Pᵀ = (DᵀD)⁺
      g = pinv_psd(dict.transpose() * dict);
      p = g * dict.transpose();
    } else {  // Dᵀ (DDᵀ)⁺
      p = dict.transpose() * pinv_psd(dict * dict.transpose());
      g = p * p.transpose();
    }
  }
};

inline Eigen::RowVectorXd host_row(const Vector<float>* v, Eigen::Index d) {
  Eigen::RowVectorXd r = Eigen::RowVectorXd::Zero(d);
  if (!v) return r;
  const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), *v);
  for (Eigen::Index k = 0; k < d; ++k) r(k) = h(k);
  return r;
}

}  // namespace detail

/// Built-in loss (a): the squared error of recovering the true coefficients with the true
/// dictionary's pseudo-inverse, L(y) = ‖(y - b) D⁺ - c‖². Zero at y = x when the dictionary has no
/// more features than dimensions; in superposition, L(x) is what linear decoding already loses.
class PseudoInverseRecovery {
 public:
  PseudoInverseRecovery(const Matrix<float>& features, const Vector<float>* bias)
      : pinv_(host_eigen(features)), bias_(detail::host_row(bias, static_cast<Eigen::Index>(features.extent(1)))) {}

  /// Per row: ‖(y - b) P‖² - 2 Σ_{i active} c_i ĉ_i + Σ c_i², with ‖(y - b) P‖² = (y - b) G (y - b)ᵀ,
  /// so the cost is d² per row, not d N.
  Eigen::VectorXd operator()(const Eigen::MatrixXd& y, const ActivationChunk& chunk) const {
    const detail::HostTruth truth(chunk);
    const Eigen::MatrixXd yc = y.rowwise() - bias_;
    const Eigen::MatrixXd q = yc * pinv_.g;
    Eigen::VectorXd out(y.rows());
    for (Eigen::Index i = 0; i < y.rows(); ++i) {
      double s = q.row(i).dot(yc.row(i));
      for (const auto& [id, c] : truth.rows[std::size_t(i)]) s += c * c - 2 * c * yc.row(i).dot(pinv_.p.col(id));
      out(i) = s;
    }
    return out;
  }
  DownstreamLoss loss() const {
    auto self = *this;
    return {"pinv_recovery", [self](const Eigen::MatrixXd& y, const ActivationChunk& c) { return self(y, c); }};
  }
  const Eigen::MatrixXd& decoding_map() const { return pinv_.p; }
  const Eigen::RowVectorXd& bias() const { return bias_; }

 private:
  detail::PseudoInverse pinv_;
  Eigen::RowVectorXd bias_;
};

/// Built-in loss (b): a fixed random two-layer ReLU readout of the true coefficients, the task;
/// the network reads the layer through the pseudo-inverse decoding: L(y) = ‖g(ĉ(y)) - g(c)‖²
/// with g(v) = ReLU(v W1) W2, W1 [N, h] ~ N(0, 1), W2 [h, o] ~ N(0, 1/h).
class ReluReadout {
 public:
  ReluReadout(const Matrix<float>& features, const Vector<float>* bias, int hidden = 64, int outputs = 16,
              std::uint64_t seed = 0)
      : ReluReadout(PseudoInverseRecovery(features, bias), hidden, outputs, seed) {}

  /// The same, reading the layer through an existing pseudo-inverse decoding (computed once).
  ReluReadout(const PseudoInverseRecovery& decoding, int hidden = 64, int outputs = 16, std::uint64_t seed = 0)
      : bias_(decoding.bias()) {
    if (hidden < 1) throw ConfigError("readout hidden", show(hidden), "must be >= 1");
    if (outputs < 1) throw ConfigError("readout outputs", show(outputs), "must be >= 1");
    const Eigen::MatrixXd& p = decoding.decoding_map();
    const Eigen::Index n = p.cols();
    w1_.resize(n, hidden), w2_.resize(hidden, outputs);
    for (Eigen::Index i = 0; i < n; ++i) {
      RandomStream rng(seed, 0xD0A1'0000'0000ull + std::uint64_t(i));
      for (int k = 0; k < hidden; ++k) w1_(i, k) = rng.normal<double>();
    }
    for (int k = 0; k < hidden; ++k) {
      RandomStream rng(seed, 0xD0A2'0000'0000ull + std::uint64_t(k));
      for (int o = 0; o < outputs; ++o) w2_(k, o) = rng.normal<double>() / std::sqrt(double(hidden));
    }
    m_ = p * w1_;  // ĉ W1 = (y - b) P W1
  }

  Eigen::VectorXd operator()(const Eigen::MatrixXd& y, const ActivationChunk& chunk) const {
    const detail::HostTruth truth(chunk);
    const Eigen::MatrixXd pred = ((y.rowwise() - bias_) * m_).cwiseMax(0.0) * w2_;
    Eigen::VectorXd out(y.rows());
    Eigen::RowVectorXd h(w1_.cols());
    for (Eigen::Index i = 0; i < y.rows(); ++i) {
      h.setZero();
      for (const auto& [id, c] : truth.rows[std::size_t(i)]) h += c * w1_.row(id);
      out(i) = (pred.row(i) - h.cwiseMax(0.0) * w2_).squaredNorm();
    }
    return out;
  }
  DownstreamLoss loss() const {
    auto self = *this;
    return {"relu_readout", [self](const Eigen::MatrixXd& y, const ActivationChunk& c) { return self(y, c); }};
  }
  const Eigen::MatrixXd& w1() const { return w1_; }
  const Eigen::MatrixXd& w2() const { return w2_; }

 private:
  Eigen::RowVectorXd bias_;
  Eigen::MatrixXd w1_, w2_, m_;
};

/// train_rows: of `rows`, for LinearError's fit (0: 60 %).
struct DownstreamOptions : RegressionPassOptions {
  std::uint64_t rows = 50'000;  ///< rows of the source used (from its first)
  void validate() const {
    RegressionPassOptions::validate();
    if (rows < 2) throw ConfigError("downstream rows", show(rows), "must be at least 2");
  }
};

struct DownstreamComponentEffect {
  double loss = 0;       ///< mean L(Sae(x) + component)
  double recovered = 0;  ///< (L(Sae) - L(Sae + comp)) / (L(Sae) - L(x))
};

struct DownstreamLossEffect {
  std::string name;
  double loss_x = 0, loss_sae = 0;  ///< means over the test rows
  DownstreamComponentEffect linear, nonlinear;
};

struct DownstreamReport {
  std::string sae;
  std::uint64_t train_rows = 0, test_rows = 0;
  /// The paper's expectations: mean ‖comp‖ / mean ‖SaeError‖, mean ‖comp‖ / mean ‖Sae(x)‖, and
  /// 1 - Σ‖SaeError - comp‖² / Σ‖SaeError‖² (the variance between Sae(x) and x it recovers).
  double linear_norm_vs_error = 0, nonlinear_norm_vs_error = 0;
  double linear_norm_vs_sae = 0, nonlinear_norm_vs_sae = 0;
  double linear_variance_share = 0, nonlinear_variance_share = 0;
  std::vector<DownstreamLossEffect> losses;
  double seconds = 0;

  io::Json to_json() const {
    auto null_if_nan = [](double v) { return std::isfinite(v) ? io::Json(v) : io::Json(); };
    io::Json l = io::Json::array();
    for (const auto& e : losses)
      l.push_back({{"loss", e.name},
                   {"loss_x", e.loss_x},
                   {"loss_sae", e.loss_sae},
                   {"linear_error", {{"loss", e.linear.loss}, {"recovered", null_if_nan(e.linear.recovered)}}},
                   {"nonlinear_error", {{"loss", e.nonlinear.loss}, {"recovered", null_if_nan(e.nonlinear.recovered)}}}});
    return {{"sae", sae},
            {"train_rows", train_rows},
            {"test_rows", test_rows},
            {"expected",
             {{"linear_error", {{"norm_vs_sae_error", linear_norm_vs_error}, {"norm_vs_sae", linear_norm_vs_sae},
                                {"variance_share", linear_variance_share}}},
              {"nonlinear_error", {{"norm_vs_sae_error", nonlinear_norm_vs_error}, {"norm_vs_sae", nonlinear_norm_vs_sae},
                                   {"variance_share", nonlinear_variance_share}}}}},
            {"losses", l},
            {"seconds", seconds}};
  }
};

inline DownstreamReport downstream_effect(ActivationSource& source, const ChunkReconstruction& sae, std::string label,
                                          const std::vector<DownstreamLoss>& losses, const DownstreamOptions& opt = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  opt.validate();
  if (losses.empty()) throw ConfigError("downstream losses", "none", "give at least one loss");
  const std::uint64_t n = std::min(opt.rows, source.rows());
  const RowSplit split(n, opt.train_rows ? opt.train_rows : n * 6 / 10, opt.split_seed);
  const std::size_t d = source.dim();

  // Pass A: LinearError's fit on the train rows.
  const ProbeFit fit = fit_error_regression(source, sae, opt.probe, opt.chunk_rows, n, &split);

  ActivationChunk chunk;
  Matrix<float> recon;
  std::vector<std::int32_t> test;
  auto each_chunk = [&](const char* pass, const std::function<void(std::size_t)>& body) {
    for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
      const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
      source.read(first, count, chunk);
      if (recon.extent(0) != count) recon = Matrix<float>("downstream_recon", count, d);
      sae(chunk, recon);
      test.clear();
      for (std::size_t i = 0; i < count; ++i)
        if (!split.is_train(first + i)) test.push_back(std::int32_t(i));
      body(count);
      if (opt.progress) opt.progress(pass, first + count, n);
    }
  };

  // Pass B: on the test rows, the losses of x, Sae(x), Sae(x) + LinearError, Sae(x) + NonlinearError.
  const std::size_t L = losses.size();
  std::vector<std::array<double, 4>> sums(L, {0, 0, 0, 0});
  double sq_err = 0, sq_lin_res = 0, sq_nonlin_res = 0, norm_err = 0, norm_lin = 0, norm_nonlin = 0, norm_sae = 0;
  std::uint64_t rows_scored = 0;
  each_chunk("downstream", [&](std::size_t count) {
    if (test.empty()) return;
    Matrix<double> pred("downstream_linear", count, d);
    fit.predict(chunk.x, RowIndex(), pred);
    const Eigen::MatrixXd x = host_eigen(chunk.x), s = host_eigen(recon);
    const auto hp = Kokkos::create_mirror_view_and_copy(HostSpace(), pred);
    Eigen::MatrixXd lin(count, d);
    for (std::size_t i = 0; i < count; ++i)
      for (std::size_t k = 0; k < d; ++k) lin(i, k) = hp(i, k);
    const Eigen::MatrixXd e = x - s, nonlin = e - lin;
    const Eigen::MatrixXd with_lin = s + lin, with_nonlin = s + nonlin;
    for (std::size_t l = 0; l < L; ++l) {
      const Eigen::MatrixXd* inputs[4] = {&x, &s, &with_lin, &with_nonlin};
      for (int v = 0; v < 4; ++v) {
        const Eigen::VectorXd per_row = losses[l].per_row(*inputs[v], chunk);
        if (per_row.size() != static_cast<Eigen::Index>(count))
          throw ShapeError("downstream loss " + losses[l].name + " gave " + show(per_row.size()) + " values for " +
                           show(count) + " rows");
        for (auto i : test) sums[l][v] += per_row(i);
      }
    }
    for (auto i : test) {
      sq_err += e.row(i).squaredNorm(), sq_lin_res += nonlin.row(i).squaredNorm(), sq_nonlin_res += lin.row(i).squaredNorm();
      norm_err += e.row(i).norm(), norm_lin += lin.row(i).norm(), norm_nonlin += nonlin.row(i).norm(), norm_sae += s.row(i).norm();
    }
    rows_scored += test.size();
  });

  DownstreamReport rep;
  rep.sae = std::move(label);
  rep.train_rows = split.train_rows(), rep.test_rows = rows_scored;
  rep.linear_norm_vs_error = norm_lin / norm_err, rep.nonlinear_norm_vs_error = norm_nonlin / norm_err;
  rep.linear_norm_vs_sae = norm_lin / norm_sae, rep.nonlinear_norm_vs_sae = norm_nonlin / norm_sae;
  // Sae(x) + LinearError leaves NonlinearError, and the other way round.
  rep.linear_variance_share = 1 - sq_lin_res / sq_err, rep.nonlinear_variance_share = 1 - sq_nonlin_res / sq_err;
  const double rows = double(rows_scored);
  for (std::size_t l = 0; l < L; ++l) {
    DownstreamLossEffect e;
    e.name = losses[l].name;
    e.loss_x = sums[l][0] / rows, e.loss_sae = sums[l][1] / rows;
    e.linear.loss = sums[l][2] / rows, e.nonlinear.loss = sums[l][3] / rows;
    // No gap to recover (Sae(x) as good as x for this loss): the share is undefined, NaN (null).
    const double gap = e.loss_sae - e.loss_x;
    const bool defined = gap > 1e-12 * std::max(1.0, std::fabs(e.loss_x));
    e.linear.recovered = defined ? (e.loss_sae - e.linear.loss) / gap : std::nan("");
    e.nonlinear.recovered = defined ? (e.loss_sae - e.nonlinear.loss) / gap : std::nan("");
    rep.losses.push_back(e);
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace synthsae::analysis
