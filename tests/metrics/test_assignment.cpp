// The assignment solver against brute force (all injections, small cases) and a textbook
// O(n^3) Hungarian algorithm (medium cases), on random and adversarial matrices, with the
// dual certificate checked on every solution.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/metrics/assignment.hpp"

using namespace synthsae;

namespace {

// Best total over all injective maps rows -> columns, by enumerating column choices.
double brute_force_max(const std::vector<double>& sim, int s, int n) {
  double best = -std::numeric_limits<double>::infinity();
  std::vector<int> cols;
  std::vector<char> used(n, 0);
  auto rec = [&](auto&& self, int row, double acc) -> void {
    if (row == s) {
      best = std::max(best, acc);
      return;
    }
    for (int j = 0; j < n; ++j) {
      if (used[j]) continue;
      used[j] = 1;
      self(self, row + 1, acc + sim[row * n + j]);
      used[j] = 0;
    }
  };
  rec(rec, 0, 0.0);
  return best;
}

// Textbook Hungarian (Kuhn-Munkres with potentials, O(n^3)) minimising cost on a square
// matrix; the rectangular problem is padded with n - s zero-cost dummy rows.
double hungarian_max(const std::vector<double>& sim, int s, int n) {
  const double inf = std::numeric_limits<double>::infinity();
  auto cost = [&](int i, int j) { return i < s ? -sim[i * n + j] : 0.0; };  // 0-based
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) minv[j] = cur, way[j] = j0;
        if (minv[j] < delta) delta = minv[j], j1 = j;
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j])
          u[p[j]] += delta, v[j] -= delta;
        else
          minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  double total = 0;
  for (int j = 1; j <= n; ++j)
    if (p[j] - 1 < s) total += sim[(p[j] - 1) * n + (j - 1)];
  return total;
}

std::vector<double> assignment_matrix(int s, int n, std::uint64_t stream, int levels = 0) {
  RandomStream r(77, stream);
  std::vector<double> m(static_cast<std::size_t>(s) * n);
  for (auto& x : m) x = levels ? double(r.uniform_below(levels)) : r.uniform<double>();  // levels: many ties
  return m;
}

void check_solution(const Assignment& a, const std::vector<double>& sim, int s, int n, double expected) {
  std::vector<char> used(n, 0);
  double total = 0;
  for (int i = 0; i < s; ++i) {
    const int j = a.column_of_row[i];
    REQUIRE(j >= 0);
    REQUIRE(j < n);
    REQUIRE(!used[j]);
    used[j] = 1;
    total += sim[i * n + j];
  }
  CHECK(total == Approx(a.total).epsilon(1e-12));
  CHECK(std::fabs(a.total - expected) <= 1e-9 * std::max(1.0, std::fabs(expected)));
  CHECK(assignment_dual_gap(a, sim, s, n) < 1e-9);
}

}  // namespace

TEST_CASE("assignment equals brute force on small random and tied matrices", "[metrics][assignment]") {
  int cases = 0;
  for (auto [s, n] : {std::pair{6, 9}, {6, 6}, {1, 7}, {4, 5}, {5, 8}, {3, 3}})
    for (int levels : {0, 2, 3})
      for (std::uint64_t seed = 0; seed < 12; ++seed) {
        const auto sim = assignment_matrix(s, n, seed * 100 + s * 10 + n, levels);
        const auto a = solve_assignment_max(sim, s, n);
        INFO("s " << s << " n " << n << " levels " << levels << " seed " << seed);
        check_solution(a, sim, s, n, brute_force_max(sim, s, n));
        ++cases;
      }
  CHECK(cases == 216);
}

TEST_CASE("assignment equals a textbook Hungarian on medium matrices", "[metrics][assignment]") {
  for (auto [s, n] : {std::pair{40, 70}, {60, 60}, {25, 200}})
    for (int levels : {0, 4})
      for (std::uint64_t seed = 0; seed < 15; ++seed) {
        const auto sim = assignment_matrix(s, n, 5000 + seed * 7 + s + n + levels, levels);
        INFO("s " << s << " n " << n << " levels " << levels << " seed " << seed);
        check_solution(solve_assignment_max(sim, s, n), sim, s, n, hungarian_max(sim, s, n));
      }
}

TEST_CASE("adversarial matrices: equal rows, equal everything, negatives, one dominant column",
          "[metrics][assignment]") {
  {  // all rows identical: any injection into the s best columns is optimal
    const int s = 5, n = 9;
    std::vector<double> sim(s * n);
    for (int i = 0; i < s; ++i)
      for (int j = 0; j < n; ++j) sim[i * n + j] = j * 0.1;
    check_solution(solve_assignment_max(sim, s, n), sim, s, n, 0.8 + 0.7 + 0.6 + 0.5 + 0.4);
  }
  {  // constant matrix
    const std::vector<double> sim(4 * 4, 0.25);
    check_solution(solve_assignment_max(sim, 4, 4), sim, 4, 4, 1.0);
  }
  {  // every row prefers column 0 (the "five copies of one feature" shape); negatives elsewhere
    const int s = 5, n = 8;
    std::vector<double> sim(s * n, -0.5);
    for (int i = 0; i < s; ++i) sim[i * n] = 1.0 - 0.01 * i;
    check_solution(solve_assignment_max(sim, s, n), sim, s, n, brute_force_max(sim, s, n));
  }
  {  // a permutation hidden in noise is found exactly
    const int s = 50, n = 80;
    auto sim = assignment_matrix(s, n, 9);
    for (auto& x : sim) x *= 0.1;
    for (int i = 0; i < s; ++i) sim[i * n + (i * 37) % n] = 1.0;
    const auto a = solve_assignment_max(sim, s, n);
    for (int i = 0; i < s; ++i) CHECK(a.column_of_row[i] == (i * 37) % n);
  }
}

TEST_CASE("assignment rejects bad input with clear errors", "[metrics][assignment]") {
  CHECK_THROWS_WITH(solve_assignment_max(std::vector<double>(6, 0.0), 3, 2),
                    Catch::Contains("3 rows") && Catch::Contains("2 distinct columns"));
  CHECK_THROWS_AS(solve_assignment_max(std::vector<double>(5, 0.0), 2, 3), ShapeError);
  std::vector<double> nan_sim(4, 0.0);
  nan_sim[3] = std::nan("");
  CHECK_THROWS_WITH(solve_assignment_max(nan_sim, 2, 2), Catch::Contains("similarity[1][1]"));
  const auto empty = solve_assignment_max(std::vector<double>{}, 0, 3);
  CHECK(empty.column_of_row.empty());
  CHECK(empty.total == 0.0);
}
