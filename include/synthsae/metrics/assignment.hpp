#pragma once
// Exact rectangular linear-sum assignment: S rows (SAE latents) each matched to a distinct
// column (true features) among N >= S, maximising the total similarity. Used by MCC.
//
// Algorithm: shortest augmenting paths with row and column potentials (Jonker-Volgenant;
// the rectangular form described by Crouse, "On implementing 2D rectangular assignment
// algorithms", IEEE TAES 2016). Rows are inserted one at a time; each insertion runs a
// Dijkstra search over reduced costs c_ij - u_i - v_j >= 0 to the nearest free column, then
// updates the potentials so that reduced costs stay non-negative and are zero on matched
// pairs. The result is optimal (the potentials are a dual certificate, checked by
// `assignment_dual_gap`), whatever the ties.
//
// Speed comes from structure: for a trained SAE most latents have one dominant feature, so
// most searches end at their first step. Rows are processed in decreasing order of their best
// similarity, which keeps early conflicts rare; the scans run over contiguous rows.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "synthsae/core/error.hpp"

namespace synthsae {

struct Assignment {
  std::vector<std::int32_t> column_of_row;  ///< [S] matched column of each row
  double total = 0;                         ///< sum of the matched similarities
  /// Dual certificate for the cost c = -similarity: u [S], v [N] with u_i + v_j <= c_ij,
  /// equality on matched pairs, v_j <= 0 and v_j = 0 on unmatched columns.
  std::vector<double> row_potential, column_potential;
};

/// Maximises sum_i sim[i * n + col(i)] over injective col: rows -> columns. sim is row-major
/// [s, n], s <= n, finite. Throws ShapeError / ConfigError on bad input.
inline Assignment solve_assignment_max(std::span<const double> sim, std::size_t s, std::size_t n) {
  if (sim.size() != s * n)
    throw ShapeError("assignment: similarity has " + show(sim.size()) + " entries, expected " + show(s) + " x " +
                     show(n));
  if (s > n) throw ShapeError("assignment: " + show(s) + " rows cannot be matched to " + show(n) + " distinct columns");
  for (std::size_t k = 0; k < sim.size(); ++k) {
    if (!std::isfinite(sim[k]))
      throw ConfigError("assignment similarity[" + show(k / n) + "][" + show(k % n) + "]", show(sim[k]),
                        "must be finite");
  }
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(s, 0.0), v(n, 0.0), dist(n);
  std::vector<std::int32_t> col_of_row(s, -1), row_of_col(n, -1), path(n), remaining(n), visited_rows, visited_cols;

  // Insertion order: rows with the largest best similarity first.
  std::vector<std::int32_t> order(s);
  std::iota(order.begin(), order.end(), 0);
  {
    std::vector<double> best(s);
    for (std::size_t i = 0; i < s; ++i) best[i] = *std::max_element(sim.begin() + i * n, sim.begin() + (i + 1) * n);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return best[a] > best[b]; });
  }

  for (const std::int32_t start : order) {
    std::fill(dist.begin(), dist.end(), inf);
    std::iota(remaining.begin(), remaining.end(), 0);
    std::size_t num_remaining = n;
    visited_rows.clear();
    visited_cols.clear();
    double min_val = 0;
    std::int32_t row = start, sink = -1;
    while (sink < 0) {
      visited_rows.push_back(row);
      const double* c = sim.data() + static_cast<std::size_t>(row) * n;
      const double base = min_val - u[row];
      double lowest = inf;
      std::size_t lowest_at = 0;
      for (std::size_t it = 0; it < num_remaining; ++it) {
        const std::int32_t j = remaining[it];
        const double r = base - c[j] - v[j];  // cost = -similarity
        if (r < dist[j]) {
          dist[j] = r;
          path[j] = row;
        }
        // Prefer a free column among equals: it ends the search.
        if (dist[j] < lowest || (dist[j] == lowest && row_of_col[j] < 0)) {
          lowest = dist[j];
          lowest_at = it;
        }
      }
      min_val = lowest;
      const std::int32_t j = remaining[lowest_at];
      visited_cols.push_back(j);
      remaining[lowest_at] = remaining[--num_remaining];
      if (row_of_col[j] < 0)
        sink = j;
      else
        row = row_of_col[j];
    }
    // Potentials: keep reduced costs >= 0 everywhere and 0 on the matching.
    u[start] += min_val;
    for (const std::int32_t r : visited_rows) {
      if (r != start) u[r] += min_val - dist[col_of_row[r]];
    }
    for (const std::int32_t j : visited_cols) v[j] -= min_val - dist[j];
    // Augment along the path back to the start row.
    for (std::int32_t j = sink;;) {
      const std::int32_t r = path[j];
      row_of_col[j] = r;
      std::swap(col_of_row[r], j);
      if (r == start) break;
    }
  }

  Assignment a;
  a.column_of_row = std::move(col_of_row);
  for (std::size_t i = 0; i < s; ++i) a.total += sim[i * n + a.column_of_row[i]];
  a.row_potential = std::move(u);
  a.column_potential = std::move(v);
  return a;
}

/// Largest violation of the dual certificate on the full matrix (0 for an optimal solution up
/// to rounding): max over (i, j) of u_i + v_j - c_ij, over matched pairs of |u_i + v_j - c_ij|,
/// and of v_j over all columns (v_j <= 0) and |v_j| over unmatched ones. c = -sim.
inline double assignment_dual_gap(const Assignment& a, std::span<const double> sim, std::size_t s, std::size_t n) {
  double worst = 0;
  std::vector<char> matched(n, 0);
  for (std::size_t i = 0; i < s; ++i) {
    const auto j = static_cast<std::size_t>(a.column_of_row[i]);
    matched[j] = 1;
    worst = std::max(worst, std::fabs(a.row_potential[i] + a.column_potential[j] + sim[i * n + j]));
    for (std::size_t k = 0; k < n; ++k)
      worst = std::max(worst, a.row_potential[i] + a.column_potential[k] + sim[i * n + k]);
  }
  for (std::size_t j = 0; j < n; ++j) {
    worst = std::max(worst, a.column_potential[j]);
    if (!matched[j]) worst = std::max(worst, std::fabs(a.column_potential[j]));
  }
  return worst;
}

}  // namespace synthsae
