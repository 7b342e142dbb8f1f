// Golden fixtures made by SAELens 6.54 itself (scripts/saelens_fixtures.py, files under
// tests/data/saelens/): torch's CPU normal draws, and a SAELens world directory that must load
// into SAELens's world - the same redrawn magnitudes, the same probabilities, the same firing
// statistics within sampling error. CI checks parity this way without Python.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <vector>

#include "saelens/fixture_tensors.hpp"
#include "synthsae/core/torch_cpu_generator.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/saelens/model_directory.hpp"

using namespace synthsae;

namespace {

const std::filesystem::path kData = test::kSaelensData;

/// Distance in float ulps (both finite; across zero it counts the ulps on both sides).
std::int64_t ulps(float a, float b) {
  auto ordered = [](float f) {
    std::int32_t i = 0;
    std::memcpy(&i, &f, sizeof i);
    return i < 0 ? std::int64_t(std::numeric_limits<std::int32_t>::min()) - i : std::int64_t(i);
  };
  return std::llabs(ordered(a) - ordered(b));
}

/// Per-feature firing counts and active-magnitude sums of `samples` draws of `world` from
/// position 0, and the per-sample L0's first two moments.
struct FiringTally {
  std::vector<double> fired, sum, squares;
  double active = 0, l0_squares = 0;
};

FiringTally tally_firings(SyntheticModel& world, std::size_t samples) {
  const std::size_t n = world.num_features(), batch = 2000;
  FiringTally t{std::vector<double>(n, 0.0), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  world.set_position(0);
  for (std::size_t done = 0; done < samples; done += batch) {
    auto b = world.sample(batch);
    auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), b.features.ids);
    auto values = Kokkos::create_mirror_view_and_copy(HostSpace(), b.features.values);
    auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), b.features.counts);
    for (std::size_t r = 0; r < batch; ++r) {
      double row = 0;
      for (int q = 0; q < counts(r); ++q) {
        const float v = values(r, q);
        if (v == 0.0f) continue;
        const auto f = static_cast<std::size_t>(ids(r, q));
        t.fired[f] += 1, t.sum[f] += v, t.squares[f] += double(v) * v, row += 1;
      }
      t.active += row, t.l0_squares += row * row;
    }
  }
  return t;
}

/// Features whose rate over N samples differs from SAELens's by more than sampling error:
/// |r - r'| > 5 sqrt(2 p (1 - p) / N) + 2 / N (two independent estimates, 5 sigma).
std::size_t rates_outside(const std::vector<double>& fired, const std::vector<double>& rates_theirs, double N) {
  std::size_t outside = 0;
  for (std::size_t i = 0; i < fired.size(); ++i) {
    const double r = fired[i] / N, p = 0.5 * (r + rates_theirs[i]);
    if (std::fabs(r - rates_theirs[i]) > 5 * std::sqrt(2 * p * (1 - p) / N) + 2 / N) ++outside;
  }
  return outside;
}

}  // namespace

TEST_CASE("torch's CPU generator: randn matches the values torch printed", "[world][saelens]") {
  const auto fixture = io::read_json_file(kData / "torch_randn.json");
  std::size_t total = 0, exact = 0;
  std::int64_t worst = 0;
  for (const auto& draw : fixture.at("draws")) {
    const auto seed = draw.at("seed").get<std::uint64_t>();
    const auto n = draw.at("n").get<std::size_t>();
    INFO("seed " << seed << ", n " << n);
    torch_compat::CpuGenerator g(seed);
    const std::vector<float> ours = g.randn(n);
    const auto& theirs = draw.at("values");
    REQUIRE(theirs.size() == n);
    for (std::size_t i = 0; i < n; ++i) {
      const float t = theirs[i].get<float>();
      const std::int64_t d = ulps(ours[i], t);
      // n < 16 is torch's scalar double path: the same operations, bit for bit. Blocks of 16 use
      // torch's vectorised log/sin/cos, an ulp or two from the C library's (see the header).
      if (n < 16) CHECK(d == 0);
      worst = std::max(worst, d);
      exact += d == 0;
      ++total;
    }
  }
  CHECK(worst <= 4);
  // Most draws are bit-identical: the uniforms, the pairing, the tail redraw are torch's.
  CHECK(double(exact) / double(total) > 0.7);
}

TEST_CASE("a SAELens world directory loads into SAELens's world", "[world][saelens]") {
  const auto expected = io::read_json_file(kData / "world_tiny.json");
  std::vector<std::string> notes;
  SyntheticModel world = saelens::load_synthetic_model(kData / "world_tiny", [&](const std::string& m) {
    notes.push_back(m);
  });
  CHECK(notes.empty());  // complete: hierarchy.json and the correlation tensors are there
  const std::size_t n = world.num_features();
  const auto std_theirs = expected.at("std_magnitudes").get<std::vector<float>>();
  const auto mean_theirs = expected.at("mean_magnitudes").get<std::vector<float>>();
  const auto p_theirs = expected.at("firing_probabilities").get<std::vector<float>>();
  REQUIRE(std_theirs.size() == n);
  std::int64_t worst_mean = 0;
  double worst_std = 0;
  for (std::size_t i = 0; i < n; ++i) {
    // The redrawn folded-normal stds |0.5 + 0.5 z| (seed + 1): z to a few ulps, so the result to
    // a few ulps of the terms before they cancel, in absolute terms: 8 eps (0.5 + 0.5 |z|), and
    // 0.5 + 0.5 |z| <= 1 + |value|.
    const double theirs = std_theirs[i], bound = 8 * 1.1920929e-7 * (1.0 + std::fabs(theirs));
    worst_std = std::max(worst_std, std::fabs(world.std_magnitudes()[i] - theirs) / bound);
    // torch.linspace in float32 against the same line in double, rounded once.
    worst_mean = std::max(worst_mean, ulps(static_cast<float>(world.mean_magnitudes()[i]), mean_theirs[i]));
    // Stored in the file: exact.
    CHECK(static_cast<float>(world.firing_probabilities()[i]) == p_theirs[i]);
  }
  CHECK(worst_std <= 1.0);
  CHECK(worst_mean <= 4);

  // Firing statistics of as many samples as SAELens drew. Each feature's rate differs from
  // SAELens's by sampling error only: |r - r'| <= 5 sqrt(2 p (1 - p) / N) + 2 / N (two
  // independent estimates; 5 sigma over 300 features fails by chance with probability < 1e-4).
  const auto samples = expected.at("samples").get<std::size_t>();
  const auto rates_theirs = expected.at("firing_rates").get<std::vector<double>>();
  const FiringTally t = tally_firings(world, samples);
  const double N = double(samples);
  CHECK(rates_outside(t.fired, rates_theirs, N) == 0);
  // Mean L0: 5 standard errors of the difference of two estimates, with the per-sample L0's
  // variance measured on our draws (correlation and hierarchy make it differ from E[L0]).
  const double active = t.active, l0 = active / N, l0_theirs = expected.at("mean_l0").get<double>();
  const double l0_var = t.l0_squares / N - l0 * l0;
  CHECK(std::fabs(l0 - l0_theirs) < 5 * std::sqrt(2 * l0_var / N));
  // Mean magnitude of active features: 5 standard errors of the difference.
  double magnitude_sum = 0, magnitude_sq = 0;
  for (std::size_t i = 0; i < n; ++i) magnitude_sum += t.sum[i], magnitude_sq += t.squares[i];
  const double mean_mag = magnitude_sum / active;
  const double sd_mag = std::sqrt(magnitude_sq / active - mean_mag * mean_mag);
  CHECK(std::fabs(mean_mag - expected.at("mean_active_magnitude").get<double>()) <
        5 * sd_mag * std::sqrt(2 / active));
}

#include "synthsae/metrics/evaluate.hpp"
#include "synthsae/saelens/sae_directory.hpp"

TEST_CASE("SAE directories trained and saved by SAELens load and score as SAELens scores them", "[saelens]") {
  SyntheticModel world = saelens::load_synthetic_model(kData / "world_tiny", [](const std::string&) {});
  for (const char* arch :
       {"standard", "topk", "abstopk", "batchtopk", "matryoshka_batchtopk", "jumprelu", "gated", "matching_pursuit"}) {
    INFO("architecture " << arch);
    const auto expected = io::read_json_file(kData / (std::string("sae_") + arch + ".json"));
    InferenceSae sae = saelens::load_sae(kData / (std::string("sae_") + arch));
    const auto samples = expected.at("samples").get<std::size_t>();
    const io::Json ours = evaluate_all(sae, world, EvalOptions{samples, 1000});
    // The decoder metrics depend on the weights and the dictionary only, both read from the same
    // files: equal up to float rounding in the cosines.
    CHECK(ours["mcc"].get<double>() == Approx(expected["mcc"].get<double>()).margin(1e-5));
    CHECK(ours["uniqueness"].get<double>() == Approx(expected["uniqueness"].get<double>()).margin(1e-5));
    // The sample metrics come from different samples of the same world. Their standard error is
    // measured here: the spread of 10 chunks of samples / 10 evaluated separately, sd / sqrt(10)
    // for a whole evaluation, sqrt(2) of that for the difference of two; 5 of those. (Precision
    // and F1 are means of per-latent ratios that nearly dead latents make noisy; a chunk has more
    // of them than the whole, so its spread errs on the large side - the honest side.)
    // (dead_latents is a count over the sample, not an estimate of a fixed quantity: not compared.)
    const std::size_t chunks = 10, per_chunk = samples / chunks;
    auto metric = [](const io::Json& r, const std::string& key) {
      return r.contains(key) ? r[key].get<double>() : r["classification"][key].get<double>();
    };
    const std::vector<std::string> keys = {"true_l0",   "sae_l0", "explained_variance", "shrinkage",
                                           "precision", "recall", "f1_score"};
    std::vector<std::vector<double>> per(keys.size());
    for (std::size_t c = 0; c < chunks; ++c) {
      EvalOptions o{per_chunk, 1000};
      o.first_sample += c * per_chunk;
      const io::Json r = evaluate_all(sae, world, o);
      for (std::size_t k = 0; k < keys.size(); ++k) per[k].push_back(metric(r, keys[k]));
    }
    for (std::size_t k = 0; k < keys.size(); ++k) {
      INFO(keys[k]);
      double mean = 0, var = 0;
      for (double v : per[k]) mean += v / double(chunks);
      for (double v : per[k]) var += (v - mean) * (v - mean) / double(chunks - 1);
      const double tolerance = 5 * std::sqrt(2.0) * std::sqrt(var / double(chunks));
      CHECK(std::fabs(metric(ours, keys[k]) - metric(expected, keys[k])) <= tolerance);
    }
  }
}

namespace {

Matrix<float> matrix_from_json(const io::Json& rows) {
  Matrix<float> m("m", rows.size(), rows.at(0).size());
  auto h = Kokkos::create_mirror_view(m);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t k = 0; k < rows[i].size(); ++k) h(i, k) = rows[i][k].get<float>();
  Kokkos::deep_copy(m, h);
  return m;
}

/// Worst |a - b| / (1 + max |b|) over the entries.
double worst_relative(const Matrix<float>& a, const Matrix<float>& b) {
  auto ha = Kokkos::create_mirror_view_and_copy(HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), b);
  double worst = 0, largest = 0;
  for (std::size_t i = 0; i < hb.size(); ++i) largest = std::max(largest, double(std::fabs(hb.data()[i])));
  for (std::size_t i = 0; i < hb.size(); ++i)
    worst = std::max(worst, double(std::fabs(ha.data()[i] - hb.data()[i])));
  return worst / (1 + largest);
}

}  // namespace

TEST_CASE("normalize_activations modes encode and decode as SAELens's module does", "[saelens]") {
  for (const char* mode : {"constant_norm_rescale", "layer_norm", "expected_average_only_in"}) {
    INFO("normalize_activations = " << mode);
    const auto expected = io::read_json_file(kData / (std::string("sae_standard_") + mode + ".json"));
    InferenceSae sae = saelens::load_sae(kData / (std::string("sae_standard_") + mode));
    CHECK(inference::normalization_name(sae.normalization.mode) == std::string(mode));
    const Matrix<float> x = matrix_from_json(expected.at("x"));
    const Matrix<float> z_theirs = matrix_from_json(expected.at("z")), x_hat_theirs = matrix_from_json(expected.at("x_hat"));
    Matrix<float> z("z", z_theirs.extent(0), z_theirs.extent(1)), x_hat("x_hat", x.extent(0), x.extent(1));
    for (const double density : {0.0, 1.0}) {  // the decode's GEMM, then its sparse form
      INFO("sparse decode " << density);
      sae.decoder().set_max_density(density);
      sae.encode(x, z);
      sae.decode(z, x_hat);
      CHECK(sae.decoder().last_was_sparse() == (density > 0));
      // Float32 products of length 24 and 64 in two summation orders: 1e-5 of the largest entry.
      CHECK(worst_relative(z, z_theirs) < 1e-5);
      CHECK(worst_relative(x_hat, x_hat_theirs) < 1e-5);
    }
    // Saving writes the mode back.
    const auto dir = std::filesystem::temp_directory_path() / "synthsae_normalization_roundtrip";
    std::filesystem::remove_all(dir);
    saelens::save_sae(sae, dir);
    CHECK(io::read_json_file(dir / "cfg.json")["normalize_activations"] == mode);
  }
}

TEST_CASE("normalize_activations by hand: layer_norm and constant_norm_rescale on an identity SAE", "[saelens]") {
  // W_enc = W_dec = I, no biases: z = ReLU(normalised x), x_hat = z undone.
  InferenceSae sae;
  sae.form = inference::ReluForm{};
  sae.params = initial_parameters<float>(3, 3, std::nullopt, 0);
  auto we = Kokkos::create_mirror_view(sae.params.w_enc);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) we(i, j) = i == j ? 1.0f : 0.0f;
  Kokkos::deep_copy(sae.params.w_enc, we);
  Kokkos::deep_copy(sae.params.w_dec, we);
  Kokkos::deep_copy(sae.params.b_enc, 0.0f);
  Kokkos::deep_copy(sae.params.b_dec, 0.0f);
  Matrix<float> x("x", 1, 3), z("z", 1, 3), x_hat("x_hat", 1, 3);
  auto set_x = [&](float a, float b, float c) {
    auto h = Kokkos::create_mirror_view(x);
    h(0, 0) = a, h(0, 1) = b, h(0, 2) = c;
    Kokkos::deep_copy(x, h);
  };
  // layer_norm on (1, 2, 6): mean 3, centred (-2, -1, 3), unbiased variance 14 / 2 = 7.
  sae.normalization.mode = inference::ActivationNormalization::layer_norm;
  set_x(1, 2, 6);
  sae.encode(x, z);
  sae.decode(z, x_hat);
  auto hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
  auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x_hat);
  const double sd = std::sqrt(7.0);
  CHECK(hz(0, 0) == 0.0f);
  CHECK(hz(0, 1) == 0.0f);
  CHECK(hz(0, 2) == Approx(3.0 / (sd + 1e-5)).epsilon(1e-6));
  CHECK(hx(0, 0) == Approx(3.0).epsilon(1e-6));  // 0 sd + 3
  CHECK(hx(0, 2) == Approx(3.0 + 3.0 * sd / (sd + 1e-5)).epsilon(1e-6));
  // constant_norm_rescale on (3, 4, 0): c = sqrt(3) / 5; the output divides by c again.
  sae.normalization.mode = inference::ActivationNormalization::constant_norm_rescale;
  set_x(3, 4, 0);
  sae.encode(x, z);
  sae.decode(z, x_hat);
  hz = Kokkos::create_mirror_view_and_copy(HostSpace(), z);
  hx = Kokkos::create_mirror_view_and_copy(HostSpace(), x_hat);
  CHECK(hz(0, 0) == Approx(3.0 * std::sqrt(3.0) / 5).epsilon(1e-6));
  CHECK(hz(0, 1) == Approx(4.0 * std::sqrt(3.0) / 5).epsilon(1e-6));
  CHECK(hx(0, 0) == Approx(3.0).epsilon(1e-6));
  CHECK(hx(0, 1) == Approx(4.0).epsilon(1e-6));
  // A decode of another batch than the one encoded is refused, naming the mode.
  Matrix<float> z2("z2", 2, 3), x2("x2", 2, 3);
  CHECK_THROWS_WITH(sae.decode(z2, x2), Catch::Contains("constant_norm_rescale"));
  // An unknown mode names the field and the choices.
  CHECK_THROWS_WITH(inference::parse_normalization("batch_norm"),
                    Catch::Contains("normalize_activations") && Catch::Contains("layer_norm"));
}

TEST_CASE("organisational hierarchy nodes sample as SAELens samples them", "[world][saelens][hierarchy]") {
  // world_tiny with a hand-written hierarchy.json holding feature_index null nodes
  // (scripts/saelens_fixtures.py ORGANISATIONAL_FOREST); SAELens's rates and magnitudes of 20,000 samples.
  const auto expected = io::read_json_file(kData / "world_organisational.json");
  SyntheticModel world = saelens::load_synthetic_model(kData / "world_organisational", [](const std::string&) {});
  const std::size_t n = world.num_features();
  const auto samples = expected.at("samples").get<std::size_t>();
  const auto rates_theirs = expected.at("firing_rates").get<std::vector<double>>();
  const auto count_theirs = expected.at("active_count").get<std::vector<double>>();
  const auto sum_theirs = expected.at("active_sum").get<std::vector<double>>();
  REQUIRE(rates_theirs.size() == n);
  const FiringTally t = tally_firings(world, samples);
  const auto &fired = t.fired, &sum = t.sum, &squares = t.squares;
  // Rates: the same bound as the world_tiny case (two independent estimates, 5 sigma).
  const double N = double(samples);
  const std::size_t outside = rates_outside(fired, rates_theirs, N);
  std::size_t magnitudes_checked = 0, magnitudes_outside = 0;
  for (std::size_t i = 0; i < n; ++i) {
    // Mean active magnitude (scaling by the effective parent shows here): 5 standard errors of the
    // difference, with the spread measured on our draws, where both have >= 200 firings.
    if (fired[i] < 200 || count_theirs[i] < 200) continue;
    ++magnitudes_checked;
    const double mean = sum[i] / fired[i], sd = std::sqrt(std::max(0.0, squares[i] / fired[i] - mean * mean));
    const double theirs = sum_theirs[i] / count_theirs[i];
    if (std::fabs(mean - theirs) > 5 * sd * std::sqrt(1 / fired[i] + 1 / count_theirs[i]) + 1e-6) ++magnitudes_outside;
  }
  CHECK(outside == 0);
  CHECK(magnitudes_checked > 20);
  CHECK(magnitudes_outside == 0);
  // Not vacuous: the root organisational ME group {0, 1, 2} fires at most one member, so its
  // members' rates are well below their raw probabilities.
  CHECK(fired[0] / N < 0.9 * world.firing_probabilities()[0]);
}

#include "synthsae/train/input_whitening.hpp"
#include "synthsae/world/correlation_builders.hpp"

TEST_CASE("covariance whitening and its fold reproduce SAELens's", "[saelens][whitening]") {
  const auto fx = io::read_json_file(kData / "whitening.json");
  const auto rows = fx.at("x").get<std::vector<std::vector<double>>>();
  const std::size_t d = rows.at(0).size();
  std::vector<double> sum_x(d, 0), sum_outer(d * d, 0);
  for (const auto& r : rows)
    for (std::size_t k = 0; k < d; ++k) {
      sum_x[k] += r[k];
      for (std::size_t q = 0; q < d; ++q) sum_outer[k * d + q] += r[k] * r[q];
    }
  const InputWhitening ours = whitening_from_moments(rows.size(), sum_x, sum_outer, 1e-3);
  InputWhitening theirs;
  theirs.mean = fx.at("mean").get<std::vector<double>>();
  for (const auto& r : fx.at("matrix").get<std::vector<std::vector<double>>>())
    theirs.matrix.insert(theirs.matrix.end(), r.begin(), r.end());
  for (const auto& r : fx.at("inverse").get<std::vector<std::vector<double>>>())
    theirs.inverse.insert(theirs.inverse.end(), r.begin(), r.end());
  // Eigenvector signs are free, so compare what does not depend on them: the mean, M M^T =
  // (C + eps)^-1 and M^-T M^-1 = C + eps, all in double (summation order apart: 1e-10 relative).
  for (std::size_t k = 0; k < d; ++k) CHECK(ours.mean[k] == Approx(theirs.mean[k]).epsilon(1e-12).margin(1e-12));
  for (std::size_t i = 0; i < d; ++i)
    for (std::size_t j = 0; j < d; ++j) {
      double mm_ours = 0, mm_theirs = 0, ii_ours = 0, ii_theirs = 0;
      for (std::size_t k = 0; k < d; ++k) {
        mm_ours += ours.matrix[i * d + k] * ours.matrix[j * d + k];
        mm_theirs += theirs.matrix[i * d + k] * theirs.matrix[j * d + k];
        ii_ours += ours.inverse[k * d + i] * ours.inverse[k * d + j];
        ii_theirs += theirs.inverse[k * d + i] * theirs.inverse[k * d + j];
      }
      CHECK(mm_ours == Approx(mm_theirs).epsilon(1e-10).margin(1e-12));
      CHECK(ii_ours == Approx(ii_theirs).epsilon(1e-10).margin(1e-12));
    }
  // The fold with SAELens's own M, on the weights SAELens folded: float weights folded in double,
  // so each weight agrees to float rounding (2 ulps of values of order 1).
  const auto load = [](const io::Json& tensors, const std::string& name, const auto& view) {
    test::load_tensor(tensors, name, view);
  };
  const auto worst_error = [](const io::Json& tensors, const std::string& name, const auto& view) {
    return test::worst_error(tensors, name, view);
  };
  std::size_t cases = 0;
  for (const auto& [key, fold] : fx.at("folds").items()) {
    INFO(key);
    const bool apply = key.find("no_apply") == std::string::npos;
    const auto& before = fold.at("before");
    const auto& after = fold.at("after");
    // Loads SAELens's weights before the fold into `sae`, folds with SAELens's M, compares each
    // tensor with SAELens's after the fold.
    auto check = [&](auto& sae, const std::vector<std::string>& biases) {
      sae.set_apply_b_dec_to_input(apply);
      auto& p = sae.parameters();
      auto bias = [&](const std::string& e) { return e == "b_enc" ? p.b_enc : p.extra.at(e); };
      load(before, "W_enc", p.w_enc), load(before, "W_dec", p.w_dec), load(before, "b_dec", p.b_dec);
      for (const auto& e : biases) load(before, e, bias(e));
      fold_input_whitening(sae, theirs);
      CHECK(worst_error(after, "W_enc", p.w_enc) < 3e-7);
      CHECK(worst_error(after, "W_dec", p.w_dec) < 3e-7);
      CHECK(worst_error(after, "b_dec", p.b_dec) < 3e-7);
      for (const auto& e : biases) CHECK(worst_error(after, e, bias(e)) < 3e-7);
    };
    if (key.rfind("standard", 0) == 0) {
      StandardSae<float> sae(d, 6, Relu{}, L1Penalty{1.0}, {}, {}, 0.5, 0);
      check(sae, {"b_enc"});
    } else if (key.rfind("topk", 0) == 0) {
      // SAELens folds the decoder norms first (unit rows, W_enc and b_enc times the norms) and
      // saves the rescale off.
      TopKSae<float> sae(d, 6, TopK{2, true}, {}, AuxK{1.0}, {}, 0.5, 0);
      check(sae, {"b_enc"});
      CHECK(sae.activation().rescale_acts_by_decoder_norm == after.at("rescale_acts_by_decoder_norm").get<bool>());
    } else {
      GatedSae<float> sae(d, 6, L1Penalty{1.0}, 0.5, 0);
      check(sae, {"b_gate", "r_mag", "b_mag"});
    }
    ++cases;
  }
  CHECK(cases == 6);
}

TEST_CASE("correlation matrices from pairs, repaired where needed, as SAELens builds them", "[saelens][correlation]") {
  const auto fx = io::read_json_file(kData / "correlation_repair.json");
  for (const auto& c : fx.at("cases")) {
    const auto n = c.at("n").get<std::size_t>();
    INFO("n " << n);
    std::vector<CorrelationPair> pairs;
    for (const auto& p : c.at("pairs")) pairs.push_back({p.at(0).get<std::size_t>(), p.at(1).get<std::size_t>(), p.at(2).get<double>()});
    const auto ours = correlation_matrix_from_correlations(n, pairs, c.at("default").get<double>());
    const auto theirs = c.at("matrix").get<std::vector<std::vector<double>>>();
    // SAELens works in float32 (its eigen-solve included): 1e-5 covers its rounding.
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j) worst = std::max(worst, std::fabs(ours[i * n + j] - theirs[i][j]));
    CHECK(worst < 1e-5);
  }
}
