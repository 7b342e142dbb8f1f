#pragma once
// Loop shapes for [rows, cols] kernels, chosen at compile time per backend (in the style of
// Kokkos Kernels): on host spaces one thread per row with a contiguous inner loop the compiler
// vectorises; on GPU spaces one thread per entry, consecutive threads on consecutive columns of
// a LayoutRight row, so loads coalesce. Only for elementwise bodies (no order-dependent sums):
// both shapes then give the same bits.
#include <cstddef>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/host_parallel.hpp"

namespace synthsae {

/// Whether kernels run on the host (Serial, OpenMP, Threads) rather than a GPU.
inline constexpr bool host_execution_v = host_accessible_v<ExecSpace>;

/// f(i, j) for every entry of a [rows, cols] array.
template <class F>
void for_each_entry(const char* name, std::size_t rows, std::size_t cols, const F& f) {
  const int c = static_cast<int>(cols);
  if constexpr (host_execution_v) {
    host_rows(
        name, static_cast<std::int64_t>(rows), c, KOKKOS_LAMBDA(int i) {
          for (int j = 0; j < c; ++j) f(i, j);
        });
  } else {
    const long long total = static_cast<long long>(rows) * static_cast<long long>(cols);
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecSpace, Kokkos::IndexType<long long>>(0, total),
        KOKKOS_LAMBDA(long long e) { f(static_cast<int>(e / c), static_cast<int>(e % c)); });
  }
}

/// finish(i, sum_j term(i, j)) for every row of a [rows, cols] array, summing in Acc. Host: one
/// thread per row, columns in order (the same bits as a plain loop). GPU: one team per row, its
/// threads splitting the columns (coalesced loads; the order of the sum is the backend's).
template <class Acc, class Term, class Finish>
void for_each_row_sum(const char* name, std::size_t rows, std::size_t cols, const Term& term, const Finish& finish) {
  const int c = static_cast<int>(cols);
  if constexpr (host_execution_v) {
    host_rows(
        name, static_cast<std::int64_t>(rows), c, KOKKOS_LAMBDA(int i) {
          Acc acc = 0;
          for (int j = 0; j < c; ++j) acc += term(i, j);
          finish(i, acc);
        });
  } else {
    using Team = Kokkos::TeamPolicy<ExecSpace>;
    Kokkos::parallel_for(
        name, Team(static_cast<int>(rows), Kokkos::AUTO), KOKKOS_LAMBDA(const typename Team::member_type& team) {
          const int i = team.league_rank();
          Acc acc = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, c), [&](int j, Acc& part) { part += term(i, j); }, acc);
          Kokkos::single(Kokkos::PerTeam(team), [&]() { finish(i, acc); });
        });
  }
}

/// For every column j of a [rows, cols] LayoutRight array: st = init(j), body(i, j, st) for the
/// rows i in order (it may write entry (i, j) and sum into st), then finish(j, st). Host: one
/// thread per block of 16 adjacent columns, walked row by row. A column alone reads a cache line
/// per row, and rows of 4 or 16 KB put every line of a column, and of the arrays read beside it,
/// in the same cache set. GPU: one thread per column (consecutive threads on consecutive columns:
/// coalesced). Every column takes its rows in order either way: the same bits.
template <class Init, class Body, class Finish>
void for_each_column(const char* name, std::size_t rows, std::size_t cols, const Init& init, const Body& body,
                     const Finish& finish) {
  const int r = static_cast<int>(rows), c = static_cast<int>(cols);
  if constexpr (host_execution_v) {
    constexpr int kBlock = 16;
    using State = decltype(init(0));
    host_rows(
        name, static_cast<std::int64_t>((c + kBlock - 1) / kBlock), std::int64_t{r} * kBlock, KOKKOS_LAMBDA(int block) {
          const int j0 = block * kBlock, n = c - j0 < kBlock ? c - j0 : kBlock;
          State st[kBlock];
          for (int u = 0; u < n; ++u) st[u] = init(j0 + u);
          for (int i = 0; i < r; ++i)
            for (int u = 0; u < n; ++u) body(i, j0 + u, st[u]);
          for (int u = 0; u < n; ++u) finish(j0 + u, st[u]);
        });
  } else {
    Kokkos::parallel_for(
        name, Kokkos::RangePolicy<ExecSpace>(0, c), KOKKOS_LAMBDA(int j) {
          auto st = init(j);
          for (int i = 0; i < r; ++i) body(i, j, st);
          finish(j, st);
        });
  }
}

/// m <- m s, entrywise (input scaling, and undoing it).
template <class T>
void scale_entries(const Kokkos::View<T**, Kokkos::LayoutRight, MemSpace>& m, T s) {
  for_each_entry(
      "synthsae::scale_entries", m.extent(0), m.extent(1), KOKKOS_LAMBDA(int i, int k) { m(i, k) *= s; });
}

}  // namespace synthsae
