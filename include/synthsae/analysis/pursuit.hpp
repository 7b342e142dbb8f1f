#pragma once
// Inference-time optimisation on a frozen decoder (dark-matter reference §2.10; the paper's §6.1):
// codes for signals s = x - b_dec on a dictionary D (rows = atoms, W_dec) with a per-row budget of
// iterations t(x), by
//   gradient  the paper's batched gradient pursuit (Blumensath & Davies 2008, as the authors'
//             code runs it): each iteration adds the atom of largest correlation (signed argmax)
//             to the support, steps along the correlations on the support with an exact line
//             search, and clips to non-negative codes (atoms clipped to 0 leave the support);
//   orthogonal  orthogonal matching pursuit: the same selection, then the exact least squares on
//             the support (an incremental Cholesky of its Gram block); non-negativity applies to
//             the selection only (an atom of negative correlation is never added);
//   matching  plain matching pursuit: the selected atom's coefficient grows by g_j / |d_j|^2.
// All three work on the correlations g = s D^T - w G with G = D D^T: one GEMM for s D^T and one
// for G, then per iteration a scan of g and one row of G per changed atom (no product of the
// whole batch per iteration). Without non-negativity the selection is the argmax of |g|.
#include <cstdint>
#include <limits>
#include <string>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/core/host_parallel.hpp"

namespace synthsae::analysis {

enum class PursuitMethod { gradient, orthogonal, matching };

inline const char* pursuit_name(PursuitMethod m) {
  switch (m) {
    case PursuitMethod::gradient: return "gp";
    case PursuitMethod::orthogonal: return "omp";
    case PursuitMethod::matching: return "mp";
  }
  return "gp";
}

/// "gp", "omp" or "mp"; ConfigError naming the field otherwise.
inline PursuitMethod parse_pursuit(const std::string& name) {
  for (auto m : {PursuitMethod::gradient, PursuitMethod::orthogonal, PursuitMethod::matching})
    if (name == pursuit_name(m)) return m;
  throw ConfigError("pursuit", "\"" + name + "\"", "must be gp, omp or mp");
}

struct PursuitOptions {
  PursuitMethod method = PursuitMethod::gradient;
  bool non_negative = true;  ///< the paper's choice: codes >= 0, selection by signed correlation
  /// Atoms whose squared norm is below this are never selected (dead decoder rows), and OMP stops
  /// a row whose next atom is linearly dependent on its support (pivot below it, relative).
  double tolerance = 1e-12;
};

/// A frozen decoder ready for pursuit: its atoms [m, d] and their Gram matrix G = D D^T [m, m]
/// (one GEMM, m^2 d multiply-adds: build it once and reuse it across batches; m^2 entries of
/// memory, 64 MiB in float at m = 4,096 and 1 GiB at 16,384).
template <class T>
struct PursuitDictionary {
  Matrix<T> atoms, gram;
  Vector<T> squared_norms;  ///< G's diagonal, contiguous: the selection scan reads it every iteration

  explicit PursuitDictionary(const Matrix<T>& dictionary)
      : atoms(dictionary),
        gram("pursuit_gram", dictionary.extent(0), dictionary.extent(0)),
        squared_norms("pursuit_squared_norms", dictionary.extent(0)) {
    gemm(Op::N, Op::T, T(1), dictionary, dictionary, T(0), gram);
    copy_diagonal(gram, squared_norms);
  }

  // A kernel of its own, public: nvcc refuses a device lambda in a constructor or a private member.
  static void copy_diagonal(const Matrix<T>& g, const Vector<T>& sq) {
    Kokkos::parallel_for(
        "synthsae::pursuit_diagonal", Kokkos::RangePolicy<ExecSpace>(0, sq.extent(0)),
        KOKKOS_LAMBDA(int j) { sq(j) = g(j, j); });
  }
};

namespace detail {

// OpenMP simd reductions let the host compiler vectorise a max / or over floats (a plain loop
// may not be reordered); elsewhere (no OpenMP, CUDA device code) the loops run as written.
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#define SYNTHSAE_PURSUIT_PRAGMA(x) _Pragma(#x)
#else
#define SYNTHSAE_PURSUIT_PRAGMA(x)
#endif

/// Selection score of atom j: g_j with non-negativity, else |g_j|; `penalty` is 0, or -inf for
/// atoms never selected.
template <bool NonNegative, class T>
SYNTHSAE_HD T selection_score(const T* __restrict g, const T* __restrict penalty, int j) {
  const T a = g[j];
  return (NonNegative ? a : (a < T(0) ? -a : a)) + penalty[j];
}

/// The first atom with the largest score, or -1 when every score is -inf (all atoms dead). Two
/// passes that vectorise: the maximum, then blocks of 32 checked at once for it (one running
/// argmax would be a chain of dependent comparisons).
template <bool NonNegative, class T>
SYNTHSAE_HD int select_atom(const T* __restrict g, const T* __restrict penalty, int m, T minus_infinity) {
  T top = minus_infinity;
  SYNTHSAE_PURSUIT_PRAGMA(omp simd reduction(max : top))
  for (int j = 0; j < m; ++j) {
    const T s = selection_score<NonNegative>(g, penalty, j);
    top = s > top ? s : top;
  }
  if (!(top > minus_infinity)) return -1;
  constexpr int kBlock = 32;
  int j = 0;
  for (; j + kBlock <= m; j += kBlock) {
    int hit = 0;
    SYNTHSAE_PURSUIT_PRAGMA(omp simd reduction(| : hit))
    for (int u = 0; u < kBlock; ++u) hit |= selection_score<NonNegative>(g, penalty, j + u) == top ? 1 : 0;
    if (hit) break;
  }
  for (; j < m; ++j)
    if (selection_score<NonNegative>(g, penalty, j) == top) return j;
  return -1;
}

/// g -= delta * row over m contiguous elements.
template <class T>
SYNTHSAE_HD void subtract_scaled(T delta, const T* __restrict row, T* __restrict g, int m) {
  for (int j = 0; j < m; ++j) g[j] -= delta * row[j];
}

/// g -= sum of four delta[k] * rows[k]: g is read and written once for four rows of G (the
/// update is bound by its loads and stores, not by its multiply-adds).
template <class T>
SYNTHSAE_HD void subtract_scaled4(const T* delta, const T* __restrict r0, const T* __restrict r1,
                                  const T* __restrict r2, const T* __restrict r3, T* __restrict g, int m) {
  const T d0 = delta[0], d1 = delta[1], d2 = delta[2], d3 = delta[3];
  for (int j = 0; j < m; ++j) g[j] -= (d0 * r0[j] + d1 * r1[j]) + (d2 * r2[j] + d3 * r3[j]);
}

}  // namespace detail

/// codes[i, :] = the pursuit's codes of signals[i, :] on the dictionary after iterations[i]
/// iterations (a row with budget 0 gets zeros; the support never exceeds the budget).
/// Shapes: signals [n, d], atoms [m, d], iterations [n], codes [n, m].
template <class T>
void pursue(const Matrix<T>& signals, const PursuitDictionary<T>& dict,
            const Kokkos::View<const int*, MemSpace>& iterations, const Matrix<T>& codes,
            const PursuitOptions& opt = {}) {
  const Matrix<T>& dictionary = dict.atoms;
  const std::size_t n = signals.extent(0), d = signals.extent(1), m = dictionary.extent(0);
  if (dictionary.extent(1) != d)
    throw ShapeError("pursue: dictionary rows have " + show(dictionary.extent(1)) + " entries, signals " + show(d));
  if (iterations.extent(0) != n) throw ShapeError("pursue: " + show(iterations.extent(0)) + " budgets for " + show(n) + " rows");
  if (codes.extent(0) != n || codes.extent(1) != m)
    throw ShapeError("pursue: codes must be [" + show(n) + ", " + show(m) + "]");
  int budget = 0;
  Kokkos::parallel_reduce(
      "synthsae::pursuit_budget", Kokkos::RangePolicy<ExecSpace>(0, n),
      KOKKOS_LAMBDA(int i, int& mx) { mx = iterations(i) > mx ? iterations(i) : mx; }, Kokkos::Max<int>(budget));
  Kokkos::deep_copy(codes, T(0));
  if (budget <= 0 || n == 0) return;
  if (budget > static_cast<int>(m)) budget = static_cast<int>(m);

  Matrix<T> corr("pursuit_corr", n, m);
  gemm(Op::N, Op::T, T(1), signals, dictionary, T(0), corr);  // g = s D^T (w = 0)
  // Per row: the support (atom, code), and for OMP the initial correlations on it and the
  // Cholesky factor of its Gram block.
  const int K = budget;
  Kokkos::View<int**, Kokkos::LayoutRight, MemSpace> atom("pursuit_atoms", n, K);
  Matrix<T> value("pursuit_values", n, K), step("pursuit_step", n, K), rhs("pursuit_rhs", n, K);
  Kokkos::View<T***, Kokkos::LayoutRight, MemSpace> chol("pursuit_cholesky", opt.method == PursuitMethod::orthogonal ? n : 0,
                                                         opt.method == PursuitMethod::orthogonal ? K : 0,
                                                         opt.method == PursuitMethod::orthogonal ? K : 0);
  const auto G = dict.gram, g = corr, z = codes;
  const auto G_diag = dict.squared_norms;
  const auto at = atom;
  const auto val = value, dw = step, b = rhs;
  const auto L = chol;
  const auto budgets = iterations;
  const int mi = static_cast<int>(m);
  const bool nonneg = opt.non_negative;
  const PursuitMethod method = opt.method;
  const T tol = static_cast<T>(opt.tolerance);
  const T minus_infinity = -std::numeric_limits<T>::infinity();
  // Atoms never selected (squared norm at most the tolerance: dead decoder rows) score -inf.
  Vector<T> penalty("pursuit_penalty", m);
  Kokkos::parallel_for(
      "synthsae::pursuit_penalty", Kokkos::RangePolicy<ExecSpace>(0, m),
      KOKKOS_LAMBDA(int j) { penalty(j) = G_diag(j) <= tol ? minus_infinity : T(0); });
  // Per row: `budget` scans of the m correlations and updates through rows of G.
  const std::int64_t row_cost = std::int64_t{K} * mi * (method == PursuitMethod::gradient ? K / 2 + 2 : 2);
  host_rows(
      "synthsae::pursue", static_cast<std::int64_t>(n), row_cost, KOKKOS_LAMBDA(int i) {
        const int t_i = budgets(i) < K ? budgets(i) : K;
        T* g_i = &g(i, 0);
        int size = 0;  // support size
        for (int it = 0; it < t_i; ++it) {
          // Selection: the largest correlation (signed with non-negativity, else in magnitude).
          const int best = nonneg ? detail::select_atom<true>(g_i, &penalty(0), mi, minus_infinity)
                                  : detail::select_atom<false>(g_i, &penalty(0), mi, minus_infinity);
          if (best < 0) break;
          int slot = -1;
          for (int q = 0; q < size; ++q)
            if (at(i, q) == best) slot = q;
          const bool fresh = slot < 0;
          // OMP's residual is orthogonal to its support: re-selecting an atom means nothing helps.
          if (!fresh && method == PursuitMethod::orthogonal) break;
          if (method == PursuitMethod::matching) {
            T v = g(i, best) / G(best, best);
            if (nonneg && v <= T(0)) break;  // nothing left that helps
            if (fresh) {
              if (size >= K) break;
              slot = size++, at(i, slot) = best, val(i, slot) = T(0);
            }
            val(i, slot) += v;
            detail::subtract_scaled(v, &G(best, 0), g_i, mi);
            continue;
          }
          if (fresh) {
            if (nonneg && g(i, best) <= T(0) && method == PursuitMethod::orthogonal) break;  // none helps
            if (size >= K) break;
            slot = size;
            if (method == PursuitMethod::orthogonal) {
              // New row of the Cholesky factor of G_SS: L v = G_S,best; pivot^2 = G_bb - v.v.
              T vv = 0;
              for (int q = 0; q < size; ++q) {
                T acc = G(at(i, q), best);
                for (int r = 0; r < q; ++r) acc -= L(i, q, r) * L(i, size, r);
                const T lq = acc / L(i, q, q);
                L(i, size, q) = lq;
                vv += lq * lq;
              }
              const T pivot2 = G(best, best) - vv;
              if (!(pivot2 > tol * G(best, best))) break;  // dependent on the support: stop this row
              L(i, size, size) = kmath::sqrt(pivot2);
              // b_S: the correlations of the signal itself, g + w G at the current codes.
              T b_new = g(i, best);
              for (int q = 0; q < size; ++q) b_new += val(i, q) * G(at(i, q), best);
              b(i, size) = b_new;
            }
            at(i, slot) = best, val(i, slot) = T(0);
            ++size;
          }
          if (method == PursuitMethod::gradient) {
            // Exact line search along the correlations on the support: alpha = |g_S|^2 / g_S G_SS g_S.
            T num = 0, den = 0;
            for (int q = 0; q < size; ++q) {
              const T gq = g(i, at(i, q));
              num += gq * gq;
              T row = 0;
              for (int r = 0; r < size; ++r) row += G(at(i, q), at(i, r)) * g(i, at(i, r));
              den += gq * row;
            }
            const T alpha = den > T(0) ? num / den : T(0);
            for (int q = 0; q < size; ++q) {
              T next = val(i, q) + alpha * g(i, at(i, q));
              if (nonneg && next < T(0)) next = T(0);
              dw(i, q) = next - val(i, q);
              val(i, q) = next;
            }
          } else {  // orthogonal: w_S = G_SS^-1 b_S by the two triangular solves
            for (int q = 0; q < size; ++q) {
              T acc = b(i, q);
              for (int r = 0; r < q; ++r) acc -= L(i, q, r) * dw(i, r);
              dw(i, q) = acc / L(i, q, q);
            }
            for (int q = size - 1; q >= 0; --q) {
              T acc = dw(i, q);
              for (int r = q + 1; r < size; ++r) acc -= L(i, r, q) * dw(i, r);
              dw(i, q) = acc / L(i, q, q);
            }
            for (int q = 0; q < size; ++q) {
              const T next = dw(i, q);
              dw(i, q) = next - val(i, q);
              val(i, q) = next;
            }
          }
          // g <- g - dw G over the changed atoms, four rows of G per pass over g.
          T delta[4];
          const T* rows[4];
          int pending = 0;
          for (int q = 0; q < size; ++q) {
            if (dw(i, q) == T(0)) continue;
            delta[pending] = dw(i, q), rows[pending] = &G(at(i, q), 0);
            if (++pending == 4) {
              detail::subtract_scaled4(delta, rows[0], rows[1], rows[2], rows[3], g_i, mi);
              pending = 0;
            }
          }
          for (int p = 0; p < pending; ++p) detail::subtract_scaled(delta[p], rows[p], g_i, mi);
          if (method == PursuitMethod::gradient) {  // atoms clipped to 0 leave the support
            int kept = 0;
            for (int q = 0; q < size; ++q)
              if (val(i, q) != T(0)) at(i, kept) = at(i, q), val(i, kept) = val(i, q), ++kept;
            size = kept;
          }
        }
        for (int q = 0; q < size; ++q) z(i, at(i, q)) += val(i, q);
      });
}

/// The same with a dictionary used once (its Gram matrix built here).
template <class T>
void pursue(const Matrix<T>& signals, const Matrix<T>& dictionary, const Kokkos::View<const int*, MemSpace>& iterations,
            const Matrix<T>& codes, const PursuitOptions& opt = {}) {
  pursue(signals, PursuitDictionary<T>(dictionary), iterations, codes, opt);
}

}  // namespace synthsae::analysis
