#pragma once
// Loops over independent rows that use every core even when Kokkos's host backend is Serial
// (the Debian package): there they run as an OpenMP loop, as the host GEMM already does.
// With a threaded or GPU Kokkos they are plain Kokkos::parallel_for / parallel_reduce. Bodies
// must be race-free across rows (as for any Kokkos kernel; the suite runs under ThreadSanitizer
// with Kokkos Threads) and must not copy Views (a copy inside the loop would count references
// from several threads). Each row's result does not depend on the thread that runs it, so the
// bits are the same at any thread count.
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "synthsae/core/backend.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace synthsae {

/// Whether host_rows splits loops over OpenMP threads itself (Kokkos Serial, OpenMP compiled in).
inline constexpr bool host_rows_use_openmp_v =
#if defined(_OPENMP) && defined(KOKKOS_ENABLE_SERIAL)
    std::is_same_v<ExecSpace, Kokkos::Serial>;
#else
    false;
#endif

namespace detail {
/// The least work (rows x operations per row) that host_rows threads. It depends on how the team's
/// idle members wait. Spinning (libgomp's default), a region costs a few microseconds, and 2^16
/// operations (about 20 us on one core) are worth a team: at 2^20 the second core sat idle for a
/// quarter of a cpu-1k training run (the AuxK residual, the gradient norm, the bias sums, the
/// column index: each 2^17-2^19 operations), and 2^16 gave it 6 % more samples/s. Sleeping
/// (OMP_WAIT_POLICY=passive, for processes that share cores: scripts/test.sh sets it), each
/// region wakes its members through the kernel, and 2^16 was 7 % slower than 2^20 (cpu-1k: 150 k
/// against 162 k samples/s), so there it stays 2^20.
/// SYNTHSAE_HOST_THREAD_MIN_WORK overrides either.
inline std::int64_t host_thread_min_work() {
  static const std::int64_t min_work = [] {
    const char* v = std::getenv("SYNTHSAE_HOST_THREAD_MIN_WORK");
    const long long parsed = v ? std::atoll(v) : 0;
    if (parsed > 0) return static_cast<std::int64_t>(parsed);
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    const bool passive = policy != nullptr && (policy[0] == 'p' || policy[0] == 'P');
    return std::int64_t{1} << (passive ? 20 : 16);
  }();
  return min_work;
}

/// Reports a host_rows loop that OpenMP runs to Kokkos's tool callbacks (KernelTimer, a
/// profiling library), as Kokkos does for its own kernels; free when no tool listens.
class ToolKernelScope {
 public:
  ToolKernelScope(const char* name, bool reduce) : reduce_(reduce), on_(Kokkos::Tools::profileLibraryLoaded()) {
#if defined(_OPENMP)
    on_ = on_ && !omp_in_parallel();  // the callbacks are not thread-safe; the enclosing loop reports
#endif
    if (!on_) return;
    if (reduce_)
      Kokkos::Tools::beginParallelReduce(name, 0, &id_);
    else
      Kokkos::Tools::beginParallelFor(name, 0, &id_);
  }
  ~ToolKernelScope() {
    if (!on_) return;
    if (reduce_)
      Kokkos::Tools::endParallelReduce(id_);
    else
      Kokkos::Tools::endParallelFor(id_);
  }
  ToolKernelScope(const ToolKernelScope&) = delete;
  ToolKernelScope& operator=(const ToolKernelScope&) = delete;

 private:
  bool reduce_, on_;
  std::uint64_t id_ = 0;
};

/// Whether `rows` rows of about `row_cost` arithmetic operations each are worth a thread team.
inline bool worth_threads(std::int64_t rows, std::int64_t row_cost) {
#if defined(_OPENMP)
  return rows >= 2 && rows * row_cost >= host_thread_min_work() && omp_get_max_threads() > 1 && !omp_in_parallel();
#else
  (void)rows, (void)row_cost;
  return false;
#endif
}
}  // namespace detail

/// body(i) for i in [0, rows); `row_cost`: rough operations per row (decides whether to thread).
template <class Body>
void host_rows(const char* name, std::int64_t rows, std::int64_t row_cost, const Body& body) {
  if constexpr (host_rows_use_openmp_v) {
    if (detail::worth_threads(rows, row_cost)) {
      const detail::ToolKernelScope scope(name, false);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < rows; ++i) body(static_cast<int>(i));
#endif
      return;
    }
  }
  Kokkos::parallel_for(name, Kokkos::RangePolicy<ExecSpace>(0, rows), body);
}

/// The sum over rows of body(i, sum) (each call adds to its int), threaded as host_rows.
/// `uneven_rows`: rows differ much in cost, so the OpenMP threads take them one at a time instead
/// of one fixed share each (which thread runs a row never changes the sum; a threaded Kokkos
/// ignores it).
template <class Body>
std::int64_t host_rows_count(const char* name, std::int64_t rows, std::int64_t row_cost, const Body& body,
                             bool uneven_rows = false) {
  if constexpr (host_rows_use_openmp_v) {
    if (detail::worth_threads(rows, row_cost)) {
      const detail::ToolKernelScope scope(name, true);
      std::int64_t total = 0;
#if defined(_OPENMP)
      const auto run_row = [&](std::int64_t i) {
        int part = 0;
        body(static_cast<int>(i), part);
        return part;
      };
      if (uneven_rows) {
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : total)
        for (std::int64_t i = 0; i < rows; ++i) total += run_row(i);
      } else {
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (std::int64_t i = 0; i < rows; ++i) total += run_row(i);
      }
#endif
      return total;
    }
  }
  int total = 0;
  Kokkos::parallel_reduce(name, Kokkos::RangePolicy<ExecSpace>(0, rows), body, total);
  return total;
}

/// The sum over rows of body(i, acc) (each call adds to its double). With host_rows' OpenMP
/// loops the rows are summed in 64 fixed chunks, each in row order, and the chunk sums in chunk
/// order, threaded or not: the same bits at any thread count.
template <class Body>
double host_rows_sum(const char* name, std::int64_t rows, std::int64_t row_cost, const Body& body) {
  if constexpr (host_rows_use_openmp_v) {
    const detail::ToolKernelScope scope(name, true);  // threaded or not, no Kokkos kernel reports it
    constexpr std::int64_t kChunks = 64;
    double part[kChunks] = {};
    const auto run_chunk = [&](std::int64_t c) {
      const std::int64_t begin = rows * c / kChunks, end = rows * (c + 1) / kChunks;
      double acc = 0;
      for (std::int64_t i = begin; i < end; ++i) body(static_cast<int>(i), acc);
      part[c] = acc;
    };
    if (detail::worth_threads(rows, row_cost)) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
      for (std::int64_t c = 0; c < kChunks; ++c) run_chunk(c);
#endif
    } else {
      for (std::int64_t c = 0; c < kChunks; ++c) run_chunk(c);
    }
    double total = 0;
    for (std::int64_t c = 0; c < kChunks; ++c) total += part[c];
    return total;
  } else {
    double total = 0;
    Kokkos::parallel_reduce(name, Kokkos::RangePolicy<ExecSpace>(0, rows), body, total);
    return total;
  }
}

/// s[0] + ... + s[N - 1] in a fixed tree (halves added pairwise; N a power of two; s is used as
/// scratch): how partial sums kept apart for speed meet, the same bits on every backend.
template <int N, class T>
SYNTHSAE_HD T sum_in_tree(T (&s)[N]) {
  static_assert(N > 0 && (N & (N - 1)) == 0, "a power of two");
  for (int half = N / 2; half > 0; half /= 2)
    for (int u = 0; u < half; ++u) s[u] += s[u + half];
  return s[0];
}

/// body(j) for every j in [begin, end) where selected(j), by blocks of 16: a block is first counted
/// by a loop without branches (vectorised), and only a block that holds a selected index takes a
/// branch per index. A sparse selection (a few nonzero activations per thousand) leaves most blocks
/// empty, and a branch per index would cost more than the count. selected must be cheap and free
/// of side effects (it runs twice on the indices of a nonempty block).
template <class Selected, class Body>
SYNTHSAE_HD void for_each_selected(int begin, int end, const Selected& selected, const Body& body) {
  constexpr int kBlock = 16;
  for (int j0 = begin; j0 < end; j0 += kBlock) {
    const int j1 = j0 + kBlock < end ? j0 + kBlock : end;
    int n = 0;
    for (int j = j0; j < j1; ++j) n += selected(j) ? 1 : 0;
    if (n == 0) continue;
    for (int j = j0; j < j1; ++j)
      if (selected(j)) body(j);
  }
}

/// Asks the host's caches for the n elements at p, one hint per 64-byte line, so that a row read
/// next at a random place (the sampler's dictionary rows) arrives while the current one is used.
/// No effect on a GPU; never changes a value.
template <class T>
SYNTHSAE_HD void prefetch_contiguous([[maybe_unused]] const T* p, [[maybe_unused]] int n) {
#if defined(__GNUC__) && !defined(__CUDACC__)
  const char* bytes = reinterpret_cast<const char*>(p);
  for (int b = 0; b < n * static_cast<int>(sizeof(T)); b += 64) __builtin_prefetch(bytes + b);
#endif
}

}  // namespace synthsae
