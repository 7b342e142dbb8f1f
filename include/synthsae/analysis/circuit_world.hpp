#pragma once
// A synthetic "circuit" for the paper's §6.2 (reference dark-matter.md §2.11): a target layer's
// activation made of three components, each a sparse sum over its own dictionary,
//   x_prev = Σ_{i∈P} c_i f_i                                   (the previous residual, R^d)
//   x_mlp  = Σ_{i∈M} c_i g_i + Σ_j ReLU(Σ_{k∈S_j} c_k - θ) k_j  (own features and features the
//                                                               MLP computes from x_prev's, R^d)
//   x_attn = Σ_{i∈A} c_i h_i                                   (pre-O_proj head outputs, R^{d_attn})
//   x_L    = x_prev + x_mlp + W_O x_attn.
// P, M and A fire independently (a Zipf law of rates within each component, magnitudes
// max(0, N(mean, std)), drawn by an ordinary SyntheticModel over P ∪ M ∪ A); a computed feature
// j reads `fan_in` features of P (with fan_in 1 and θ 0 it copies one: a shared feature).
//
// The world is an ActivationSource of x_L whose ground truth covers every feature of the target,
// in target space: [f_i | g_i | W_O h_i | k_j], so OracleSae and the dark-matter analysis run on
// it unchanged; read_circuit() adds the components and their own ground truth. Rows are pure
// functions of (seed, row). The assembly runs on the host (circuits are small: a few hundred
// features in tens of dimensions) and the matrices go to the device once per chunk.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/world/feature_dictionary.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae::analysis {

enum class CircuitComponent { prev = 0, mlp = 1, attn = 2 };
inline constexpr std::array<const char*, 3> kCircuitComponentNames{"prev", "mlp", "attn"};

struct CircuitConfig {
  int hidden_dim = 64;   ///< d: x_L, x_prev, x_mlp
  int attn_dim = 96;     ///< d_attn: the attention's pre-O_proj width
  int prev_features = 48, mlp_features = 32, attn_features = 48;
  int computed_features = 16;      ///< MLP features computed from x_prev's (0: none)
  int computed_fan_in = 2;         ///< |S_j|: x_prev features each computed feature reads
  double computed_threshold = 0.5; ///< θ
  Zipfian firing{1.0, 0.25, 0.02}; ///< the rates within each component
  double magnitude_mean = 1.0, magnitude_std = 0.25;
  std::uint64_t seed = 1;

  void validate() const {
    auto at_least = [](const char* f, long long v, long long lo) {
      if (v < lo) throw ConfigError(f, show(v), "must be >= " + show(lo));
    };
    at_least("hidden_dim", hidden_dim, 1), at_least("attn_dim", attn_dim, 1);
    at_least("prev_features", prev_features, 1), at_least("mlp_features", mlp_features, 0);
    at_least("attn_features", attn_features, 0), at_least("computed_features", computed_features, 0);
    if (computed_features > 0 && (computed_fan_in < 1 || computed_fan_in > prev_features))
      throw ConfigError("computed_fan_in", show(computed_fan_in),
                        "must be in [1, prev_features = " + show(prev_features) + "]");
    if (!std::isfinite(computed_threshold) || computed_threshold < 0)
      throw ConfigError("computed_threshold", show(computed_threshold), "must be finite and >= 0");
    firing.validate();
    if (!(magnitude_mean > 0 && std::isfinite(magnitude_mean)))
      throw ConfigError("magnitude_mean", show(magnitude_mean), "must be finite and > 0");
    if (!(magnitude_std >= 0 && std::isfinite(magnitude_std)))
      throw ConfigError("magnitude_std", show(magnitude_std), "must be finite and >= 0");
    const long long total = 1LL * prev_features + mlp_features + attn_features + computed_features;
    if (total > 1000000) throw ConfigError("features", show(total), "must total <= 1,000,000 (a circuit is small)");
    for (const auto& [f, v] : {std::pair{"hidden_dim", hidden_dim}, std::pair{"attn_dim", attn_dim}})
      if (v > 65536) throw ConfigError(f, show(v), "must be <= 65,536");
  }
};

/// Rows [first, first + n) of a circuit: the target's chunk (x = x_L, truth over the target's
/// features) and the three components with their own ground truth (ids local to the component).
struct CircuitChunk {
  ActivationChunk target;
  std::array<ActivationChunk, 3> component;
  std::size_t rows() const { return target.rows(); }
};

class CircuitWorld final : public ActivationSource {
 public:
  static constexpr std::uint64_t kDefaultFirstSample = SyntheticSource::kDefaultFirstSample;

  CircuitWorld(CircuitConfig cfg, std::uint64_t rows, std::uint64_t first_sample = kDefaultFirstSample)
      : cfg_(std::move(cfg)), rows_(rows), first_(first_sample), base_(build_base(cfg_)) {
    if (rows == 0) throw ConfigError("rows", "0", "must be at least 1");
    build_dictionaries();
  }

  const CircuitConfig& config() const { return cfg_; }
  std::uint64_t rows() const override { return rows_; }
  std::size_t dim() const override { return static_cast<std::size_t>(cfg_.hidden_dim); }
  const Matrix<float>* true_features() const override { return &target_features_; }
  const Vector<float>* true_bias() const override { return &zero_bias_; }
  std::string describe() const override {
    return "circuit (x_prev " + show(cfg_.prev_features) + " features, x_mlp " + show(cfg_.mlp_features) + " + " +
           show(cfg_.computed_features) + " computed, x_attn " + show(cfg_.attn_features) + " in " +
           show(cfg_.attn_dim) + " dims; d = " + show(cfg_.hidden_dim) + ", seed " + show(cfg_.seed) + ")";
  }

  /// Features of the target: prev, mlp, attn, computed, in that order.
  std::size_t target_features() const { return target_features_.extent(0); }
  /// The component of target feature i, and its index inside that component's dictionary.
  CircuitComponent component_of(std::size_t i) const {
    const std::size_t np = cfg_.prev_features, nm = cfg_.mlp_features, na = cfg_.attn_features;
    return i < np ? CircuitComponent::prev : i < np + nm ? CircuitComponent::mlp
           : i < np + nm + na                            ? CircuitComponent::attn
                                                         : CircuitComponent::mlp;  // computed
  }
  std::size_t local_index(std::size_t i) const {
    const std::size_t np = cfg_.prev_features, nm = cfg_.mlp_features, na = cfg_.attn_features;
    return i < np ? i : i < np + nm ? i - np : i < np + nm + na ? i - np - nm : i - np - na;  // computed: after M
  }
  /// A component's dictionary (rows in the component's own space) and its dimension.
  const Matrix<float>& component_features(CircuitComponent c) const { return comp_features_[int(c)]; }
  std::size_t component_dim(CircuitComponent c) const { return comp_features_[int(c)].extent(1); }
  /// W_O [d, d_attn].
  const Matrix<float>& output_projection() const { return w_o_; }
  /// The x_prev features (indices into P) each computed feature reads.
  const std::vector<std::vector<int>>& computed_inputs() const { return computed_inputs_; }
  /// Firing probabilities of the base features P, M, A (target ids [0, |P|+|M|+|A|)); computed
  /// features have none of their own and are not in it.
  const std::vector<double>& base_firing_probabilities() const { return base_.firing_probabilities(); }

  void read(std::uint64_t first, std::size_t count, ActivationChunk& out) override {
    CircuitChunk c;
    read_circuit(first, count, c);
    out = c.target;
  }

  void read_circuit(std::uint64_t first, std::size_t count, CircuitChunk& out) {
    if (first + count > rows_) throw ShapeError("CircuitWorld: rows past " + show(rows_));
    SparseBatch<float> base;
    base_.sample_features_at(base, first_ + first, count);
    const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), base.ids);
    const auto vals = Kokkos::create_mirror_view_and_copy(HostSpace(), base.values);
    const auto cnt = Kokkos::create_mirror_view_and_copy(HostSpace(), base.counts);
    const std::size_t np = cfg_.prev_features, nm = cfg_.mlp_features, na = cfg_.attn_features,
                      nc = cfg_.computed_features, d = dim();
    const std::size_t cap = base.capacity() + nc;

    // Target truth (base entries, then computed ones) and the components' own truth.
    SparseBatch<float> t = make_batch(count, cap, "circuit_target");
    std::array<SparseBatch<float>, 3> comp{make_batch(count, cap, "circuit_prev"), make_batch(count, cap, "circuit_mlp"),
                                           make_batch(count, cap, "circuit_attn")};
    auto ht = mirror(t);
    std::array<HostBatch, 3> hc{mirror(comp[0]), mirror(comp[1]), mirror(comp[2])};
    std::vector<float> prev_c(np);
    for (std::size_t b = 0; b < count; ++b) {
      std::fill(prev_c.begin(), prev_c.end(), 0.0f);
      int nt = 0;
      std::array<int, 3> ncomp{0, 0, 0};
      for (int u = 0; u < cnt(b); ++u) {
        const auto id = static_cast<std::size_t>(ids(b, u));
        const float v = vals(b, u);
        ht.push(b, nt, static_cast<int>(id), v);
        const int o = int(component_of(id));
        const std::size_t local = local_index(id);
        if (o == 0) prev_c[local] = v;
        hc[o].push(b, ncomp[o], static_cast<int>(local), v);
      }
      for (std::size_t j = 0; j < nc; ++j) {
        float s = 0;
        for (int k : computed_inputs_[j]) s += prev_c[static_cast<std::size_t>(k)];
        const float v = s - static_cast<float>(cfg_.computed_threshold);
        if (v <= 0) continue;
        ht.push(b, nt, static_cast<int>(np + nm + na + j), v);
        hc[1].push(b, ncomp[1], static_cast<int>(nm + j), v);
      }
      ht.counts(b) = nt;
      for (int o = 0; o < 3; ++o) hc[o].counts(b) = ncomp[o];
    }
    ht.copy_to(t);
    for (int o = 0; o < 3; ++o) hc[o].copy_to(comp[o]);

    out.target = ActivationChunk{};
    out.target.first = first;
    out.target.truth = t;
    for (int o = 0; o < 3; ++o) {
      auto& ch = out.component[o];
      ch = ActivationChunk{};
      ch.first = first;
      ch.truth = comp[o];
      ch.x = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "circuit_component"), count,
                           comp_features_[o].extent(1));
      hidden_from_sparse(comp[o], comp_features_[o], Vector<float>("zero_bias", comp_features_[o].extent(1)), ch.x);
    }
    // x_L from the target's truth and dictionary: the same sum the components make, mapped by W_O.
    out.target.x = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "circuit_x"), count, d);
    hidden_from_sparse(t, target_features_, zero_bias_, out.target.x);
  }

 private:
  struct HostBatch {
    decltype(Kokkos::create_mirror_view(SparseBatch<float>{}.ids)) ids;
    decltype(Kokkos::create_mirror_view(SparseBatch<float>{}.values)) values;
    decltype(Kokkos::create_mirror_view(SparseBatch<float>{}.counts)) counts;
    void push(std::size_t b, int& n, int id, float v) { ids(b, n) = id, values(b, n) = v, ++n; }
    void copy_to(SparseBatch<float>& d) const {
      Kokkos::deep_copy(d.ids, ids), Kokkos::deep_copy(d.values, values), Kokkos::deep_copy(d.counts, counts);
    }
  };
  static HostBatch mirror(const SparseBatch<float>& b) {
    return HostBatch{Kokkos::create_mirror_view(b.ids), Kokkos::create_mirror_view(b.values),
                     Kokkos::create_mirror_view(b.counts)};
  }
  static SparseBatch<float> make_batch(std::size_t n, std::size_t cap, const std::string& label) {
    SparseBatch<float> b;
    b.ids = decltype(b.ids)(label + "_ids", n, cap);
    b.values = decltype(b.values)(label + "_values", n, cap);
    b.counts = decltype(b.counts)(label + "_counts", n);
    return b;
  }

  /// The sampler of P ∪ M ∪ A: a world whose own dictionary is unused (target directions are
  /// assembled below); rates follow the Zipf law within each component.
  static SyntheticModel build_base(const CircuitConfig& cfg) {
    cfg.validate();
    const int n = cfg.prev_features + cfg.mlp_features + cfg.attn_features;
    SyntheticModelConfig mc;
    mc.num_features = n;
    mc.hidden_dim = 1;
    mc.firing_probability = cfg.firing;
    mc.mean_firing_magnitudes = ConstantMagnitude{cfg.magnitude_mean};
    mc.std_firing_magnitudes = ConstantMagnitude{cfg.magnitude_std};
    mc.bias = BiasSpec{BiasSpec::Kind::none, 0.0};
    mc.seed = cfg.seed;
    SyntheticModelParts parts;
    parts.feature_vectors = Matrix<float>("circuit_unused", n, 1);
    parts.bias = Vector<float>("circuit_unused_bias", 1);
    for (int count : {cfg.prev_features, cfg.mlp_features, cfg.attn_features}) {
      if (count == 0) continue;
      auto p = cfg.firing.generate(static_cast<std::size_t>(count), cfg.seed);
      for (auto& v : p) v = static_cast<double>(static_cast<float>(v));
      parts.firing_probabilities.insert(parts.firing_probabilities.end(), p.begin(), p.end());
    }
    return SyntheticModel(std::move(mc), std::move(parts));
  }

  /// The key of one of the circuit's own random streams (dictionaries, W_O, fan-in choices), mixed
  /// from the seed so that it never equals a sampler key of this or another seed.
  std::uint64_t stream_key(std::uint64_t part) const { return mix_stream(cfg_.seed, 0xC12C'0000'0000ull + part); }

  void build_dictionaries() {
    const std::size_t d = dim(), da = cfg_.attn_dim, np = cfg_.prev_features, nm = cfg_.mlp_features,
                      na = cfg_.attn_features, nc = cfg_.computed_features;
    // Each dictionary from its own seed: random unit rows (no orthogonalisation: the components'
    // superposition is set by their counts against their dimensions).
    const auto f = Kokkos::create_mirror_view_and_copy(HostSpace(), random_unit_rows<float>(np, d, stream_key(1)));
    const auto g =
        Kokkos::create_mirror_view_and_copy(HostSpace(), random_unit_rows<float>(nm + nc, d, stream_key(2)));
    const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), random_unit_rows<float>(na, da, stream_key(3)));
    // W_O with N(0, 1/d) entries: ‖W_O h‖ ≈ 1 for a unit h.
    w_o_ = Matrix<float>("circuit_w_o", d, da);
    auto hw = Kokkos::create_mirror_view(w_o_);
    for (std::size_t r = 0; r < d; ++r) {
      RandomStream rng(stream_key(4), r);
      for (std::size_t k = 0; k < da; ++k) hw(r, k) = rng.normal<float>() / std::sqrt(float(d));
    }
    Kokkos::deep_copy(w_o_, hw);

    const std::size_t nt = np + nm + na + nc;
    target_features_ = Matrix<float>("circuit_target_features", nt, d);
    auto ht = Kokkos::create_mirror_view(target_features_);
    comp_features_ = {Matrix<float>("circuit_prev_features", np, d), Matrix<float>("circuit_mlp_features", nm + nc, d),
                      Matrix<float>("circuit_attn_features", na, da)};
    std::array<decltype(Kokkos::create_mirror_view(comp_features_[0])), 3> hc{
        Kokkos::create_mirror_view(comp_features_[0]), Kokkos::create_mirror_view(comp_features_[1]),
        Kokkos::create_mirror_view(comp_features_[2])};
    for (std::size_t i = 0; i < np; ++i) {
      for (std::size_t k = 0; k < d; ++k) ht(i, k) = hc[0](i, k) = f(i, k);
    }
    for (std::size_t i = 0; i < nm; ++i) {
      for (std::size_t k = 0; k < d; ++k) ht(np + i, k) = hc[1](i, k) = g(i, k);
    }
    for (std::size_t i = 0; i < na; ++i) {
      for (std::size_t k = 0; k < da; ++k) hc[2](i, k) = h(i, k);
      for (std::size_t r = 0; r < d; ++r) {
        double s = 0;
        for (std::size_t k = 0; k < da; ++k) s += double(hw(r, k)) * h(i, k);
        ht(np + nm + i, r) = static_cast<float>(s);
      }
    }
    for (std::size_t j = 0; j < nc; ++j) {
      for (std::size_t k = 0; k < d; ++k) ht(np + nm + na + j, k) = hc[1](nm + j, k) = g(nm + j, k);
    }
    Kokkos::deep_copy(target_features_, ht);
    for (int o = 0; o < 3; ++o) Kokkos::deep_copy(comp_features_[o], hc[o]);
    zero_bias_ = Vector<float>("circuit_bias", d);

    // Each computed feature reads fan_in distinct x_prev features (a partial Fisher-Yates draw).
    computed_inputs_.assign(nc, {});
    for (std::size_t j = 0; j < nc; ++j) {
      RandomStream rng(stream_key(5), j);
      std::vector<int> order(np);
      for (std::size_t i = 0; i < np; ++i) order[i] = static_cast<int>(i);
      for (int u = 0; u < cfg_.computed_fan_in; ++u) {
        const auto pick = u + rng.uniform_below(static_cast<std::uint32_t>(np - u));
        std::swap(order[u], order[pick]);
        computed_inputs_[j].push_back(order[u]);
      }
    }
  }

  CircuitConfig cfg_;
  std::uint64_t rows_, first_;
  SyntheticModel base_;
  Matrix<float> target_features_, w_o_;
  std::array<Matrix<float>, 3> comp_features_;
  Vector<float> zero_bias_;
  std::vector<std::vector<int>> computed_inputs_;
};

}  // namespace synthsae::analysis
