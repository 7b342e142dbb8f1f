#pragma once
// Predicting a layer's SAE error from the other components' SAE outputs (the paper's §6.2,
// Eq. 16, Fig. 9b; reference dark-matter.md §2.11). For the target x_L = x_prev + x_mlp +
// W_O x_attn with its SAE, and each component c with its own SAE:
//   SaeError = x_L - Sae(x_L), LinearError = its least-squares prediction from x_L (train rows),
//   NonlinearError = SaeError - LinearError; the same three for every component on x_c.
// Each regressor (a component's Sae_c(x_c), its raw x_c, its LinearError or NonlinearError, the
// concatenations over the components, the target's own Sae(x_L) and x_L) is fitted to the
// target's three errors on train rows and scored on test rows: the table of test R².
//
// Three passes over the rows in chunks (a chunk is redrawn each pass; rows are pure functions of
// their index): A fits the four LinearError probes, B accumulates every regressor's normal
// equations, C scores them. Reconstructions are any function of a chunk (oracles read the
// ground truth, trained SAEs encode and decode x), so components may be oracles or trained SAEs.
#include <array>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "synthsae/analysis/chunk_reconstruction.hpp"
#include "synthsae/analysis/circuit_world.hpp"
#include "synthsae/analysis/error_regression.hpp"
#include "synthsae/analysis/linear_probe.hpp"
#include "synthsae/analysis/row_split.hpp"
#include "synthsae/io/json.hpp"

namespace synthsae::analysis {

/// An oracle SAE of one component: it reconstructs exactly a seeded random `capture` share of
/// the component's features (1: all of them), Sae_c(x_c) = Σ_{i captured} c_i dir_i.
inline ChunkReconstruction component_oracle(const CircuitWorld& world, CircuitComponent c, double capture = 1.0,
                                            std::uint64_t seed = 0) {
  if (!(capture >= 0 && capture <= 1)) throw ConfigError("capture", show(capture), "must be in [0, 1]");
  const Matrix<float>& dict = world.component_features(c);
  const std::size_t n = dict.extent(0), dim = dict.extent(1);
  // The captured dictionary: the uncaptured features' rows set to zero.
  Matrix<float> captured("component_oracle_dictionary", n, dim);
  Kokkos::deep_copy(captured, dict);
  auto h = Kokkos::create_mirror_view(captured);  // on a host build this is `captured` itself
  Kokkos::deep_copy(h, captured);
  const auto keep = static_cast<std::size_t>(std::llround(capture * double(n)));
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  RandomStream rng(seed, 0xC1AC0000ull + std::uint64_t(c));
  for (std::size_t i = 0; i + 1 < n; ++i)
    std::swap(order[i], order[i + rng.uniform_below(static_cast<std::uint32_t>(n - i))]);
  for (std::size_t u = keep; u < n; ++u)
    for (std::size_t k = 0; k < dim; ++k) h(order[u], k) = 0.0f;
  Kokkos::deep_copy(captured, h);
  const Vector<float> zero("component_oracle_bias", dim);
  return [captured, zero](const ActivationChunk& chunk, const Matrix<float>& x_hat) {
    hidden_from_sparse(*chunk.truth, captured, zero, x_hat);
  };
}

struct CircuitSaes {
  ChunkReconstruction target;
  std::array<ChunkReconstruction, 3> component;  ///< prev, mlp, attn
};

using CircuitRegressionOptions = RegressionPassOptions;

/// Coefficients of the widest regression (all components' dimensions, or the target's, plus the
/// intercept): the train rows must outnumber them.
inline std::size_t circuit_regression_coefficients(const CircuitConfig& cfg) {
  return static_cast<std::size_t>(std::max(2 * cfg.hidden_dim + cfg.attn_dim, cfg.hidden_dim)) + 1;
}

/// The target's three errors, in the order of CircuitRegressor's arrays.
inline constexpr std::array<const char*, 3> kCircuitTargets{"sae_error", "linear_error", "nonlinear_error"};

struct CircuitRegressor {
  std::string name;
  std::size_t inputs = 0;
  std::array<double, 3> r2_mean{};    ///< the paper's R²_mean over the target's dimensions
  std::array<double, 3> explained{};  ///< pooled: 1 - Σ SSE / Σ SST over the dimensions
};

struct CircuitRegressionReport {
  std::uint64_t rows = 0, train_rows = 0, test_rows = 0;
  /// Test rows: FVU = Σ‖SaeError‖² / Σ‖x - x̄‖², and the nonlinear part's share of the same.
  double target_fvu = 0, target_fvu_nonlinear = 0;
  std::array<double, 3> component_fvu{}, component_fvu_nonlinear{};
  /// Mean squared norms per row on the test rows: SaeError, NonlinearError (the target's).
  double sae_error_sq = 0, nonlinear_error_sq = 0;
  std::vector<CircuitRegressor> table;
  double seconds = 0;

  const CircuitRegressor& row(const std::string& name) const {
    for (const auto& r : table)
      if (r.name == name) return r;
    throw ConfigError("regressor", name, "is not in the table");
  }
  io::Json to_json() const {
    io::Json t = io::Json::array();
    for (const auto& r : table) {
      io::Json e = {{"regressor", r.name}, {"inputs", r.inputs}};
      for (int k = 0; k < 3; ++k) {
        e[std::string("r2_mean_") + kCircuitTargets[k]] = std::isfinite(r.r2_mean[k]) ? io::Json(r.r2_mean[k]) : io::Json();
        e[std::string("explained_") + kCircuitTargets[k]] =
            std::isfinite(r.explained[k]) ? io::Json(r.explained[k]) : io::Json();
      }
      t.push_back(e);
    }
    io::Json comp = io::Json::object();
    for (int c = 0; c < 3; ++c)
      comp[kCircuitComponentNames[c]] = {{"fvu", component_fvu[c]}, {"fvu_nonlinear", component_fvu_nonlinear[c]}};
    return {{"rows", rows},           {"train_rows", train_rows},     {"test_rows", test_rows},
            {"target_fvu", target_fvu}, {"target_fvu_nonlinear", target_fvu_nonlinear},
            {"sae_error_sq", sae_error_sq}, {"nonlinear_error_sq", nonlinear_error_sq},
            {"components", comp},     {"table", t},                   {"seconds", seconds}};
  }
};

namespace detail {

/// out[:, offset : offset + a.cols] = a (float), for concatenated regressors.
inline void copy_columns(const Matrix<float>& a, const Matrix<float>& out, std::size_t offset) {
  const auto src = a, dst = out;
  const int off = static_cast<int>(offset);
  for_each_entry(
      "synthsae::circuit_concat", a.extent(0), a.extent(1), KOKKOS_LAMBDA(int i, int k) { dst(i, off + k) = src(i, k); });
}

/// a - b, or a - (double) b, into a new float matrix.
template <class B>
Matrix<float> difference(const Matrix<float>& a, const B& b, const char* label) {
  Matrix<float> out(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), a.extent(0), a.extent(1));
  const auto aa = a;
  const auto bb = b;
  const auto o = out;
  for_each_entry(
      "synthsae::circuit_difference", a.extent(0), a.extent(1),
      KOKKOS_LAMBDA(int i, int k) { o(i, k) = static_cast<float>(aa(i, k) - bb(i, k)); });
  return out;
}

inline Matrix<float> to_float(const Matrix<double>& a) {
  Matrix<float> out(Kokkos::view_alloc(Kokkos::WithoutInitializing, "circuit_float"), a.extent(0), a.extent(1));
  const auto aa = a;
  const auto o = out;
  for_each_entry(
      "synthsae::circuit_to_float", a.extent(0), a.extent(1),
      KOKKOS_LAMBDA(int i, int k) { o(i, k) = static_cast<float>(aa(i, k)); });
  return out;
}

/// Over the rows `rows`: Σ‖error‖², Σ‖nonlinear error‖², and x's column sums for its total
/// variance (host; circuits are small).
struct SquareSums {
  double err = 0, nonlin = 0;
  std::vector<double> sum, sum_sq;
  std::uint64_t n = 0;
  void add(const Matrix<float>& x, const Matrix<float>& err_m, const Matrix<float>& nonlin_m,
           const std::vector<std::int32_t>& rows) {
    const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
    const auto he = Kokkos::create_mirror_view_and_copy(HostSpace(), err_m);
    const auto hn = Kokkos::create_mirror_view_and_copy(HostSpace(), nonlin_m);
    const std::size_t d = x.extent(1);
    if (sum.empty()) sum.assign(d, 0), sum_sq.assign(d, 0);
    for (auto i : rows) {
      for (std::size_t k = 0; k < d; ++k) {
        err += double(he(i, k)) * he(i, k), nonlin += double(hn(i, k)) * hn(i, k);
        sum[k] += hx(i, k), sum_sq[k] += double(hx(i, k)) * hx(i, k);
      }
      ++n;
    }
  }
  double total() const {
    double t = 0;
    for (std::size_t k = 0; k < sum.size(); ++k) t += sum_sq[k] - sum[k] * sum[k] / double(n);
    return t;
  }
};

}  // namespace detail

inline CircuitRegressionReport circuit_regression(CircuitWorld& world, const CircuitSaes& saes,
                                                  const CircuitRegressionOptions& opt = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  opt.validate();
  if (!saes.target) throw ConfigError("target SAE", "none", "give the target's SAE");
  for (int c = 0; c < 3; ++c)
    if (!saes.component[c]) throw ConfigError(std::string(kCircuitComponentNames[c]) + " SAE", "none", "give every component's SAE");
  const std::uint64_t n = world.rows();
  const std::uint64_t n_train = opt.train_rows ? opt.train_rows : n * 6 / 10;
  const RowSplit split(n, n_train, opt.split_seed);
  const std::size_t d = world.dim();
  std::array<std::size_t, 3> dc{};
  for (int c = 0; c < 3; ++c) dc[c] = world.component_dim(CircuitComponent(c));

  // The regressors, by name, with their widths: per component Sae, x, LinearError,
  // NonlinearError; then the concatenations and the target's own.
  const std::array<const char*, 4> kinds{"sae", "x", "linear_error", "nonlinear_error"};
  std::vector<std::string> names;
  std::vector<std::size_t> widths;
  for (int c = 0; c < 3; ++c)
    for (const char* k : kinds) names.push_back(std::string(k) + "_" + kCircuitComponentNames[c]), widths.push_back(dc[c]);
  const std::size_t all = dc[0] + dc[1] + dc[2];
  for (const char* k : {"sae_all", "x_all"}) names.push_back(k), widths.push_back(all);
  for (const char* k : {"sae_target", "x_target"}) names.push_back(k), widths.push_back(d);
  const std::size_t R = names.size();
  // Every regression (the widest has `all` inputs, LinearError's d) needs more train rows than
  // coefficients; with fewer, the pseudo-inverse fallback fits the train rows exactly and every
  // test score is noise.
  const std::size_t widest = circuit_regression_coefficients(world.config());
  if (split.train_rows() <= widest)
    throw ConfigError("train_rows", show(split.train_rows()),
                      "must exceed the widest regression's coefficients (" + show(widest) + "): give more rows");

  // One chunk's products.
  struct Products {
    CircuitChunk chunk;
    Matrix<float> err;                  // target SaeError
    std::array<Matrix<float>, 3> recon, err_c;
    Matrix<float> target_recon;
    std::vector<std::int32_t> train, test;
    RowIndex train_dev, test_dev;
  };
  auto draw = [&](std::uint64_t first, std::size_t count, Products& p) {
    world.read_circuit(first, count, p.chunk);
    p.target_recon = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "circuit_target_recon"), count, d);
    saes.target(p.chunk.target, p.target_recon);
    p.err = detail::difference(p.chunk.target.x, p.target_recon, "circuit_error");
    for (int c = 0; c < 3; ++c) {
      const auto& x = p.chunk.component[c].x;
      p.recon[c] = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "circuit_recon"), count, x.extent(1));
      saes.component[c](p.chunk.component[c], p.recon[c]);
      p.err_c[c] = detail::difference(x, p.recon[c], "circuit_component_error");
    }
    p.train.clear(), p.test.clear();
    for (std::size_t i = 0; i < count; ++i) (split.is_train(first + i) ? p.train : p.test).push_back(std::int32_t(i));
    p.train_dev = p.train.empty() ? RowIndex() : device_rows(p.train);
    p.test_dev = p.test.empty() ? RowIndex() : device_rows(p.test);
  };
  auto each_chunk = [&](const char* pass, const std::function<void(Products&)>& body) {
    Products p;
    for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
      const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
      draw(first, count, p);
      body(p);
      if (opt.progress) opt.progress(pass, first + count, n);
    }
  };

  // Pass A: LinearError probes of the target and of each component.
  LinearProbe lin_target(d, d, opt.probe);
  std::vector<LinearProbe> lin_comp;
  for (int c = 0; c < 3; ++c) lin_comp.emplace_back(dc[c], dc[c], opt.probe);
  each_chunk("linear errors", [&](Products& p) {
    if (p.train.empty()) return;
    lin_target.add(p.chunk.target.x, p.err, p.train_dev);
    for (int c = 0; c < 3; ++c) lin_comp[c].add(p.chunk.component[c].x, p.err_c[c], p.train_dev);
  });
  const ProbeFit fit_target = lin_target.solve();
  std::vector<ProbeFit> fit_comp;
  for (int c = 0; c < 3; ++c) fit_comp.push_back(lin_comp[c].solve());

  // Every row's regressors and targets, from a chunk's products.
  std::vector<Matrix<float>> x_r(R);
  Matrix<float> y, nonlin_target;
  std::array<Matrix<float>, 3> nonlin_comp;
  auto assemble = [&](Products& p) {
    const std::size_t count = p.chunk.rows();
    Matrix<double> pred("circuit_prediction", count, d);
    fit_target.predict(p.chunk.target.x, RowIndex(), pred);
    const Matrix<float> lin = detail::to_float(pred);
    nonlin_target = detail::difference(p.err, lin, "circuit_nonlinear");
    y = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "circuit_targets"), count, 3 * d);
    detail::copy_columns(p.err, y, 0), detail::copy_columns(lin, y, d), detail::copy_columns(nonlin_target, y, 2 * d);
    std::size_t r = 0;
    Matrix<float> sae_all("circuit_sae_all", count, all), x_all("circuit_x_all", count, all);
    std::size_t offset = 0;
    for (int c = 0; c < 3; ++c) {
      const auto& x = p.chunk.component[c].x;
      Matrix<double> pc("circuit_component_prediction", count, dc[c]);
      fit_comp[c].predict(x, RowIndex(), pc);
      const Matrix<float> lin_c = detail::to_float(pc);
      nonlin_comp[c] = detail::difference(p.err_c[c], lin_c, "circuit_component_nonlinear");
      x_r[r++] = p.recon[c], x_r[r++] = x, x_r[r++] = lin_c, x_r[r++] = nonlin_comp[c];
      detail::copy_columns(p.recon[c], sae_all, offset), detail::copy_columns(x, x_all, offset);
      offset += dc[c];
    }
    x_r[r++] = sae_all, x_r[r++] = x_all, x_r[r++] = p.target_recon, x_r[r++] = p.chunk.target.x;
  };

  // Pass B: every regressor's normal equations on the train rows.
  std::vector<LinearProbe> probes;
  for (std::size_t r = 0; r < R; ++r) probes.emplace_back(widths[r], 3 * d, opt.probe);
  each_chunk("regressions", [&](Products& p) {
    if (p.train.empty()) return;
    assemble(p);
    for (std::size_t r = 0; r < R; ++r) probes[r].add(x_r[r], y, p.train_dev);
  });
  std::vector<ProbeFit> fits;
  for (auto& pr : probes) fits.push_back(pr.solve());

  // Pass C: test scores, and the FVUs of the target and the components.
  std::vector<ProbeScore> scores(R);
  detail::SquareSums target_sums;
  std::array<detail::SquareSums, 3> comp_sums;
  each_chunk("scores", [&](Products& p) {
    if (p.test.empty()) return;
    assemble(p);
    for (std::size_t r = 0; r < R; ++r) fits[r].score(x_r[r], y, p.test_dev, scores[r]);
    target_sums.add(p.chunk.target.x, p.err, nonlin_target, p.test);
    for (int c = 0; c < 3; ++c) comp_sums[c].add(p.chunk.component[c].x, p.err_c[c], nonlin_comp[c], p.test);
  });

  CircuitRegressionReport rep;
  rep.rows = n, rep.train_rows = split.train_rows(), rep.test_rows = split.test_rows();
  const double sst = target_sums.total();
  rep.target_fvu = target_sums.err / sst, rep.target_fvu_nonlinear = target_sums.nonlin / sst;
  rep.sae_error_sq = target_sums.err / double(target_sums.n);
  rep.nonlinear_error_sq = target_sums.nonlin / double(target_sums.n);
  for (int c = 0; c < 3; ++c) {
    const double s = comp_sums[c].total();
    rep.component_fvu[c] = comp_sums[c].err / s, rep.component_fvu_nonlinear[c] = comp_sums[c].nonlin / s;
  }
  for (std::size_t r = 0; r < R; ++r) {
    CircuitRegressor row;
    row.name = names[r], row.inputs = widths[r];
    for (int k = 0; k < 3; ++k) {
      row.r2_mean[k] = scores[r].r2_mean(std::size_t(k) * d, d);
      row.explained[k] = 1.0 - scores[r].fvu(std::size_t(k) * d, d);
    }
    rep.table.push_back(row);
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace synthsae::analysis
