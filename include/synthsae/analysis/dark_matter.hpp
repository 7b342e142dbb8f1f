#pragma once
// analyse_dark_matter: the error decomposition of "Decomposing the Dark Matter of Sparse
// Autoencoders" for a family of SAEs on one source (reference dark-matter.md §1.3, §2.1–2.4,
// §2.7). For every SAE: SaeError = x - Sae(x), its linear prediction from x (LinearError), the
// remainder (NonlinearError), FVU and FVU_nonlinear, the norm-prediction battery with its
// baselines, the ground-truth split into Absent and Introduced; across the family the
// cross-width norm prediction and the Fig. 1 breakdown.
//
// Three passes over the source, each in chunks (the rows are never all in memory, except the
// per-token scalars and, within `cache_bytes`, the reconstructions):
//   A  train rows: normal equations of [SaeError_s, Absent_s, norms] on x;
//   B  every row: LinearError = the fit's prediction; test scores of pass A's targets; the
//      second-stage targets (‖LinearError‖², ‖NonlinearError‖², ‖x - x̄‖²) on train rows;
//   C  test rows: scores of the second stage.
// Regressions on scalar baselines and across widths run on the stored per-token scalars.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/analysis/dark_matter_report.hpp"
#include "synthsae/analysis/ground_truth_split.hpp"
#include "synthsae/analysis/linear_probe.hpp"
#include "synthsae/analysis/oracle_sae.hpp"
#include "synthsae/analysis/power_law_fit.hpp"
#include "synthsae/analysis/pursuit.hpp"
#include "synthsae/analysis/row_split.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::analysis {

/// One SAE of the family: run on x, or a reconstruction the source provides, or an SAE's decoder
/// with its codes found by pursuit (reference §2.10: inference-time optimisation), or an oracle
/// that reconstructs chosen true features from the ground truth (§2.6, oracle_sae.hpp).
struct AnalysedSae {
  std::string label;
  std::optional<InferenceSae> sae;
  std::optional<std::size_t> provided;  ///< index into ActivationChunk::provided
  std::size_t width = 0;                ///< latents; taken from `sae` when it is set
  /// Set: the reconstruction is pursuit's on the SAE's frozen decoder, x_hat = w W_dec + b_dec,
  /// with as many iterations per row as the SAE's own encoder fires latents on it (the paper's
  /// budget). Such entries stay out of the across-width analyses (their width repeats the SAE's).
  std::optional<PursuitOptions> pursuit;
  /// Set: the reconstruction is the oracle's; its learned set is the captured set of the split.
  std::shared_ptr<const OracleSae> oracle;

  static AnalysedSae of(std::string label, InferenceSae sae) {
    AnalysedSae a;
    a.label = std::move(label);
    a.width = sae.num_latents();
    a.sae = std::move(sae);
    return a;
  }
  static AnalysedSae pursued(std::string label, InferenceSae sae, PursuitOptions pursuit = {}) {
    AnalysedSae a = of(std::move(label), std::move(sae));
    a.pursuit = pursuit;
    return a;
  }
  static AnalysedSae of_oracle(std::shared_ptr<const OracleSae> oracle) {
    AnalysedSae a;
    a.label = oracle->label(), a.width = oracle->width(), a.oracle = std::move(oracle);
    return a;
  }
  static AnalysedSae from_source(std::string label, std::size_t index, std::size_t width = 0) {
    AnalysedSae a;
    a.label = std::move(label), a.provided = index, a.width = width;
    return a;
  }
};

struct DarkMatterOptions {
  std::uint64_t train_rows = 0;  ///< 0: min(150,000, 60% of the rows), the paper's 150k
  std::uint64_t split_seed = 0;
  std::size_t chunk_rows = 4096;
  ProbeOptions probe;
  double match_threshold = 0.9;  ///< |cos| at which an assigned latent captures its feature
  bool oracle_baseline = true;   ///< regress the norms on the true coefficients c (synthetic)
  std::size_t oracle_max_features = 8192;
  std::size_t series_tokens = 100;
  std::size_t cache_bytes = std::size_t(4) << 30;  ///< reconstructions kept between passes A and B
  /// Called as (phase, rows done, rows in the phase).
  std::function<void(const std::string&, std::uint64_t, std::uint64_t)> progress;

  void validate() const {
    probe.validate();
    if (chunk_rows == 0) throw ConfigError("chunk_rows", "0", "must be at least 1");
    if (!(match_threshold >= 0 && match_threshold <= 1))
      throw ConfigError("match_threshold", show(match_threshold), "must be in [0, 1]");
  }
};

namespace detail {

/// A scalar per token, for every row of the source.
using TokenColumn = std::vector<float>;


/// Per-row ‖m‖² of a [n, d] float matrix (or a column block of one), in double, to the host.
template <class View>
std::vector<double> row_sq_norms(const View& m) {
  Vector<double> out("row_sq_norms", m.extent(0));
  const auto mm = m;
  for_each_row_sum<double>(
      "synthsae::dm_row_norms", m.extent(0), m.extent(1),
      KOKKOS_LAMBDA(int i, int k) { return double(mm(i, k)) * mm(i, k); }, KOKKOS_LAMBDA(int i, double s) { out(i) = s; });
  const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), out);
  return std::vector<double>(h.data(), h.data() + h.extent(0));
}

/// Per-row count of nonzero entries.
inline std::vector<double> row_nonzeros(const Matrix<float>& z) {
  Vector<double> out("row_nonzeros", z.extent(0));
  const auto zz = z;
  for_each_row_sum<double>(
      "synthsae::dm_row_l0", z.extent(0), z.extent(1), KOKKOS_LAMBDA(int i, int k) { return zz(i, k) != 0 ? 1.0 : 0.0; },
      KOKKOS_LAMBDA(int i, double s) { out(i) = s; });
  const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), out);
  return std::vector<double>(h.data(), h.data() + h.extent(0));
}

/// Fits targets [n, T] on regressors [n, p] (host, float per token) with the split, and returns
/// each target's test R².
inline std::vector<double> fit_columns(const std::vector<const TokenColumn*>& regressors,
                                       const std::vector<const TokenColumn*>& targets, const RowSplit& split,
                                       const ProbeOptions& opt) {
  const std::size_t n = split.rows(), p = regressors.size(), t = targets.size();
  std::vector<std::int32_t> train, test;
  LinearProbe probe(p, t, opt);
  constexpr std::size_t chunk = 65536;
  std::vector<std::pair<Matrix<float>, Matrix<float>>> chunks;
  std::vector<RowIndex> test_idx;
  for (std::size_t first = 0; first < n; first += chunk) {
    const std::size_t rows = std::min(chunk, n - first);
    Matrix<float> x("fit_x", rows, p), y("fit_y", rows, t);
    auto hx = Kokkos::create_mirror_view(x);
    auto hy = Kokkos::create_mirror_view(y);
    train.clear(), test.clear();
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t k = 0; k < p; ++k) hx(i, k) = (*regressors[k])[first + i];
      for (std::size_t k = 0; k < t; ++k) hy(i, k) = (*targets[k])[first + i];
      (split.is_train(first + i) ? train : test).push_back(static_cast<std::int32_t>(i));
    }
    Kokkos::deep_copy(x, hx), Kokkos::deep_copy(y, hy);
    if (!train.empty()) probe.add(x, y, device_rows(train));
    chunks.emplace_back(x, y);
    test_idx.push_back(test.empty() ? RowIndex() : device_rows(test));
  }
  const auto fit = probe.solve();
  ProbeScore score;
  for (std::size_t c = 0; c < chunks.size(); ++c)
    if (test_idx[c].extent(0)) fit.score(chunks[c].first, chunks[c].second, test_idx[c], score);
  std::vector<double> r2(t);
  for (std::size_t k = 0; k < t; ++k) r2[k] = score.r2(k);
  return r2;
}

/// Least squares of targets on the sparse true coefficients (the oracle regressor c, plus an
/// intercept): the normal equations accumulated from each sample's firing features only.
class SparseOracleProbe {
 public:
  SparseOracleProbe(std::size_t features, std::size_t targets)
      : n_(features), t_(targets), a_(Eigen::MatrixXd::Zero(features + 1, features + 1)),
        b_(Eigen::MatrixXd::Zero(features + 1, targets)) {}
  void add(const std::vector<std::int32_t>& ids, const std::vector<float>& values, const std::vector<double>& y) {
    for (std::size_t u = 0; u < ids.size(); ++u) {
      const auto i = static_cast<std::size_t>(ids[u]);
      for (std::size_t v = 0; v < ids.size(); ++v) a_(i, ids[v]) += double(values[u]) * values[v];
      a_(i, n_) += values[u], a_(n_, i) += values[u];
      for (std::size_t k = 0; k < t_; ++k) b_(i, k) += values[u] * y[k];
    }
    a_(n_, n_) += 1;
    for (std::size_t k = 0; k < t_; ++k) b_(n_, k) += y[k];
    ++rows_;
  }
  void solve(double ridge) { coef_ = solve_normal_equations(a_, b_, n_, true, rows_, ridge).coef; }
  double predict(const std::vector<std::int32_t>& ids, const std::vector<float>& values, std::size_t k) const {
    double s = coef_(n_, k);
    for (std::size_t u = 0; u < ids.size(); ++u) s += values[u] * coef_(ids[u], k);
    return s;
  }

 private:
  std::size_t n_, t_;
  std::uint64_t rows_ = 0;
  Eigen::MatrixXd a_, b_, coef_;
};

/// Pursuit on an SAE's frozen decoder: budgets = the latents its encoder fired per row (z), then
/// z <- pursuit's codes on x - b_dec and x_hat = z W_dec + b_dec.
inline void pursue_on_decoder(const InferenceSae& sae, const PursuitDictionary<float>& dict, const PursuitOptions& opt,
                              const Matrix<float>& x, const Matrix<float>& z, const Matrix<float>& x_hat) {
  const std::size_t rows = x.extent(0), d = x.extent(1), m = z.extent(1);
  Kokkos::View<int*, MemSpace> budget("pursuit_budget", rows);
  Matrix<float> signals(Kokkos::view_alloc(Kokkos::WithoutInitializing, "pursuit_signals"), rows, d);
  const auto zz = z, xx = x, sig = signals;
  const auto b_dec = sae.params.b_dec;
  const int mi = static_cast<int>(m);
  Kokkos::parallel_for(
      "synthsae::pursuit_budgets", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
        int fired = 0;
        for (int j = 0; j < mi; ++j) fired += zz(i, j) != 0.0f;
        budget(i) = fired;
      });
  for_each_entry(
      "synthsae::pursuit_signals", rows, d, KOKKOS_LAMBDA(int i, int k) { sig(i, k) = xx(i, k) - b_dec(k); });
  pursue(signals, dict, budget, z, opt);
  gemm(Op::N, Op::N, 1.0f, z, dict.atoms, 0.0f, x_hat);
  kernels::add_to_rows(x_hat, b_dec);
}

/// Streaming sums over test rows.
struct Sums {
  double sq_err = 0, sq_lin = 0, sq_nonlin = 0, cos_lin_x = 0, norm_ratio = 0, l0 = 0, identity = 0;
  double sq_absent = 0, sq_intro = 0, absent_dot_intro = 0;
  double sq_dense = 0, absent_dot_dense = 0, dense_dot_intro = 0, sq_p_dense = 0, sq_r_dense = 0;
  double sq_p_absent = 0, sq_p_intro = 0, p_absent_dot_p_intro = 0;
  double sq_r_absent = 0, sq_r_intro = 0, r_absent_dot_r_intro = 0;
  ProbeScore introduced;  ///< Introduced regressed on x (through linearity of the fit)
};

inline double coefficient_of_variation(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return m != 0 ? std::sqrt(s / double(v.size())) / m : NAN;
}

}  // namespace detail

inline DarkMatterReport analyse_dark_matter(ActivationSource& source, std::vector<AnalysedSae>& saes,
                                            const DarkMatterOptions& opt = {}) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto mark = t0;
  std::map<std::string, double> phases;
  auto phase_done = [&](const char* name) {
    const auto now = Clock::now();
    phases[name] += std::chrono::duration<double>(now - mark).count();
    mark = now;
  };
  opt.validate();
  if (saes.empty()) throw ConfigError("saes", "0", "need at least one SAE");
  const std::size_t d = source.dim(), S = saes.size();
  const std::uint64_t n = source.rows();
  for (auto& s : saes) {
    if (s.sae && s.sae->input_dim() != d)
      throw ShapeError(s.label + ": the SAE reads " + show(s.sae->input_dim()) + " dimensions, the activations have " + show(d));
    if (s.provided && *s.provided >= source.provided_reconstructions())
      throw ConfigError("provided reconstruction", show(*s.provided), "the source has " + show(source.provided_reconstructions()));
    if (!s.sae && !s.provided && !s.oracle)
      throw ConfigError(s.label, "no SAE", "give an SAE, an oracle or a provided reconstruction");
    if (s.oracle && !source.true_features())
      throw ConfigError(s.label, "oracle", "needs a source with ground truth (a synthetic world)");
    if (s.sae) s.width = s.sae->num_latents();
    if (s.pursuit && (!s.sae || s.sae->normalization.acts()))
      throw ConfigError(s.label, "pursuit", "needs an SAE whose decoder reads the input's own space (no per-row "
                                            "normalize_activations)");
  }
  // Pursuit's dictionaries: the frozen decoders and their Gram matrices, built once.
  std::vector<std::optional<PursuitDictionary<float>>> pursuit_dict(S);
  for (std::size_t s = 0; s < S; ++s)
    if (saes[s].pursuit) pursuit_dict[s].emplace(saes[s].sae->params.w_dec);
  const std::uint64_t n_train = opt.train_rows ? opt.train_rows : std::min<std::uint64_t>(150'000, n * 6 / 10);
  const RowSplit split(n, n_train, opt.split_seed);
  const Matrix<float>* features = source.true_features();
  const bool truth = features != nullptr;
  const std::size_t nf = truth ? features->extent(0) : 0;
  const bool oracle = truth && opt.oracle_baseline && nf <= opt.oracle_max_features;

  // Captured features per SAE (ground truth).
  std::vector<CapturedFeatures> captured(S);
  std::vector<Vector<std::uint8_t>> captured_dev(S);
  if (truth)
    for (std::size_t s = 0; s < S; ++s) {
      if (saes[s].oracle) {  // the learned set itself, not a matching
        const auto& o = *saes[s].oracle;
        captured[s] = CapturedFeatures{o.mask(), o.width(), opt.match_threshold, o.mean_abs_cos()};
      } else if (saes[s].sae) {
        captured[s] = captured_features(saes[s].sae->decoder_weights(), *features, opt.match_threshold);
      } else {
        continue;
      }
      captured_dev[s] = Vector<std::uint8_t>("captured", nf);
      auto h = Kokkos::create_mirror_view(captured_dev[s]);
      for (std::size_t i = 0; i < nf; ++i) h(i) = captured[s].captured[i];
      Kokkos::deep_copy(captured_dev[s], h);
    }
  auto has_truth = [&](std::size_t s) { return truth && (saes[s].sae.has_value() || saes[s].oracle); };

  // Column layout of pass A's targets: [err_s (d) ... | absent_s (d) ... | scalars].
  std::vector<std::size_t> absent_col(S, 0);
  std::size_t qa = S * d;
  for (std::size_t s = 0; s < S; ++s)
    if (has_truth(s)) absent_col[s] = qa, qa += d;
  // The world's dense part (one block for all SAEs), when the chunks carry it.
  const bool dense = truth && source.has_dense();
  const std::size_t dense_col = qa;
  if (dense) qa += d;
  const std::size_t scalar_a = qa;  // x_sq, x, then per SAE: sae_sq, sae, error_sq, error
  qa += 2 + 4 * S;
  const std::size_t qb = 1 + 4 * S;  // x_centered_sq, then per SAE: linear_sq, linear, nonlinear_sq, nonlinear

  std::map<std::string, detail::TokenColumn> tok;
  auto column = [&](const std::string& name) -> detail::TokenColumn& {
    auto& c = tok[name];
    if (c.empty()) c.assign(n, 0.0f);
    return c;
  };
  auto sname = [](const std::string& what, std::size_t s) { return what + "#" + std::to_string(s); };
  std::vector<std::string> names_a{"x_sq", "x"};
  for (std::size_t s = 0; s < S; ++s)
    for (const char* w : {"sae_sq", "sae", "error_sq", "error"}) names_a.push_back(sname(w, s));
  std::vector<std::string> names_b{"x_centered_sq"};
  for (std::size_t s = 0; s < S; ++s)
    for (const char* w : {"linear_error_sq", "linear_error", "nonlinear_error_sq", "nonlinear_error"})
      names_b.push_back(sname(w, s));

  // Reconstructions of a chunk (cached between passes A and B within the budget).
  const std::size_t bytes_per_chunk_row = S * d * 4;
  const bool cache = n * bytes_per_chunk_row <= opt.cache_bytes;
  std::map<std::uint64_t, std::vector<Matrix<float>>> recon_cache;
  std::vector<Matrix<float>> z_buf(S);
  auto reconstruct = [&](const ActivationChunk& c, bool want_l0, std::vector<std::vector<double>>* l0) {
    if (cache)
      if (auto it = recon_cache.find(c.first); it != recon_cache.end() && !want_l0) return it->second;
    std::vector<Matrix<float>> out(S);
    const std::size_t rows = c.rows();
    for (std::size_t s = 0; s < S; ++s) {
      if (saes[s].provided) {
        out[s] = c.provided[*saes[s].provided];
        continue;
      }
      if (saes[s].oracle) {
        out[s] = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "dm_xhat"), rows, d);
        saes[s].oracle->reconstruct(c, out[s], want_l0 && l0 ? &(*l0)[s] : nullptr);
        continue;
      }
      auto& sae = *saes[s].sae;
      if (z_buf[s].extent(0) != rows) z_buf[s] = Matrix<float>("dm_z", rows, sae.num_latents());
      out[s] = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "dm_xhat"), rows, d);
      sae.encode(c.x, z_buf[s]);
      if (saes[s].pursuit) {
        detail::pursue_on_decoder(sae, *pursuit_dict[s], *saes[s].pursuit, c.x, z_buf[s], out[s]);
      } else {
        sae.decode(z_buf[s], out[s]);
      }
      if (want_l0 && l0) (*l0)[s] = detail::row_nonzeros(z_buf[s]);
    }
    if (cache) recon_cache[c.first] = out;
    return out;
  };
  auto report_progress = [&](const std::string& phase, std::uint64_t done) {
    if (opt.progress) opt.progress(phase, done, n);
  };
  auto split_rows = [&](const ActivationChunk& c, std::vector<std::int32_t>& train, std::vector<std::int32_t>& test) {
    train.clear(), test.clear();
    for (std::size_t i = 0; i < c.rows(); ++i)
      (split.is_train(c.first + i) ? train : test).push_back(static_cast<std::int32_t>(i));
  };

  // ---- Pass A ------------------------------------------------------------------------------
  LinearProbe probe_a(d, qa, opt.probe);
  std::optional<detail::SparseOracleProbe> oracle_probe;
  std::vector<std::vector<std::int32_t>> oracle_ids;
  std::vector<std::vector<float>> oracle_values;
  if (oracle) oracle_ids.resize(n), oracle_values.resize(n);
  ActivationChunk chunk;
  std::vector<std::int32_t> train, test;
  Matrix<float> ya, absent;
  for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
    const std::size_t rows = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
    source.read(first, rows, chunk);
    std::vector<std::vector<double>> l0(S);
    const auto xhat = reconstruct(chunk, true, &l0);
    if (ya.extent(0) != rows) ya = Matrix<float>("dm_targets_a", rows, qa), absent = Matrix<float>("dm_absent", rows, d);
    const auto x = chunk.x;
    const auto y = ya;
    const auto xs = detail::row_sq_norms(x);
    if (dense) {
      const auto dn = chunk.dense;
      const int doff = static_cast<int>(dense_col);
      for_each_entry(
          "synthsae::dm_dense", rows, d, KOKKOS_LAMBDA(int i, int k) { y(i, doff + k) = dn(i, k); });
    }
    for (std::size_t s = 0; s < S; ++s) {
      const auto xh = xhat[s];
      const int off = static_cast<int>(s * d);
      for_each_entry(
          "synthsae::dm_error", rows, d, KOKKOS_LAMBDA(int i, int k) { y(i, off + k) = x(i, k) - xh(i, k); });
      if (has_truth(s)) {
        absent_part(*chunk.truth, *features, captured_dev[s], absent);
        const auto ab = absent;
        const int aoff = static_cast<int>(absent_col[s]);
        for_each_entry(
            "synthsae::dm_absent", rows, d, KOKKOS_LAMBDA(int i, int k) { y(i, aoff + k) = ab(i, k); });
      }
    }
    // Scalars on the host, then into their columns.
    std::vector<std::vector<double>> scal(2 + 4 * S);
    scal[0] = xs;
    for (std::size_t i = 0; i < rows; ++i) scal[1].push_back(std::sqrt(xs[i]));
    for (std::size_t s = 0; s < S; ++s) {
      scal[2 + 4 * s] = detail::row_sq_norms(xhat[s]);
      auto err = Kokkos::subview(ya, Kokkos::ALL, std::make_pair(s * d, (s + 1) * d));
      scal[4 + 4 * s] = detail::row_sq_norms(err);
      for (std::size_t i = 0; i < rows; ++i) {
        scal[3 + 4 * s].push_back(std::sqrt(scal[2 + 4 * s][i]));
        scal[5 + 4 * s].push_back(std::sqrt(scal[4 + 4 * s][i]));
      }
    }
    {
      auto hy = Kokkos::create_mirror_view_and_copy(HostSpace(), ya);
      for (std::size_t k = 0; k < scal.size(); ++k) {
        auto& col = column(names_a[k]);
        for (std::size_t i = 0; i < rows; ++i) hy(i, scalar_a + k) = static_cast<float>(scal[k][i]), col[first + i] = hy(i, scalar_a + k);
      }
      Kokkos::deep_copy(ya, hy);
    }
    for (std::size_t s = 0; s < S; ++s)
      if (!l0[s].empty()) {
        auto& col = column(sname("sae_l0", s));
        for (std::size_t i = 0; i < rows; ++i) col[first + i] = static_cast<float>(l0[s][i]);
      }
    if (truth) {
      const auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), chunk.truth->counts);
      auto& col = column("true_l0");
      for (std::size_t i = 0; i < rows; ++i) col[first + i] = static_cast<float>(counts(i));
      if (oracle) {
        const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), chunk.truth->ids);
        const auto vals = Kokkos::create_mirror_view_and_copy(HostSpace(), chunk.truth->values);
        for (std::size_t i = 0; i < rows; ++i)
          for (int k = 0; k < counts(i); ++k)
            oracle_ids[first + i].push_back(ids(i, k)), oracle_values[first + i].push_back(vals(i, k));
      }
    }
    split_rows(chunk, train, test);
    if (!train.empty()) probe_a.add(x, ya, device_rows(train));
    report_progress("fit", first + rows);
  }
  const ProbeFit fit_a = probe_a.solve();
  phase_done("fit");
  const Eigen::VectorXd x_mean = probe_a.mean_x();
  Vector<double> x_mean_dev("dm_x_mean", d);
  {
    auto h = Kokkos::create_mirror_view(x_mean_dev);
    for (std::size_t k = 0; k < d; ++k) h(k) = x_mean(k);
    Kokkos::deep_copy(x_mean_dev, h);
  }

  // ---- Pass B ------------------------------------------------------------------------------
  LinearProbe probe_b(d, qb, opt.probe);
  ProbeScore score_a, score_x;
  std::vector<detail::Sums> sums(S);
  Matrix<double> pred;
  Matrix<float> yb;
  for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
    const std::size_t rows = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
    source.read(first, rows, chunk);
    const auto xhat = reconstruct(chunk, false, nullptr);
    if (pred.extent(0) != rows) pred = Matrix<double>("dm_pred", rows, qa), yb = Matrix<float>("dm_targets_b", rows, qb);
    fit_a.predict(chunk.x, RowIndex(), pred);
    split_rows(chunk, train, test);
    const auto x = chunk.x;
    const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
    const auto hp = Kokkos::create_mirror_view_and_copy(HostSpace(), pred);
    const auto hm = Kokkos::create_mirror_view_and_copy(HostSpace(), x_mean_dev);
    auto hyb = Kokkos::create_mirror_view(yb);
    for (std::size_t i = 0; i < rows; ++i) {
      double c = 0;
      for (std::size_t k = 0; k < d; ++k) c += (hx(i, k) - hm(k)) * (hx(i, k) - hm(k));
      hyb(i, 0) = static_cast<float>(c);
      column("x_centered_sq")[first + i] = hyb(i, 0);
    }
    std::vector<char> is_test(rows, 0);
    for (auto i : test) is_test[static_cast<std::size_t>(i)] = 1;
    std::vector<typename Matrix<float>::HostMirror> habs(S), hxh_all(S);
    typename Matrix<float>::HostMirror hdense;
    if (dense) hdense = Kokkos::create_mirror_view_and_copy(HostSpace(), chunk.dense);
    for (std::size_t s = 0; s < S; ++s) hxh_all[s] = Kokkos::create_mirror_view_and_copy(HostSpace(), xhat[s]);
    for (std::size_t s = 0; s < S; ++s) {
      const auto& hxh = hxh_all[s];
      if (has_truth(s)) {
        Matrix<float> ab("dm_absent", rows, d);  // one per SAE: host mirrors may alias device memory
        absent_part(*chunk.truth, *features, captured_dev[s], ab);
        habs[s] = Kokkos::create_mirror_view_and_copy(HostSpace(), ab);
      }
      auto& sm = sums[s];
      Matrix<double> intro, intro_hat;
      typename Matrix<double>::HostMirror hi, hih;
      if (has_truth(s) && !test.empty()) {
        intro = Matrix<double>("dm_intro", test.size(), d), intro_hat = Matrix<double>("dm_intro_hat", test.size(), d);
        hi = Kokkos::create_mirror_view(intro), hih = Kokkos::create_mirror_view(intro_hat);
      }
      std::size_t t_row = 0;
      for (std::size_t i = 0; i < rows; ++i) {
        double lin_sq = 0, non_sq = 0, lin_dot_x = 0, err_sq = 0, xh_sq = 0, x_sq = 0, ident = 0;
        double a_sq = 0, i_sq = 0, ai = 0, pa_sq = 0, pi_sq = 0, papi = 0, ra_sq = 0, ri_sq = 0, rari = 0;
        double dn_sq = 0, adn = 0, dni = 0, pd_sq = 0, rd_sq = 0;
        for (std::size_t k = 0; k < d; ++k) {
          const float e = hx(i, k) - hxh(i, k);  // the float error of pass A's targets
          const double lin = hp(i, s * d + k), non = double(e) - lin;
          lin_sq += lin * lin, non_sq += non * non, err_sq += double(e) * e;
          lin_dot_x += lin * hx(i, k), xh_sq += double(hxh(i, k)) * hxh(i, k), x_sq += double(hx(i, k)) * hx(i, k);
          ident = std::max(ident, std::fabs(double(hx(i, k)) - (double(hxh(i, k)) + lin + non)));
          if (has_truth(s) && is_test[i]) {
            // Introduced = Absent + Dense - SaeError, and so is its prediction (OLS is linear).
            const double dv = dense ? double(hdense(i, k)) : 0.0, pd = dense ? hp(i, dense_col + k) : 0.0;
            const double a = habs[s](i, k), in = a + dv - e;
            const double pa = hp(i, absent_col[s] + k), pi = pa + pd - lin;
            dn_sq += dv * dv, adn += a * dv, dni += dv * in, pd_sq += pd * pd, rd_sq += (dv - pd) * (dv - pd);
            a_sq += a * a, i_sq += in * in, ai += a * in;
            pa_sq += pa * pa, pi_sq += pi * pi, papi += pa * pi;
            ra_sq += (a - pa) * (a - pa), ri_sq += (in - pi) * (in - pi), rari += (a - pa) * (in - pi);
            hi(t_row, k) = in, hih(t_row, k) = pi;
          }
        }
        auto set = [&](std::size_t k, double v) {
          hyb(i, 1 + 4 * s + k) = static_cast<float>(v);
          column(names_b[1 + 4 * s + k])[first + i] = static_cast<float>(v);
        };
        set(0, lin_sq), set(1, std::sqrt(lin_sq)), set(2, non_sq), set(3, std::sqrt(non_sq));
        if (is_test[i]) {
          sm.sq_err += err_sq, sm.sq_lin += lin_sq, sm.sq_nonlin += non_sq;
          sm.cos_lin_x += (lin_sq > 0 && x_sq > 0) ? lin_dot_x / std::sqrt(lin_sq * x_sq) : 0.0;
          sm.norm_ratio += x_sq > 0 ? std::sqrt(xh_sq / x_sq) : 0.0;
          sm.identity = std::max(sm.identity, ident);
          sm.sq_absent += a_sq, sm.sq_intro += i_sq, sm.absent_dot_intro += ai;
          sm.sq_p_absent += pa_sq, sm.sq_p_intro += pi_sq, sm.p_absent_dot_p_intro += papi;
          sm.sq_r_absent += ra_sq, sm.sq_r_intro += ri_sq, sm.r_absent_dot_r_intro += rari;
          sm.sq_dense += dn_sq, sm.absent_dot_dense += adn, sm.dense_dot_intro += dni;
          sm.sq_p_dense += pd_sq, sm.sq_r_dense += rd_sq;
          if (has_truth(s)) ++t_row;
        }
      }
      if (has_truth(s) && !test.empty()) {
        Kokkos::deep_copy(intro, hi), Kokkos::deep_copy(intro_hat, hih);
        ProbeFit::accumulate_scores(intro, intro_hat, Eigen::VectorXd::Zero(d), sm.introduced);
      }
    }
    Kokkos::deep_copy(yb, hyb);
    if (!train.empty()) probe_b.add(x, yb, device_rows(train));
    if (!test.empty()) {
      const auto idx = device_rows(test);
      // Pass A's targets against the predictions already made, on the test rows.
      Matrix<double> yt("dm_test_targets", test.size(), qa), pt("dm_test_pred", test.size(), qa);
      {  // pass A's targets of these rows, rebuilt (their chunk buffer is gone)
        auto hyt = Kokkos::create_mirror_view(yt);
        auto hpt = Kokkos::create_mirror_view(pt);
        for (std::size_t r = 0; r < test.size(); ++r) {
          const std::size_t i = static_cast<std::size_t>(test[r]);
          for (std::size_t s = 0; s < S; ++s) {
            for (std::size_t k = 0; k < d; ++k) {
              hyt(r, s * d + k) = float(hx(i, k) - hxh_all[s](i, k));
              if (has_truth(s)) hyt(r, absent_col[s] + k) = habs[s](i, k);
            }
          }
          if (dense)
            for (std::size_t k = 0; k < d; ++k) hyt(r, dense_col + k) = hdense(i, k);
          for (std::size_t k = 0; k < names_a.size(); ++k) hyt(r, scalar_a + k) = tok[names_a[k]][first + i];
          for (std::size_t k = 0; k < qa; ++k) hpt(r, k) = hp(i, k);
        }
        Kokkos::deep_copy(yt, hyt), Kokkos::deep_copy(pt, hpt);
      }
      fit_a.add_scores(yt, pt, score_a);
      // SST of x about the test mean (the FVU denominator).
      Matrix<double> xt("dm_test_x", test.size(), d);
      synthsae::analysis::detail::gather_shifted(x, idx, Vector<double>("zero_x", d), false, xt);
      ProbeFit::accumulate_scores(xt, xt, x_mean, score_x);
    }
    report_progress("decompose", first + rows);
  }
  const ProbeFit fit_b = probe_b.solve();
  phase_done("decompose");

  // ---- Pass C ------------------------------------------------------------------------------
  ProbeScore score_b;
  for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
    const std::size_t rows = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
    ActivationChunk c;
    source.read(first, rows, c);
    split_rows(c, train, test);
    if (test.empty()) continue;
    Matrix<float> y("dm_targets_b", rows, qb);
    auto hy = Kokkos::create_mirror_view(y);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t k = 0; k < qb; ++k) hy(i, k) = tok[names_b[k]][first + i];
    Kokkos::deep_copy(y, hy);
    fit_b.score(c.x, y, device_rows(test), score_b);
    report_progress("second stage", first + rows);
  }
  recon_cache.clear();
  phase_done("second_stage");

  // ---- Report ------------------------------------------------------------------------------
  DarkMatterReport rep;
  rep.source = source.describe();
  rep.rows = n, rep.train_rows = split.train_rows(), rep.test_rows = split.test_rows(), rep.split_seed = split.seed();
  rep.dim = d;
  rep.condition_number = fit_a.condition_number(), rep.condition_exact = fit_a.condition_exact();
  rep.solve_method = solve_method_name(fit_a.method());
  rep.ridge = opt.probe.ridge, rep.intercept = opt.probe.intercept;
  double sst_x = 0;  // Σ‖x - x̄_test‖², the FVU denominator
  for (double v : score_x.sst) sst_x += v;
  const double n_test = double(split.test_rows());

  // Baseline regressors on stored per-token scalars.
  std::vector<std::string> all_targets = names_a;
  all_targets.insert(all_targets.end(), names_b.begin(), names_b.end());
  std::map<std::string, double> r2_x;
  for (std::size_t k = 0; k < names_a.size(); ++k) r2_x[names_a[k]] = score_a.r2(scalar_a + k);
  for (std::size_t k = 0; k < names_b.size(); ++k) r2_x[names_b[k]] = score_b.r2(k);
  std::map<std::string, std::map<std::string, double>> baseline;  // regressor -> target -> R²
  auto run_baseline = [&](const std::string& reg_name, const detail::TokenColumn& reg,
                          const std::vector<std::string>& targets) {
    std::vector<const detail::TokenColumn*> ts;
    for (const auto& t : targets) ts.push_back(&tok.at(t));
    const auto r2 = detail::fit_columns({&reg}, ts, split, opt.probe);
    for (std::size_t k = 0; k < targets.size(); ++k) baseline[reg_name][targets[k]] = r2[k];
  };
  run_baseline("norm_x", tok.at("x"), all_targets);
  if (truth) run_baseline("true_l0", tok.at("true_l0"), all_targets);
  for (std::size_t s = 0; s < S; ++s)
    if (tok.count(sname("sae_l0", s))) {
      std::vector<std::string> mine;
      for (const auto& t : all_targets)
        if (t.size() > 2 && t.substr(t.size() - std::to_string(s).size() - 1) == "#" + std::to_string(s)) mine.push_back(t);
      run_baseline(sname("sae_l0", s), tok.at(sname("sae_l0", s)), mine);
    }
  // The oracle regressors: the true coefficients c (x is linear in them) and their squares c²
  // (‖x‖² of orthonormal features without bias is linear in those).
  auto run_oracle = [&](const std::string& reg_name, bool squared) {
    detail::SparseOracleProbe op(nf, all_targets.size());
    std::vector<double> y(all_targets.size());
    std::vector<float> v;
    auto values_of = [&](std::uint64_t i) -> const std::vector<float>& {
      if (!squared) return oracle_values[i];
      v = oracle_values[i];
      for (auto& c : v) c *= c;
      return v;
    };
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!split.is_train(i)) continue;
      for (std::size_t k = 0; k < y.size(); ++k) y[k] = tok[all_targets[k]][i];
      op.add(oracle_ids[i], values_of(i), y);
    }
    op.solve(opt.probe.ridge);
    std::vector<double> sse(y.size(), 0), sum(y.size(), 0), sumsq(y.size(), 0);
    for (std::uint64_t i = 0; i < n; ++i) {
      if (split.is_train(i)) continue;
      const auto& vals = values_of(i);
      for (std::size_t k = 0; k < y.size(); ++k) {
        const double t = tok[all_targets[k]][i], e = t - op.predict(oracle_ids[i], vals, k);
        sse[k] += e * e, sum[k] += t, sumsq[k] += t * t;
      }
    }
    for (std::size_t k = 0; k < y.size(); ++k) {
      const double sst = sumsq[k] - sum[k] * sum[k] / n_test;
      baseline[reg_name][all_targets[k]] = sst > 0 ? 1 - sse[k] / sst : NAN;
    }
  };
  if (oracle) run_oracle("oracle_c", false), run_oracle("oracle_c_sq", true);
  auto regressors_of = [&](const std::string& target, std::size_t s, bool per_sae) {
    RegressorR2 r{{"x", r2_x.at(target)}};
    for (const auto& [reg, m] : baseline) {
      if (reg.rfind("sae_l0", 0) == 0) {
        if (per_sae && reg == sname("sae_l0", s) && m.count(target)) r["sae_l0"] = m.at(target);
        continue;
      }
      if (m.count(target)) r[reg] = m.at(target);
    }
    return r;
  };
  for (const char* t : {"x_sq", "x", "x_centered_sq"}) rep.x_norms[t] = regressors_of(t, 0, false);
  phase_done("baselines");

  for (std::size_t s = 0; s < S; ++s) {
    SaeDecomposition o;
    const auto& sm = sums[s];
    o.label = saes[s].label;
    o.architecture = saes[s].sae ? saes[s].sae->architecture() : saes[s].oracle ? "oracle" : "provided";
    if (saes[s].pursuit) o.architecture += std::string("+") + pursuit_name(saes[s].pursuit->method);
    o.width = saes[s].width;
    if (tok.count(sname("sae_l0", s))) {
      double t = 0;
      const auto& c = tok.at(sname("sae_l0", s));
      for (std::uint64_t i = 0; i < n; ++i)
        if (!split.is_train(i)) t += c[i];
      o.l0 = t / n_test;
    }
    o.fvu = sm.sq_err / sst_x, o.fvu_nonlinear = sm.sq_nonlin / sst_x;
    o.error_r2 = score_a.r2_mean(s * d, d), o.error_fvu = score_a.fvu(s * d, d);
    o.mean_sq_error = sm.sq_err / n_test, o.mean_sq_linear = sm.sq_lin / n_test, o.mean_sq_nonlinear = sm.sq_nonlin / n_test;
    o.cos_linear_error_x = sm.cos_lin_x / n_test, o.norm_ratio = sm.norm_ratio / n_test;
    o.identity_max_abs = sm.identity;
    for (const char* w : {"sae_sq", "sae", "error_sq", "error", "linear_error_sq", "linear_error", "nonlinear_error_sq",
                          "nonlinear_error"})
      o.norms[w] = regressors_of(sname(w, s), s, true);
    if (has_truth(s)) {
      GroundTruthDecomposition g;
      g.match_threshold = opt.match_threshold, g.captured_features = captured[s].count, g.num_features = nf;
      g.mcc = captured[s].mcc;
      g.absent_share = sm.sq_absent / sm.sq_err, g.introduced_share = sm.sq_intro / sm.sq_err;
      g.cross_share = sm.absent_dot_intro / sm.sq_err;
      g.r2_absent = score_a.r2_mean(absent_col[s], d);
      g.r2_introduced = sm.introduced.r2_mean();
      // LinearError = P[A] - P[I]: shares of its energy ‖P[A]‖² and ‖P[I]‖² (they add to 1 with
      // the cross term -2 P[A]·P[I]); likewise for NonlinearError with the residuals.
      g.linear_from_absent = sm.sq_p_absent / sm.sq_lin, g.linear_from_introduced = sm.sq_p_intro / sm.sq_lin;
      g.nonlinear_from_absent = sm.sq_r_absent / sm.sq_nonlin, g.nonlinear_from_introduced = sm.sq_r_intro / sm.sq_nonlin;
      if (dense) {
        g.dense_share = sm.sq_dense / sm.sq_err, g.absent_dense_share = sm.absent_dot_dense / sm.sq_err;
        g.dense_introduced_share = sm.dense_dot_intro / sm.sq_err;
        g.r2_dense = score_a.r2_mean(dense_col, d), g.r2_dense_pooled = 1 - score_a.fvu(dense_col, d);
        g.linear_from_dense = sm.sq_p_dense / sm.sq_lin, g.nonlinear_from_dense = sm.sq_r_dense / sm.sq_nonlin;
      }
      o.truth = g;
    }
    rep.saes.push_back(std::move(o));
  }

  // Across widths: SAEs in order of width (ties: given order); pursuit's reconstructions stay out,
  // and so do oracles beside trained SAEs (a family of oracles alone is analysed as one).
  std::vector<std::size_t> order;
  bool only_oracles = true;
  for (std::size_t s = 0; s < S; ++s)
    if (!saes[s].pursuit && !saes[s].oracle) only_oracles = false;
  for (std::size_t s = 0; s < S; ++s)
    if (!saes[s].pursuit && (only_oracles || !saes[s].oracle)) order.push_back(s);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return saes[a].width < saes[b].width; });
  const std::size_t W = order.size();
  for (bool squared : {true, false}) {
    CrossWidthMatrix m;
    m.squared = squared;
    for (auto s : order) m.labels.push_back(saes[s].label), m.widths.push_back(saes[s].width);
    const std::vector<double> nan_row(W, NAN);
    m.r2.assign(W, nan_row), m.r2_with_nonlinear.assign(W, nan_row), m.fvu_decrease_percent.assign(W, nan_row);
    const std::string suffix = squared ? "_sq" : "";
    for (std::size_t i = 0; i < W; ++i)
      for (std::size_t j = i + 1; j < W; ++j) {
        const auto& target = tok.at(sname("error" + suffix, order[j]));
        const auto& ei = tok.at(sname("error" + suffix, order[i]));
        const auto& ni = tok.at(sname("nonlinear_error" + suffix, order[i]));
        const double r_old = detail::fit_columns({&ei}, {&target}, split, opt.probe)[0];
        const double r_new = detail::fit_columns({&ei, &ni}, {&target}, split, opt.probe)[0];
        m.r2[i][j] = r_old, m.r2_with_nonlinear[i][j] = r_new;
        m.fvu_decrease_percent[i][j] = (r_new - r_old) / (1 - r_old) * 100;
      }
    rep.cross_width.push_back(std::move(m));
  }

  phase_done("cross_width");
  // Per-token series on the first test rows.
  for (std::uint64_t i = 0; i < n && rep.series.rows.size() < opt.series_tokens; ++i)
    if (!split.is_train(i)) rep.series.rows.push_back(i);
  double cv_l = 0, cv_n = 0;
  for (auto s : order) {
    std::vector<double> e, l, nl;
    for (auto i : rep.series.rows)
      e.push_back(tok.at(sname("error", s))[i]), l.push_back(tok.at(sname("linear_error", s))[i]),
          nl.push_back(tok.at(sname("nonlinear_error", s))[i]);
    rep.series.error.push_back(e), rep.series.linear.push_back(l), rep.series.nonlinear.push_back(nl);
  }
  if (W > 1) {
    std::size_t used = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (split.is_train(i)) continue;
      std::vector<double> l, nl;
      for (auto s : order)
        l.push_back(tok.at(sname("linear_error", s))[i]), nl.push_back(tok.at(sname("nonlinear_error", s))[i]);
      const double a = detail::coefficient_of_variation(l), b = detail::coefficient_of_variation(nl);
      if (std::isfinite(a) && std::isfinite(b)) cv_l += a, cv_n += b, ++used;
    }
    if (used) rep.series.cv_linear = cv_l / double(used), rep.series.cv_nonlinear = cv_n / double(used);
  }

  // The Fig. 1 breakdown: needs three distinct widths.
  auto& b = rep.breakdown;
  std::vector<double> w, f, fn;
  for (auto s : order)
    if (saes[s].width > 0) w.push_back(double(saes[s].width)), f.push_back(rep.saes[s].fvu), fn.push_back(rep.saes[s].fvu_nonlinear);
  std::vector<double> distinct = w;
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.size() >= 3) {
    const auto fit = fit_power_law_with_constant(w, f);
    b.fitted = true;
    b.c = fit.c, b.a = fit.a, b.m = fit.m, b.rms = fit.rms;
    b.h = horizontal_fit(fn), b.h_cv = coefficient_of_variation(fn);
    b.widths = w;
    std::vector<double> grid = w;
    grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
    for (double x = w.back() * 2; x <= w.back() * 4.0 + 0.5; x *= 2) grid.push_back(x);
    // The encoder boundary e(W) (§2.4 fit 3): FVU_nonlinear of pursuit's reconstructions on the
    // same decoders, averaged over the pursued entries of each width; only when every data width
    // has one (the band would otherwise be an extrapolation from some widths to others).
    std::vector<double> e;
    for (double width : w) {
      double sum = 0;
      int count = 0;
      for (std::size_t s = 0; s < S; ++s)
        if (saes[s].pursuit && double(saes[s].width) == width) sum += rep.saes[s].fvu_nonlinear, ++count;
      if (count == 0) break;
      e.push_back(sum / count);
    }
    bool any_pursued = false;
    for (std::size_t s = 0; s < S; ++s) any_pursued = any_pursued || saes[s].pursuit.has_value();
    b.has_encoder_band = e.size() == w.size();
    if (b.has_encoder_band) b.encoder_boundary = e;
    const auto bands = b.has_encoder_band ? dark_matter_bands(fit, b.h, grid, std::span<const double>(e))
                                          : dark_matter_bands(fit, b.h, grid);
    std::vector<std::string> notes;
    if (bands.c_below_h)
      notes.push_back("the power law's asymptote c lies below the nonlinear level h: the linear band is empty at large width");
    if (any_pursued && !b.has_encoder_band)
      notes.push_back("no encoder band: pursuit was not run at every width");
    if (bands.encoder_above_h)
      notes.push_back("pursuit's FVU_nonlinear lies above h at some width: the encoder band is empty there");
    for (const auto& n : notes) b.note += (b.note.empty() ? "" : "; ") + n;
    for (const auto& p : bands.points) {
      b.band_widths.push_back(p.width);
      b.nonlinear.push_back(p.nonlinear.upper);
      b.encoder.push_back(p.encoder.upper);
      b.linear.push_back(p.linear.upper);
      b.absent.push_back(p.absent.upper);
    }
    for (auto s : order)
      if (rep.saes[s].truth && saes[s].width > 0)
        b.truth_absent.push_back(rep.saes[s].truth->absent_share * rep.saes[s].fvu),
            b.truth_introduced.push_back(rep.saes[s].truth->introduced_share * rep.saes[s].fvu);
  } else {
    b.note = "the breakdown needs SAEs of at least three distinct widths";
  }
  rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  rep.phase_seconds = phases;
  return rep;
}

}  // namespace synthsae::analysis
