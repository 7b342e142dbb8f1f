#pragma once
// SyntheticModel (reference §1.4): the feature dictionary, firing probabilities (compensated
// for the hierarchy), magnitudes, copula correlation and hierarchy, assembled from a config,
// and a sampler that returns ground truth sparsely plus hidden = sum_i c_i W_feat[i] + bias.
//
// Seeds follow the reference's offsets from the config seed: firing probabilities +0, std
// magnitudes +1, mean magnitudes +2, hierarchy +3, correlation +4, feature vectors and bias +0
// (separate streams); sampling uses seed + 5 by default. Draws come from Philox streams, so a
// seed gives the same world and the same batches on every backend and thread count.
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/huge_pages.hpp"
#include "synthsae/core/normal_distribution.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/world/activation_sampler.hpp"
#include "synthsae/world/batch_cache.hpp"
#include "synthsae/world/dense_component.hpp"
#include "synthsae/world/synthetic_model_config.hpp"

namespace synthsae {

/// Replacements for parts a config would generate: a researcher's own policy (any type
/// satisfying the policy concepts, through the helpers below) or a full correlation matrix
/// for a small world. Files still record the result (probabilities and correlation factors are
/// saved), but the config JSON cannot name a custom policy.
struct WorldOverrides {
  std::optional<std::vector<double>> firing_probabilities;  ///< base, before compensation
  std::optional<std::vector<double>> mean_magnitudes;
  std::optional<std::vector<double>> std_magnitudes;
  std::optional<CorrelationFactors> correlation;

  template <FiringProbabilityPolicy P>
  WorldOverrides& firing(const P& policy, std::size_t n, std::uint64_t seed) {
    firing_probabilities = policy.generate(n, seed);
    return *this;
  }
  template <MagnitudePolicy M>
  WorldOverrides& means(const M& policy, std::size_t n, std::uint64_t seed) {
    mean_magnitudes = policy.generate(n, seed);
    return *this;
  }
  template <MagnitudePolicy M>
  WorldOverrides& stds(const M& policy, std::size_t n, std::uint64_t seed) {
    std_magnitudes = policy.generate(n, seed);
    return *this;
  }
};

/// Parts of a model that was saved to disk (see saelens/model_directory.hpp).
struct SyntheticModelParts {
  Matrix<float> feature_vectors;
  Vector<float> bias;
  std::vector<double> firing_probabilities;  ///< compensated, as saved
  std::optional<CorrelationFactors> correlation;
  Forest hierarchy;
  std::optional<DenseParts> dense;  ///< rebuilt from the config when absent
};

class SyntheticModel {
 public:
  /// Builds a world from its config (orthogonalisation included); `overrides` replace the
  /// generated probabilities, magnitudes or correlation.
  explicit SyntheticModel(SyntheticModelConfig cfg, WorldOverrides overrides = {}) : cfg_(std::move(cfg)) {
    cfg_.validate();
    seed_ = cfg_.seed ? *cfg_.seed : std::random_device{}();
    const auto n = static_cast<std::size_t>(cfg_.num_features), d = static_cast<std::size_t>(cfg_.hidden_dim);
    if (cfg_.hierarchy) {
      forest_ = generate_hierarchy(n, *cfg_.hierarchy, seed_ + 3);
      if (forest_.nodes_cut > 0) std::fprintf(stderr, "synthsae: %s\n", hierarchy_truncation_note(forest_, n).c_str());
    }
    if (cfg_.correlation) correlation_ = cfg_.correlation->generate(n, seed_ + 4);
    if (overrides.correlation) correlation_ = std::move(overrides.correlation);
    features_ = random_unit_rows<float>(n, d, seed_);
    bias_ = random_bias<float>(d, cfg_.bias.norm(), seed_);
    if (cfg_.orthogonalization) orthogonalization_loss_ = orthogonalize(features_, *cfg_.orthogonalization);
    probabilities_ =
        overrides.firing_probabilities ? *overrides.firing_probabilities : generate(cfg_.firing_probability, n, seed_);
    check_overrides(overrides);
    mean_override_ = std::move(overrides.mean_magnitudes);
    std_override_ = std::move(overrides.std_magnitudes);
    if (cfg_.hierarchy && cfg_.hierarchy->compensate_probabilities) compensate();
    // Kept at float precision, as the reference computes them and as files store them, so a
    // saved and reloaded world samples exactly like the original.
    for (auto& p : probabilities_) p = static_cast<double>(static_cast<float>(p));
    finish_setup();
  }

  /// Rebuilds a saved world: vectors, bias, probabilities, correlation and hierarchy come from
  /// the files; magnitudes are regenerated from the config (SAELens does not save them).
  SyntheticModel(SyntheticModelConfig cfg, SyntheticModelParts parts) : cfg_(std::move(cfg)) {
    cfg_.validate();
    seed_ = cfg_.seed ? *cfg_.seed : std::random_device{}();
    const auto n = static_cast<std::size_t>(cfg_.num_features), d = static_cast<std::size_t>(cfg_.hidden_dim);
    if (parts.feature_vectors.extent(0) != n || parts.feature_vectors.extent(1) != d) {
      throw ShapeError("feature_vectors is [" + show(parts.feature_vectors.extent(0)) + ", " +
                       show(parts.feature_vectors.extent(1)) + "] but the config says [" + show(n) + ", " + show(d) +
                       "]");
    }
    if (parts.bias.extent(0) != d)
      throw ShapeError("bias has " + show(parts.bias.extent(0)) + " entries, hidden_dim is " + show(d));
    if (parts.firing_probabilities.size() != n) {
      throw ShapeError("firing_probabilities has " + show(parts.firing_probabilities.size()) +
                       " entries, num_features is " + show(n));
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (!(parts.firing_probabilities[i] >= 0 && parts.firing_probabilities[i] <= 1)) {
        throw ConfigError("firing_probabilities[" + show(i) + "]", show(parts.firing_probabilities[i]),
                          "must be in [0, 1]");
      }
    }
    if (parts.correlation && parts.correlation->num_features != n) {
      throw ShapeError("correlation_factor has " + show(parts.correlation->num_features) + " rows, num_features is " +
                       show(n));
    }
    features_ = parts.feature_vectors;
    bias_ = parts.bias;
    probabilities_ = std::move(parts.firing_probabilities);
    correlation_ = std::move(parts.correlation);
    forest_ = std::move(parts.hierarchy);
    if (parts.dense) dense_ = std::move(*parts.dense);
    finish_setup();
  }

  const SyntheticModelConfig& config() const { return cfg_; }
  std::uint64_t seed() const { return seed_; }
  std::size_t num_features() const { return static_cast<std::size_t>(cfg_.num_features); }
  std::size_t hidden_dim() const { return static_cast<std::size_t>(cfg_.hidden_dim); }
  const Matrix<float>& feature_vectors() const { return features_; }
  const Vector<float>& bias() const { return bias_; }
  /// Firing probabilities after hierarchy compensation (what each feature's raw draw uses).
  const std::vector<double>& firing_probabilities() const { return probabilities_; }
  const std::vector<double>& mean_magnitudes() const { return mean_; }
  const std::vector<double>& std_magnitudes() const { return std_; }
  const std::optional<CorrelationFactors>& correlation() const { return correlation_; }
  /// The dense components (empty when the config has none).
  const DenseParts& dense_parts() const { return dense_; }
  bool has_dense() const { return !dense_.empty(); }
  const Forest& hierarchy() const { return forest_; }
  const HierarchyTables& hierarchy_tables() const { return tables_; }
  /// Features whose compensated probability was clamped at 1 (the reference warns about them).
  std::size_t clamped_probabilities() const { return clamped_; }
  double orthogonalization_loss() const { return orthogonalization_loss_; }
  const FeatureDraw& feature_draw() const { return draw_; }

  // ---- sampling ----------------------------------------------------------------------
  /// Index of the next sample `sample()` draws; together with the sampling seed it fully
  /// determines the stream (for checkpoints and resumption).
  std::uint64_t position() const { return position_; }
  void set_position(std::uint64_t p) { position_ = p; }
  std::uint64_t sampling_seed() const { return draw_.seed; }
  /// The stream a world samples from unless told otherwise: config seed + 5.
  std::uint64_t default_sampling_seed() const { return seed_ + 5; }
  void set_sampling_seed(std::uint64_t s) { draw_.seed = s; }

  /// Draws samples [position, position + batch) and advances the position.
  SampleBatch sample(std::size_t batch) {
    SampleBatch out;
    sample_into(out, batch);
    return out;
  }

  /// Like sample(), reusing `out`'s storage when it is large enough.
  void sample_into(SampleBatch& out, std::size_t batch) {
    if (cache_ && cache_->copy_into(draw_.seed, position_, batch, out)) {
      position_ += batch;
      return;
    }
    sample_features_at(out.features, position_, batch);
    if (out.hidden.extent(0) != batch || out.hidden.extent(1) != hidden_dim()) {
      out.hidden = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "hidden"), batch, hidden_dim());
    }
    if (has_dense()) {
      if (out.dense.extent(0) != batch || out.dense.extent(1) != hidden_dim())
        out.dense = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "dense"), batch, hidden_dim());
      dense_.sample(draw_.seed, position_, out.dense);
    } else {
      out.dense = Matrix<float>();
    }
    hidden_of(out.features, out.dense, out.hidden);
    if (cache_) cache_->keep(draw_.seed, position_, out);
    position_ += batch;
  }

  /// sample_into keeps what it draws in `cache` and takes a batch from it when it is kept there
  /// (BatchCache: the same values); nullptr: no cache. Share one cache between the users of one
  /// world that read the same stream in turns.
  void share_batches(std::shared_ptr<BatchCache> cache) { cache_ = std::move(cache); }

  /// x [B, D] of samples [first, first + B) whose sparse truth is `truth`: Σ c_i d_i + bias, plus
  /// the dense part in a world with dense components (into `dense` when given, else a buffer).
  void hidden_at(const SparseBatch<float>& truth, std::uint64_t first, const Matrix<float>& x,
                 Matrix<float>* dense = nullptr) const {
    Matrix<float> part;
    if (has_dense()) {
      if (dense) {
        if (dense->extent(0) != x.extent(0) || dense->extent(1) != x.extent(1))
          *dense = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "dense"), x.extent(0), x.extent(1));
        part = *dense;
      } else {
        part = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "dense"), x.extent(0), x.extent(1));
      }
      dense_.sample(draw_.seed, first, part);
    }
    hidden_of(truth, part, x);
  }

  /// Sparse ground truth for samples [first, first + batch), without moving the position.
  void sample_features_at(SparseBatch<float>& out, std::uint64_t first, std::size_t batch) {
    if (eps_.extent(0) < batch || eps_.extent(1) != static_cast<std::size_t>(std::max(draw_.t.rank, 1))) {
      eps_ = Matrix<float>("copula_eps", batch, std::max(draw_.t.rank, 1));
    }
    for (;;) {
      if (out.counts.extent(0) != batch || out.ids.extent(1) != capacity_) {
        out.ids = decltype(out.ids)(Kokkos::view_alloc(Kokkos::WithoutInitializing, "feature_ids"), batch, capacity_);
        out.values =
            decltype(out.values)(Kokkos::view_alloc(Kokkos::WithoutInitializing, "feature_values"), batch, capacity_);
        out.counts = decltype(out.counts)("feature_counts", batch);
      }
      if (sample_sparse(draw_, first, out, eps_) == 0) return;
      capacity_ *= 2;  // deterministic draws: the retry reproduces the same samples
    }
  }

  /// x = Σ c_i d_i + bias + dense (an empty `dense` adds nothing). Public: nvcc refuses a device
  /// lambda in a private member function.
  void hidden_of(const SparseBatch<float>& truth, const Matrix<float>& dense, const Matrix<float>& x) const {
    hidden_from_sparse(truth, features_, bias_, x);
    if (dense.extent(0) == 0) return;
    const auto xx = x, dd = dense;
    for_each_entry(
        "synthsae::add_dense", x.extent(0), x.extent(1), KOKKOS_LAMBDA(int i, int k) { xx(i, k) += dd(i, k); });
  }

 private:
  void compensate() {
    const auto c = probability_correction_factors(forest_, probabilities_);
    for (std::size_t i = 0; i < probabilities_.size(); ++i) {
      const double p = probabilities_[i] * c[i];
      if (p >= 1.0 && probabilities_[i] < 1.0) ++clamped_;
      probabilities_[i] = std::min(p, 1.0);
    }
  }

  void check_overrides(const WorldOverrides& o) const {
    const auto n = num_features();
    auto check = [&](const std::optional<std::vector<double>>& v, const char* what, double lo, double hi) {
      if (!v) return;
      if (v->size() != n)
        throw ShapeError(std::string(what) + " override has " + show(v->size()) + " entries, num_features is " +
                         show(n));
      for (std::size_t i = 0; i < n; ++i) {
        if (!((*v)[i] >= lo && (*v)[i] <= hi))
          throw ConfigError(std::string(what) + "[" + show(i) + "]", show((*v)[i]), "out of range");
      }
    };
    check(o.firing_probabilities, "firing_probabilities", 0.0, 1.0);
    check(o.mean_magnitudes, "mean_magnitudes", -1e30, 1e30);
    check(o.std_magnitudes, "std_magnitudes", 0.0, 1e30);
    if (correlation_ && (correlation_->num_features != n || correlation_->factor.size() != n * correlation_->rank ||
                         correlation_->diag.size() != n)) {
      throw ShapeError("correlation factors do not match num_features = " + show(n));
    }
  }

  /// Total variance of the sparse part, Σ_k Var(x_k), on 16,384 samples of the default stream
  /// from 2^58 (a region training and evaluation do not read): the dense parts' scale.
  double sparse_variance() {
    const std::size_t d = hidden_dim(), rows = 16'384, chunk = 4096;
    std::vector<double> sum(d, 0), sum_sq(d, 0);
    SparseBatch<float> truth;
    Matrix<float> x("variance_x", chunk, d);
    for (std::size_t first = 0; first < rows; first += chunk) {
      sample_features_at(truth, (std::uint64_t(1) << 58) + first, chunk);
      hidden_from_sparse(truth, features_, bias_, x);
      const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), x);
      for (std::size_t i = 0; i < chunk; ++i)
        for (std::size_t k = 0; k < d; ++k) sum[k] += h(i, k), sum_sq[k] += double(h(i, k)) * h(i, k);
    }
    double v = 0;
    for (std::size_t k = 0; k < d; ++k) v += std::max(0.0, sum_sq[k] / double(rows) - sum[k] * sum[k] / double(rows) / double(rows));
    return v;
  }

  void finish_setup() {
    features_ = on_huge_pages(features_);  // the sampler reads its rows at random
    const auto n = num_features();
    std_ = std_override_ ? *std_override_ : generate(cfg_.std_firing_magnitudes, n, seed_ + 1);
    mean_ = mean_override_ ? *mean_override_ : generate(cfg_.mean_firing_magnitudes, n, seed_ + 2);
    tables_ = flatten_hierarchy(forest_, n);
    for (std::size_t c = 0; c < n; ++c) {
      const auto f = tables_.parent[c];
      if (tables_.scaled[c] && !(mean_[f] > 0)) {
        throw ConfigError("mean_firing_magnitudes[" + show(f) + "]", show(mean_[f]),
                          "must be > 0: feature " + show(f) + " scales its children by value / mean");
      }
    }
    auto to_device = [](const auto& host, const char* label) {
      using T = typename std::decay_t<decltype(host)>::value_type;
      using Dev = std::conditional_t<std::is_same_v<T, double>, float, T>;
      Vector<Dev> v(std::string(label), host.size());
      auto h = Kokkos::create_mirror_view(v);
      for (std::size_t i = 0; i < host.size(); ++i) h(i) = static_cast<Dev>(host[i]);
      Kokkos::deep_copy(v, h);
      return v;
    };
    SamplerTables& t = draw_.t;
    t.num_features = static_cast<int>(n);
    t.probability = to_device(probabilities_, "firing_probability");
    std::vector<double> threshold(n);
    for (std::size_t i = 0; i < n; ++i)
      threshold[i] = -normal_quantile(probabilities_[i]);  // Phi^-1(1 - p), accurate for small p
    t.threshold = to_device(threshold, "firing_threshold");
    t.mean = to_device(mean_, "magnitude_mean");
    t.stddev = to_device(std_, "magnitude_std");
    t.group_offsets = to_device(tables_.group_offsets, "group_offsets");
    t.member_offsets = to_device(tables_.member_offsets, "member_offsets");
    t.members = to_device(tables_.members, "group_members");
    t.group_exclusive = to_device(tables_.group_exclusive, "group_exclusive");
    t.group_scaled = to_device(tables_.group_scaled, "group_scaled");
    t.group_coactivation = to_device(tables_.group_coactivation, "group_coactivation");
    t.group_counter = to_device(tables_.group_counter, "group_counter");
    t.top_level = to_device(tables_.top_level, "top_level");
    if (correlation_) {
      const auto& c = *correlation_;
      t.rank = static_cast<int>(c.rank);
      t.factor = Matrix<float>("copula_factor", n, c.rank);
      auto h = Kokkos::create_mirror_view(t.factor);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < c.rank; ++k) h(i, k) = c.factor[i * c.rank + k];
      Kokkos::deep_copy(t.factor, h);
      std::vector<double> sqrt_diag(n);
      for (std::size_t i = 0; i < n; ++i) sqrt_diag[i] = std::sqrt(std::max(0.0f, c.diag[i]));
      t.sqrt_diag = to_device(sqrt_diag, "copula_sqrt_diag");
    } else {
      t.rank = 0;
      t.factor = Matrix<float>("copula_factor", n, 0);
      t.sqrt_diag = Vector<float>("copula_sqrt_diag", n);
    }
    build_top_level_blocks(t);
    draw_.seed = default_sampling_seed();
    if (!cfg_.dense_components.empty() && dense_.empty())
      dense_ = build_dense_parts(cfg_.dense_components, hidden_dim(), sparse_variance(), seed_);
  }

  /// The sampler's per-block copies of the top-level features (SamplerTables::top_ids).
  void build_top_level_blocks(SamplerTables& t) const {
    const std::size_t top = tables_.top_level.size(), r = static_cast<std::size_t>(t.rank);
    const std::size_t padded = (top + kTopLevelChunk - 1) / kTopLevelChunk * kTopLevelChunk;
    auto probability = Kokkos::create_mirror_view_and_copy(HostSpace(), t.probability);
    auto threshold = Kokkos::create_mirror_view_and_copy(HostSpace(), t.threshold);
    auto sqrt_diag = Kokkos::create_mirror_view_and_copy(HostSpace(), t.sqrt_diag);
    auto factor = Kokkos::create_mirror_view_and_copy(HostSpace(), t.factor);
    t.top_ids = Vector<std::int32_t>("top_ids", padded);
    t.top_probability = Vector<float>("top_probability", padded);
    t.top_threshold = Vector<float>("top_threshold", padded);
    t.top_inv_sqrt_diag = Vector<float>("top_inv_sqrt_diag", padded);
    // Block-major: block q's r x kTopLevelBlock factor entries are one contiguous stream.
    t.top_factor = Matrix<float>("top_factor", padded / kTopLevelBlock, r * kTopLevelBlock);
    auto ids = Kokkos::create_mirror_view(t.top_ids);
    auto p = Kokkos::create_mirror_view(t.top_probability), th = Kokkos::create_mirror_view(t.top_threshold),
         inv_sd = Kokkos::create_mirror_view(t.top_inv_sqrt_diag);
    auto fac = Kokkos::create_mirror_view(t.top_factor);
    for (std::size_t i = 0; i < padded; ++i) {
      const bool real = i < top;
      const int f = real ? tables_.top_level[i] : 0;
      // Padding never fires: probability 0, threshold +inf (s = +inf passes the bound test). No
      // idiosyncratic noise (sqrt_diag 0, full-rank factor) is marked by inverse 0: never filtered.
      ids(i) = real ? f : -1;
      p(i) = real ? probability(f) : 0.0f;
      th(i) = real ? threshold(f) : std::numeric_limits<float>::infinity();
      const float sd = real && r > 0 ? sqrt_diag(f) : 1.0f;
      inv_sd(i) = sd > 0 ? 1.0f / sd : 0.0f;
      for (std::size_t k = 0; k < r; ++k)
        fac(i / kTopLevelBlock, k * kTopLevelBlock + i % kTopLevelBlock) = real ? factor(f, k) : 0.0f;
    }
    // Each chunk's distinct fire-word counters, in first-use order, and each feature's word slot.
    const std::size_t chunks = padded / kTopLevelChunk;
    t.top_chunk_counters = Vector<std::uint32_t>("top_chunk_counters", padded);
    t.top_chunk_counts = Vector<std::int32_t>("top_chunk_counts", chunks);
    t.top_word_slot = Vector<std::uint8_t>("top_word_slot", padded);
    t.top_chunk_interleaved = Vector<std::uint8_t>("top_chunk_interleaved", chunks);
    auto interleaved = Kokkos::create_mirror_view(t.top_chunk_interleaved);
    auto counters = Kokkos::create_mirror_view(t.top_chunk_counters);
    auto counts = Kokkos::create_mirror_view(t.top_chunk_counts);
    auto slots = Kokkos::create_mirror_view(t.top_word_slot);
    for (std::size_t c = 0; c < chunks; ++c) {
      std::uint32_t* chunk = &counters(c * kTopLevelChunk);
      int n = 0;
      for (std::size_t i = c * kTopLevelChunk; i < (c + 1) * kTopLevelChunk; ++i) {
        if (ids(i) < 0) {  // padding reads slot 0; unused counter slots keep the View's zeros
          slots(i) = 0;
          continue;
        }
        const std::uint32_t counter = fire_word_counter(ids(i));
        int position = 0;
        while (position < n && chunk[position] != counter) ++position;
        if (position == n) chunk[n++] = counter;
        slots(i) = static_cast<std::uint8_t>((ids(i) & 3) * kTopLevelChunk + position);
      }
      counts(c) = n;
      bool plain = true;
      for (std::size_t j = 0; j < kTopLevelChunk; ++j)
        plain = plain && slots(c * kTopLevelChunk + j) == (j % 4) * kTopLevelChunk + j / 4;
      interleaved(c) = plain ? 1 : 0;
    }
    Kokkos::deep_copy(t.top_chunk_interleaved, interleaved);
    Kokkos::deep_copy(t.top_chunk_counters, counters);
    Kokkos::deep_copy(t.top_chunk_counts, counts);
    Kokkos::deep_copy(t.top_word_slot, slots);
    Kokkos::deep_copy(t.top_ids, ids);
    Kokkos::deep_copy(t.top_probability, p);
    Kokkos::deep_copy(t.top_threshold, th);
    Kokkos::deep_copy(t.top_inv_sqrt_diag, inv_sd);
    Kokkos::deep_copy(t.top_factor, fac);
  }

  SyntheticModelConfig cfg_;
  std::uint64_t seed_ = 0;
  Forest forest_;
  HierarchyTables tables_;
  std::optional<CorrelationFactors> correlation_;
  Matrix<float> features_;
  Vector<float> bias_;
  std::vector<double> probabilities_, mean_, std_;
  std::optional<std::vector<double>> mean_override_, std_override_;
  std::size_t clamped_ = 0;
  double orthogonalization_loss_ = 0;
  FeatureDraw draw_;
  DenseParts dense_;
  Matrix<float> eps_;
  std::size_t capacity_ = 64;
  std::shared_ptr<BatchCache> cache_;
  std::uint64_t position_ = 0;
};

}  // namespace synthsae
