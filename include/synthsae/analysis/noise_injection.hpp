#pragma once
// The paper's noise-injection test (Appendix C.3, Table 1, Fig. 15; reference dark-matter.md
// §2.6 and §3.7): does the linear/nonlinear split measure what it claims? Take an SAE and make
// activations whose decomposition is known:
//   x'      = Sae(x), an exact sparse sum of the SAE's decoder rows;
//   X       = x' + a · rms · n_a                    (injected "dense" noise, a on a grid);
//   recon   = the SAE's own codes of x', the lowest-mean-activation latents masked (a fraction),
//             decoded, + r · rms · n_r              (injected "introduced" noise, r on a grid);
//   E       = X - recon, regressed on X (train rows), scored on held-out rows.
// With FVU over X's variance: est. Dense = FVU(recon) - FVU(recon + linear prediction of E),
// est. Introduced = FVU(recon + linear prediction). Over the grid of (a, r) the report gives the
// 2x2 correlation of (a, r) with (est. Dense, est. Introduced); the test passes when the diagonal
// is high and the off-diagonal near 0 (paper: 0.98 / 0.14 / 0.10 / 0.90). A sweep over the
// masked fraction at one (a, r) gives Fig. 15: FVU rises while FVU(recon + linear) stays flat.
//
// rms is the per-dimension standard deviation of x' over the rows used. n_a and n_r are standard
// normal, one draw per (row, dimension), shared by every grid level (common random numbers).
// The paper fits in-sample on 50k rows; the default here is a held-out third (in_sample keeps
// the paper's choice).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/analysis/linear_probe.hpp"
#include "synthsae/analysis/row_split.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::analysis {

struct NoiseInjectionOptions {
  std::vector<double> levels{0, 0.25, 0.5, 0.75, 1.0};        ///< a and r, in units of rms
  std::vector<double> ablation{0, 0.1, 0.2, 0.3, 0.4, 0.5};  ///< masked fractions of the latents
  double ablation_noise = 0.5;                                ///< a = r during the sweep
  std::uint64_t max_rows = 60'000;                            ///< rows of the source used (its first)
  std::uint64_t train_rows = 0;                               ///< 0: two thirds
  bool in_sample = false;                                     ///< fit and score on every row (the paper)
  std::uint64_t split_seed = 0, seed = 0;
  std::size_t chunk_rows = 4096;
  ProbeOptions probe;
  std::function<void(const std::string&, std::uint64_t, std::uint64_t)> progress;

  void validate() const {
    probe.validate();
    if (levels.size() < 2) throw ConfigError("levels", show(levels.size()), "need at least two noise levels");
    for (double l : levels)
      if (!std::isfinite(l) || l < 0) throw ConfigError("levels", show(l), "must be finite and >= 0");
    for (double f : ablation)
      if (!(f >= 0 && f < 1)) throw ConfigError("ablation", show(f), "a masked fraction must be in [0, 1)");
    if (!std::isfinite(ablation_noise) || ablation_noise < 0)
      throw ConfigError("ablation_noise", show(ablation_noise), "must be finite and >= 0");
    if (max_rows < 3) throw ConfigError("max_rows", show(max_rows), "must be at least 3");
    if (chunk_rows == 0) throw ConfigError("chunk_rows", "0", "must be at least 1");
  }
};

struct NoiseInjectionCell {
  double x_noise = 0, recon_noise = 0, masked_fraction = 0;
  std::size_t masked_latents = 0;
  double fvu = 0;              ///< FVU(recon) = Σ‖E‖² / SST(X)
  double fvu_with_linear = 0;  ///< FVU(recon + linear prediction) = est. Introduced
  double dense() const { return fvu - fvu_with_linear; }
};

struct NoiseInjectionReport {
  std::string label, source;
  std::uint64_t rows = 0, train_rows = 0, test_rows = 0;
  bool in_sample = false;
  double rms = 0;
  std::vector<NoiseInjectionCell> grid;      ///< every (a, r), nothing masked
  std::vector<NoiseInjectionCell> ablation;  ///< a = r = ablation_noise, by masked fraction
  /// Pearson correlations over the grid (Table 1).
  double corr_x_dense = NAN, corr_x_introduced = NAN, corr_recon_dense = NAN, corr_recon_introduced = NAN;
  double seconds = 0;
};

inline nlohmann::json to_json(const NoiseInjectionCell& c) {
  return {{"x_noise", c.x_noise},
          {"recon_noise", c.recon_noise},
          {"masked_fraction", c.masked_fraction},
          {"masked_latents", c.masked_latents},
          {"fvu", c.fvu},
          {"fvu_with_linear", c.fvu_with_linear},
          {"estimated_dense", c.dense()},
          {"estimated_introduced", c.fvu_with_linear}};
}

inline nlohmann::json to_json(const NoiseInjectionReport& r) {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  nlohmann::json j{{"sae", r.label},
                   {"source", r.source},
                   {"rows", {{"total", r.rows}, {"train", r.train_rows}, {"test", r.test_rows}, {"in_sample", r.in_sample}}},
                   {"rms", r.rms},
                   {"correlation",
                    {{"x_noise", {{"estimated_dense", num(r.corr_x_dense)}, {"estimated_introduced", num(r.corr_x_introduced)}}},
                     {"recon_noise",
                      {{"estimated_dense", num(r.corr_recon_dense)}, {"estimated_introduced", num(r.corr_recon_introduced)}}}}},
                   {"grid", nlohmann::json::array()},
                   {"ablation", nlohmann::json::array()},
                   {"seconds", r.seconds}};
  for (const auto& c : r.grid) j["grid"].push_back(to_json(c));
  for (const auto& c : r.ablation) j["ablation"].push_back(to_json(c));
  return j;
}

namespace detail {

inline double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = double(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : NAN;
}

/// One standard normal per (row, dimension) of a named noise.
inline void noise_block(std::uint64_t seed, std::uint64_t tag, std::uint64_t first_row, const Matrix<float>& out) {
  const auto o = out;
  for_each_entry(
      "synthsae::injected_noise", out.extent(0), out.extent(1), KOKKOS_LAMBDA(int i, int k) {
        RandomStream rng(seed, mix_stream(first_row + std::uint64_t(i), tag + std::uint64_t(k)));
        o(i, k) = rng.normal<float>();
      });
}

/// X = x' + s n (the noised activations).
inline void add_scaled(const Matrix<float>& x1, const Matrix<float>& noise, float s, const Matrix<float>& X) {
  const auto a = x1, n = noise, o = X;
  for_each_entry(
      "synthsae::injected_x", X.extent(0), X.extent(1), KOKKOS_LAMBDA(int i, int k) { o(i, k) = a(i, k) + s * n(i, k); });
}

/// zm = z with the latents whose keep flag is 0 zeroed.
inline void masked_codes(const Matrix<float>& z, const Vector<float>& keep, const Matrix<float>& zm) {
  const auto zz = z, o = zm;
  const auto kp = keep;
  for_each_entry(
      "synthsae::injected_mask", z.extent(0), z.extent(1), KOKKOS_LAMBDA(int i, int j) { o(i, j) = zz(i, j) * kp(j); });
}

/// Y[:, off:off + d] = X - (recon + s n): the error of a noised reconstruction.
inline void injected_error(const Matrix<float>& X, const Matrix<float>& recon, const Matrix<float>& noise, float s,
                           int off, const Matrix<float>& Y) {
  const auto x = X, rc = recon, n = noise, y = Y;
  for_each_entry(
      "synthsae::injected_error", X.extent(0), X.extent(1),
      KOKKOS_LAMBDA(int i, int k) { y(i, off + k) = x(i, k) - (rc(i, k) + s * n(i, k)); });
}

}  // namespace detail

// The kernels live in detail:: free functions: nvcc refuses a device lambda inside a lambda.
inline NoiseInjectionReport noise_injection_experiment(ActivationSource& source, InferenceSae& sae, std::string label,
                                                       const NoiseInjectionOptions& opt = {}) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  opt.validate();
  const std::size_t d = source.dim(), S = sae.num_latents();
  if (sae.input_dim() != d)
    throw ShapeError(label + ": the SAE reads " + show(sae.input_dim()) + " dimensions, the activations have " + show(d));
  const std::uint64_t n = std::min<std::uint64_t>(opt.max_rows, source.rows());
  if (n < 3) throw ConfigError("rows", show(n), "the noise-injection test needs at least 3 rows");
  const std::uint64_t n_train = opt.train_rows ? opt.train_rows : n * 2 / 3;
  RowSplit split;
  if (!opt.in_sample) split = RowSplit(n, n_train, opt.split_seed);
  // A regression on d inputs needs more rows than coefficients on each side of the split.
  const std::uint64_t fit_rows = opt.in_sample ? n : split.train_rows(), score_rows = opt.in_sample ? n : split.test_rows();
  if (fit_rows < d + 2 || score_rows < 2)
    throw ConfigError("rows", show(n), "the noise-injection test needs more than " + show(d + 1) +
                                           " rows to fit on and 2 to score on (" + show(fit_rows) + " and " +
                                           show(score_rows) + " here)");
  auto is_train = [&](std::uint64_t i) { return opt.in_sample || split.is_train(i); };
  auto is_test = [&](std::uint64_t i) { return opt.in_sample || !split.is_train(i); };

  // Codes, x' and the buffers of a chunk.
  ActivationChunk chunk;
  Matrix<float> z, xp, n_a, n_r, zm, xm, big_x;
  auto encode_chunk = [&](std::uint64_t first, std::size_t rows) {
    source.read(first, rows, chunk);
    if (z.extent(0) != rows) {
      z = Matrix<float>("ni_z", rows, S), zm = Matrix<float>("ni_zm", rows, S);
      xp = Matrix<float>("ni_xprime", rows, d), xm = Matrix<float>("ni_masked", rows, d);
      n_a = Matrix<float>("ni_noise_a", rows, d), n_r = Matrix<float>("ni_noise_r", rows, d);
    }
    sae.encode(chunk.x, z);
    sae.decode(z, xp);
    detail::noise_block(opt.seed, 0xA000000000ull, first, n_a);
    detail::noise_block(opt.seed, 0xB000000000ull, first, n_r);
  };
  auto progress = [&](const char* phase, std::uint64_t done) {
    if (opt.progress) opt.progress(phase, done, n);
  };

  // Pass 0: rms of x' and each latent's mean activation (the masking order).
  std::vector<double> mean_act(S, 0), sum(d, 0), sum_sq(d, 0);
  for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
    const std::size_t rows = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
    encode_chunk(first, rows);
    const auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
    const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), xp);
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t j = 0; j < S; ++j) mean_act[j] += hz(i, j);
      for (std::size_t k = 0; k < d; ++k) sum[k] += hx(i, k), sum_sq[k] += double(hx(i, k)) * hx(i, k);
    }
    progress("injection: codes", first + rows);
  }
  double var = 0;
  for (std::size_t k = 0; k < d; ++k) var += sum_sq[k] - sum[k] * sum[k] / double(n);
  const double rms = std::sqrt(std::max(0.0, var) / (double(n) * double(d)));
  std::vector<std::size_t> order(S);
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return mean_act[a] < mean_act[b]; });
  const std::size_t L = opt.levels.size(), A = opt.ablation.size();
  std::vector<Vector<float>> keep(A);  // 1 for latents kept at each masked fraction
  std::vector<std::size_t> masked(A);
  for (std::size_t a = 0; a < A; ++a) {
    masked[a] = static_cast<std::size_t>(std::floor(opt.ablation[a] * double(S)));
    keep[a] = Vector<float>("ni_keep", S);
    auto h = Kokkos::create_mirror_view(keep[a]);
    for (std::size_t j = 0; j < S; ++j) h(j) = 1.0f;
    for (std::size_t j = 0; j < masked[a]; ++j) h(order[j]) = 0.0f;
    Kokkos::deep_copy(keep[a], h);
  }

  // Groups: one per x-noise level (targets: every recon-noise level, nothing masked), and the
  // ablation sweep (targets: every masked fraction at a = r = ablation_noise).
  const std::size_t G = L + (A ? 1 : 0);
  auto group_x_noise = [&](std::size_t g) { return g < L ? opt.levels[g] : opt.ablation_noise; };
  auto group_targets = [&](std::size_t g) { return g < L ? L : A; };
  // X (into big_x) and the targets of group g.
  auto build_group = [&](std::size_t g, std::size_t rows) {
    const std::size_t q = group_targets(g) * d;
    if (big_x.extent(0) != rows) big_x = Matrix<float>("ni_x", rows, d);
    Matrix<float> Y(Kokkos::view_alloc(Kokkos::WithoutInitializing, "ni_targets"), rows, q);
    detail::add_scaled(xp, n_a, static_cast<float>(group_x_noise(g) * rms), big_x);
    for (std::size_t t = 0; t < group_targets(g); ++t) {
      Matrix<float> recon = xp;
      if (g == L && masked[t] > 0) {  // the SAE's codes of x' with the weakest latents masked
        detail::masked_codes(z, keep[t], zm);
        sae.decode(zm, xm);
        recon = xm;
      }
      const float sr = static_cast<float>((g < L ? opt.levels[t] : opt.ablation_noise) * rms);
      detail::injected_error(big_x, recon, n_r, sr, static_cast<int>(t * d), Y);
    }
    return Y;
  };
  auto row_index = [&](std::uint64_t first, std::size_t rows, bool train) {
    std::vector<std::int32_t> idx;
    for (std::size_t i = 0; i < rows; ++i)
      if (train ? is_train(first + i) : is_test(first + i)) idx.push_back(static_cast<std::int32_t>(i));
    RowIndex dv(Kokkos::view_alloc(Kokkos::WithoutInitializing, "ni_rows"), idx.size());
    auto h = Kokkos::create_mirror_view(dv);
    for (std::size_t i = 0; i < idx.size(); ++i) h(i) = idx[i];
    Kokkos::deep_copy(dv, h);
    return dv;
  };

  // Pass 1: the normal equations of every group.
  std::vector<LinearProbe> probes;
  for (std::size_t g = 0; g < G; ++g) probes.emplace_back(d, group_targets(g) * d, opt.probe);
  for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
    const std::size_t rows = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
    encode_chunk(first, rows);
    const auto train = row_index(first, rows, true);
    if (train.extent(0) == 0) continue;
    for (std::size_t g = 0; g < G; ++g) {
      const auto y = build_group(g, rows);
      probes[g].add(big_x, y, opt.in_sample ? RowIndex() : train);
    }
    progress("injection: fit", first + rows);
  }
  std::vector<ProbeFit> fits;
  for (auto& p : probes) fits.push_back(p.solve());

  // Pass 2: on the test rows, Σ‖E‖² and Σ‖E - Ê‖² per target block, and X's SST per group.
  std::vector<std::vector<double>> sq_err(G), sq_res(G);
  std::vector<std::vector<double>> x_sum(G, std::vector<double>(d, 0)), x_sq(G, std::vector<double>(d, 0));
  for (std::size_t g = 0; g < G; ++g) sq_err[g].assign(group_targets(g), 0), sq_res[g].assign(group_targets(g), 0);
  std::uint64_t n_test = 0;
  for (std::uint64_t first = 0; first < n; first += opt.chunk_rows) {
    const std::size_t rows = static_cast<std::size_t>(std::min<std::uint64_t>(opt.chunk_rows, n - first));
    encode_chunk(first, rows);
    const auto test = row_index(first, rows, false);
    const std::size_t nt = test.extent(0);
    if (nt == 0) continue;
    n_test += nt;
    const auto ht = Kokkos::create_mirror_view_and_copy(HostSpace(), test);
    for (std::size_t g = 0; g < G; ++g) {
      const auto y = build_group(g, rows);
      Matrix<double> pred("ni_pred", nt, y.extent(1));
      fits[g].predict(big_x, test, pred);
      const auto hy = Kokkos::create_mirror_view_and_copy(HostSpace(), y);
      const auto hp = Kokkos::create_mirror_view_and_copy(HostSpace(), pred);
      const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), big_x);
      for (std::size_t r = 0; r < nt; ++r) {
        const auto i = static_cast<std::size_t>(ht(r));
        for (std::size_t k = 0; k < d; ++k) x_sum[g][k] += hx(i, k), x_sq[g][k] += double(hx(i, k)) * hx(i, k);
        for (std::size_t t = 0; t < group_targets(g); ++t) {
          double e2 = 0, r2 = 0;
          for (std::size_t k = 0; k < d; ++k) {
            const double e = hy(i, t * d + k), res = e - hp(r, t * d + k);
            e2 += e * e, r2 += res * res;
          }
          sq_err[g][t] += e2, sq_res[g][t] += r2;
        }
      }
    }
    progress("injection: score", first + rows);
  }

  NoiseInjectionReport rep;
  rep.label = std::move(label), rep.source = source.describe();
  rep.rows = n, rep.in_sample = opt.in_sample, rep.rms = rms;
  rep.train_rows = opt.in_sample ? n : split.train_rows(), rep.test_rows = n_test;
  std::vector<double> xs, rs, dense, intro;
  for (std::size_t g = 0; g < G; ++g) {
    double sst = 0;
    for (std::size_t k = 0; k < d; ++k) sst += x_sq[g][k] - x_sum[g][k] * x_sum[g][k] / double(n_test);
    for (std::size_t t = 0; t < group_targets(g); ++t) {
      NoiseInjectionCell c;
      c.x_noise = group_x_noise(g);
      c.recon_noise = g < L ? opt.levels[t] : opt.ablation_noise;
      c.masked_fraction = g < L ? 0.0 : opt.ablation[t];
      c.masked_latents = g < L ? 0 : masked[t];
      c.fvu = sq_err[g][t] / sst, c.fvu_with_linear = sq_res[g][t] / sst;
      if (g < L) {
        rep.grid.push_back(c);
        xs.push_back(c.x_noise), rs.push_back(c.recon_noise), dense.push_back(c.dense()), intro.push_back(c.fvu_with_linear);
      } else {
        rep.ablation.push_back(c);
      }
    }
  }
  rep.corr_x_dense = detail::pearson(xs, dense), rep.corr_x_introduced = detail::pearson(xs, intro);
  rep.corr_recon_dense = detail::pearson(rs, dense), rep.corr_recon_introduced = detail::pearson(rs, intro);
  rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return rep;
}

}  // namespace synthsae::analysis
