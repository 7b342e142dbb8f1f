#pragma once
// Minimal SVG charts for `synthsae bench`: line charts with several series and a heat map.
// Plain SVG text, no dependencies; every file is written atomically.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <synthsae/io/atomic_file.hpp>

namespace synthsae::cli {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

inline const char* series_color(std::size_t i) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                 "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return colors[i % 8];
}

inline std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

/// One polyline with markers per series (finite points only), colours in series order.
template <class PX, class PY>
void draw_series(std::ostringstream& o, const std::vector<Series>& series, const PX& px, const PY& py) {
  for (std::size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    std::ostringstream pts;
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i])) pts << px(s.x[i]) << ',' << py(s.y[i]) << ' ';
    o << "<polyline fill='none' stroke='" << series_color(k) << "' stroke-width='2' points='" << pts.str() << "'/>\n";
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i]))
        o << "<circle cx='" << px(s.x[i]) << "' cy='" << py(s.y[i]) << "' r='3.5' fill='" << series_color(k) << "'/>\n";
  }
}

/// One panel (title, axes with 5 ticks, one polyline + markers per series) at (ox, oy).
inline void line_panel(std::ostringstream& o, double ox, double oy, double w, double h, const std::string& title,
                       const std::string& xlabel, const std::vector<Series>& series) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 - x0 < 1e-12) x0 -= 1, x1 += 1;
  if (y1 - y0 < 1e-12) y0 -= 0.05, y1 += 0.05;
  const double pad = (y1 - y0) * 0.08;
  y0 -= pad, y1 += pad;
  const double L = ox + 55, R = ox + w - 10, T = oy + 28, B = oy + h - 38;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (R - L); };
  auto py = [&](double y) { return B - (y - y0) / (y1 - y0) * (B - T); };
  o << "<text x='" << (L + R) / 2 << "' y='" << oy + 18 << "' text-anchor='middle' font-size='14' font-weight='bold'>"
    << title << "</text>\n";
  o << "<rect x='" << L << "' y='" << T << "' width='" << R - L << "' height='" << B - T
    << "' fill='none' stroke='#888'/>\n";
  for (int t = 0; t <= 4; ++t) {
    const double yv = y0 + (y1 - y0) * t / 4, xv = x0 + (x1 - x0) * t / 4;
    o << "<line x1='" << L << "' x2='" << R << "' y1='" << py(yv) << "' y2='" << py(yv) << "' stroke='#eee'/>\n";
    o << "<text x='" << L - 5 << "' y='" << py(yv) + 4 << "' text-anchor='end' font-size='10'>" << fmt(yv)
      << "</text>\n";
    o << "<text x='" << px(xv) << "' y='" << B + 14 << "' text-anchor='middle' font-size='10'>" << fmt(xv)
      << "</text>\n";
  }
  o << "<text x='" << (L + R) / 2 << "' y='" << B + 30 << "' text-anchor='middle' font-size='11'>" << xlabel
    << "</text>\n";
  draw_series(o, series, px, py);
}

inline void legend(std::ostringstream& o, double x, double y, const std::vector<Series>& series) {
  for (std::size_t k = 0; k < series.size(); ++k) {
    o << "<rect x='" << x << "' y='" << y + 18 * k << "' width='12' height='12' fill='" << series_color(k) << "'/>\n";
    o << "<text x='" << x + 18 << "' y='" << y + 18 * k + 10 << "' font-size='12'>" << series[k].name << "</text>\n";
  }
}

/// A grid of panels sharing one legend; panels[i] = (title, series).
inline void write_line_charts(const std::filesystem::path& path, const std::string& xlabel,
                              const std::vector<std::pair<std::string, std::vector<Series>>>& panels) {
  const int cols = 2, rows = static_cast<int>((panels.size() + 1) / 2);
  const double pw = 380, ph = 260, legend_w = 200;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << cols * pw + legend_w << "' height='" << rows * ph
    << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  for (std::size_t i = 0; i < panels.size(); ++i)
    line_panel(o, double(i % cols) * pw, double(i / cols) * ph, pw, ph, panels[i].first, xlabel, panels[i].second);
  if (!panels.empty()) legend(o, cols * pw + 10, 30, panels[0].second);
  o << "</svg>\n";
  const std::string text = o.str();
  io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

/// values: row-major [rows, cols] in [0, 1], drawn white (0) to dark blue (1).
inline void write_heatmap(const std::filesystem::path& path, const std::string& title, const std::string& xlabel,
                          const std::string& ylabel, const std::vector<double>& values, std::size_t rows,
                          std::size_t cols) {
  const double cell = std::max(2.0, std::min(8.0, 640.0 / double(std::max(rows, cols))));
  const double L = 60, T = 40, W = cell * double(cols), H = cell * double(rows);
  const double total_w = std::max(L + W + 140, 620.0);
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << total_w << "' height='" << T + H + 50
    << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << total_w / 2 << "' y='22' text-anchor='middle' font-size='14' font-weight='bold'>" << title
    << "</text>\n";
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const double v = std::clamp(values[r * cols + c], 0.0, 1.0);
      const int shade = static_cast<int>(255 * (1 - v));
      o << "<rect x='" << L + cell * double(c) << "' y='" << T + cell * double(r) << "' width='" << cell << "' height='"
        << cell << "' fill='rgb(" << shade << "," << shade << ",255)'/>\n";
    }
  o << "<text x='" << L + W / 2 << "' y='" << T + H + 30 << "' text-anchor='middle' font-size='12'>" << xlabel
    << "</text>\n";
  o << "<text x='18' y='" << T + H / 2 << "' text-anchor='middle' font-size='12' transform='rotate(-90 18 " << T + H / 2
    << ")'>" << ylabel << "</text>\n";
  for (int t = 0; t <= 4; ++t) {
    const double v = t / 4.0;
    const int shade = static_cast<int>(255 * (1 - v));
    o << "<rect x='" << L + W + 20 << "' y='" << T + 20 * t << "' width='14' height='14' fill='rgb(" << shade << ","
      << shade << ",255)' stroke='#888'/>\n";
    o << "<text x='" << L + W + 40 << "' y='" << T + 20 * t + 11 << "' font-size='10'>|cos| " << fmt(v) << "</text>\n";
  }
  o << "</svg>\n";
  const std::string text = o.str();
  io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

/// Small multiples of 2-D vectors drawn as spokes from the origin, equal axes per panel (a
/// compressor's feature directions in a plane): panels[i] = (title, points).
inline void write_spoke_panels(const std::filesystem::path& path, const std::string& title,
                               const std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>>& panels) {
  const int cols = static_cast<int>(std::min<std::size_t>(4, std::max<std::size_t>(panels.size(), 1)));
  const int rows = static_cast<int>((panels.size() + cols - 1) / cols);
  const double P = 200, T = 40;
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << cols * P << "' height='" << T + rows * P
    << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << cols * P / 2 << "' y='22' text-anchor='middle' font-size='14' font-weight='bold'>" << title
    << "</text>\n";
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const double cx = (double(i % cols) + 0.5) * P, cy = T + (double(i / cols) + 0.5) * P;
    double r = 1e-12;
    for (const auto& [x, y] : panels[i].second) r = std::max(r, std::hypot(x, y));
    const double scale = 0.38 * P / r;
    o << "<circle cx='" << cx << "' cy='" << cy << "' r='" << 0.38 * P << "' fill='none' stroke='#ddd'/>\n";
    o << "<text x='" << cx << "' y='" << cy - 0.44 * P << "' text-anchor='middle' font-size='11'>" << panels[i].first
      << "</text>\n";
    for (std::size_t k = 0; k < panels[i].second.size(); ++k) {
      const auto [x, y] = panels[i].second[k];
      o << "<line x1='" << cx << "' y1='" << cy << "' x2='" << cx + scale * x << "' y2='" << cy - scale * y
        << "' stroke='" << series_color(k) << "' stroke-width='2'/>\n";
      o << "<circle cx='" << cx + scale * x << "' cy='" << cy - scale * y << "' r='3' fill='" << series_color(k) << "'/>\n";
    }
  }
  o << "</svg>\n";
  const std::string text = o.str();
  io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

}  // namespace synthsae::cli
