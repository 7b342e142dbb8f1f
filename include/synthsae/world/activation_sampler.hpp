#pragma once
// The ground-truth activation sampler (reference §3.3 + §4.4), sparse and lazy.
//
// Every random number of sample s is addressed by a Philox counter of stream s:
//   feature f fires?          counter 2f      (uniform, or the copula's eta)
//   feature f's magnitude     counter 2f + 1
//   winner of sibling group g  counter group_counter(g): 2N + f for feature f's own children,
//                              4N + k for the k-th organisational group (hierarchy.hpp)
//   copula factors eps        counters from 3N on (ceil(rank / 2) of them, so below 4N)
// So a draw does not depend on which other draws were made. The lazy sampler evaluates
// only features that can fire — top-level features (roots and features outside the forest)
// and the children of active parents — and gives *exactly* the values of the plain sampler
// that draws everything and then applies the hierarchy level by level (tests/world check
// this bit for bit). Children of inactive parents are zeroed by the gate anyway.
//
// Per active anchor P (its value final; "none" first), for each sibling group of P, in the
// reference's order gate(L) -> ME(L) -> gate(L+1):
//   raw_c = fires(c) ? max(0, mu_c + sigma_c n) : 0 for each member c;
//   if the group is mutually exclusive and > 1 raw_c > 0: keep one, uniformly at random (unless
//   the sample skips the group's exclusion, with its co-activation probability: the second word
//   of the winner's Philox block decides; synthsae's extension, 0 in SAELens's worlds);
//   c's value = raw_c * (the group scales ? v_P / mu_P : 1).
#include <cstdint>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/core/normal_distribution.hpp"
#include "synthsae/core/philox_lanes.hpp"

namespace synthsae {

/// Sparse ground-truth activations: for sample b, ids(b, 0..counts(b)) ascending with values.
template <class T = float>
struct SparseBatch {
  Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace> ids;
  Kokkos::View<T**, Kokkos::LayoutRight, MemSpace> values;
  Kokkos::View<std::int32_t*, MemSpace> counts;
  std::size_t batch_size() const { return counts.extent(0); }
  std::size_t capacity() const { return ids.extent(1); }
};

/// Device copies of everything the sampler reads.
struct SamplerTables {
  Vector<float> probability;   ///< [N] compensated firing probabilities (independent firing)
  Vector<float> threshold;     ///< [N] Phi^-1(1 - p) (copula firing)
  Vector<float> mean, stddev;  ///< [N] magnitude parameters
  Matrix<float> factor;        ///< [N, r] copula factor (r = 0: independent firing)
  Vector<float> sqrt_diag;     ///< [N]
  /// Sibling groups (HierarchyTables): CSR per anchor feature (anchor N: no parent), members.
  Vector<std::int32_t> group_offsets, member_offsets, members, top_level;
  Vector<std::uint8_t> group_exclusive, group_scaled;
  Vector<float> group_coactivation;  ///< [G] probability that a sample skips the exclusion
  Vector<std::uint64_t> group_counter;
  /// The top-level features' parameters in top_level order, padded to a multiple of
  /// kTopLevelBlock with features that never fire, 1 / sqrt_diag (0 where sqrt_diag is 0), and
  /// the factor feature-minor [r, padded]: the host kernel decides a block of them at once, one
  /// SIMD lane per feature.
  Vector<std::int32_t> top_ids;
  Vector<float> top_probability, top_threshold, top_inv_sqrt_diag;
  Matrix<float> top_factor;
  int num_features = 0;
  int rank = 0;
};

/// Top-level features per block of the host sampler (two AVX2 registers of Philox lanes).
inline constexpr int kTopLevelBlock = 16;

/// Row b of a LayoutRight matrix by pointer: no View copy, so no reference counting when host
/// threads run the loop (host_rows).
template <class T>
struct RowRef {
  T* p;
  SYNTHSAE_HD T& operator()(int k) const { return p[k]; }
};

namespace detail {

/// N(0, 1) from two 32-bit words of the first and one of the second uniform (Box-Muller, cos
/// branch); u1 has 52 random bits so the tail reaches about 8.5 standard deviations.
SYNTHSAE_HD float box_muller(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
  const double u1 = u64_to_open01_double((static_cast<std::uint64_t>(b) << 32) | a);
  const double u2 = u32_to_open01_float(c);
  return static_cast<float>(kmath::sqrt(-2.0 * kmath::log(u1)) * kmath::cos(6.283185307179586 * u2));
}

}  // namespace detail

/// Per-sample evaluation of raw feature values; shared by the lazy kernel and the plain
/// reference sampler in the tests.
struct FeatureDraw {
  SamplerTables t;
  std::uint64_t seed;

  /// Raw value of feature f in sample `sample` (0 if it does not fire); eps: the sample's
  /// copula factors (ignored when rank is 0).
  /// The copula latent z_f = F_f . eps + sqrt(diag_f) eta_f of feature f (rank > 0), where
  /// eta_f = -Phi^-1(v_f) for the feature's uniform v_f (inverse-CDF sampling).
  template <class EpsRow>
  SYNTHSAE_HD float latent(std::uint64_t sample, int f, const EpsRow& eps) const {
    const U32x4 w = philox_block(seed, sample, 2 * static_cast<std::uint64_t>(f));
    const double v = u64_to_open01_double((static_cast<std::uint64_t>(w[1]) << 32) | w[0]);
    return static_cast<float>(factor_dot(f, eps) - double(t.sqrt_diag(f)) * normal_quantile(v));
  }

  /// Whether feature f fires: z_f > t_f, i.e. v_f < Q((t_f - F_f . eps) / sqrt(diag_f)).
  /// Most features are decided without a transcendental function: normal_tail_bound(|s|) >= Q(|s|)
  /// bounds Q(s) for s >= 0 (and 1 - Q(s) for s < 0); only a v_f inside the bounds needs erfc.
  /// The decision is exact.
  template <class EpsRow>
  SYNTHSAE_HD bool fires(std::uint64_t sample, int f, const EpsRow& eps) const {
    const U32x4 w = philox_block(seed, sample, 2 * static_cast<std::uint64_t>(f));
    const double v = u64_to_open01_double((static_cast<std::uint64_t>(w[1]) << 32) | w[0]);
    return fires_given(v, f, t.rank == 0 ? 0.0 : factor_dot(f, eps));
  }

  /// The decision of fires() from the feature's uniform v and its copula dot F_f . eps.
  SYNTHSAE_HD bool fires_given(double v, int f, double dot) const {
    if (t.rank == 0) return v < double(t.probability(f));
    const double sd = t.sqrt_diag(f);
    const double gap = double(t.threshold(f)) - dot;
    if (sd == 0) return gap < 0;  // full-rank factor: no idiosyncratic noise
    const double s = gap / sd;
    const double bound = normal_tail_bound(s >= 0 ? s : -s);  // >= Q(|s|)
    if (s >= 0) {
      if (v >= bound) return false;
    } else if (v < 1 - bound) {
      return true;
    }
    return v < normal_tail(s);
  }

  /// Raw value of feature f in sample `sample` (0 if it does not fire); eps: the sample's
  /// copula factors (ignored when rank is 0).
  template <class EpsRow>
  SYNTHSAE_HD float raw(std::uint64_t sample, int f, const EpsRow& eps) const {
    if (!fires(sample, f, eps)) return 0.0f;
    return magnitude(sample, f);
  }

  /// The magnitude of a feature that fires: max(0, mu + sigma n), with one rounding (an explicit
  /// FMA: the same bits at every optimisation level and on a GPU).
  SYNTHSAE_HD float magnitude(std::uint64_t sample, int f) const {
    const U32x4 m = philox_block(seed, sample, 2 * static_cast<std::uint64_t>(f) + 1);
    const float v = fused_multiply_add(t.stddev(f), detail::box_muller(m[0], m[1], m[2]), t.mean(f));
    return v > 0.0f ? v : 0.0f;
  }

  /// emit(f, raw(sample, f, eps)) for every top-level feature that fires, in top_level order,
  /// kTopLevelBlock features at a time (host): their Philox words (AVX2 lanes), copula dots and a
  /// float form of fires()' first test as lane loops. The float test rejects a lane only with a
  /// relative slack of 2^-10, far above its rounding (under 1e-5), so every lane it rejects is one
  /// that fires_given rejects too; the others (a few dozen per sample) go through fires_given.
  /// The same values as raw(), bit for bit.
  template <class EpsRow, class Emit>
  SYNTHSAE_HD void top_level_blocked(std::uint64_t sample, const EpsRow& eps, const Emit& emit) const {
    constexpr int L = kTopLevelBlock;
    constexpr float kSlack = 1.0f + 1.0f / 1024;
    const int padded = static_cast<int>(t.top_ids.extent(0));
    const int r = t.rank;
    const std::int32_t* ids = t.top_ids.data();
    const float* probability = t.top_probability.data();
    const float* threshold = t.top_threshold.data();
    const float* inv_sd = t.top_inv_sqrt_diag.data();
    const float* factor = r > 0 ? t.top_factor.data() : nullptr;
    float e[64];  // the sample's factors; larger ranks read eps directly
    const bool local_eps = r <= 64;
    if (local_eps)
      for (int k = 0; k < r; ++k) e[k] = eps(k);
    for (int i0 = 0; i0 < padded; i0 += L) {
      std::uint32_t counter[L], w0[L], w1[L];
      for (int l = 0; l < L; ++l) counter[l] = 2u * static_cast<std::uint32_t>(ids[i0 + l]);
      detail::philox_lanes_w01<L>(seed, sample, counter, w0, w1);
      float dot[L];
      int rejected[L];
      if (r == 0) {
        for (int l = 0; l < L; ++l) {
          // v >= v_low = the top 24 bits of v as a float.
          const float v_low = static_cast<float>(static_cast<std::int32_t>(w1[l] >> 8)) * (1.0f / 16777216.0f);
          dot[l] = 0;
          rejected[l] = v_low >= probability[i0 + l] * kSlack;
        }
      } else {
        for (int l = 0; l < L; ++l) dot[l] = 0;
        for (int k = 0; k < r; ++k) {  // the order of factor_dot's sum, lane by lane
          const float ek = local_eps ? e[k] : float(eps(k));
          const float* row = factor + static_cast<std::size_t>(k) * padded + i0;
          for (int l = 0; l < L; ++l) dot[l] += row[l] * ek;
        }
        for (int l = 0; l < L; ++l) {  // v * (1 / normal_tail_bound(s)) >= 1 + slack => no fire
          const float v_low = static_cast<float>(static_cast<std::int32_t>(w1[l] >> 8)) * (1.0f / 16777216.0f);
          const float gap = threshold[i0 + l] - dot[l];
          const float s = gap * inv_sd[i0 + l];
          const float x = 0.5f * s * s;
          const float exp_lower =
              1 + x * (1 + x * (0.5f + x * (1.0f / 6 + x * (1.0f / 24 + x * (1.0f / 120 + x * (1.0f / 720))))));
          const float mills = s * 2.5066283f;
          // Bitwise &, not &&: no branches, so the loop vectorises.
          rejected[l] = (gap > 0) & (inv_sd[i0 + l] > 0) & (v_low * exp_lower * (mills > 2 ? mills : 2.0f) >= kSlack);
        }
      }
      for (int l = 0; l < L; ++l) {
        if (rejected[l]) continue;
        const int f = ids[i0 + l];
        if (f < 0) continue;  // padding
        const double v = u64_to_open01_double((static_cast<std::uint64_t>(w1[l]) << 32) | w0[l]);
        if (!fires_given(v, f, double(dot[l]))) continue;
        const float value = magnitude(sample, f);
        if (value > 0.0f) emit(f, value);
      }
    }
  }

  template <class EpsRow>
  SYNTHSAE_HD double factor_dot(int f, const EpsRow& eps) const {
    float acc = 0;
    for (int k = 0; k < t.rank; ++k) acc += t.factor(f, k) * eps(k);
    return acc;
  }

  /// Uniform choice among n active members of sibling group g.
  SYNTHSAE_HD std::uint32_t winner(std::uint64_t sample, int g, std::uint32_t n) const {
    const U32x4 w = philox_block(seed, sample, t.group_counter(g));
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(w[0]) * n) >> 32);
  }

  /// Whether the sample skips exclusive group g's exclusion (probability group_coactivation(g)):
  /// the second word of the winner's block, so no other draw moves.
  SYNTHSAE_HD bool coactive(std::uint64_t sample, int g) const {
    const float rho = t.group_coactivation(g);
    if (!(rho > 0.0f)) return false;
    const U32x4 w = philox_block(seed, sample, t.group_counter(g));
    return (static_cast<double>(w[1]) + 0.5) * (1.0 / 4294967296.0) < static_cast<double>(rho);
  }

  /// emit(c, value) for the members of anchor's sibling groups that survive mutual exclusion;
  /// `ratio` = the anchor's value / mean, applied to the groups that scale.
  template <class EpsRow, class Emit>
  SYNTHSAE_HD void emit_children(std::uint64_t sample, int anchor, float ratio, const EpsRow& eps,
                                 const Emit& emit) const {
    for (int g = t.group_offsets(anchor); g < t.group_offsets(anchor + 1); ++g) {
      const int begin = t.member_offsets(g), end = t.member_offsets(g + 1);
      const float scale = t.group_scaled(g) ? ratio : 1.0f;
      if (t.group_exclusive(g)) {
        constexpr int kKept = 16;  // members whose raw values are kept for the second pass
        float kept[kKept];
        std::uint32_t active = 0;
        for (int c = begin; c < end; ++c) {
          const float v = raw(sample, t.members(c), eps);
          if (c - begin < kKept) kept[c - begin] = v;
          active += v > 0.0f;
        }
        if (active == 0) continue;
        const bool all = active > 1 && coactive(sample, g);
        std::uint32_t keep = active > 1 && !all ? winner(sample, g, active) : 0;
        for (int c = begin; c < end; ++c) {
          const float v = c - begin < kKept ? kept[c - begin] : raw(sample, t.members(c), eps);
          if (!(v > 0.0f)) continue;
          if (all) {
            emit(t.members(c), v * scale);
          } else if (keep-- == 0) {
            emit(t.members(c), v * scale);
            break;
          }
        }
      } else {
        for (int c = begin; c < end; ++c) {
          const float v = raw(sample, t.members(c), eps);
          if (v > 0.0f) emit(t.members(c), v * scale);
        }
      }
    }
  }

  /// Fills eps(0..rank) for a sample.
  template <class EpsRow>
  SYNTHSAE_HD void copula_factors(std::uint64_t sample, const EpsRow& eps) const {
    RandomStream s(seed, sample, 3 * static_cast<std::uint64_t>(t.num_features));
    for (int k = 0; k < t.rank; ++k) eps(k) = s.normal<float>();
  }
};

namespace detail {

/// A sample's output row while it is being filled: emit() appends up to the capacity and
/// records an overflow beyond it.
struct SampleRow {
  const SparseBatch<float>& batch;
  int b, capacity, count = 0;
  bool overflow = false;
  SYNTHSAE_HD void emit(int f, float v) {
    if (count < capacity) {
      batch.ids(b, count) = f;
      batch.values(b, count) = v;
      ++count;
    } else {
      overflow = true;
    }
  }
};

/// The rest of a sample once its top-level features are in the row: the exclusive groups
/// without a parent (under root organisational nodes), then breadth-first over active parents,
/// using the output itself as the queue; then ascending feature ids (insertion sort: a few dozen
/// entries), so the row does not depend on the order the top-level pass emitted in.
template <class EpsRow>
SYNTHSAE_HD void finish_sample(const FeatureDraw& draw, std::uint64_t sample, const EpsRow& eps, SampleRow& row) {
  const auto& t = draw.t;
  const SparseBatch<float>& batch = row.batch;
  const int b = row.b;
  auto emit = [&](int f, float v) { row.emit(f, v); };
  draw.emit_children(sample, t.num_features, 1.0f, eps, emit);
  for (int q = 0; q < row.count; ++q) {
    const int parent = batch.ids(b, q);
    if (t.group_offsets(parent) == t.group_offsets(parent + 1)) continue;
    const float mean = t.mean(parent);  // > 0 wherever a group scales (checked at setup)
    draw.emit_children(sample, parent, mean > 0.0f ? batch.values(b, q) / mean : 0.0f, eps, emit);
  }
  for (int i = 1; i < row.count; ++i) {
    const int id = batch.ids(b, i);
    const float v = batch.values(b, i);
    int j = i - 1;
    while (j >= 0 && batch.ids(b, j) > id) {
      batch.ids(b, j + 1) = batch.ids(b, j);
      batch.values(b, j + 1) = batch.values(b, j);
      --j;
    }
    batch.ids(b, j + 1) = id;
    batch.values(b, j + 1) = v;
  }
  batch.counts(b) = row.count;
}

}  // namespace detail

/// sample_sparse with one team of threads per sample (the GPU's form; any execution space runs
/// it): the team's threads share the top-level features, each appending the ones that fire
/// through an atomic counter, then one thread adds the children and sorts the row. The same rows
/// as the one-thread-per-sample form, bit for bit (ids are unique and the row ends sorted);
/// tests/world/test_sampler.cpp checks that on the host.
template <class Space = ExecSpace>
int sample_sparse_by_teams(const FeatureDraw& draw, std::uint64_t first_sample, const SparseBatch<float>& batch,
                           const Matrix<float>& eps_scratch) {
  using Policy = Kokkos::TeamPolicy<Space>;
  using Member = typename Policy::member_type;
  const int capacity = static_cast<int>(batch.capacity());
  const int num_top = static_cast<int>(draw.t.top_level.extent(0));
  // 128 threads share ~5,600 top-level features at SynthSAEBench-16k: 44 each.
  const int team = host_accessible_v<Space> ? 1 : 128;  // a host space runs teams of one
  int overflowed = 0;
  Kokkos::parallel_reduce(
      "synthsae::sample_sparse_by_teams", Policy(static_cast<int>(batch.batch_size()), team),
      KOKKOS_LAMBDA(const Member& m, int& overflow_count) {
        const int b = m.league_rank();
        const std::uint64_t sample = first_sample + static_cast<std::uint64_t>(b);
        const RowRef<float> eps{eps_scratch.extent(1) > 0 ? &eps_scratch(b, 0) : nullptr};
        Kokkos::single(Kokkos::PerTeam(m), [&]() {
          draw.copula_factors(sample, eps);
          batch.counts(b) = 0;
        });
        m.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(m, num_top), [&](int i) {
          const int f = draw.t.top_level(i);
          const float v = draw.raw(sample, f, eps);
          if (v > 0.0f) {
            const int slot = Kokkos::atomic_fetch_add(&batch.counts(b), 1);
            if (slot < capacity) {
              batch.ids(b, slot) = f;
              batch.values(b, slot) = v;
            }
          }
        });
        m.team_barrier();
        int overflow = 0;
        Kokkos::single(
            Kokkos::PerTeam(m),
            [&](int& o) {
              const int emitted = batch.counts(b);
              detail::SampleRow row{batch, b, capacity, emitted < capacity ? emitted : capacity, emitted > capacity};
              detail::finish_sample(draw, sample, eps, row);
              o = row.overflow ? 1 : 0;
            },
            overflow);
        if (m.team_rank() == 0) overflow_count += overflow;
      },
      overflowed);
  return overflowed;
}

/// sample_sparse with one thread per sample (the host's form): the top-level features in blocks
/// of SIMD lanes (FeatureDraw::top_level_blocked), threaded over samples by host_rows.
template <class Space = ExecSpace>
int sample_sparse_by_rows(const FeatureDraw& draw, std::uint64_t first_sample, const SparseBatch<float>& batch,
                          const Matrix<float>& eps_scratch) {
  static_assert(host_accessible_v<Space>, "sample_sparse_by_rows runs on the host");
  const int capacity = static_cast<int>(batch.capacity());
  const int num_top = static_cast<int>(draw.t.top_level.extent(0));
  // Per sample: every top-level feature's Philox block and copula dot (~60 operations each).
  const std::int64_t row_cost = 60 * static_cast<std::int64_t>(num_top) + 1000;
  const std::int64_t overflowed = host_rows_count(
      "synthsae::sample_sparse", static_cast<std::int64_t>(batch.batch_size()), row_cost,
      KOKKOS_LAMBDA(int b, int& overflow_count) {
        const std::uint64_t sample = first_sample + static_cast<std::uint64_t>(b);
        const RowRef<float> eps{eps_scratch.extent(1) > 0 ? &eps_scratch(b, 0) : nullptr};
        draw.copula_factors(sample, eps);
        detail::SampleRow row{batch, b, capacity};
        draw.top_level_blocked(sample, eps, [&](int f, float v) { row.emit(f, v); });
        detail::finish_sample(draw, sample, eps, row);
        overflow_count += row.overflow ? 1 : 0;
      });
  return static_cast<int>(overflowed);
}

/// Samples `batch.batch_size()` samples with global indices first_sample + b. Returns the
/// number of samples whose active set did not fit the capacity (then nothing is valid and the
/// caller retries with a larger capacity; the draws are deterministic). On the host one thread
/// per sample, on a GPU one team per sample: the same rows.
template <class Space = ExecSpace>
int sample_sparse(const FeatureDraw& draw, std::uint64_t first_sample, const SparseBatch<float>& batch,
                  const Matrix<float>& eps_scratch) {
  if constexpr (host_accessible_v<Space>) {
    return sample_sparse_by_rows<Space>(draw, first_sample, batch, eps_scratch);
  } else {
    return sample_sparse_by_teams<Space>(draw, first_sample, batch, eps_scratch);
  }
}

/// hidden(b, :) = bias + sum_k values(b, k) W_feat(ids(b, k), :). Host: one thread per sample,
/// adding whole feature rows (contiguous, vectorised); GPU: one thread per element. Each element
/// sums the same terms in the same order either way.
inline void hidden_from_sparse(const SparseBatch<float>& batch, const Matrix<float>& features,
                               const Vector<float>& bias, const Matrix<float>& hidden) {
  if constexpr (host_accessible_v<ExecSpace>) {
    const int d = static_cast<int>(hidden.extent(1));
    host_rows(
        "synthsae::hidden_from_sparse", static_cast<std::int64_t>(hidden.extent(0)),
        static_cast<std::int64_t>(d) * (1 + static_cast<std::int64_t>(batch.capacity()) / 2), KOKKOS_LAMBDA(int b) {
          float* __restrict out = &hidden(b, 0);
          for (int k = 0; k < d; ++k) out[k] = bias(k);
          const int n = batch.counts(b);
          for (int q = 0; q < n; ++q) {
            const float v = batch.values(b, q);
            const float* __restrict row = &features(batch.ids(b, q), 0);
            for (int k = 0; k < d; ++k) out[k] += v * row[k];
          }
        });
    return;
  }
  // d fastest: neighbouring threads read neighbouring feature-row entries and write neighbouring
  // hidden entries (the default order on a GPU would make b fastest).
  using Policy = Kokkos::MDRangePolicy<ExecSpace, Kokkos::Rank<2, Kokkos::Iterate::Right, Kokkos::Iterate::Right>>;
  Kokkos::parallel_for(
      "synthsae::hidden_from_sparse",
      Policy({0, 0}, {static_cast<std::int64_t>(hidden.extent(0)), static_cast<std::int64_t>(hidden.extent(1))}),
      KOKKOS_LAMBDA(int b, int d) {
        float acc = bias(d);
        const int n = batch.counts(b);
        for (int k = 0; k < n; ++k) acc += batch.values(b, k) * features(batch.ids(b, k), d);
        hidden(b, d) = acc;
      });
}

}  // namespace synthsae
