#pragma once
// Streaming ground-truth metrics (reference §6). Each accumulator sees one evaluation batch
// at a time — sparse ground truth F, SAE latents z [B, S], inputs x and reconstructions x_hat
// [B, D] — and never an SAE or a generator. Sums are kept in double.
//
// An accumulator provides begin(const EvalContext&), update(const EvalBatch&) and
// write(nlohmann::json&) (the MetricAccumulator concept); evaluate() folds a list of them.
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/metrics/mcc.hpp"
#include "synthsae/world/activation_sampler.hpp"

namespace synthsae {

struct EvalContext {
  const DecoderSimilarity* similarity = nullptr;  ///< decoder rows vs true features
  Vector<std::int32_t> best_feature;              ///< device copy of similarity->best_feature
  std::size_t num_latents = 0, num_features = 0;
};

struct EvalBatch {
  const SparseBatch<float>& truth;
  const Matrix<float>& x;
  const Matrix<float>& z;
  const Matrix<float>& x_hat;
};

template <class M>
concept MetricAccumulator = requires(M& m, const EvalContext& ctx, const EvalBatch& batch, nlohmann::json& out) {
  m.begin(ctx);
  m.update(batch);
  m.write(out);
};

/// true_l0: mean number of active true features per sample.
struct TrueL0 {
  double active = 0;
  std::uint64_t samples = 0;
  void begin(const EvalContext&) { active = 0, samples = 0; }
  void update(const EvalBatch& b) {
    std::int64_t sum = 0;
    const auto counts = b.truth.counts;
    Kokkos::parallel_reduce(
        "synthsae::true_l0", Kokkos::RangePolicy<ExecSpace>(0, counts.extent(0)),
        KOKKOS_LAMBDA(int i, std::int64_t& acc) { acc += counts(i); }, sum);
    active += double(sum);
    samples += counts.extent(0);
  }
  double value() const { return samples ? active / double(samples) : 0.0; }
  void write(nlohmann::json& out) const { out["true_l0"] = value(); }
};

/// Per-latent confusion counts against each latent's best-matching feature (argmax |cos| of
/// its decoder row), and what derives from them: SAE L0, dead latents, and the macro means
/// over all S latents of precision, recall, F1 and accuracy (dead latents count as 0).
struct LatentClassification {
  Kokkos::View<std::int64_t*, MemSpace> tp, fp, fn;  // per latent; TN = samples - tp - fp - fn
  Vector<std::int32_t> best_feature;
  std::uint64_t samples = 0;
  std::vector<std::uint64_t> truth_bits;     ///< host: update_by_rows's bitmap of the batch's true features
  std::vector<std::int64_t> feature_rows;    ///< host: the batch's rows per feature (update_by_rows)
  int best_feature_bound = 0;                ///< 1 + the largest feature id in best_feature (set by begin)

  void begin(const EvalContext& ctx) {
    tp = decltype(tp)("tp", ctx.num_latents);
    fp = decltype(fp)("fp", ctx.num_latents);
    fn = decltype(fn)("fn", ctx.num_latents);
    best_feature = ctx.best_feature;
    samples = 0;
    const auto best = best_feature;
    int largest = 0;  // once per evaluation, not per batch
    Kokkos::parallel_reduce(
        "synthsae::largest_best_feature", Kokkos::RangePolicy<ExecSpace>(0, best.extent(0)),
        KOKKOS_LAMBDA(int j, int& acc) { acc = best(j) + 1 > acc ? best(j) + 1 : acc; }, Kokkos::Max<int>(largest));
    best_feature_bound = largest > 0 ? largest : 0;  // Max's identity on an empty view is INT_MIN
  }

  template <class Space = ExecSpace>  // a template, so that a GPU build never compiles the host form
  void update(const EvalBatch& b) {
    if constexpr (host_accessible_v<Space>)
      update_by_rows<Space>(b);
    else
      update_by_latents(b);
  }

  /// One thread per latent, which finds its feature in each row by bisection (any backend; the
  /// GPU's form, and the host's reference in the tests).
  void update_by_latents(const EvalBatch& b) {
    const auto ids = b.truth.ids;
    const auto counts = b.truth.counts;
    const auto z = b.z;
    const auto best = best_feature;
    const auto tp_ = tp, fp_ = fp, fn_ = fn;
    const int batch = static_cast<int>(z.extent(0));
    Kokkos::parallel_for(
        "synthsae::latent_confusion", Kokkos::RangePolicy<ExecSpace>(0, z.extent(1)), KOKKOS_LAMBDA(int j) {
          const int feature = best(j);
          std::int64_t t = 0, f = 0, m = 0;
          for (int i = 0; i < batch; ++i) {
            // ids(i, 0..counts(i)) is ascending: binary search for the feature.
            int lo = 0, hi = counts(i);
            while (lo < hi) {
              const int mid = (lo + hi) / 2;
              if (ids(i, mid) < feature)
                lo = mid + 1;
              else
                hi = mid;
            }
            const bool truth_on = lo < counts(i) && ids(i, lo) == feature;
            const bool latent_on = z(i, j) != 0.0f;  // SAELens 6.54: AbsTopK latents fire negative too
            t += latent_on && truth_on;
            f += latent_on && !truth_on;
            m += !latent_on && truth_on;
          }
          tp_(j) += t;
          fp_(j) += f;
          fn_(j) += m;
        });
    samples += static_cast<std::uint64_t>(batch);
  }

  /// The host's form, the same counts: the batch's true features as one bitmap row per sample,
  /// then blocks of 64 latents each read z row by row (contiguous) and test their features' bits
  /// where z is nonzero. The bisection per (row, latent) was half of an evaluation's time, and
  /// serial.
  template <class Space = ExecSpace>
  void update_by_rows(const EvalBatch& b) {
    static_assert(host_accessible_v<Space>, "update_by_rows reads the batch on the host");
    const auto ids = b.truth.ids;
    const auto counts = b.truth.counts;
    const auto z = b.z;
    const auto best = best_feature;
    const int batch = static_cast<int>(z.extent(0)), latents = static_cast<int>(z.extent(1));
    int features = best_feature_bound;  // bits for every id in the batch and every latent's feature
    for (int i = 0; i < batch; ++i)
      for (int q = 0; q < counts(i); ++q) features = std::max(features, ids(i, q) + 1);
    const int words = (features + 63) / 64 + 1;  // the last word stays 0: where a latent without a feature looks
    truth_bits.assign(static_cast<std::size_t>(batch) * words, 0);
    std::uint64_t* bits = truth_bits.data();
    host_rows("synthsae::latent_confusion_bits", batch, 16, [=](int i) {
      std::uint64_t* row = bits + std::size_t(i) * words;
      for (int q = 0; q < counts(i); ++q) {
        const int f = ids(i, q);
        if (f >= 0) row[f >> 6] |= std::uint64_t{1} << (f & 63);
      }
    });
    // Rows per feature: a latent's FN is its feature's rows less its TP, and its FP its firing
    // rows less its TP, so only z's nonzero entries are visited after the pass that finds them.
    feature_rows.assign(static_cast<std::size_t>(words) * 64, 0);
    for (int i = 0; i < batch; ++i)
      for (int q = 0; q < counts(i); ++q)  // ids ascend; a repeat counts once, as in the bitmap
        if (ids(i, q) >= 0 && (q == 0 || ids(i, q) != ids(i, q - 1))) ++feature_rows[ids(i, q)];
    const std::int64_t* rows_of = feature_rows.data();
    constexpr int kBlock = 64;
    const auto tp_ = tp, fp_ = fp, fn_ = fn;
    const int none = (words - 1) * 64;
    host_rows("synthsae::latent_confusion", (latents + kBlock - 1) / kBlock, std::int64_t{batch} * kBlock,
              [=](int block) {
                const int j0 = block * kBlock, n = latents - j0 < kBlock ? latents - j0 : kBlock;
                int bit[kBlock];
                std::int64_t t[kBlock] = {}, fired[kBlock] = {};
                for (int j = 0; j < n; ++j) bit[j] = best(j0 + j) >= 0 ? best(j0 + j) : none;
                for (int i = 0; i < batch; ++i) {
                  const float* zr = &z(i, j0);
                  const std::uint64_t* row = bits + std::size_t(i) * words;
                  // Nonzero, not positive: SAELens 6.54's AbsTopK latents fire negative too.
                  for_each_selected(
                      0, n, [&](int j) { return zr[j] != 0.0f; },
                      [&](int j) {
                        ++fired[j];
                        t[j] += static_cast<std::int64_t>(row[bit[j] >> 6] >> (bit[j] & 63) & 1u);
                      });
                }
                for (int j = 0; j < n; ++j) {
                  tp_(j0 + j) += t[j];
                  fp_(j0 + j) += fired[j] - t[j];
                  fn_(j0 + j) += rows_of[bit[j]] - t[j];
                }
              });
    samples += static_cast<std::uint64_t>(batch);
  }

  struct Summary {
    double sae_l0 = 0, precision = 0, recall = 0, f1 = 0, accuracy = 0;
    std::size_t dead = 0;
  };

  Summary summary() const {
    const auto t = Kokkos::create_mirror_view_and_copy(HostSpace(), tp);
    const auto f = Kokkos::create_mirror_view_and_copy(HostSpace(), fp);
    const auto m = Kokkos::create_mirror_view_and_copy(HostSpace(), fn);
    Summary s;
    const std::size_t latents = t.extent(0);
    if (latents == 0) return s;
    double fired = 0;
    for (std::size_t j = 0; j < latents; ++j) {
      const double tp_j = double(t(j)), fp_j = double(f(j)), fn_j = double(m(j));
      const double tn_j = double(samples) - tp_j - fp_j - fn_j;
      fired += tp_j + fp_j;
      s.dead += (tp_j + fp_j) == 0;
      const double p = tp_j + fp_j > 0 ? tp_j / (tp_j + fp_j) : 0.0;
      const double r = tp_j + fn_j > 0 ? tp_j / (tp_j + fn_j) : 0.0;
      s.precision += p;
      s.recall += r;
      s.f1 += p + r > 0 ? 2 * p * r / (p + r) : 0.0;
      s.accuracy += (tp_j + tn_j) / std::max(double(samples), 1e-8);
    }
    s.precision /= double(latents), s.recall /= double(latents), s.f1 /= double(latents), s.accuracy /= double(latents);
    s.sae_l0 = samples ? fired / double(samples) : 0.0;
    return s;
  }

  void write(nlohmann::json& out) const {
    const auto s = summary();
    out["sae_l0"] = s.sae_l0;
    out["dead_latents"] = s.dead;
    out["classification"] = {
        {"precision", s.precision}, {"recall", s.recall}, {"f1_score", s.f1}, {"accuracy", s.accuracy}};
  }
};

/// explained_variance = 1 - MSE / TV with TV centred by the global mean (float64 sums), and
/// shrinkage = mean of |x_hat| / |x| over samples with |x| > 1e-6.
struct Reconstruction {
  double sq_x = 0, sq_err = 0, shrink = 0, shrink_count = 0;
  std::vector<double> sum_x;  // per dimension
  std::uint64_t samples = 0;

  void begin(const EvalContext&) {
    sq_x = sq_err = shrink = shrink_count = 0;
    sum_x.clear();
    samples = 0;
  }

  void update(const EvalBatch& b) {
    const auto x = b.x, xh = b.x_hat;
    const int d = static_cast<int>(x.extent(1)), rows = static_cast<int>(x.extent(0));
    // Per-sample |x|^2, |x - x_hat|^2, |x_hat|^2 on the device; summed in double on the host
    // (B x 3 numbers), which keeps the sums independent of the backend's reduction order.
    Kokkos::View<double**, Kokkos::LayoutRight, MemSpace> per_sample("per_sample_norms", rows, 3);
    Kokkos::parallel_for(
        "synthsae::reconstruction_norms", Kokkos::RangePolicy<ExecSpace>(0, rows), KOKKOS_LAMBDA(int i) {
          double nx = 0, nh = 0, ne = 0;
          for (int k = 0; k < d; ++k) {
            const double a = x(i, k), h = xh(i, k);
            nx += a * a, nh += h * h, ne += (a - h) * (a - h);
          }
          per_sample(i, 0) = nx, per_sample(i, 1) = ne, per_sample(i, 2) = nh;
        });
    Vector<double> column("sum_x", d);
    Kokkos::parallel_for(
        "synthsae::sum_x", Kokkos::RangePolicy<ExecSpace>(0, d), KOKKOS_LAMBDA(int k) {
          double acc = 0;
          for (int i = 0; i < rows; ++i) acc += x(i, k);
          column(k) = acc;
        });
    const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), per_sample);
    for (int i = 0; i < rows; ++i) {
      sq_x += h(i, 0);
      sq_err += h(i, 1);
      if (std::sqrt(h(i, 0)) > 1e-6) shrink += std::sqrt(h(i, 2)) / std::sqrt(h(i, 0)), shrink_count += 1;
    }
    const auto hc = Kokkos::create_mirror_view_and_copy(HostSpace(), column);
    sum_x.resize(d, 0.0);
    for (int k = 0; k < d; ++k) sum_x[k] += hc(k);
    samples += static_cast<std::uint64_t>(rows);
  }

  double explained_variance() const {
    if (samples == 0) return 0.0;
    const double n = double(samples);
    double mean_sq = 0;
    for (double s : sum_x) mean_sq += (s / n) * (s / n);
    const double mse = sq_err / n, total_variance = sq_x / n - mean_sq;
    if (total_variance < 1e-10) return mse < 1e-10 ? 1.0 : 0.0;
    return 1.0 - mse / total_variance;
  }
  double shrinkage() const { return shrink_count > 0 ? shrink / shrink_count : 0.0; }

  void write(nlohmann::json& out) const {
    out["explained_variance"] = explained_variance();
    out["shrinkage"] = shrinkage();
  }
};

/// MCC and uniqueness: decoder-only, computed once from the context.
struct DecoderMetrics {
  double mcc = 0, unique = 0;
  void begin(const EvalContext& ctx) {
    mcc = mean_correlation_coefficient(*ctx.similarity);
    unique = uniqueness(*ctx.similarity);
  }
  void update(const EvalBatch&) {}
  void write(nlohmann::json& out) const {
    out["mcc"] = mcc;
    out["uniqueness"] = unique;
  }
};

static_assert(MetricAccumulator<TrueL0> && MetricAccumulator<LatentClassification> &&
              MetricAccumulator<Reconstruction> && MetricAccumulator<DecoderMetrics>);

}  // namespace synthsae
