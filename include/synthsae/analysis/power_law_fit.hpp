#pragma once
// The "dark matter" scaling fit of Engels et al., "Decomposing the dark matter of sparse
// autoencoders" (§4.3, Fig. 1; reference dark-matter.md §2.4): a power law with a constant,
// FVU(W) = c + a·W^(−m) with a, c, m >= 0, over SAE widths W; the horizontal fit
// h = mean FVU_nonlinear(W); and the four stacked bands drawn against W. Host only, double
// precision.
//
// The fit. For a fixed m the model is linear in (c, a), so the best non-negative (c, a) has a
// closed form (non-negative least squares in two unknowns: the unconstrained solution when both
// components are >= 0, else the better of the two edges a = 0 and c = 0, each solved in closed
// form and clamped at 0). The profile J(m) = min_{c, a >= 0} J(c, a, m) is scanned on a log grid
// over [m_min, m_max] and refined by golden-section search between the best grid point's
// neighbours: no starting point to choose, and the global minimum up to the grid's resolution of
// separate local minima. (The authors' code runs Adam on |c| + |a|·W^(−|m|), 50k steps.)
//
// FitSpace::linear minimises the weighted MSE of FVU (the authors' objective). FitSpace::log
// minimises the weighted MSE of ln FVU, which is not linear in (c, a). There the model is written
// f = s·((1 − t) + t·(W/W_ref)^(−m)) with s > 0 and t in [0, 1] (c = s(1 − t), a = s·t·W_ref^m):
// for fixed (m, t) the best ln s is a weighted mean, so each m is a 1-D search over t (grid +
// golden section), t = 0 and t = 1 being the edges a = 0 and c = 0.
//
// Inside, widths enter as ln(W / W_min), so W^(−m) never under- or overflows during the search.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "synthsae/core/error.hpp"

namespace synthsae::analysis {

/// What the fit minimises: the weighted mean of (FVU − f)² or of (ln FVU − ln f)².
enum class FitSpace { linear, log };

struct PowerLawOptions {
  std::vector<double> weights;        ///< one per point, finite and >= 0; empty = uniform
  FitSpace space = FitSpace::linear;  ///< linear MSE as the authors' code; log needs FVU > 0
  double m_min = 1e-3;                ///< the log grid over m: [m_min, m_max], grid_points points
  double m_max = 4.0;
  int grid_points = 512;
  double m_tolerance = 1e-12;  ///< the refinement stops at a bracket of m_tolerance · m
};

/// FVU(W) = c + a·W^(−m), fitted. When a = 0 the data are flat (no a > 0 improves on a constant)
/// and m is undetermined: m = 0 is reported, with m_determined = false.
struct PowerLawFit {
  double c = 0;  ///< the asymptote, FVU at infinite width
  double a = 0;
  double m = 0;
  double rms = 0;        ///< sqrt of the weighted mean of residuals² (linear residuals, whatever the space)
  double objective = 0;  ///< what was minimised: weighted mean of squared residuals in `space`
  FitSpace space = FitSpace::linear;
  std::vector<double> widths;     ///< the data, as given
  std::vector<double> fvu;        ///< the data, as given
  std::vector<double> residuals;  ///< fvu[i] − predict(widths[i])
  bool m_at_lower_bound = false;  ///< m = options.m_min: the data want m below the grid (log-like decay)
  bool m_at_upper_bound = false;  ///< m = options.m_max: the data want a steeper drop than the grid allows
  bool m_determined = true;       ///< false when a = 0
  bool a_is_zero = false;         ///< the constraint a >= 0 is active (flat or rising data)
  bool c_is_zero = false;         ///< the constraint c >= 0 is active

  /// c + a·W^(−m); ConfigError naming "width" unless W is finite and > 0.
  double predict(double width) const {
    if (!(width > 0) || !std::isfinite(width)) throw ConfigError("width", show(width), "must be finite and > 0");
    return a == 0 ? c : c + a * std::pow(width, -m);
  }
};

namespace detail {

struct PowerLawData {
  std::vector<double> log_width;  ///< ln(W / w_ref) >= 0
  std::vector<double> y;          ///< FVU, or ln FVU in log space
  std::vector<double> weight;     ///< normalised to sum 1
  double w_ref = 1;               ///< the smallest width
  FitSpace space = FitSpace::linear;
};

inline void validate_power_law_options(const PowerLawOptions& o) {
  if (!(o.m_min > 0) || !std::isfinite(o.m_min))
    throw ConfigError("options.m_min", show(o.m_min), "must be finite and > 0");
  if (!(o.m_max > o.m_min) || !std::isfinite(o.m_max))
    throw ConfigError("options.m_max", show(o.m_max), "must be finite and > options.m_min = " + show(o.m_min));
  if (o.grid_points < 3) throw ConfigError("options.grid_points", show(o.grid_points), "must be at least 3");
  if (!(o.m_tolerance > 0) || !std::isfinite(o.m_tolerance))
    throw ConfigError("options.m_tolerance", show(o.m_tolerance), "must be finite and > 0");
}

/// Checks every input (ConfigError naming the field and value) and prepares the search's data.
inline PowerLawData prepare_power_law_data(std::span<const double> widths, std::span<const double> fvu,
                                           const PowerLawOptions& o) {
  validate_power_law_options(o);
  const std::size_t n = widths.size();
  if (n < 3) throw ConfigError("widths.size()", show(n), "need at least 3 points to fit c, a and m");
  if (fvu.size() != n) throw ConfigError("fvu.size()", show(fvu.size()), "must equal widths.size() = " + show(n));
  if (!o.weights.empty() && o.weights.size() != n)
    throw ConfigError("options.weights.size()", show(o.weights.size()),
                      "must be 0 (uniform weights) or widths.size() = " + show(n));
  for (std::size_t i = 0; i < n; ++i) {
    if (!(widths[i] > 0) || !std::isfinite(widths[i]))
      throw ConfigError("widths[" + show(i) + "]", show(widths[i]), "must be finite and > 0");
    if (!std::isfinite(fvu[i])) throw ConfigError("fvu[" + show(i) + "]", show(fvu[i]), "must be finite");
    if (o.space == FitSpace::log && !(fvu[i] > 0))
      throw ConfigError("fvu[" + show(i) + "]", show(fvu[i]), "must be > 0 when fitting in log space");
    if (!o.weights.empty() && (!(o.weights[i] >= 0) || !std::isfinite(o.weights[i])))
      throw ConfigError("options.weights[" + show(i) + "]", show(o.weights[i]), "must be finite and >= 0");
  }
  // m is identified only by at least three distinct widths that carry weight.
  std::vector<double> used;
  for (std::size_t i = 0; i < n; ++i)
    if (o.weights.empty() || o.weights[i] > 0) used.push_back(widths[i]);
  std::sort(used.begin(), used.end());
  const auto distinct = static_cast<std::size_t>(std::unique(used.begin(), used.end()) - used.begin());
  if (distinct < 3)
    throw ConfigError("widths", show(distinct) + " distinct widths with positive weight",
                      "need at least 3 distinct widths to fit c, a and m");

  PowerLawData d;
  d.space = o.space;
  d.w_ref = used.front();
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += o.weights.empty() ? 1.0 : o.weights[i];
  for (std::size_t i = 0; i < n; ++i) {
    const double w = (o.weights.empty() ? 1.0 : o.weights[i]) / total;
    if (w == 0) continue;  // zero weight: the point does not enter the fit
    d.weight.push_back(w);
    d.log_width.push_back(std::log(widths[i] / d.w_ref));
    d.y.push_back(o.space == FitSpace::log ? std::log(fvu[i]) : fvu[i]);
  }
  return d;
}

/// (c, a_ref) at one m, with a_ref the coefficient of (W / w_ref)^(−m), and the objective.
struct PowerLawCoefficients {
  double c = 0, a_ref = 0, objective = std::numeric_limits<double>::infinity();
};

struct Minimum {
  double x = 0, f = std::numeric_limits<double>::infinity();
};

/// Golden-section search for a minimum of f on [lo, hi]; the best point evaluated.
template <class F>
Minimum golden_section_minimum(F&& f, double lo, double hi, double tolerance) {
  const double r = (std::sqrt(5.0) - 1) / 2;
  double x1 = hi - r * (hi - lo), x2 = lo + r * (hi - lo);
  double f1 = f(x1), f2 = f(x2);
  Minimum best = f1 <= f2 ? Minimum{x1, f1} : Minimum{x2, f2};
  for (int it = 0; it < 400 && hi - lo > tolerance; ++it) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - r * (hi - lo);
      f1 = f(x1);
      if (f1 < best.f) best = {x1, f1};
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + r * (hi - lo);
      f2 = f(x2);
      if (f2 < best.f) best = {x2, f2};
    }
  }
  return best;
}

/// f on every grid point (ascending), then golden section between the best point's neighbours
/// down to a bracket of abs_tolerance + rel_tolerance · |x|. A minimum at a grid end stays
/// exactly at that end unless the refinement finds a lower value.
template <class F>
Minimum scan_then_refine(F&& f, const std::vector<double>& grid, double abs_tolerance, double rel_tolerance) {
  std::size_t k = 0;
  Minimum best;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double v = f(grid[i]);
    if (v < best.f) {
      best = {grid[i], v};
      k = i;
    }
  }
  if (!std::isfinite(best.f)) return {grid[k], best.f};
  const double lo = grid[k == 0 ? 0 : k - 1], hi = grid[std::min(k + 1, grid.size() - 1)];
  const Minimum refined =
      golden_section_minimum(f, lo, hi, abs_tolerance + rel_tolerance * std::abs(grid[k]));
  return refined.f < best.f ? refined : best;
}

/// Two-unknown NNLS of y ≈ c + a_ref·u (weighted), u = (W / w_ref)^(−m).
inline PowerLawCoefficients linear_coefficients(const PowerLawData& d, double m, std::vector<double>& u) {
  const std::size_t n = d.y.size();
  double ub = 0, yb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    u[i] = std::exp(-m * d.log_width[i]);
    ub += d.weight[i] * u[i];
    yb += d.weight[i] * d.y[i];
  }
  double cuu = 0, cuy = 0, suu = 0, suy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double du = u[i] - ub;
    cuu += d.weight[i] * du * du;
    cuy += d.weight[i] * du * (d.y[i] - yb);
    suu += d.weight[i] * u[i] * u[i];
    suy += d.weight[i] * u[i] * d.y[i];
  }
  auto objective = [&](double c, double a) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double r = d.y[i] - c - a * u[i];
      s += d.weight[i] * r * r;
    }
    return s;
  };
  // The edge a = 0 first: on ties (flat data) it wins.
  PowerLawCoefficients best{std::max(0.0, yb), 0.0, 0.0};
  best.objective = objective(best.c, best.a_ref);
  auto consider = [&](double c, double a) {
    if (!(c >= 0) || !(a >= 0) || !std::isfinite(c) || !std::isfinite(a)) return;
    const double v = objective(c, a);
    if (v < best.objective) best = {c, a, v};
  };
  if (cuu > 0) {
    const double a = cuy / cuu;
    consider(yb - a * ub, a);  // unconstrained; the global minimum whenever feasible
  }
  if (suu > 0) consider(0.0, std::max(0.0, suy / suu));  // the edge c = 0
  return best;
}

/// ln-space objective at (m, t) for u = (W / w_ref)^(−m): the best ln s is the weighted mean.
inline PowerLawCoefficients log_coefficients_at(const PowerLawData& d, const std::vector<double>& u, double t) {
  t = std::clamp(t, 0.0, 1.0);
  const std::size_t n = d.y.size();
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) mean += d.weight[i] * (d.y[i] - std::log((1 - t) + t * u[i]));
  double v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double r = d.y[i] - std::log((1 - t) + t * u[i]) - mean;
    v += d.weight[i] * r * r;
  }
  const double s = std::exp(mean);
  return {s * (1 - t), s * t, v};
}

inline const std::vector<double>& unit_grid() {
  static const std::vector<double> grid = [] {
    std::vector<double> g(65);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = static_cast<double>(i) / static_cast<double>(g.size() - 1);
    return g;
  }();
  return grid;
}

inline PowerLawCoefficients log_coefficients(const PowerLawData& d, double m, std::vector<double>& u) {
  for (std::size_t i = 0; i < d.y.size(); ++i) u[i] = std::exp(-m * d.log_width[i]);
  const Minimum t = scan_then_refine([&](double tt) { return log_coefficients_at(d, u, tt).objective; }, unit_grid(),
                                     1e-15, 0.0);
  return log_coefficients_at(d, u, t.x);
}

inline PowerLawCoefficients coefficients_at(const PowerLawData& d, double m, std::vector<double>& u) {
  return d.space == FitSpace::log ? log_coefficients(d, m, u) : linear_coefficients(d, m, u);
}

inline double objective_of(std::span<const double> widths, std::span<const double> fvu, const std::vector<double>& w,
                           FitSpace space, double c, double a, double m) {
  double total = 0, sum = 0;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    const double wi = w.empty() ? 1.0 : w[i];
    total += wi;
    if (wi == 0) continue;
    const double f = a == 0 ? c : c + a * std::pow(widths[i], -m);
    double r = 0;
    if (space == FitSpace::log)
      r = f > 0 ? std::log(fvu[i]) - std::log(f) : std::numeric_limits<double>::infinity();
    else
      r = fvu[i] - f;
    sum += wi * r * r;
  }
  return sum / total;
}

}  // namespace detail

/// The objective the fit minimises (weighted mean of squared residuals in options.space) at any
/// (c, a, m); the same checks as fit_power_law_with_constant.
inline double power_law_objective(std::span<const double> widths, std::span<const double> fvu, double c, double a,
                                  double m, const PowerLawOptions& options = {}) {
  (void)detail::prepare_power_law_data(widths, fvu, options);
  return detail::objective_of(widths, fvu, options.weights, options.space, c, a, m);
}

/// Fits FVU(W) = c + a·W^(−m), a, c, m >= 0 (see the top of this file). ConfigError naming the
/// field and value: fewer than 3 points, sizes that differ, a width <= 0, a non-finite value, a
/// negative weight, fewer than 3 distinct widths with positive weight, FVU <= 0 in log space, an
/// option out of its domain.
inline PowerLawFit fit_power_law_with_constant(std::span<const double> widths, std::span<const double> fvu,
                                               PowerLawOptions options = {}) {
  const detail::PowerLawData d = detail::prepare_power_law_data(widths, fvu, options);
  std::vector<double> u(d.y.size());

  const auto points = static_cast<std::size_t>(options.grid_points);
  std::vector<double> grid(points);
  const double log_lo = std::log(options.m_min), log_hi = std::log(options.m_max);
  for (std::size_t k = 0; k < points; ++k)
    grid[k] = std::exp(log_lo + (log_hi - log_lo) * static_cast<double>(k) / static_cast<double>(points - 1));
  grid.front() = options.m_min;
  grid.back() = options.m_max;

  auto profile = [&](double m) { return detail::coefficients_at(d, m, u).objective; };
  const detail::Minimum m_best = detail::scan_then_refine(profile, grid, 0.0, options.m_tolerance);
  const detail::PowerLawCoefficients coefficients = detail::coefficients_at(d, m_best.x, u);

  PowerLawFit fit;
  fit.space = options.space;
  fit.m = m_best.x;
  fit.c = coefficients.c;
  fit.a = coefficients.a_ref * std::exp(fit.m * std::log(d.w_ref));
  fit.objective = coefficients.objective;
  fit.m_at_lower_bound = fit.m == options.m_min;
  fit.m_at_upper_bound = fit.m == options.m_max;

  // Flat data: if a constant does as well (to rounding), report a = 0 and m undetermined.
  {
    double mean = 0, scale = 0;
    for (std::size_t i = 0; i < d.y.size(); ++i) {
      mean += d.weight[i] * d.y[i];
      scale += d.weight[i] * d.y[i] * d.y[i];
    }
    const double c0 = d.space == FitSpace::log ? std::exp(mean) : std::max(0.0, mean);
    const double y0 = d.space == FitSpace::log ? mean : c0;
    double v0 = 0;
    for (std::size_t i = 0; i < d.y.size(); ++i) v0 += d.weight[i] * (d.y[i] - y0) * (d.y[i] - y0);
    const double rounding = 1e-24 * (d.space == FitSpace::log ? 1.0 : scale);
    if (fit.a == 0 || v0 <= fit.objective + rounding) {
      fit.a = 0;
      fit.c = c0;
      fit.m = 0;
      fit.objective = v0;
      fit.m_determined = false;
      fit.m_at_lower_bound = fit.m_at_upper_bound = false;
    }
  }
  fit.a_is_zero = fit.a == 0;
  fit.c_is_zero = fit.c == 0;

  fit.widths.assign(widths.begin(), widths.end());
  fit.fvu.assign(fvu.begin(), fvu.end());
  fit.residuals.resize(widths.size());
  double total = 0, sum = 0;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    fit.residuals[i] = fvu[i] - fit.predict(widths[i]);
    const double w = options.weights.empty() ? 1.0 : options.weights[i];
    total += w;
    sum += w * fit.residuals[i] * fit.residuals[i];
  }
  fit.rms = std::sqrt(sum / total);
  return fit;
}

/// The horizontal fit of FVU_nonlinear(W): h = the mean. ConfigError naming "values" when empty
/// or when a value is not finite.
inline double horizontal_fit(std::span<const double> values) {
  if (values.empty()) throw ConfigError("values.size()", "0", "need at least one value");
  double sum = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) throw ConfigError("values[" + show(i) + "]", show(values[i]), "must be finite");
    sum += values[i];
  }
  return sum / static_cast<double>(values.size());
}

/// Population standard deviation over |mean| (numpy's np.std / np.mean for positive data): how
/// flat a horizontal fit is (§2.4's acceptance is < 0.15 across widths). ConfigError naming
/// "values" when empty, non-finite or of mean 0.
inline double coefficient_of_variation(std::span<const double> values) {
  const double mean = horizontal_fit(values);
  if (mean == 0) throw ConfigError("mean(values)", "0", "the coefficient of variation needs a nonzero mean");
  double ss = 0;
  for (const double v : values) ss += (v - mean) * (v - mean);
  return std::sqrt(ss / static_cast<double>(values.size())) / std::abs(mean);
}

/// One band of the stack at one width. lower/upper are stacked and clamped so that
/// 0 <= lower <= upper <= curve and the four bands tile [0, curve]; signed_thickness is §2.4's
/// unclamped upper − lower (negative where the boundaries cross, e.g. c < h for the linear band).
struct Band {
  double lower = 0, upper = 0;
  double signed_thickness = 0;
  bool clamped = false;  ///< lower or upper differs from the unclamped boundary
  double thickness() const { return upper - lower; }
};

/// The stack at one width: nonlinear [0, e], encoder [e, h], linear [h, c], absent [c, curve].
struct DarkMatterPoint {
  double width = 0;
  double curve = 0;             ///< fit.predict(width)
  double encoder_boundary = 0;  ///< e(width); h when no encoder boundary was given
  Band nonlinear, encoder, linear, absent;
};

struct DarkMatterBands {
  double c = 0, h = 0;
  std::vector<DarkMatterPoint> points;  ///< one per output width, in the given order
  bool c_below_h = false;  ///< the asymptote lies under the nonlinear level: the linear band's signed
                           ///< thickness c − h is negative at every width (its clamped band is empty)
  bool encoder_above_h = false;  ///< e(W) > h at some output width (encoder band negative there)
  bool curve_below_h = false;    ///< the curve lies under h at some output width (bands above it empty)
  bool any_clamped = false;      ///< some band at some width was clamped
};

namespace detail {

/// Piecewise-linear in ln W through (ln widths[i], values[i]), values at equal widths averaged,
/// held at the first / last value outside the data.
struct LogWidthInterpolant {
  std::vector<double> x, y;

  LogWidthInterpolant(std::span<const double> widths, std::span<const double> values) {
    std::vector<std::pair<double, double>> pts;
    for (std::size_t i = 0; i < widths.size(); ++i) pts.emplace_back(std::log(widths[i]), values[i]);
    std::sort(pts.begin(), pts.end(), [](const auto& p, const auto& q) { return p.first < q.first; });
    for (std::size_t i = 0; i < pts.size();) {
      std::size_t j = i;
      double sum = 0;
      while (j < pts.size() && pts[j].first == pts[i].first) sum += pts[j++].second;
      x.push_back(pts[i].first);
      y.push_back(sum / static_cast<double>(j - i));
      i = j;
    }
  }

  double operator()(double width) const {
    const double lx = std::log(width);
    if (lx <= x.front()) return y.front();
    if (lx >= x.back()) return y.back();
    const auto k = static_cast<std::size_t>(std::upper_bound(x.begin(), x.end(), lx) - x.begin());  // x[k-1] < lx < x[k]
    const double f = (lx - x[k - 1]) / (x[k] - x[k - 1]);
    return y[k - 1] + f * (y[k] - y[k - 1]);
  }
};

}  // namespace detail

/// The four stacked areas of §2.4 at each output width: nonlinear [0, e(W)], encoder [e(W), h],
/// linear [h, c], absent [c, c + a·W^(−m)]. encoder_boundary holds e at the fit's data widths
/// (fit.widths; e.g. FVU_nonlinear after inference-time optimisation), interpolated linearly in
/// ln W and held at the end values outside the data; absent, e = h and the encoder band is empty.
/// Crossed boundaries are not hidden: see Band and the flags of DarkMatterBands. ConfigError
/// naming the field: h, widths_out[i], encoder_boundary[i] or its size, fit.c / fit.a / fit.m.
inline DarkMatterBands dark_matter_bands(const PowerLawFit& fit, double h, std::span<const double> widths_out,
                                         std::optional<std::span<const double>> encoder_boundary = std::nullopt) {
  if (!(fit.c >= 0) || !std::isfinite(fit.c)) throw ConfigError("fit.c", show(fit.c), "must be finite and >= 0");
  if (!(fit.a >= 0) || !std::isfinite(fit.a)) throw ConfigError("fit.a", show(fit.a), "must be finite and >= 0");
  if (!(fit.m >= 0) || !std::isfinite(fit.m)) throw ConfigError("fit.m", show(fit.m), "must be finite and >= 0");
  if (!(h >= 0) || !std::isfinite(h)) throw ConfigError("h", show(h), "must be finite and >= 0");
  for (std::size_t i = 0; i < widths_out.size(); ++i)
    if (!(widths_out[i] > 0) || !std::isfinite(widths_out[i]))
      throw ConfigError("widths_out[" + show(i) + "]", show(widths_out[i]), "must be finite and > 0");
  std::optional<detail::LogWidthInterpolant> e_of;
  if (encoder_boundary) {
    const std::span<const double> e = *encoder_boundary;
    if (fit.widths.empty())
      throw ConfigError("fit.widths", "empty", "the encoder boundary is given at the fit's data widths");
    if (e.size() != fit.widths.size())
      throw ConfigError("encoder_boundary.size()", show(e.size()),
                        "must equal the fit's number of data widths = " + show(fit.widths.size()));
    for (std::size_t i = 0; i < e.size(); ++i)
      if (!std::isfinite(e[i])) throw ConfigError("encoder_boundary[" + show(i) + "]", show(e[i]), "must be finite");
    for (std::size_t i = 0; i < fit.widths.size(); ++i)
      if (!(fit.widths[i] > 0) || !std::isfinite(fit.widths[i]))
        throw ConfigError("fit.widths[" + show(i) + "]", show(fit.widths[i]), "must be finite and > 0");
    e_of.emplace(fit.widths, e);
  }

  DarkMatterBands out;
  out.c = fit.c;
  out.h = h;
  out.c_below_h = fit.c < h;
  out.points.reserve(widths_out.size());
  for (const double width : widths_out) {
    DarkMatterPoint p;
    p.width = width;
    p.curve = fit.predict(width);
    p.encoder_boundary = e_of ? (*e_of)(width) : h;
    const double raw[5] = {0.0, p.encoder_boundary, h, fit.c, p.curve};
    double stacked[5] = {0.0, 0.0, 0.0, 0.0, p.curve};
    for (int k = 1; k < 4; ++k) stacked[k] = std::clamp(raw[k], stacked[k - 1], p.curve);
    Band* bands[4] = {&p.nonlinear, &p.encoder, &p.linear, &p.absent};
    for (int k = 0; k < 4; ++k) {
      Band& b = *bands[k];
      b.lower = stacked[k];
      b.upper = stacked[k + 1];
      b.signed_thickness = raw[k + 1] - raw[k];
      b.clamped = stacked[k] != raw[k] || stacked[k + 1] != raw[k + 1];
      out.any_clamped = out.any_clamped || b.clamped;
    }
    out.encoder_above_h = out.encoder_above_h || p.encoder_boundary > h;
    out.curve_below_h = out.curve_below_h || p.curve < h;
    out.points.push_back(p);
  }
  return out;
}

}  // namespace synthsae::analysis
