// The power law with a constant (FVU(W) = c + a·W^(−m), a, c, m >= 0) against known parameters,
// its constraint edges, a dense brute-force grid over (c, a, m), and the dark-matter bands.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "synthsae/analysis/power_law_fit.hpp"

using namespace synthsae;
using namespace synthsae::analysis;

namespace {

std::vector<double> doubling_widths(double first, double last) {
  std::vector<double> w;
  for (double x = first; x <= last; x *= 2) w.push_back(x);
  return w;
}

std::vector<double> power_law(const std::vector<double>& widths, double c, double a, double m) {
  std::vector<double> y;
  for (const double w : widths) y.push_back(c + a * std::pow(w, -m));
  return y;
}

// Deterministic small noise.
void add_noise(std::vector<double>& y, double amplitude) {
  for (std::size_t i = 0; i < y.size(); ++i) y[i] += amplitude * std::sin(2.3 * static_cast<double>(i) + 0.7);
}

double sse(const std::vector<double>& w, const std::vector<double>& y, double c, double a, double m) {
  double s = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double r = y[i] - c - a * std::pow(w[i], -m);
    s += r * r;
  }
  return s;
}

double rms(const std::vector<double>& w, const std::vector<double>& y, double c, double a, double m) {
  return std::sqrt(sse(w, y, c, a, m) / static_cast<double>(w.size()));
}

template <class F>
void require_config_error(F&& f, const std::string& field) {
  INFO("field " << field);
  try {
    f();
    FAIL("no ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.field() == field);
    CHECK(std::string(e.what()).find(field) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("power law fit recovers (c, a, m) from noiseless data", "[analysis][power_law]") {
  const std::vector<double> widths = doubling_widths(32, 4096);
  struct Truth {
    double c, a, m;
  };
  const Truth truths[] = {{0.12, 1.7, 0.45}, {0.05, 30.0, 1.3}, {0.3, 0.4, 0.08}, {0.01, 2.0, 2.5}};
  for (const FitSpace space : {FitSpace::linear, FitSpace::log}) {
    for (const Truth& t : truths) {
      INFO("c " << t.c << " a " << t.a << " m " << t.m << " log space " << (space == FitSpace::log));
      const std::vector<double> y = power_law(widths, t.c, t.a, t.m);
      PowerLawOptions options;
      options.space = space;
      const PowerLawFit fit = fit_power_law_with_constant(widths, y, options);
      CHECK(fit.c == Approx(t.c).epsilon(1e-6));
      CHECK(fit.a == Approx(t.a).epsilon(1e-6));
      CHECK(fit.m == Approx(t.m).epsilon(1e-6));
      CHECK(fit.rms < 1e-10);
      CHECK(fit.objective < 1e-20);
      CHECK(fit.m_determined);
      CHECK_FALSE(fit.m_at_lower_bound);
      CHECK_FALSE(fit.m_at_upper_bound);
      CHECK_FALSE(fit.a_is_zero);
      CHECK_FALSE(fit.c_is_zero);
      REQUIRE(fit.residuals.size() == widths.size());
      for (std::size_t i = 0; i < widths.size(); ++i) CHECK(std::abs(fit.residuals[i]) < 1e-10);
      CHECK(fit.widths == widths);
      CHECK(fit.fvu == y);
      CHECK(fit.predict(1 << 20) == Approx(t.c + t.a * std::pow(1 << 20, -t.m)).epsilon(1e-6));
    }
  }
}

TEST_CASE("power law fit at the constraint edges: c = 0 and flat data", "[analysis][power_law]") {
  const std::vector<double> widths = doubling_widths(32, 4096);
  SECTION("c = 0 true") {
    const std::vector<double> y = power_law(widths, 0.0, 2.0, 0.3);
    const PowerLawFit fit = fit_power_law_with_constant(widths, y);
    CHECK(fit.c >= 0);
    CHECK(fit.c < 1e-9);
    CHECK(fit.a == Approx(2.0).epsilon(1e-6));
    CHECK(fit.m == Approx(0.3).epsilon(1e-6));
    CHECK(fit.rms < 1e-10);
  }
  SECTION("c = 0 active: data that want a negative asymptote") {
    std::vector<double> y = power_law(widths, -0.02, 1.0, 0.35);
    const PowerLawFit fit = fit_power_law_with_constant(widths, y);
    CHECK(fit.c == 0);
    CHECK(fit.c_is_zero);
    CHECK(fit.a > 0);
    CHECK(fit.rms > 0);
  }
  SECTION("flat data: a = 0, c = mean, m undetermined") {
    const std::vector<double> y(widths.size(), 0.2);
    for (const FitSpace space : {FitSpace::linear, FitSpace::log}) {
      PowerLawOptions options;
      options.space = space;
      const PowerLawFit fit = fit_power_law_with_constant(widths, y, options);
      CHECK(fit.a == 0);
      CHECK(fit.a_is_zero);
      CHECK_FALSE(fit.m_determined);
      CHECK(fit.m == 0);
      CHECK(fit.c == Approx(0.2).epsilon(1e-12));
      CHECK(fit.predict(1e9) == fit.c);
      CHECK_FALSE(fit.m_at_lower_bound);
      CHECK_FALSE(fit.m_at_upper_bound);
    }
  }
  SECTION("rising data: a = 0, c = mean") {
    std::vector<double> y;
    for (const double w : widths) y.push_back(0.1 + 0.01 * std::log(w));
    double mean = 0;
    for (const double v : y) mean += v / static_cast<double>(y.size());
    const PowerLawFit fit = fit_power_law_with_constant(widths, y);
    CHECK(fit.a == 0);
    CHECK_FALSE(fit.m_determined);
    CHECK(fit.c == Approx(mean).epsilon(1e-12));
  }
}

TEST_CASE("power law fit flags m at the ends of its grid", "[analysis][power_law]") {
  const std::vector<double> widths = doubling_widths(32, 4096);
  SECTION("log-like decay wants m below m_min") {
    std::vector<double> y;
    for (const double w : widths) y.push_back(5.0 - 0.05 * std::log(w));
    PowerLawOptions options;
    options.m_min = 0.05;
    const PowerLawFit fit = fit_power_law_with_constant(widths, y, options);
    CHECK(fit.m_at_lower_bound);
    CHECK(fit.m == options.m_min);
    CHECK_FALSE(fit.m_at_upper_bound);
  }
  SECTION("a drop steeper than W^-4 wants m above m_max") {
    const std::vector<double> y = power_law(widths, 0.1, 1e6, 6.0);
    const PowerLawFit fit = fit_power_law_with_constant(widths, y);
    CHECK(fit.m_at_upper_bound);
    CHECK(fit.m == 4.0);
    CHECK_FALSE(fit.m_at_lower_bound);
  }
}

TEST_CASE("power law fit with noise is a minimiser: no worse than the truth", "[analysis][power_law]") {
  const std::vector<double> widths = doubling_widths(32, 4096);
  struct Truth {
    double c, a, m, noise;
  };
  const Truth truths[] = {{0.12, 1.7, 0.45, 0.002}, {0.05, 30.0, 1.3, 0.004}, {0.0, 0.8, 0.2, 0.003},
                          {0.2, 0.0, 0.5, 0.01},    {0.3, 0.4, 0.08, 0.001}};
  for (const Truth& t : truths) {
    INFO("c " << t.c << " a " << t.a << " m " << t.m);
    std::vector<double> y = power_law(widths, t.c, t.a, t.m);
    add_noise(y, t.noise);
    const PowerLawFit fit = fit_power_law_with_constant(widths, y);
    CHECK(fit.rms <= rms(widths, y, t.c, t.a, t.m) + 1e-12);
    CHECK(fit.objective == Approx(fit.rms * fit.rms).epsilon(1e-9));
    CHECK(fit.c >= 0);
    CHECK(fit.a >= 0);
    CHECK(fit.m >= 0);
    // rms from the reported residuals
    double ss = 0;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      CHECK(fit.residuals[i] == Approx(y[i] - fit.predict(widths[i])).margin(1e-15));
      ss += fit.residuals[i] * fit.residuals[i];
    }
    CHECK(fit.rms == Approx(std::sqrt(ss / static_cast<double>(widths.size()))).epsilon(1e-12));

    // Log space: the fit's objective is no worse than the truth's (y stays > 0 here).
    PowerLawOptions log_options;
    log_options.space = FitSpace::log;
    const PowerLawFit log_fit = fit_power_law_with_constant(widths, y, log_options);
    CHECK(log_fit.objective <= power_law_objective(widths, y, t.c, t.a, t.m, log_options) + 1e-12);
    CHECK(log_fit.objective ==
          Approx(power_law_objective(widths, y, log_fit.c, log_fit.a, log_fit.m, log_options)).epsilon(1e-9));
  }
}

TEST_CASE("power law fit beats every point of a dense (c, a, m) grid", "[analysis][power_law]") {
  const std::vector<double> widths = {1, 2, 4, 8, 16};
  struct Case {
    const char* name;
    std::vector<double> y;
  };
  std::vector<Case> cases;
  {
    std::vector<double> y = power_law(widths, 0.1, 0.8, 0.7);
    add_noise(y, 0.01);
    cases.push_back({"interior", y});
  }
  {
    std::vector<double> y = power_law(widths, -0.05, 0.6, 0.4);
    add_noise(y, 0.005);
    cases.push_back({"c = 0 active", y});
  }
  {
    std::vector<double> y;
    for (const double w : widths) y.push_back(0.2 + 0.01 * std::log(w));
    add_noise(y, 0.003);
    cases.push_back({"a = 0 active", y});
  }
  for (const Case& k : cases) {
    INFO(k.name);
    const PowerLawFit fit = fit_power_law_with_constant(widths, k.y);
    const double fit_sse = sse(widths, k.y, fit.c, fit.a, fit.m);
    double grid_best = std::numeric_limits<double>::infinity();
    std::vector<double> u(widths.size());
    for (int im = 0; im <= 200; ++im) {
      const double m = 0.01 * im;
      for (std::size_t i = 0; i < widths.size(); ++i) u[i] = std::pow(widths[i], -m);
      for (int ia = 0; ia <= 100; ++ia) {
        const double a = 0.02 * ia;
        for (int ic = 0; ic <= 80; ++ic) {
          const double c = 0.005 * ic;
          double s = 0;
          for (std::size_t i = 0; i < widths.size(); ++i) {
            const double r = k.y[i] - c - a * u[i];
            s += r * r;
          }
          grid_best = std::min(grid_best, s);
        }
      }
    }
    INFO("fit sse " << fit_sse << " grid best " << grid_best);
    CHECK(grid_best >= fit_sse - 1e-13);
    CHECK(grid_best < fit_sse + 1e-3);  // the grid is fine enough to come close
  }
}

TEST_CASE("power law fit honours weights", "[analysis][power_law]") {
  const std::vector<double> widths = doubling_widths(32, 4096);
  std::vector<double> y = power_law(widths, 0.12, 1.7, 0.45);
  add_noise(y, 0.002);
  const PowerLawFit clean = fit_power_law_with_constant(widths, y);
  // An outlier with weight zero changes nothing.
  std::vector<double> widths_plus = widths, y_plus = y;
  widths_plus.push_back(512);
  y_plus.push_back(5.0);
  PowerLawOptions options;
  options.weights.assign(widths_plus.size(), 2.5);
  options.weights.back() = 0;
  const PowerLawFit weighted = fit_power_law_with_constant(widths_plus, y_plus, options);
  CHECK(weighted.c == Approx(clean.c).epsilon(1e-9));
  CHECK(weighted.a == Approx(clean.a).epsilon(1e-9));
  CHECK(weighted.m == Approx(clean.m).epsilon(1e-9));
  CHECK(weighted.rms == Approx(clean.rms).epsilon(1e-9));  // a zero weight leaves the point out of the mean
  CHECK(weighted.residuals.back() == Approx(5.0 - weighted.predict(512)));
  // Weight 2 on a point is the point given twice.
  std::vector<double> widths_twice = widths, y_twice = y;
  widths_twice.push_back(widths[3]);
  y_twice.push_back(y[3]);
  PowerLawOptions double_weight;
  double_weight.weights.assign(widths.size(), 1.0);
  double_weight.weights[3] = 2.0;
  const PowerLawFit a = fit_power_law_with_constant(widths_twice, y_twice);
  const PowerLawFit b = fit_power_law_with_constant(widths, y, double_weight);
  // The objective is flat to rounding over ~1e-8 relative in m near the minimum (noisy data), so
  // the parameters agree to that and the objective to rounding.
  CHECK(a.c == Approx(b.c).epsilon(1e-7));
  CHECK(a.a == Approx(b.a).epsilon(1e-7));
  CHECK(a.m == Approx(b.m).epsilon(1e-7));
  CHECK(a.objective == Approx(b.objective).epsilon(1e-12));
}

TEST_CASE("horizontal fit and coefficient of variation", "[analysis][power_law]") {
  const std::vector<double> v = {1.0, 2.0, 3.0};
  CHECK(horizontal_fit(v) == Approx(2.0));
  CHECK(coefficient_of_variation(v) == Approx(std::sqrt(2.0 / 3.0) / 2.0));
  const std::vector<double> flat = {0.14, 0.14, 0.14, 0.14};
  CHECK(horizontal_fit(flat) == Approx(0.14));
  CHECK(coefficient_of_variation(flat) == 0);
}

TEST_CASE("dark matter bands stack to the curve", "[analysis][power_law]") {
  const std::vector<double> widths = doubling_widths(32, 4096);
  const PowerLawFit fit = fit_power_law_with_constant(widths, power_law(widths, 0.12, 1.7, 0.45));
  const double h = 0.08;
  std::vector<double> e;
  for (std::size_t i = 0; i < widths.size(); ++i) e.push_back(0.05 + 0.002 * static_cast<double>(i));
  const std::vector<double> out = {8, 32, 45.254833995939045, 100, 4096, 1 << 16, 1 << 24};
  const DarkMatterBands bands = dark_matter_bands(fit, h, out, e);
  CHECK(bands.c == fit.c);
  CHECK(bands.h == h);
  CHECK_FALSE(bands.c_below_h);
  CHECK_FALSE(bands.encoder_above_h);
  CHECK_FALSE(bands.curve_below_h);
  CHECK_FALSE(bands.any_clamped);
  REQUIRE(bands.points.size() == out.size());
  for (const DarkMatterPoint& p : bands.points) {
    INFO("width " << p.width);
    CHECK(p.curve == fit.predict(p.width));
    CHECK(p.nonlinear.lower == 0);
    CHECK(p.nonlinear.upper == p.encoder_boundary);
    CHECK(p.encoder.lower == p.encoder_boundary);
    CHECK(p.encoder.upper == h);
    CHECK(p.linear.lower == h);
    CHECK(p.linear.upper == fit.c);
    CHECK(p.absent.lower == fit.c);
    CHECK(p.absent.upper == p.curve);
    const double total =
        p.nonlinear.thickness() + p.encoder.thickness() + p.linear.thickness() + p.absent.thickness();
    CHECK(total == Approx(p.curve).epsilon(1e-14));
    const double signed_total = p.nonlinear.signed_thickness + p.encoder.signed_thickness +
                                p.linear.signed_thickness + p.absent.signed_thickness;
    CHECK(signed_total == Approx(p.curve).epsilon(1e-14));
  }
  // e(W): linear in ln W between data widths, held at the ends outside them.
  CHECK(bands.points[0].encoder_boundary == e.front());                                // below the data
  CHECK(bands.points[1].encoder_boundary == e[0]);                                     // at a data width
  CHECK(bands.points[2].encoder_boundary == Approx(0.5 * (e[0] + e[1])).epsilon(1e-12));  // sqrt(32·64)
  CHECK(bands.points[3].encoder_boundary ==
        Approx(e[1] + (std::log(100.0 / 64) / std::log(2.0)) * (e[2] - e[1])).epsilon(1e-12));
  CHECK(bands.points[4].encoder_boundary == e.back());
  CHECK(bands.points[5].encoder_boundary == e.back());  // beyond the data
  CHECK(bands.points[6].encoder_boundary == e.back());
  CHECK(bands.points[6].absent.thickness() < 1e-2);     // the curve approaches c
}

TEST_CASE("dark matter bands: no encoder boundary, duplicates, crossed boundaries", "[analysis][power_law]") {
  const std::vector<double> widths = doubling_widths(32, 4096);
  const PowerLawFit fit = fit_power_law_with_constant(widths, power_law(widths, 0.12, 1.7, 0.45));
  const std::vector<double> out = {64, 1e4, 1e9};

  SECTION("absent encoder boundary: e = h, the encoder band is empty") {
    const DarkMatterBands bands = dark_matter_bands(fit, 0.1, out);
    for (const DarkMatterPoint& p : bands.points) {
      CHECK(p.encoder_boundary == 0.1);
      CHECK(p.encoder.thickness() == 0);
      CHECK(p.encoder.signed_thickness == 0);
      CHECK(p.nonlinear.upper == 0.1);
    }
    CHECK_FALSE(bands.any_clamped);
  }
  SECTION("repeated widths: e averaged there") {
    const std::vector<double> w = {32, 32, 64, 128, 128};
    const std::vector<double> y = {0.5, 0.52, 0.4, 0.31, 0.33};
    const PowerLawFit f = fit_power_law_with_constant(w, y);
    const std::vector<double> e = {0.01, 0.03, 0.04, 0.05, 0.07};
    const std::vector<double> at = {32, 64, 128, 90.50966799187809};  // sqrt(64·128)
    const DarkMatterBands bands = dark_matter_bands(f, 0.1, at, e);
    CHECK(bands.points[0].encoder_boundary == Approx(0.02));
    CHECK(bands.points[1].encoder_boundary == Approx(0.04));
    CHECK(bands.points[2].encoder_boundary == Approx(0.06));
    CHECK(bands.points[3].encoder_boundary == Approx(0.05));
  }
  SECTION("c < h: flagged, the linear band clamped empty with its negative thickness reported") {
    const double h = 0.2;
    const std::vector<double> e(widths.size(), 0.25);  // also above h
    const DarkMatterBands bands = dark_matter_bands(fit, h, out, e);
    CHECK(bands.c_below_h);
    CHECK(bands.encoder_above_h);
    CHECK(bands.any_clamped);
    CHECK(bands.curve_below_h);  // at 1e9 the curve is near c = 0.12 < h
    for (const DarkMatterPoint& p : bands.points) {
      INFO("width " << p.width);
      CHECK(p.linear.signed_thickness == Approx(fit.c - h));
      CHECK(p.linear.thickness() == 0);
      CHECK(p.linear.clamped);
      CHECK(p.encoder.signed_thickness == Approx(h - 0.25));
      CHECK(p.encoder.thickness() == 0);
      for (const Band* b : {&p.nonlinear, &p.encoder, &p.linear, &p.absent}) {
        CHECK(b->lower >= 0);
        CHECK(b->upper >= b->lower);
        CHECK(b->upper <= p.curve);
      }
      const double total =
          p.nonlinear.thickness() + p.encoder.thickness() + p.linear.thickness() + p.absent.thickness();
      CHECK(total == Approx(p.curve).epsilon(1e-14));
      const double signed_total = p.nonlinear.signed_thickness + p.encoder.signed_thickness +
                                  p.linear.signed_thickness + p.absent.signed_thickness;
      CHECK(signed_total == Approx(p.curve).epsilon(1e-14));
    }
    // At W = 64 the curve is above e: nonlinear [0, 0.25], absent from 0.25 (not c) up to the curve.
    const DarkMatterPoint& p = bands.points[0];
    REQUIRE(p.curve > 0.25);
    CHECK(p.nonlinear.upper == 0.25);
    CHECK(p.absent.lower == 0.25);
    CHECK(p.absent.clamped);
    // At W = 1e9 the curve is below e: the nonlinear band is capped at the curve.
    const DarkMatterPoint& q = bands.points[2];
    CHECK(q.nonlinear.upper == q.curve);
    CHECK(q.nonlinear.clamped);
    CHECK(q.absent.thickness() == 0);
  }
}

TEST_CASE("power law errors name the field", "[analysis][power_law]") {
  const std::vector<double> w = {32, 64, 128, 256};
  const std::vector<double> y = {0.5, 0.4, 0.3, 0.25};
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  auto fit_with = [](std::vector<double> ww, std::vector<double> yy, PowerLawOptions o = {}) {
    return [=] { (void)fit_power_law_with_constant(ww, yy, o); };
  };
  require_config_error(fit_with({32, 64}, {0.5, 0.4}), "widths.size()");
  require_config_error(fit_with(w, {0.5, 0.4, 0.3}), "fvu.size()");
  require_config_error(fit_with({32, 0, 128, 256}, y), "widths[1]");
  require_config_error(fit_with({32, 64, -128, 256}, y), "widths[2]");
  require_config_error(fit_with({inf, 64, 128, 256}, y), "widths[0]");
  require_config_error(fit_with({nan, 64, 128, 256}, y), "widths[0]");
  require_config_error(fit_with(w, {0.5, 0.4, 0.3, nan}), "fvu[3]");
  require_config_error(fit_with(w, {0.5, inf, 0.3, 0.2}), "fvu[1]");
  require_config_error(fit_with({32, 32, 64, 64}, y), "widths");
  PowerLawOptions log_space;
  log_space.space = FitSpace::log;
  require_config_error(fit_with(w, {0.5, 0.4, 0.0, 0.2}, log_space), "fvu[2]");
  PowerLawOptions o;
  o.weights = {1, 1, 1};
  require_config_error(fit_with(w, y, o), "options.weights.size()");
  o.weights = {1, -1, 1, 1};
  require_config_error(fit_with(w, y, o), "options.weights[1]");
  o.weights = {1, 1, nan, 1};
  require_config_error(fit_with(w, y, o), "options.weights[2]");
  o.weights = {1, 1, 0, 0};
  require_config_error(fit_with(w, y, o), "widths");
  o = {};
  o.m_min = 0;
  require_config_error(fit_with(w, y, o), "options.m_min");
  o = {};
  o.m_max = 1e-4;
  require_config_error(fit_with(w, y, o), "options.m_max");
  o = {};
  o.grid_points = 2;
  require_config_error(fit_with(w, y, o), "options.grid_points");
  o = {};
  o.m_tolerance = -1;
  require_config_error(fit_with(w, y, o), "options.m_tolerance");
  require_config_error([&] { (void)power_law_objective(w, std::vector<double>{0.5, nan, 0.3, 0.2}, 0.1, 1, 0.5); }, "fvu[1]");

  const PowerLawFit fit = fit_power_law_with_constant(w, y);
  require_config_error([&] { (void)fit.predict(0); }, "width");
  require_config_error([&] { (void)fit.predict(nan); }, "width");

  const std::vector<double> out = {100, 1000};
  require_config_error([&] { (void)dark_matter_bands(fit, nan, out); }, "h");
  require_config_error([&] { (void)dark_matter_bands(fit, -0.1, out); }, "h");
  require_config_error([&] { (void)dark_matter_bands(fit, 0.1, std::vector<double>{100, -1}); }, "widths_out[1]");
  require_config_error([&] { (void)dark_matter_bands(fit, 0.1, out, std::vector<double>{0.1, 0.1}); },
                       "encoder_boundary.size()");
  require_config_error([&] { (void)dark_matter_bands(fit, 0.1, out, std::vector<double>{0.1, nan, 0.1, 0.1}); },
                       "encoder_boundary[1]");
  PowerLawFit bad = fit;
  bad.c = -0.5;
  require_config_error([&] { (void)dark_matter_bands(bad, 0.1, out); }, "fit.c");
  bad = fit;
  bad.m = nan;
  require_config_error([&] { (void)dark_matter_bands(bad, 0.1, out); }, "fit.m");
  PowerLawFit by_hand;
  by_hand.c = 0.1;
  by_hand.a = 1;
  by_hand.m = 0.5;
  require_config_error([&] { (void)dark_matter_bands(by_hand, 0.1, out, std::vector<double>{0.1}); }, "fit.widths");

  require_config_error([] { (void)horizontal_fit(std::vector<double>{}); }, "values.size()");
  require_config_error([&] { (void)horizontal_fit(std::vector<double>{0.1, nan}); }, "values[1]");
  require_config_error([] { (void)coefficient_of_variation(std::vector<double>{1.0, -1.0}); }, "mean(values)");
}
