#pragma once
// The results of analyse_dark_matter (analysis/dark_matter.hpp) and their JSON form; the keys
// are documented in docs/dark-matter.md. NaN (written as null) marks what does not apply.
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace synthsae::analysis {

/// Test R² of one per-token scalar target against each regressor set.
using RegressorR2 = std::map<std::string, double>;

struct GroundTruthDecomposition {
  double match_threshold = 0.9;
  std::size_t captured_features = 0, num_features = 0;
  double mcc = 0;
  /// Σ‖·‖² / Σ‖SaeError‖² on the test rows (SaeError = Absent + Dense - Introduced):
  /// absent + dense + introduced + 2 (absent_dense - cross - dense_introduced) = 1, where cross is
  /// Σ A·I, absent_dense Σ A·D and dense_introduced Σ D·I over Σ‖SaeError‖²; Dense = 0 in worlds
  /// without dense components.
  double absent_share = 0, introduced_share = 0, cross_share = 0;
  double dense_share = 0, absent_dense_share = 0, dense_introduced_share = 0;
  double r2_absent = NAN, r2_introduced = NAN;  ///< R²_mean of each part regressed on x
  double r2_dense = NAN, r2_dense_pooled = NAN;  ///< Dense on x: R²_mean, and 1 - pooled FVU
  /// Where LinearError's and NonlinearError's energy comes from: ‖P[Absent]‖²/‖Linear‖², ...
  double linear_from_absent = 0, linear_from_introduced = 0;
  double nonlinear_from_absent = 0, nonlinear_from_introduced = 0;
  double linear_from_dense = 0, nonlinear_from_dense = 0;
};

struct SaeDecomposition {
  std::string label, architecture;
  std::size_t width = 0;  ///< latents (0: unknown, e.g. provided outputs)
  double l0 = NAN;        ///< mean active latents on the test rows
  double fvu = 0, fvu_nonlinear = 0;
  double error_r2 = 0;   ///< R²_mean of SaeError regressed on x (R2_vec)
  double error_fvu = 0;  ///< pooled FVU of that regression
  double mean_sq_error = 0, mean_sq_linear = 0, mean_sq_nonlinear = 0;
  double cos_linear_error_x = 0;  ///< shrinkage check (A.1): mean cos(LinearError, x)
  double norm_ratio = 0;          ///< mean ‖Sae(x)‖ / ‖x‖
  double identity_max_abs = 0;    ///< max |x - (Sae + LinearError + NonlinearError)| on the test rows
  std::map<std::string, RegressorR2> norms;  ///< "sae_sq", "error", ... → regressor → R²
  std::optional<GroundTruthDecomposition> truth;
};

struct CrossWidthMatrix {
  bool squared = true;
  std::vector<std::string> labels;
  std::vector<std::size_t> widths;
  /// [i][j], i < j (smaller to larger): R² of ‖err_j‖ from ‖err_i‖; with ‖nonlin_i‖ added; the
  /// % decrease in FVU that adds, (R²_new - R²_old) / (1 - R²_old) · 100.
  std::vector<std::vector<double>> r2, r2_with_nonlinear, fvu_decrease_percent;
};

struct TokenSeries {
  std::vector<std::uint64_t> rows;  ///< the first test rows, in order
  /// per SAE: ‖SaeError‖, ‖LinearError‖, ‖NonlinearError‖ on those rows
  std::vector<std::vector<double>> error, linear, nonlinear;
  /// mean over tokens of the coefficient of variation across SAEs (reference §2.3)
  double cv_linear = NAN, cv_nonlinear = NAN;
};

struct DarkMatterBreakdown {
  bool fitted = false;
  std::string note;
  double c = NAN, a = NAN, m = NAN, rms = NAN;  ///< FVU(W) = c + a W^-m
  double h = NAN, h_cv = NAN;                   ///< mean FVU_nonlinear and its coefficient of variation
  std::vector<double> widths;
  /// e(W) at the data widths: FVU_nonlinear after inference-time optimisation (pursuit on every
  /// width's decoder); without it the encoder band is empty (encoder = nonlinear = h)
  bool has_encoder_band = false;
  std::vector<double> encoder_boundary;
  /// per width (the data widths, then a grid to 4x the largest): the stacked bands' upper edges,
  /// nonlinear [0, e], encoder [e, h], linear [h, c], absent [c, curve]
  std::vector<double> band_widths, nonlinear, encoder, linear, absent;
  std::vector<double> truth_absent, truth_introduced;  ///< ground-truth shares at the data widths
};

struct DarkMatterReport {
  std::string source;
  std::uint64_t rows = 0, train_rows = 0, test_rows = 0, split_seed = 0;
  std::size_t dim = 0;
  double condition_number = NAN;
  bool condition_exact = true;
  std::string solve_method;
  double ridge = 0;
  bool intercept = true;
  std::map<std::string, RegressorR2> x_norms;  ///< "x_sq", "x", "x_centered_sq"
  std::vector<SaeDecomposition> saes;
  std::vector<CrossWidthMatrix> cross_width;  ///< squared, then unsquared norms
  TokenSeries series;
  DarkMatterBreakdown breakdown;
  double seconds = 0;
  std::map<std::string, double> phase_seconds;  ///< fit, decompose, second_stage, baselines, cross_width
};

namespace detail {
inline nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
inline nlohmann::json nums(const std::vector<double>& v) {
  auto a = nlohmann::json::array();
  for (double x : v) a.push_back(num(x));
  return a;
}
inline nlohmann::json matrix(const std::vector<std::vector<double>>& m) {
  auto a = nlohmann::json::array();
  for (const auto& r : m) a.push_back(nums(r));
  return a;
}
inline nlohmann::json regressors(const std::map<std::string, RegressorR2>& m) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& [target, r] : m) {
    nlohmann::json t = nlohmann::json::object();
    for (const auto& [reg, v] : r) t[reg] = num(v);
    o[target] = t;
  }
  return o;
}
}  // namespace detail

inline nlohmann::json to_json(const DarkMatterReport& r) {
  using detail::num;
  nlohmann::json j;
  j["source"] = r.source;
  j["rows"] = {{"total", r.rows}, {"train", r.train_rows}, {"test", r.test_rows}, {"split_seed", r.split_seed}};
  j["dim"] = r.dim;
  j["probe"] = {{"intercept", r.intercept},
                {"ridge", r.ridge},
                {"solve_method", r.solve_method},
                {"condition_number", num(r.condition_number)},
                {"condition_exact", r.condition_exact}};
  j["x_norms"] = detail::regressors(r.x_norms);
  auto saes = nlohmann::json::array();
  for (const auto& s : r.saes) {
    nlohmann::json o{{"label", s.label},
                     {"architecture", s.architecture},
                     {"width", s.width},
                     {"l0", num(s.l0)},
                     {"fvu", num(s.fvu)},
                     {"fvu_nonlinear", num(s.fvu_nonlinear)},
                     {"error_r2", num(s.error_r2)},
                     {"error_fvu", num(s.error_fvu)},
                     {"mean_sq_error", num(s.mean_sq_error)},
                     {"mean_sq_linear_error", num(s.mean_sq_linear)},
                     {"mean_sq_nonlinear_error", num(s.mean_sq_nonlinear)},
                     {"cos_linear_error_x", num(s.cos_linear_error_x)},
                     {"norm_ratio", num(s.norm_ratio)},
                     {"identity_max_abs", num(s.identity_max_abs)},
                     {"norms", detail::regressors(s.norms)}};
    if (s.truth) {
      const auto& t = *s.truth;
      o["ground_truth"] = {{"match_threshold", t.match_threshold},
                           {"captured_features", t.captured_features},
                           {"num_features", t.num_features},
                           {"mcc", num(t.mcc)},
                           {"absent_share", num(t.absent_share)},
                           {"introduced_share", num(t.introduced_share)},
                           {"cross_share", num(t.cross_share)},
                           {"r2_absent", num(t.r2_absent)},
                           {"r2_introduced", num(t.r2_introduced)},
                           {"linear_from_absent", num(t.linear_from_absent)},
                           {"linear_from_introduced", num(t.linear_from_introduced)},
                           {"nonlinear_from_absent", num(t.nonlinear_from_absent)},
                           {"nonlinear_from_introduced", num(t.nonlinear_from_introduced)},
                           {"dense_share", num(t.dense_share)},
                           {"absent_dense_share", num(t.absent_dense_share)},
                           {"dense_introduced_share", num(t.dense_introduced_share)},
                           {"r2_dense", num(t.r2_dense)},
                           {"r2_dense_pooled", num(t.r2_dense_pooled)},
                           {"linear_from_dense", num(t.linear_from_dense)},
                           {"nonlinear_from_dense", num(t.nonlinear_from_dense)}};
    }
    saes.push_back(o);
  }
  j["saes"] = saes;
  auto cw = nlohmann::json::array();
  for (const auto& m : r.cross_width)
    cw.push_back({{"squared", m.squared},
                  {"labels", m.labels},
                  {"widths", m.widths},
                  {"r2", detail::matrix(m.r2)},
                  {"r2_with_nonlinear", detail::matrix(m.r2_with_nonlinear)},
                  {"fvu_decrease_percent", detail::matrix(m.fvu_decrease_percent)}});
  j["cross_width"] = cw;
  j["token_series"] = {{"rows", r.series.rows},
                       {"error", detail::matrix(r.series.error)},
                       {"linear_error", detail::matrix(r.series.linear)},
                       {"nonlinear_error", detail::matrix(r.series.nonlinear)},
                       {"cv_linear", num(r.series.cv_linear)},
                       {"cv_nonlinear", num(r.series.cv_nonlinear)}};
  const auto& b = r.breakdown;
  j["breakdown"] = {{"fitted", b.fitted},
                    {"note", b.note},
                    {"c", num(b.c)},
                    {"a", num(b.a)},
                    {"m", num(b.m)},
                    {"rms", num(b.rms)},
                    {"h", num(b.h)},
                    {"h_cv", num(b.h_cv)},
                    {"widths", detail::nums(b.widths)},
                    {"band_widths", detail::nums(b.band_widths)},
                    {"has_encoder_band", b.has_encoder_band},
                    {"encoder_boundary", detail::nums(b.encoder_boundary)},
                    {"nonlinear", detail::nums(b.nonlinear)},
                    {"encoder", detail::nums(b.encoder)},
                    {"linear", detail::nums(b.linear)},
                    {"absent", detail::nums(b.absent)},
                    {"truth_absent", detail::nums(b.truth_absent)},
                    {"truth_introduced", detail::nums(b.truth_introduced)}};
  j["seconds"] = r.seconds;
  j["phase_seconds"] = r.phase_seconds;
  return j;
}

}  // namespace synthsae::analysis
