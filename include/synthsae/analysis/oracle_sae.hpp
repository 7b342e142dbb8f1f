#pragma once
// Oracle SAEs (reference dark-matter.md §2.6, the paper's Appendix B): an "SAE" that has learned
// a chosen set L of the world's true features exactly, Sae(x) = Σ_{i∈L} c_i d_i + b, read from
// the sample's ground truth, with an optional Introduced error of a chosen kind and level:
//   isotropic       + N(0, σ² I), σ² = level · tr(Σ_x) / d (level = the variance fraction f_I)
//   shrinkage       c_i -> (1 - level) c_i
//   direction       d_i -> ‖d_i‖ normalise(d_i + level · g_i), g_i ~ N(0, I/d) fixed per feature
//   multiplicative  c_i -> c_i (1 + level · n), n ~ N(0, 1) per sample and feature
// L is the m most frequent features (counted on the source's first rows), m chosen at random,
// or a given list. Every draw is a pure function of (seed, row, feature or dimension), so the
// passes of an analysis see the same reconstruction of a row each time.
//
// to_inference_sae() exports the oracle as an ordinary JumpReLU SAE (decoder = the oracle's
// directions, encoder = the true directions as matched filters, one threshold): that SAE
// reconstructs L exactly only where the true directions are orthonormal, and carries no random
// error (docs/dark-matter.md, "Oracle SAEs").
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/core/text_fields.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::analysis {

enum class OracleSelection { most_frequent, random, list };
enum class IntroducedKind { none, isotropic, shrinkage, direction, multiplicative };

inline const char* introduced_name(IntroducedKind k) {
  switch (k) {
    case IntroducedKind::none: return "none";
    case IntroducedKind::isotropic: return "isotropic";
    case IntroducedKind::shrinkage: return "shrinkage";
    case IntroducedKind::direction: return "direction";
    case IntroducedKind::multiplicative: return "multiplicative";
  }
  return "?";
}

struct OracleSpec {
  OracleSelection selection = OracleSelection::most_frequent;
  std::size_t m = 0;                    ///< features learned (most_frequent, random)
  std::vector<std::int64_t> features;   ///< the learned features (list)
  IntroducedKind error = IntroducedKind::none;
  double level = 0;
  std::uint64_t seed = 0;
  std::uint64_t frequency_rows = 65'536;  ///< rows counted for the ranking and for tr(Σ_x)

  void validate(std::size_t num_features) const {
    if (selection == OracleSelection::list) {
      if (features.empty()) throw ConfigError("oracle features", "[]", "give at least one feature");
      std::vector<std::int64_t> s = features;
      std::sort(s.begin(), s.end());
      if (s.front() < 0 || s.back() >= static_cast<std::int64_t>(num_features))
        throw ConfigError("oracle features", show(s.front() < 0 ? s.front() : s.back()),
                          "must be a feature index in [0, " + show(num_features) + ")");
      if (std::adjacent_find(s.begin(), s.end()) != s.end())
        throw ConfigError("oracle features", show(*std::adjacent_find(s.begin(), s.end())), "is listed twice");
    } else if (m < 1 || m > num_features) {
      throw ConfigError("oracle m", show(m), "must be in [1, " + show(num_features) + "] (the world's features)");
    }
    if (!std::isfinite(level) || level < 0) throw ConfigError("oracle error level", show(level), "must be finite and >= 0");
    if (error == IntroducedKind::shrinkage && level > 1)
      throw ConfigError("oracle shrinkage", show(level), "must be in [0, 1] (c -> (1 - level) c)");
    if (error == IntroducedKind::isotropic && level > 1)
      throw ConfigError("oracle isotropic", show(level), "is a variance fraction of x: must be in [0, 1]");
    if (frequency_rows == 0) throw ConfigError("oracle frequency_rows", "0", "must be at least 1");
  }

  /// "top-256", "random-512-seed3", "list-12", with "+isotropic-0.05" for an error.
  std::string label() const {
    std::string s = selection == OracleSelection::most_frequent ? "top-" + show(m)
                    : selection == OracleSelection::random      ? "random-" + show(m) + "-seed" + show(seed)
                                                                : "list-" + show(features.size());
    if (error != IntroducedKind::none) {
      std::ostringstream l;
      l << level;
      s += std::string("+") + introduced_name(error) + "-" + l.str();
    }
    return "oracle:" + s;
  }
};

/// Parses the CLI's oracle spec: SELECTION[,KIND=LEVEL][,seed=N] with SELECTION one of top:M,
/// random:M, list:FILE (feature indices separated by spaces, commas or newlines) and KIND one of
/// isotropic, shrinkage, direction, multiplicative.
inline OracleSpec parse_oracle_spec(const std::string& text) {
  OracleSpec spec;
  const std::vector<std::string> parts = split_list(text);
  auto bad = [&](const std::string& why) { return ConfigError("--oracle", text, why); };
  auto number = [&](const std::string& s, const char* what) {
    const auto v = parse_number(s, -HUGE_VAL, HUGE_VAL);
    if (!v) throw bad(std::string(what) + " '" + s + "' is not a number");
    return *v;
  };
  auto count = [&](const std::string& s, const char* what) {
    const double v = number(s, what);
    if (v != std::floor(v) || v < 0 || v > 9.007199254740992e15) throw bad(std::string(what) + " '" + s + "' is not a count");
    return static_cast<std::uint64_t>(v);
  };
  const auto colon = parts[0].find(':');
  if (colon == std::string::npos) throw bad("start with top:M, random:M or list:FILE");
  const std::string kind = parts[0].substr(0, colon), arg = parts[0].substr(colon + 1);
  if (kind == "top" || kind == "random") {
    spec.selection = kind == "top" ? OracleSelection::most_frequent : OracleSelection::random;
    spec.m = static_cast<std::size_t>(count(arg, "M"));
  } else if (kind == "list") {
    spec.selection = OracleSelection::list;
    std::ifstream in(arg);
    if (!in) throw IoError(arg, "cannot open the oracle's feature list");
    std::string tok;
    std::stringstream all;
    all << in.rdbuf();
    std::string body = all.str();
    std::replace(body.begin(), body.end(), ',', ' ');
    std::istringstream words(body);
    while (words >> tok) spec.features.push_back(static_cast<std::int64_t>(count(tok, "feature index")));
  } else {
    throw bad("unknown selection '" + kind + "': choose top:M, random:M or list:FILE");
  }
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const auto eq = parts[i].find('=');
    if (eq == std::string::npos) throw bad("'" + parts[i] + "' is not KEY=VALUE");
    const std::string k = parts[i].substr(0, eq), v = parts[i].substr(eq + 1);
    if (k == "seed") {
      spec.seed = count(v, "seed");
      continue;
    }
    if (spec.error != IntroducedKind::none) throw bad("give at most one introduced error");
    if (k == "isotropic") spec.error = IntroducedKind::isotropic;
    else if (k == "shrinkage") spec.error = IntroducedKind::shrinkage;
    else if (k == "direction") spec.error = IntroducedKind::direction;
    else if (k == "multiplicative") spec.error = IntroducedKind::multiplicative;
    else throw bad("unknown key '" + k + "': choose isotropic, shrinkage, direction, multiplicative or seed");
    spec.level = number(v, k.c_str());
  }
  return spec;
}

class OracleSae {
 public:
  /// Selects L and prepares the error on `source`, which must carry ground truth.
  OracleSae(ActivationSource& source, OracleSpec spec) : spec_(std::move(spec)) {
    const Matrix<float>* truth = source.true_features();
    if (!truth) throw ConfigError("oracle", spec_.label(), "needs a source with ground truth (a synthetic world)");
    const std::size_t n = truth->extent(0), d = truth->extent(1);
    spec_.validate(n);
    features_ = *truth;
    bias_ = Vector<float>("oracle_bias", d);
    if (const Vector<float>* b = source.true_bias()) Kokkos::deep_copy(bias_, *b);

    // One look at the first rows: firing counts (the ranking) and the variance of x (isotropic σ).
    std::vector<std::uint64_t> fires(n, 0);
    std::vector<double> sum(d, 0), sum_sq(d, 0);
    std::vector<double> value_sum(n, 0);
    const std::uint64_t rows = std::min<std::uint64_t>(spec_.frequency_rows, source.rows());
    ActivationChunk c;
    for (std::uint64_t first = 0; first < rows; first += 4096) {
      const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(4096, rows - first));
      source.read(first, count, c);
      const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), c.x);
      const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), c.truth->ids);
      const auto vals = Kokkos::create_mirror_view_and_copy(HostSpace(), c.truth->values);
      const auto cnt = Kokkos::create_mirror_view_and_copy(HostSpace(), c.truth->counts);
      for (std::size_t i = 0; i < count; ++i) {
        for (int u = 0; u < cnt(i); ++u) ++fires[ids(i, u)], value_sum[ids(i, u)] += vals(i, u);
        for (std::size_t k = 0; k < d; ++k) sum[k] += hx(i, k), sum_sq[k] += double(hx(i, k)) * hx(i, k);
      }
    }
    double trace = 0;
    for (std::size_t k = 0; k < d; ++k) trace += std::max(0.0, sum_sq[k] / double(rows) - (sum[k] / double(rows)) * (sum[k] / double(rows)));
    trace_x_ = trace;
    if (spec_.error == IntroducedKind::isotropic) sigma_ = std::sqrt(spec_.level * trace / double(d));

    if (spec_.selection == OracleSelection::list) {
      for (auto f : spec_.features) selected_.push_back(static_cast<std::int32_t>(f));
    } else {
      std::vector<std::int32_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      if (spec_.selection == OracleSelection::most_frequent) {
        std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return fires[a] > fires[b]; });
      } else {  // Fisher-Yates on the counter stream
        RandomStream rng(spec_.seed, mix_stream(0x0AC1E, 1));
        for (std::size_t i = n - 1; i > 0; --i)
          std::swap(order[i], order[rng.uniform_below(static_cast<std::uint32_t>(i + 1))]);
      }
      selected_.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(spec_.m));
    }
    mask_.assign(n, 0);
    for (auto f : selected_) mask_[static_cast<std::size_t>(f)] = 1;
    mask_dev_ = Vector<std::uint8_t>("oracle_mask", n);
    {
      auto h = Kokkos::create_mirror_view(mask_dev_);
      for (std::size_t i = 0; i < n; ++i) h(i) = mask_[i];
      Kokkos::deep_copy(mask_dev_, h);
    }
    // Export threshold: half the smallest mean firing value among the learned features seen.
    double min_mean = INFINITY;
    for (auto f : selected_)
      if (fires[f]) min_mean = std::min(min_mean, value_sum[f] / double(fires[f]));
    export_threshold_ = std::isfinite(min_mean) ? 0.5 * min_mean : 0.0;

    // The oracle's directions: the true ones, or perturbed ones (direction error).
    directions_ = Matrix<float>("oracle_directions", n, d);
    Kokkos::deep_copy(directions_, features_);
    mean_abs_cos_ = 1.0;
    if (spec_.error == IntroducedKind::direction && spec_.level > 0) {
      auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), directions_);
      double cos_sum = 0;
      for (auto f : selected_) {
        RandomStream rng(spec_.seed, mix_stream(0xD1EC, static_cast<std::uint64_t>(f)));
        std::vector<double> v(d);
        double norm0 = 0, norm1 = 0, dot = 0;
        for (std::size_t k = 0; k < d; ++k) {
          const double t = h(f, k);
          v[k] = t + spec_.level * rng.normal<double>() / std::sqrt(double(d));
          norm0 += t * t, norm1 += v[k] * v[k], dot += t * v[k];
        }
        const double scale = norm1 > 0 ? std::sqrt(norm0 / norm1) : 0.0;
        for (std::size_t k = 0; k < d; ++k) h(f, k) = static_cast<float>(v[k] * scale);
        cos_sum += norm0 > 0 && norm1 > 0 ? std::fabs(dot) / std::sqrt(norm0 * norm1) : 0.0;
      }
      mean_abs_cos_ = cos_sum / double(selected_.size());
      Kokkos::deep_copy(directions_, h);
    }
  }

  const OracleSpec& spec() const { return spec_; }
  std::string label() const { return spec_.label(); }
  std::size_t width() const { return selected_.size(); }
  const std::vector<std::int32_t>& selected() const { return selected_; }
  const std::vector<std::uint8_t>& mask() const { return mask_; }
  /// tr(Σ_x) measured on the first rows; σ of the isotropic error (0 without one).
  double trace_x() const { return trace_x_; }
  double isotropic_sigma() const { return sigma_; }
  /// Mean |cos| between the oracle's directions and the true ones (1 without a direction error).
  double mean_abs_cos() const { return mean_abs_cos_; }

  /// x_hat [rows, d] of the chunk's rows; l0 (when given) = learned features firing per row.
  void reconstruct(const ActivationChunk& chunk, const Matrix<float>& x_hat, std::vector<double>* l0 = nullptr) const {
    const auto t = *chunk.truth;
    const auto dir = directions_;
    const auto mask = mask_dev_;
    const auto bias = bias_;
    const auto out = x_hat;
    const std::uint64_t first = chunk.first, seed = spec_.seed;
    const int kind = static_cast<int>(spec_.error);
    const float shrink = spec_.error == IntroducedKind::shrinkage ? static_cast<float>(1 - spec_.level) : 1.0f;
    const float mult = spec_.error == IntroducedKind::multiplicative ? static_cast<float>(spec_.level) : 0.0f;
    const float sigma = static_cast<float>(sigma_);
    const int d = static_cast<int>(x_hat.extent(1));
    // One draw per (row, feature) and per (row, dimension), so the host's row loop and the
    // device's entry threads make the same numbers.
    auto coefficient = [=] KOKKOS_FUNCTION(int b, int u) {
      float v = t.values(b, u) * shrink;
      if (kind == int(IntroducedKind::multiplicative)) {
        RandomStream rng(seed, mix_stream(first + std::uint64_t(b), 0x3000000000ull + std::uint64_t(t.ids(b, u))));
        v *= 1.0f + mult * rng.normal<float>();
      }
      return v;
    };
    auto noise = [=] KOKKOS_FUNCTION(int b, int k) {
      RandomStream rng(seed, mix_stream(first + std::uint64_t(b), 0x1500000000ull + std::uint64_t(k)));
      return sigma * rng.normal<float>();
    };
    if constexpr (host_execution_v) {
      Kokkos::parallel_for(
          "synthsae::oracle_reconstruct", Kokkos::RangePolicy<ExecSpace>(0, x_hat.extent(0)), KOKKOS_LAMBDA(int b) {
            for (int k = 0; k < d; ++k) out(b, k) = bias(k);
            for (int u = 0; u < t.counts(b); ++u) {
              const int id = t.ids(b, u);
              if (!mask(id)) continue;
              const float v = coefficient(b, u);
              for (int k = 0; k < d; ++k) out(b, k) += v * dir(id, k);
            }
            if (kind == int(IntroducedKind::isotropic))
              for (int k = 0; k < d; ++k) out(b, k) += noise(b, k);
          });
    } else {
      for_each_entry(
          "synthsae::oracle_reconstruct", x_hat.extent(0), x_hat.extent(1), KOKKOS_LAMBDA(int b, int k) {
            float acc = bias(k);
            for (int u = 0; u < t.counts(b); ++u) {
              const int id = t.ids(b, u);
              if (mask(id)) acc += coefficient(b, u) * dir(id, k);
            }
            if (kind == int(IntroducedKind::isotropic)) acc += noise(b, k);
            out(b, k) = acc;
          });
    }
    if (l0) {
      const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), t.ids);
      const auto cnt = Kokkos::create_mirror_view_and_copy(HostSpace(), t.counts);
      l0->assign(x_hat.extent(0), 0.0);
      for (std::size_t b = 0; b < x_hat.extent(0); ++b)
        for (int u = 0; u < cnt(b); ++u) (*l0)[b] += mask_[static_cast<std::size_t>(ids(b, u))];
    }
  }

  /// The oracle as an ordinary JumpReLU SAE: W_dec rows = the oracle's directions of L (times
  /// 1 - level under shrinkage), W_enc columns = the true directions / ‖d_i‖² (matched filters),
  /// b_dec = the world's bias, one threshold (half the smallest mean firing value of L).
  InferenceSae to_inference_sae() const {
    const std::size_t s = selected_.size(), d = features_.extent(1);
    InferenceSae sae;
    sae.params.w_enc = Matrix<float>("w_enc", d, s);
    sae.params.b_enc = Vector<float>("b_enc", s);
    sae.params.w_dec = Matrix<float>("w_dec", s, d);
    sae.params.b_dec = Vector<float>("b_dec", d);
    const auto f = Kokkos::create_mirror_view_and_copy(HostSpace(), features_);
    const auto g = Kokkos::create_mirror_view_and_copy(HostSpace(), directions_);
    auto we = Kokkos::create_mirror_view(sae.params.w_enc);
    auto wd = Kokkos::create_mirror_view(sae.params.w_dec);
    const float shrink = spec_.error == IntroducedKind::shrinkage ? static_cast<float>(1 - spec_.level) : 1.0f;
    for (std::size_t j = 0; j < s; ++j) {
      const auto id = static_cast<std::size_t>(selected_[j]);
      double norm_sq = 0;
      for (std::size_t k = 0; k < d; ++k) norm_sq += double(f(id, k)) * f(id, k);
      for (std::size_t k = 0; k < d; ++k)
        we(k, j) = norm_sq > 0 ? static_cast<float>(f(id, k) / norm_sq) : 0.0f, wd(j, k) = shrink * g(id, k);
    }
    Kokkos::deep_copy(sae.params.w_enc, we), Kokkos::deep_copy(sae.params.w_dec, wd);
    Kokkos::deep_copy(sae.params.b_dec, bias_);
    inference::JumpReluForm form{Vector<float>("threshold", s)};
    Kokkos::deep_copy(form.threshold, static_cast<float>(export_threshold_));
    sae.form = form;
    return sae;
  }
  /// Whether the export leaves out part of the oracle's error (random per sample).
  bool export_drops_error() const {
    return spec_.level > 0 &&
           (spec_.error == IntroducedKind::isotropic || spec_.error == IntroducedKind::multiplicative);
  }

 private:
  OracleSpec spec_;
  Matrix<float> features_, directions_;
  Vector<float> bias_;
  Vector<std::uint8_t> mask_dev_;
  std::vector<std::int32_t> selected_;
  std::vector<std::uint8_t> mask_;
  double trace_x_ = 0, sigma_ = 0, mean_abs_cos_ = 1, export_threshold_ = 0;
};

}  // namespace synthsae::analysis
