// SAELens SAE directories: export of trained SAEs to their inference form, save/load round
// trips, a hand-written SAELens directory, and malformed inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <utility>

#include "sae/sae_test_support.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/saelens/sae_directory.hpp"

using namespace synthsae;

namespace {

template <class V>
auto host(const V& v) {
  return Kokkos::create_mirror_view_and_copy(HostSpace(), v);
}

/// Encodes x with both SAEs; returns (entries that differ, entries active in the first).
template <class A, class B>
std::pair<int, int> compare_encodings(A& first, B& second, const Matrix<float>& x, int latents) {
  const int rows = static_cast<int>(x.extent(0));
  Matrix<float> z1("z1", rows, latents), z2("z2", rows, latents);
  first.encode(x, z1);
  second.encode(x, z2);
  auto a = host(z1), b = host(z2);
  int differ = 0, active = 0;
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < latents; ++j) differ += a(i, j) != b(i, j), active += a(i, j) > 0;
  return {differ, active};
}

std::filesystem::path fresh(const char* name) {
  const auto d = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(d);
  return d;
}

}  // namespace

TEST_CASE("a Standard SAE saves, loads and encodes identically", "[sae][files]") {
  StandardSae<> sae(12, 20, Relu{}, L1Penalty{1.0}, {}, {}, 0.1, 3);
  Kokkos::deep_copy(sae.parameters().b_enc, 0.01f);
  const auto dir = fresh("synthsae_sae_standard");
  saelens::save_sae(export_inference(sae), dir);
  auto loaded = saelens::load_sae(dir);
  CHECK(loaded.architecture() == "standard");
  const auto x = test::random_input<float>(16, 12, 1, 1);
  Matrix<float> z1("z1", 16, 20), z2("z2", 16, 20);
  sae.encode(x, z1);
  loaded.encode(x, z2);
  auto a = host(z1), b = host(z2);
  int differ = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 20; ++j) differ += a(i, j) != b(i, j);
  CHECK(differ == 0);
  // Saving what was loaded reproduces both files byte for byte.
  const auto dir2 = fresh("synthsae_sae_standard2");
  saelens::save_sae(loaded, dir2);
  CHECK(io::read_file_bytes(dir / "sae_weights.safetensors") == io::read_file_bytes(dir2 / "sae_weights.safetensors"));
  CHECK(io::read_file_bytes(dir / "cfg.json") == io::read_file_bytes(dir2 / "cfg.json"));
}

TEST_CASE("BatchTopK exports as JumpReLU with folded norms and theta", "[sae][files]") {
  BatchTopKSae<> sae(12, 20, BatchTopK{3, true, 0.01}, {}, AuxK{}, {}, 0.3, 4);
  // A decoder with uneven row norms makes the fold matter.
  {
    auto w = host(sae.parameters().w_dec);
    for (int j = 0; j < 20; ++j)
      for (int k = 0; k < 12; ++k) w(j, k) *= 0.5f + 0.1f * j;
    Kokkos::deep_copy(sae.parameters().w_dec, w);
  }
  sae.activation_state().threshold = 0.05;
  const auto x = test::random_input<float>(64, 12, 2, 1);
  SaeParameters<float> g = sae.parameters().zeros_like();
  sae.forward_backward(x, g);  // fills the training key h * |W_dec_j|
  sae.activation_state().threshold = 0.05;
  auto inf = export_inference(sae);
  CHECK(inf.architecture() == "jumprelu");
  const auto dir = fresh("synthsae_sae_btk");
  saelens::save_sae(inf, dir);
  auto loaded = saelens::load_sae(dir);
  auto norms = host(loaded.params.w_dec);
  double s = 0;
  for (int k = 0; k < 12; ++k) s += double(norms(7, k)) * norms(7, k);
  CHECK(std::sqrt(s) == Approx(1.0).epsilon(1e-5));  // decoder rows normalised
  // Loaded latents = key [key > theta], key = h |W_dec_j| from the training SAE.
  Matrix<float> z("z", 64, 20);
  loaded.encode(x, z);
  // Recompute the training key on the host from the unfolded parameters.
  auto hz = host(z);
  const auto& p = sae.parameters();
  auto we = host(p.w_enc), wd = host(p.w_dec), hx = host(x);
  auto be = host(p.b_enc), bd = host(p.b_dec);
  int mismatched = 0, active = 0;
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 20; ++j) {
      double h = be(j), n = 0;
      for (int k = 0; k < 12; ++k) h += (hx(i, k) - bd(k)) * we(k, j), n += double(wd(j, k)) * wd(j, k);
      const double key = h * std::sqrt(n);
      if (std::fabs(key - 0.05) < 1e-5) continue;  // too close to call in float
      const double expected = key > 0.05 ? key : 0.0;
      mismatched += std::fabs(hz(i, j) - expected) > 1e-5 * (1 + std::fabs(expected));
      active += expected > 0;
    }
  CHECK(active > 100);
  CHECK(mismatched == 0);
}

TEST_CASE("TopK exports with folded norms and selects the same latents", "[sae][files]") {
  TopKSae<> sae(10, 16, TopK{4, true}, {}, AuxK{}, {}, 0.3, 5);
  {
    auto w = host(sae.parameters().w_dec);
    for (int j = 0; j < 16; ++j)
      for (int k = 0; k < 10; ++k) w(j, k) *= 0.4f + 0.15f * (j % 5);
    Kokkos::deep_copy(sae.parameters().w_dec, w);
  }
  const auto x = test::random_input<float>(32, 10, 3, 1);
  Matrix<float> z1("z1", 32, 16), z2("z2", 32, 16);
  sae.encode(x, z1);
  auto inf = export_inference(sae);
  CHECK(inf.architecture() == "topk");
  // As SAELens saves a trained TopK: norms folded (unit rows) and the flag kept.
  CHECK(inf.as<inference::TopKForm>().rescale_acts_by_decoder_norm);
  inf.encode(x, z2);
  auto a = host(z1), b = host(z2);
  int differ = 0;
  for (int i = 0; i < 32; ++i)
    for (int j = 0; j < 16; ++j) differ += std::fabs(a(i, j) - b(i, j)) > 1e-5f * (1 + std::fabs(a(i, j)));
  CHECK(differ == 0);
}

TEST_CASE("AbsTopK exports as abstopk with folded norms, keeps negative latents, and round-trips", "[sae][files]") {
  AbsTopKSae<> sae(10, 16, AbsTopK{4, true}, {}, AuxK{}, {}, 0.3, 6);
  {
    auto w = host(sae.parameters().w_dec);
    for (int j = 0; j < 16; ++j)
      for (int k = 0; k < 10; ++k) w(j, k) *= 0.4f + 0.15f * (j % 5);
    Kokkos::deep_copy(sae.parameters().w_dec, w);
  }
  const auto x = test::random_input<float>(32, 10, 4, 1);
  Matrix<float> z1("z1", 32, 16), z2("z2", 32, 16), z3("z3", 32, 16);
  sae.encode(x, z1);
  auto inf = export_inference(sae);
  CHECK(inf.architecture() == "abstopk");
  inf.encode(x, z2);
  const auto dir = fresh("synthsae_abstopk_dir");
  saelens::save_sae(inf, dir);
  auto loaded = saelens::load_sae(dir);
  CHECK(loaded.is<inference::AbsTopKForm>());
  loaded.encode(x, z3);
  auto a = host(z1), b = host(z2), c = host(z3);
  int differ = 0, negative = 0, fired = 0;
  for (int i = 0; i < 32; ++i)
    for (int j = 0; j < 16; ++j) {
      differ += std::fabs(a(i, j) - b(i, j)) > 1e-5f * (1 + std::fabs(a(i, j)));
      differ += b(i, j) != c(i, j);
      negative += a(i, j) < 0;
      fired += a(i, j) != 0;
    }
  CHECK(differ == 0);
  CHECK(fired == 32 * 4);
  CHECK(negative > 0);
}

TEST_CASE("a hand-written SAELens JumpReLU directory loads and encodes as worked by hand", "[sae][files]") {
  const auto dir = fresh("synthsae_sae_saelens");
  std::filesystem::create_directories(dir);
  io::write_json_file(dir / "cfg.json", io::Json::parse(R"({"d_in": 2, "d_sae": 3, "dtype": "float32", "device": "cuda",
    "apply_b_dec_to_input": true, "normalize_activations": "none", "reshape_activations": "none",
    "meta": {"sae_lens_version": "6.45.3", "hook_name": null}, "architecture": "jumprelu"})"));
  io::SafetensorsFile w;
  w.tensors["W_enc"] = io::make_tensor<float>(io::Dtype::F32, {2, 3}, std::vector<float>{1, 0, 1, 0, 1, 1});
  w.tensors["W_dec"] = io::make_tensor<float>(io::Dtype::F32, {3, 2}, std::vector<float>{1, 0, 0, 1, 0.5f, 0.5f});
  w.tensors["b_enc"] = io::make_tensor<float>(io::Dtype::F32, {3}, std::vector<float>{0, -0.5f, 0});
  w.tensors["b_dec"] = io::make_tensor<float>(io::Dtype::F32, {2}, std::vector<float>{1, 1});
  w.tensors["threshold"] = io::make_tensor<float>(io::Dtype::F32, {3}, std::vector<float>{0.5f, 0.1f, 2.5f});
  io::write_safetensors(dir / "sae_weights.safetensors", w);
  auto sae = saelens::load_sae(dir);
  // x = (2, 1.8): xc = (1, 0.8); h = (1, 0.8 - 0.5, 1.8) = (1, 0.3, 1.8); thresholds 0.5, 0.1, 2.5
  // => z = (1, 0.3, 0); x_hat = 1 (1, 0) + 0.3 (0, 1) + b_dec = (2, 1.3).
  Matrix<float> x("x", 1, 2), z("z", 1, 3), xh("xh", 1, 2);
  auto hx = Kokkos::create_mirror_view(x);
  hx(0, 0) = 2, hx(0, 1) = 1.8f;
  Kokkos::deep_copy(x, hx);
  sae.encode(x, z);
  sae.decode(z, xh);
  auto hz = host(z), hxh = host(xh);
  CHECK(hz(0, 0) == Approx(1.0));
  CHECK(hz(0, 1) == Approx(0.3));
  CHECK(hz(0, 2) == 0.0f);
  CHECK(hxh(0, 0) == Approx(2.0));
  CHECK(hxh(0, 1) == Approx(1.3));
}

TEST_CASE("malformed SAE directories are clear errors", "[sae][files]") {
  StandardSae<> sae(4, 6, Relu{}, L1Penalty{1.0}, {}, {}, 0.1, 6);
  const auto dir = fresh("synthsae_sae_bad");
  saelens::save_sae(export_inference(sae), dir);
  auto cfg = io::read_json_file(dir / "cfg.json");
  cfg["d_sae"] = 7;
  io::write_json_file(dir / "cfg.json", cfg);
  CHECK_THROWS_WITH(saelens::load_sae(dir), Catch::Contains("W_enc") && Catch::Contains("[4, 7]"));
  cfg["d_sae"] = 6;
  cfg["architecture"] = "crosscoder";
  io::write_json_file(dir / "cfg.json", cfg);
  CHECK_THROWS_WITH(saelens::load_sae(dir), Catch::Contains("cfg.json") && Catch::Contains("crosscoder"));
  cfg["architecture"] = "topk";
  io::write_json_file(dir / "cfg.json", cfg);
  CHECK_THROWS_WITH(saelens::load_sae(dir), Catch::Contains("k") && Catch::Contains("missing"));
  cfg["architecture"] = "jumprelu";
  io::write_json_file(dir / "cfg.json", cfg);
  CHECK_THROWS_WITH(saelens::load_sae(dir), Catch::Contains("threshold"));
  CHECK_THROWS_AS(saelens::load_sae(dir / "nope"), IoError);
}

TEST_CASE("a Matching Pursuit SAE saves tied weights and encodes identically after loading", "[sae][files]") {
  MatchingPursuitSae<> mp(10, 24, MatchingPursuit{4, 0.0, false}, 7);
  const auto dir = fresh("synthsae_sae_mp");
  saelens::save_sae(export_inference(mp), dir);
  const auto cfg = io::read_json_file(dir / "cfg.json");
  CHECK(cfg["architecture"] == "matching_pursuit");
  CHECK(cfg["max_iterations"] == 4);
  CHECK_FALSE(io::read_safetensors(dir / "sae_weights.safetensors").contains("W_enc"));
  auto loaded = saelens::load_sae(dir);
  const auto [differ, active] = compare_encodings(mp, loaded, test::random_input<float>(20, 10, 8, 1), 24);
  CHECK(differ == 0);
  CHECK(active > 20);
  CHECK(active <= 20 * 4);  // at most max_iterations distinct latents per sample
}

TEST_CASE("InferenceSae decode, hand-worked: a tied form adds b_dec only with apply_b_dec_to_input; layer_norm undone",
          "[sae][files][decode]") {
  // W_dec rows e0, 2 e1, e2, (1,1,1); b_dec (10, 20, 30); z rows (0.5,0,0,0), 0, (0,1,0,2):
  // z W_dec = (0.5,0,0), (0,0,0), (2,4,2).
  MatchingPursuitSae<> mp(3, 4, MatchingPursuit{2, 0.0, false}, 7);
  InferenceSae sae = export_inference(mp);
  REQUIRE(sae.is<inference::MatchingPursuitForm>());
  {
    auto w = Kokkos::create_mirror_view(sae.params.w_dec);
    const float rows[4][3] = {{1, 0, 0}, {0, 2, 0}, {0, 0, 1}, {1, 1, 1}};
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) w(j, k) = rows[j][k];
    Kokkos::deep_copy(sae.params.w_dec, w);
    auto b = Kokkos::create_mirror_view(sae.params.b_dec);
    b(0) = 10, b(1) = 20, b(2) = 30;
    Kokkos::deep_copy(sae.params.b_dec, b);
  }
  Matrix<float> z("z", 3, 4), x_hat("x_hat", 3, 3);
  {
    auto h = Kokkos::create_mirror_view(z);
    h(0, 0) = 0.5f, h(2, 1) = 1, h(2, 3) = 2;
    Kokkos::deep_copy(z, h);
  }
  const float product[3][3] = {{0.5f, 0, 0}, {0, 0, 0}, {2, 4, 2}};
  const float bias[3] = {10, 20, 30};
  // layer_norm's statistics of x rows (1,2,3), (2,4,6), (0,0,3): mean 2, 4, 1; unbiased sd 1, 2, sqrt(3).
  const float mean[3] = {2, 4, 1}, sd[3] = {1, 2, std::sqrt(3.0f)};
  Matrix<float> x("x", 3, 3), unused("z_encoded", 3, 4);
  {
    auto h = Kokkos::create_mirror_view(x);
    const float rows[3][3] = {{1, 2, 3}, {2, 4, 6}, {0, 0, 3}};
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 3; ++k) h(i, k) = rows[i][k];
    Kokkos::deep_copy(x, h);
  }
  for (const bool layer_norm : {false, true}) {
    sae.normalization.mode = layer_norm ? inference::ActivationNormalization::layer_norm
                                        : inference::ActivationNormalization::none;
    if (layer_norm) sae.encode(x, unused);  // the statistics the decode undoes
    for (const bool with_bias : {false, true}) {
      sae.apply_b_dec_to_input = with_bias;
      for (const double density : {0.0, 1.0}) {  // the GEMM, then the sparse form
        sae.decoder().set_max_density(density);
        sae.decode(z, x_hat);
        CHECK(sae.decoder().last_was_sparse() == (density > 0));
        const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), x_hat);
        for (int i = 0; i < 3; ++i)
          for (int k = 0; k < 3; ++k) {
            INFO("layer_norm " << layer_norm << ", apply_b_dec_to_input " << with_bias << ", density " << density
                               << ", x_hat(" << i << ", " << k << ")");
            float want = product[i][k] + (with_bias ? bias[k] : 0.0f);
            if (layer_norm) want = want * sd[i] + mean[i];
            // Small integers but for sqrt(3): a few float roundings (~6e-8 each) at most.
            CHECK(h(i, k) == Approx(want).epsilon(1e-6));
          }
      }
    }
  }
}

TEST_CASE("a Gated SAE saves b_gate, r_mag, b_mag (no b_enc) and encodes identically after loading", "[sae][files]") {
  GatedSae<> sae(12, 20, L1Penalty{1.0}, 0.1, 4);
  auto& extra = sae.parameters().extra;
  Kokkos::deep_copy(extra.at("b_gate"), -0.05f);
  Kokkos::deep_copy(extra.at("r_mag"), 0.3f);
  Kokkos::deep_copy(extra.at("b_mag"), 0.02f);
  const auto dir = fresh("synthsae_sae_gated");
  saelens::save_sae(export_inference(sae), dir);
  const auto weights = io::read_safetensors(dir / "sae_weights.safetensors");
  CHECK(weights.tensors.count("b_gate") == 1);
  CHECK(weights.tensors.count("b_enc") == 0);
  auto loaded = saelens::load_sae(dir);
  CHECK(loaded.architecture() == "gated");
  const auto [differ, active] = compare_encodings(sae, loaded, test::random_input<float>(16, 12, 2, 1), 20);
  CHECK(differ == 0);
  CHECK(active > 0);
  CHECK(active < 16 * 20);  // the gate closes some latents: the comparison covers both cases
  std::filesystem::remove(dir / "sae_weights.safetensors");
  io::SafetensorsFile partial;
  partial.tensors = weights.tensors;
  partial.tensors.erase("r_mag");
  io::write_safetensors(dir / "sae_weights.safetensors", partial);
  CHECK_THROWS_WITH(saelens::load_sae(dir), Catch::Contains("r_mag"));
}
