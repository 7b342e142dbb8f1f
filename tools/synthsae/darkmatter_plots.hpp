#pragma once
// The plots of `synthsae darkmatter`, in the style of svg_plot.hpp: the Fig. 1 stacked areas
// over width (log axis), grouped bars of the norm battery, a labelled matrix of the cross-width
// R², and per-token error norms (svg_plot.hpp's line charts).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "svg_plot.hpp"

namespace synthsae::cli {

inline void write_svg(const std::filesystem::path& path, const std::ostringstream& o) {
  const std::string text = o.str();
  io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

inline std::string svg_header(double w, double h) {
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << w << "' height='" << h
    << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  return o.str();
}

struct Band {
  std::string name, color;
  std::vector<double> upper;  ///< upper edge at each x; the lower edge is the previous band's upper edge (0 first)
};

/// Stacked bands over a log2 x axis, plus measured points (x, y) drawn as series on top.
inline void write_stacked_areas(const std::filesystem::path& path, const std::string& title, const std::string& xlabel,
                                const std::vector<double>& x, const std::vector<Band>& bands,
                                const std::vector<Series>& points) {
  const double W = 640, H = 380, L = 60, R = W - 190, T = 40, B = H - 45;
  double x0 = std::log2(x.front()), x1 = std::log2(x.back()), y1 = 0;
  for (const auto& b : bands)
    for (double v : b.upper)
      if (std::isfinite(v)) y1 = std::max(y1, v);
  for (const auto& s : points)
    for (double v : s.y)
      if (std::isfinite(v)) y1 = std::max(y1, v);
  if (x1 - x0 < 1e-9) x0 -= 1, x1 += 1;
  if (y1 <= 0) y1 = 1;
  y1 *= 1.08;
  auto px = [&](double v) { return L + (std::log2(v) - x0) / (x1 - x0) * (R - L); };
  auto py = [&](double v) { return B - v / y1 * (B - T); };
  std::ostringstream o;
  o << svg_header(W, H);
  o << "<text x='" << (L + R) / 2 << "' y='22' text-anchor='middle' font-size='14' font-weight='bold'>" << title
    << "</text>\n";
  std::vector<double> lower(x.size(), 0.0);
  for (const auto& b : bands) {
    std::ostringstream pts;
    for (std::size_t i = 0; i < x.size(); ++i) pts << px(x[i]) << ',' << py(std::max(b.upper[i], lower[i])) << ' ';
    for (std::size_t i = x.size(); i-- > 0;) pts << px(x[i]) << ',' << py(lower[i]) << ' ';
    o << "<polygon fill='" << b.color << "' fill-opacity='0.75' stroke='none' points='" << pts.str() << "'/>\n";
    for (std::size_t i = 0; i < x.size(); ++i) lower[i] = std::max(b.upper[i], lower[i]);
  }
  o << "<rect x='" << L << "' y='" << T << "' width='" << R - L << "' height='" << B - T
    << "' fill='none' stroke='#888'/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double yv = y1 * t / 4;
    o << "<text x='" << L - 5 << "' y='" << py(yv) + 4 << "' text-anchor='end' font-size='10'>" << fmt(yv) << "</text>\n";
  }
  for (double v : x)  // widths: whole numbers
    o << "<text x='" << px(v) << "' y='" << B + 14 << "' text-anchor='middle' font-size='10'>"
      << (v == std::floor(v) && v < 1e15 ? std::to_string(static_cast<long long>(v)) : fmt(v)) << "</text>\n";
  o << "<text x='" << (L + R) / 2 << "' y='" << B + 32 << "' text-anchor='middle' font-size='11'>" << xlabel
    << "</text>\n";
  draw_series(o, points, px, py);
  double ly = T;
  for (auto it = bands.rbegin(); it != bands.rend(); ++it, ly += 18) {
    o << "<rect x='" << R + 15 << "' y='" << ly << "' width='12' height='12' fill='" << it->color << "'/>\n";
    o << "<text x='" << R + 33 << "' y='" << ly + 10 << "' font-size='12'>" << it->name << "</text>\n";
  }
  for (std::size_t k = 0; k < points.size(); ++k, ly += 18) {
    o << "<circle cx='" << R + 21 << "' cy='" << ly + 6 << "' r='4' fill='" << series_color(k) << "'/>\n";
    o << "<text x='" << R + 33 << "' y='" << ly + 10 << "' font-size='12'>" << points[k].name << "</text>\n";
  }
  o << "</svg>\n";
  write_svg(path, o);
}

/// Groups of bars (one group per category, one bar per series), values in [lo, 1].
inline void write_grouped_bars(const std::filesystem::path& path, const std::string& title,
                               const std::vector<std::string>& categories, const std::vector<Series>& series) {
  const double group = 22.0 * double(std::max<std::size_t>(series.size(), 1)) + 18;
  const double L = 60, T = 40, B = 300, W = L + group * double(categories.size()) + 200, H = B + 90;
  double lo = 0;
  for (const auto& s : series)
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v);
  lo = std::max(lo, -1.0);
  auto py = [&](double v) { return B - (std::clamp(v, lo, 1.0) - lo) / (1.0 - lo) * (B - T); };
  std::ostringstream o;
  o << svg_header(W, H);
  o << "<text x='" << W / 2 << "' y='22' text-anchor='middle' font-size='14' font-weight='bold'>" << title << "</text>\n";
  for (int t = 0; t <= 4; ++t) {
    const double v = lo + (1.0 - lo) * t / 4;
    o << "<line x1='" << L << "' x2='" << W - 190 << "' y1='" << py(v) << "' y2='" << py(v) << "' stroke='#eee'/>\n";
    o << "<text x='" << L - 5 << "' y='" << py(v) + 4 << "' text-anchor='end' font-size='10'>" << fmt(v) << "</text>\n";
  }
  for (std::size_t c = 0; c < categories.size(); ++c) {
    const double gx = L + group * double(c) + 9;
    for (std::size_t k = 0; k < series.size(); ++k) {
      const double v = c < series[k].y.size() ? series[k].y[c] : NAN;
      if (!std::isfinite(v)) continue;
      const double y = py(v), base = py(0);
      o << "<rect x='" << gx + 22 * double(k) << "' y='" << std::min(y, base) << "' width='18' height='"
        << std::abs(base - y) << "' fill='" << series_color(k) << "'><title>" << series[k].name << " "
        << categories[c] << ": " << fmt(v) << "</title></rect>\n";
    }
    const double cx = gx + 11 * double(series.size());
    o << "<text x='" << cx << "' y='" << B + 14 << "' text-anchor='end' font-size='10' transform='rotate(-35 " << cx
      << " " << B + 14 << ")'>" << categories[c] << "</text>\n";
  }
  o << "<line x1='" << L << "' x2='" << W - 190 << "' y1='" << py(0) << "' y2='" << py(0) << "' stroke='#444'/>\n";
  for (std::size_t k = 0; k < series.size(); ++k) {
    o << "<rect x='" << W - 175 << "' y='" << T + 18 * double(k) << "' width='12' height='12' fill='" << series_color(k)
      << "'/>\n";
    o << "<text x='" << W - 157 << "' y='" << T + 18 * double(k) + 10 << "' font-size='12'>" << series[k].name
      << "</text>\n";
  }
  o << "</svg>\n";
  write_svg(path, o);
}

/// A square matrix with row and column labels; finite cells shaded by value in [0, 1] and printed.
inline void write_labelled_matrix(const std::filesystem::path& path, const std::string& title, const std::string& xlabel,
                                  const std::string& ylabel, const std::vector<std::string>& labels,
                                  const std::vector<std::vector<double>>& values) {
  const std::size_t n = labels.size();
  const double cell = 64, L = 110, T = 50;
  const double W = L + cell * double(n) + 30, H = T + cell * double(n) + 60;
  std::ostringstream o;
  o << svg_header(W, H);
  o << "<text x='" << W / 2 << "' y='22' text-anchor='middle' font-size='14' font-weight='bold'>" << title << "</text>\n";
  for (std::size_t r = 0; r < n; ++r) {
    o << "<text x='" << L - 6 << "' y='" << T + cell * (double(r) + 0.55) << "' text-anchor='end' font-size='11'>"
      << labels[r] << "</text>\n";
    o << "<text x='" << L + cell * (double(r) + 0.5) << "' y='" << T + cell * double(n) + 16
      << "' text-anchor='middle' font-size='11'>" << labels[r] << "</text>\n";
    for (std::size_t c = 0; c < n; ++c) {
      const double v = values[r][c];
      const bool ok = std::isfinite(v);
      const int shade = ok ? static_cast<int>(255 * (1 - std::clamp(v, 0.0, 1.0))) : 245;
      o << "<rect x='" << L + cell * double(c) << "' y='" << T + cell * double(r) << "' width='" << cell << "' height='"
        << cell << "' fill='rgb(" << shade << "," << shade << (ok ? ",255" : ",245") << ")' stroke='white'/>\n";
      if (ok)
        o << "<text x='" << L + cell * (double(c) + 0.5) << "' y='" << T + cell * (double(r) + 0.55)
          << "' text-anchor='middle' font-size='12' fill='" << (v > 0.6 ? "white" : "black") << "'>" << fmt(v)
          << "</text>\n";
    }
  }
  o << "<text x='" << L + cell * double(n) / 2 << "' y='" << T + cell * double(n) + 40
    << "' text-anchor='middle' font-size='12'>" << xlabel << "</text>\n";
  o << "<text x='16' y='" << T + cell * double(n) / 2 << "' text-anchor='middle' font-size='12' transform='rotate(-90 16 "
    << T + cell * double(n) / 2 << ")'>" << ylabel << "</text>\n";
  o << "</svg>\n";
  write_svg(path, o);
}

}  // namespace synthsae::cli
