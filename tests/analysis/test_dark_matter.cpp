// analyse_dark_matter on oracle constructions whose answers are known in closed form: an
// orthonormal dictionary, oracle SAEs that reconstruct a chosen feature set exactly (a ReLU SAE
// whose encoder is the decoder's transpose) or shrunk, or with a threshold that drops small
// coefficients (a nonlinear Introduced part); and on a small synthetic world end to end.
#include <catch2/catch.hpp>

#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include <unistd.h>

#include "synthsae/analysis/dark_matter.hpp"
#include "synthsae/analysis/noise_injection.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/saelens/sae_directory.hpp"
#include "synthsae/saelens/sae_npy.hpp"
#include "synthsae/world/presets.hpp"

using namespace synthsae;
using namespace synthsae::analysis;

namespace {

constexpr std::size_t kDim = 32, kFeatures = 24;

double firing(std::size_t f) { return 0.05 + 0.25 * double(f % 6) / 5.0; }

/// x = Σ c_i f_i + b with orthonormal f_i, c_i = Bernoulli(p_i) · U(0.5, 1.5) (a pure function of the row).
class OrthogonalSource final : public ActivationSource {
 public:
  OrthogonalSource(std::uint64_t rows) : rows_(rows), features_("features", kFeatures, kDim), bias_(kDim) {
    RandomStream rng(5, 0);
    Eigen::MatrixXd g(kDim, kDim);
    for (std::size_t i = 0; i < kDim; ++i)
      for (std::size_t j = 0; j < kDim; ++j) g(i, j) = rng.normal<double>();
    q_ = g.householderQr().householderQ();
    auto h = Kokkos::create_mirror_view(features_);
    for (std::size_t f = 0; f < kFeatures; ++f)
      for (std::size_t k = 0; k < kDim; ++k) h(f, k) = static_cast<float>(q_(k, f));
    Kokkos::deep_copy(features_, h);
    for (std::size_t k = 0; k < kDim; ++k) bias_[k] = 0.5 * std::sin(double(k));
    bias_dev_ = Vector<float>("bias", kDim);
    auto hb = Kokkos::create_mirror_view(bias_dev_);
    for (std::size_t k = 0; k < kDim; ++k) hb(k) = static_cast<float>(bias_[k]);
    Kokkos::deep_copy(bias_dev_, hb);
  }
  std::uint64_t rows() const override { return rows_; }
  std::size_t dim() const override { return kDim; }
  const Matrix<float>* true_features() const override { return &features_; }
  const Vector<float>* true_bias() const override { return &bias_dev_; }
  std::string describe() const override { return "orthogonal test source"; }
  void read(std::uint64_t first, std::size_t count, ActivationChunk& out) override {
    out.first = first;
    out.x = Matrix<float>("x", count, kDim);
    SparseBatch<float> t;
    t.ids = decltype(t.ids)("ids", count, kFeatures);
    t.values = decltype(t.values)("values", count, kFeatures);
    t.counts = decltype(t.counts)("counts", count);
    auto hx = Kokkos::create_mirror_view(out.x);
    auto hi = Kokkos::create_mirror_view(t.ids);
    auto hv = Kokkos::create_mirror_view(t.values);
    auto hc = Kokkos::create_mirror_view(t.counts);
    for (std::size_t i = 0; i < count; ++i) {
      RandomStream rng(9, first + i);
      Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(bias_.data(), kDim);
      int n = 0;
      for (std::size_t f = 0; f < kFeatures; ++f) {
        const double u = rng.uniform<double>(), m = 0.5 + rng.uniform<double>();
        if (u < firing(f)) {
          hi(i, n) = static_cast<std::int32_t>(f), hv(i, n) = static_cast<float>(m), ++n;
          x += static_cast<float>(m) * q_.col(f).cast<float>().cast<double>();
        }
      }
      hc(i) = n;
      for (std::size_t k = 0; k < kDim; ++k) hx(i, k) = static_cast<float>(x(k));
    }
    Kokkos::deep_copy(out.x, hx), Kokkos::deep_copy(t.ids, hi), Kokkos::deep_copy(t.values, hv);
    Kokkos::deep_copy(t.counts, hc);
    out.truth = t;
  }
  const Matrix<float>& features() const { return features_; }
  const std::vector<double>& bias() const { return bias_; }

 private:
  std::uint64_t rows_;
  Matrix<float> features_;
  std::vector<double> bias_;
  Vector<float> bias_dev_;
  Eigen::MatrixXd q_;
};

/// A JumpReLU SAE (threshold 1e-3 drops only the rounding noise of absent coefficients; ReLU at 0) with latents = the features in `keep`, encoder = the
/// decoder's transpose, decoder rows scaled by `scale`, b_dec = the world's bias.
InferenceSae oracle_sae(const OrthogonalSource& src, const std::vector<std::size_t>& keep, float scale, float threshold) {
  const std::size_t s = keep.size();
  InferenceSae sae;
  sae.params.w_enc = Matrix<float>("w_enc", kDim, s);
  sae.params.b_enc = Vector<float>("b_enc", s);
  sae.params.w_dec = Matrix<float>("w_dec", s, kDim);
  sae.params.b_dec = Vector<float>("b_dec", kDim);
  const auto f = Kokkos::create_mirror_view_and_copy(HostSpace(), src.features());
  auto we = Kokkos::create_mirror_view(sae.params.w_enc);
  auto wd = Kokkos::create_mirror_view(sae.params.w_dec);
  auto bd = Kokkos::create_mirror_view(sae.params.b_dec);
  for (std::size_t j = 0; j < s; ++j)
    for (std::size_t k = 0; k < kDim; ++k) we(k, j) = f(keep[j], k), wd(j, k) = scale * f(keep[j], k);
  for (std::size_t k = 0; k < kDim; ++k) bd(k) = static_cast<float>(src.bias()[k]);
  Kokkos::deep_copy(sae.params.w_enc, we), Kokkos::deep_copy(sae.params.w_dec, wd), Kokkos::deep_copy(sae.params.b_dec, bd);
  if (threshold > 0) {
    inference::JumpReluForm form{Vector<float>("threshold", s)};
    Kokkos::deep_copy(form.threshold, threshold);
    sae.form = form;
  } else {
    sae.form = inference::ReluForm{};
  }
  return sae;
}

std::vector<std::size_t> first_features(std::size_t m) {
  std::vector<std::size_t> v(m);
  for (std::size_t i = 0; i < m; ++i) v[i] = i;
  return v;
}

/// E‖Σ_{i∈set} c_i f_i‖² per row and Σ_i Var(c_i), for c = Bernoulli(p) · U(0.5, 1.5).
double second_moment(const std::vector<std::size_t>& set) {
  double s = 0;
  for (auto f : set) s += firing(f) * (1.0 + 1.0 / 12.0);  // E m² = Var + mean² = 1/12 + 1
  return s;
}
double total_variance() {
  double v = 0;
  for (std::size_t f = 0; f < kFeatures; ++f) {
    const double p = firing(f);
    v += p * (1.0 + 1.0 / 12.0) - p * p;
  }
  return v;
}

}  // namespace

TEST_CASE("oracle SAEs on an orthonormal dictionary decompose as the closed forms say", "[analysis][dark_matter]") {
  OrthogonalSource src(20'000);
  std::vector<AnalysedSae> saes;
  saes.push_back(AnalysedSae::of("exact-12", oracle_sae(src, first_features(12), 1.0f, 1e-3f)));
  saes.push_back(AnalysedSae::of("shrunk-16", oracle_sae(src, first_features(16), 0.8f, 1e-3f)));
  saes.push_back(AnalysedSae::of("thresholded-20", oracle_sae(src, first_features(20), 1.0f, 1.0f)));
  DarkMatterOptions opt;
  opt.train_rows = 12'000;
  opt.chunk_rows = 3000;
  const auto rep = analyse_dark_matter(src, saes, opt);
  REQUIRE(rep.saes.size() == 3);
  CHECK(rep.train_rows == 12'000);
  CHECK(rep.test_rows == 8'000);

  for (const auto& s : rep.saes) {
    INFO(s.label);
    // x = Sae(x) + LinearError + NonlinearError to float rounding of |x| ≲ 4.
    CHECK(s.identity_max_abs < 1e-5);
    REQUIRE(s.truth);
    // SaeError = Absent - Introduced exactly, so the shares add up (Dense = 0).
    CHECK(s.truth->absent_share + s.truth->introduced_share - 2 * s.truth->cross_share == Approx(1).margin(1e-6));
    // Orthonormal features: Absent lies in the span of the missing features, Introduced in the
    // span of the learned ones, so they are orthogonal.
    CHECK(std::abs(s.truth->cross_share) < 1e-5);
  }
  const auto& exact = rep.saes[0];
  const auto& shrunk = rep.saes[1];
  const auto& thresh = rep.saes[2];
  // Every feature is captured by its own latent (|cos| = 1 ≥ 0.9).
  CHECK(exact.truth->captured_features == 12);
  CHECK(thresh.truth->captured_features == 20);
  // Exact oracle: SaeError = Absent, linear in x (a projection), so R2_vec = R²(Absent) = 1 and
  // FVU_nonlinear = 0; FVU = E‖Absent‖² / Σ Var(c). Sample means of 8,000 test rows of 12
  // Bernoulli(≤0.3) features have a relative standard deviation below 1.2%: 4% is > 3σ.
  CHECK(exact.error_r2 == Approx(exact.truth->r2_absent).margin(1e-9));
  CHECK(exact.error_r2 > 0.99999);
  CHECK(exact.fvu_nonlinear < 1e-8);
  std::vector<std::size_t> absent12;
  for (std::size_t f = 12; f < kFeatures; ++f) absent12.push_back(f);
  CHECK(exact.fvu == Approx(second_moment(absent12) / total_variance()).epsilon(0.04));
  CHECK(exact.truth->introduced_share < 1e-9);
  CHECK(exact.l0 == Approx(second_moment(first_features(12)) / (1 + 1.0 / 12) ).epsilon(0.04));  // Σ p_i
  // Shrunk oracle: Introduced = -0.2 Σ_L c_i f_i, also linear: FVU = (E‖A‖² + 0.04 E‖Σ_L‖²)/ΣVar.
  std::vector<std::size_t> absent16;
  for (std::size_t f = 16; f < kFeatures; ++f) absent16.push_back(f);
  CHECK(shrunk.fvu ==
        Approx((second_moment(absent16) + 0.04 * second_moment(first_features(16))) / total_variance()).epsilon(0.04));
  CHECK(shrunk.fvu_nonlinear < 1e-8);
  CHECK(shrunk.truth->r2_introduced > 0.99999);
  // Thresholded oracle: Introduced = -Σ_L c_i 1[c_i ≤ 1] f_i is not linear in x: absent stays
  // perfectly predictable, introduced does not, and the nonlinear error is what is left of it.
  CHECK(thresh.truth->r2_absent > 0.99999);
  CHECK(thresh.truth->r2_introduced < 0.9);
  CHECK(thresh.fvu_nonlinear > 0.01);
  CHECK(thresh.truth->nonlinear_from_introduced == Approx(1).margin(1e-6));
  CHECK(thresh.truth->nonlinear_from_absent < 1e-8);
  // Norm battery: ‖x‖² for orthonormal Bernoulli-type magnitudes is not exactly linear here (the
  // magnitudes vary), but the oracle regressor c explains ‖Sae(x)‖² of the exact oracle far
  // better than the SAE's L0 does.
  CHECK(rep.x_norms.at("x_sq").count("oracle_c"));
  // The exact oracle's error is Absent = Σ_{i∉L} c_i f_i with orthonormal f_i and no bias, so
  // ‖SaeError‖² = Σ_{i∉L} c_i² is exactly linear in the squared coefficients: R² = 1 up to the
  // float32 rounding of the stored vectors (relative 1e-7, far below the 1e-5 allowed); c itself
  // cannot give that (the magnitudes vary, and c_i² is not linear in c_i).
  CHECK(exact.norms.at("error_sq").at("oracle_c_sq") > 0.99999);
  CHECK(exact.norms.at("error_sq").at("oracle_c") < exact.norms.at("error_sq").at("oracle_c_sq") - 1e-3);
  CHECK(exact.norms.at("sae_sq").at("x") > exact.norms.at("sae_sq").at("sae_l0"));
  // Cross-width: a 2 x... 3 x 3 upper triangle of finite R² in [-, 1].
  REQUIRE(rep.cross_width.size() == 2);
  CHECK(std::isfinite(rep.cross_width[0].r2[0][1]));
  CHECK(std::isnan(rep.cross_width[0].r2[1][0]));
  CHECK(rep.cross_width[0].r2_with_nonlinear[0][2] >= rep.cross_width[0].r2[0][2] - 1e-9);  // nested models
  CHECK(rep.breakdown.fitted);
  CHECK(rep.series.rows.size() == 100);
  const auto j = to_json(rep);
  CHECK(j["saes"][0]["ground_truth"]["captured_features"] == 12);
  CHECK(j["rows"]["test"] == 8000);
}

TEST_CASE("errors name the field", "[analysis][dark_matter]") {
  OrthogonalSource src(100);
  std::vector<AnalysedSae> none;
  CHECK_THROWS_WITH(analyse_dark_matter(src, none), Catch::Contains("saes"));
  std::vector<AnalysedSae> one;
  one.push_back(AnalysedSae::of("a", oracle_sae(src, first_features(4), 1.0f, 0.0f)));
  DarkMatterOptions opt;
  opt.train_rows = 100;
  CHECK_THROWS_WITH(analyse_dark_matter(src, one, opt), Catch::Contains("train_rows"));
  opt.train_rows = 50;
  opt.match_threshold = 2;
  CHECK_THROWS_WITH(analyse_dark_matter(src, one, opt), Catch::Contains("match_threshold"));
}

namespace {

std::filesystem::path temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / ("synthsae_dm_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

/// Rows [0, n) of a source and one SAE's reconstructions, as the .npy files a user would dump.
void dump(OrthogonalSource& src, InferenceSae& sae, const std::filesystem::path& dir) {
  const std::size_t n = src.rows();
  ActivationChunk c;
  src.read(0, n, c);
  Matrix<float> z("z", n, sae.num_latents()), xh("xh", n, kDim);
  sae.encode(c.x, z);
  sae.decode(z, xh);
  const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), c.x);
  const auto hh = Kokkos::create_mirror_view_and_copy(HostSpace(), xh);
  std::vector<float> err(n * kDim);
  for (std::size_t i = 0; i < n * kDim; ++i) err[i] = hx.data()[i] - hh.data()[i];
  io::write_npy_f32(dir / "acts.npy", hx.data(), {n, kDim});
  io::write_npy_f32(dir / "outputs.npy", hh.data(), {n, kDim});
  io::write_npy_f32(dir / "errors.npy", err.data(), {n, kDim});
}

}  // namespace

TEST_CASE("a user's .npy activations with precomputed outputs or errors give the in-memory results",
          "[analysis][dark_matter][npy]") {
  OrthogonalSource src(6'000);
  const auto dir = temp_dir("files");
  auto sae = oracle_sae(src, first_features(20), 1.0f, 1.0f);
  dump(src, sae, dir);
  DarkMatterOptions opt;
  opt.train_rows = 3'600;
  opt.chunk_rows = 1000;
  std::vector<AnalysedSae> mem;
  mem.push_back(AnalysedSae::of("mem", sae));
  const auto ref = analyse_dark_matter(src, mem, opt).saes[0];

  FileSourceOptions fo;
  fo.activations = dir / "acts.npy";
  fo.sae_outputs = {dir / "outputs.npy"};
  fo.sae_errors = {dir / "errors.npy"};
  FileSource files(fo);
  CHECK(files.rows() == 6'000);
  CHECK(files.true_features() == nullptr);
  std::vector<AnalysedSae> given;
  given.push_back(AnalysedSae::from_source("outputs", 0, 20));
  given.push_back(AnalysedSae::from_source("errors", 1, 20));
  given.push_back(AnalysedSae::of("run", sae));  // the SAE itself on the file's rows
  const auto rep = analyse_dark_matter(files, given, opt);
  for (const auto& s : rep.saes) {
    INFO(s.label);
    // The same rows, split and arithmetic: equal up to the float rounding of x - (x - x_hat).
    CHECK(s.fvu == Approx(ref.fvu).epsilon(1e-5));
    CHECK(s.fvu_nonlinear == Approx(ref.fvu_nonlinear).epsilon(1e-4));
    CHECK(s.error_r2 == Approx(ref.error_r2).epsilon(1e-5));
    CHECK_FALSE(s.truth.has_value());
  }
  CHECK(std::isnan(rep.saes[0].l0));
  CHECK(rep.saes[2].l0 == Approx(ref.l0).epsilon(1e-12));

  SECTION("the position filter keeps positions >= min_position") {
    fo.sae_outputs.clear(), fo.sae_errors.clear();
    fo.context_length = 10;
    fo.min_position = 4;
    CHECK(FileSource(fo).rows() == 3'600);  // positions 4..9 of every 10 rows
    std::vector<std::int64_t> pos(6'000);
    for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<std::int64_t>(i % 300);
    io::write_npy_i64(dir / "pos.npy", pos.data(), {6'000});
    fo.context_length.reset();
    fo.positions = dir / "pos.npy";
    fo.min_position = 200;
    CHECK(FileSource(fo).rows() == 2'000);
    fo.min_position = 400;
    CHECK_THROWS_WITH(FileSource(fo), Catch::Contains("min_position"));
    fo.positions.reset();
    fo.min_position = 5;
    CHECK_THROWS_WITH(FileSource(fo), Catch::Contains("min_position"));
  }
  SECTION("outputs of another shape are refused, naming the file") {
    std::vector<float> small(10 * kDim, 0.0f);
    io::write_npy_f32(dir / "short.npy", small.data(), {10, kDim});
    fo.sae_outputs = {dir / "short.npy"};
    CHECK_THROWS_WITH(FileSource(fo), Catch::Contains("short.npy") && Catch::Contains("rows"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("an SAE given as .npy files with SAELens names loads as the SAE it was written from",
          "[analysis][dark_matter][npy]") {
  OrthogonalSource src(64);
  auto sae = oracle_sae(src, first_features(10), 0.9f, 0.5f);  // JumpReLU with threshold 0.5
  const auto dir = temp_dir("sae_npy");
  auto put = [&](const char* name, const auto& view, std::vector<std::uint64_t> shape) {
    const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), view);
    io::write_npy_f32(dir / name, h.data(), shape);
  };
  put("W_enc.npy", sae.params.w_enc, {kDim, 10});
  put("b_enc.npy", sae.params.b_enc, {10});
  put("W_dec.npy", sae.params.w_dec, {10, kDim});
  put("b_dec.npy", sae.params.b_dec, {kDim});
  put("threshold.npy", sae.as<inference::JumpReluForm>().threshold, {10});
  auto loaded = saelens::load_sae_npy(dir);
  CHECK(loaded.architecture() == "jumprelu");
  ActivationChunk c;
  src.read(0, 64, c);
  Matrix<float> z1("z1", 64, 10), z2("z2", 64, 10);
  sae.encode(c.x, z1);
  loaded.encode(c.x, z2);
  const auto h1 = Kokkos::create_mirror_view_and_copy(HostSpace(), z1);
  const auto h2 = Kokkos::create_mirror_view_and_copy(HostSpace(), z2);
  for (std::size_t i = 0; i < 64 * 10; ++i) REQUIRE(h1.data()[i] == h2.data()[i]);
  // A TopK SAE through k.npy; a wrong shape names the file.
  std::filesystem::remove(dir / "threshold.npy");
  const std::int64_t k = 3;
  io::write_npy_i64(dir / "k.npy", &k, {});
  CHECK(saelens::load_sae_npy(dir).architecture() == "topk");
  put("b_enc.npy", sae.params.b_dec, {kDim});
  CHECK_THROWS_WITH(saelens::load_sae_npy(dir), Catch::Contains("b_enc.npy") && Catch::Contains("shape"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("InferenceSae::decode: the sparse form equals the GEMM, rescaling TopK included", "[analysis][dark_matter]") {
  // The analyses decode every row of their sources through InferenceSae::decode, which takes the
  // nonzero entries when they are few (kernels/adaptive_decode.hpp). Each element sums at most 3
  // products of size ~1.7^2 in float: 1e-5 is a few float roundings of those, and any misplaced
  // entry (the codes are ~1) breaks it.
  OrthogonalSource src(200);
  for (bool rescale : {false, true}) {
    auto sae = oracle_sae(src, first_features(20), 1.7f, 0.0f);  // decoder rows of norm 1.7
    inference::TopKForm form;
    form.k = 3, form.rescale_acts_by_decoder_norm = rescale;
    sae.form = form;
    ActivationChunk c;
    src.read(0, 200, c);
    Matrix<float> z("z", 200, 20), dense("dense", 200, kDim), sparse("sparse", 200, kDim);
    sae.encode(c.x, z);
    sae.decoder().set_max_density(0.0);
    sae.decode(z, dense);
    CHECK_FALSE(sae.decoder().last_was_sparse());
    sae.decoder().set_max_density(1.0);
    sae.decode(z, sparse);
    CHECK(sae.decoder().last_was_sparse());
    const auto hd = Kokkos::create_mirror_view_and_copy(HostSpace(), dense);
    const auto hs = Kokkos::create_mirror_view_and_copy(HostSpace(), sparse);
    double largest = 0;
    for (std::size_t i = 0; i < 200 * kDim; ++i) {
      REQUIRE(hs.data()[i] == Approx(hd.data()[i]).margin(1e-5));
      largest = std::max(largest, std::fabs(double(hd.data()[i])));
    }
    CHECK(largest > 0.5);  // not a comparison of two zero batches
    // The default crossover (5 % on the host): 3 of 20 (15 %) decodes through the GEMM.
    sae.decoder().set_max_density(AdaptiveDecode<float>::default_max_density);
    sae.decode(z, sparse);
    CHECK_FALSE(sae.decoder().last_was_sparse());
  }
}

// ---- Oracle SAEs (oracle_sae.hpp): the reconstruction read from the ground truth ----------------

namespace {

OracleSpec top(std::size_t m, IntroducedKind kind = IntroducedKind::none, double level = 0) {
  OracleSpec o;
  o.m = m, o.error = kind, o.level = level;
  return o;
}

std::vector<std::size_t> complement(const std::vector<std::size_t>& set) {
  std::vector<std::size_t> out;
  for (std::size_t f = 0; f < kFeatures; ++f)
    if (std::find(set.begin(), set.end(), f) == set.end()) out.push_back(f);
  return out;
}

}  // namespace

TEST_CASE("an oracle SAE learns the m most frequent features and decomposes as the closed forms say",
          "[analysis][dark_matter][oracle]") {
  OrthogonalSource src(20'000);
  auto exact = std::make_shared<OracleSae>(src, top(12));
  // firing(f) = 0.05 + 0.05 (f mod 6): the 12 most frequent are f mod 6 in {3, 4, 5} (p 0.2-0.3
  // against 0.15 below; counts over 20,000 rows differ by 1,000, their standard deviation is ~60).
  std::vector<std::size_t> learned;
  for (std::size_t f = 0; f < kFeatures; ++f)
    if (f % 6 >= 3) learned.push_back(f);
  std::vector<std::size_t> got(exact->selected().begin(), exact->selected().end());
  std::sort(got.begin(), got.end());
  CHECK(got == learned);
  CHECK(exact->label() == "oracle:top-12");

  // Its reconstruction is the ReLU oracle's with the same features (the encoder is exact on an
  // orthonormal dictionary): the same numbers up to float rounding.
  {
    ActivationChunk c;
    src.read(0, 500, c);
    Matrix<float> a("a", 500, kDim), b("b", 500, kDim), z("z", 500, 12);
    std::vector<double> l0;
    exact->reconstruct(c, a, &l0);
    auto relu = oracle_sae(src, learned, 1.0f, 1e-3f);
    relu.encode(c.x, z);
    relu.decode(z, b);
    const auto ha = Kokkos::create_mirror_view_and_copy(HostSpace(), a);
    const auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), b);
    for (std::size_t i = 0; i < 500 * kDim; ++i) REQUIRE(ha.data()[i] == Approx(hb.data()[i]).margin(1e-5));
    const auto counts = Kokkos::create_mirror_view_and_copy(HostSpace(), c.truth->counts);
    const auto ids = Kokkos::create_mirror_view_and_copy(HostSpace(), c.truth->ids);
    for (std::size_t i = 0; i < 500; ++i) {
      int n = 0;
      for (int u = 0; u < counts(i); ++u) n += ids(i, u) % 6 >= 3;
      REQUIRE(l0[i] == n);
    }
  }

  auto shrunk = [&] {  // the list selection, and shrinkage: c -> 0.8 c
    OracleSpec o;
    o.selection = OracleSelection::list;
    for (std::int64_t f = 0; f < 16; ++f) o.features.push_back(f);
    o.error = IntroducedKind::shrinkage, o.level = 0.2;
    return std::make_shared<OracleSae>(src, o);
  }();
  auto iso = std::make_shared<OracleSae>(src, top(12, IntroducedKind::isotropic, 0.05));
  auto iso_all = std::make_shared<OracleSae>(src, top(24, IntroducedKind::isotropic, 0.05));
  auto mult = std::make_shared<OracleSae>(src, top(12, IntroducedKind::multiplicative, 0.3));
  auto dir = std::make_shared<OracleSae>(src, top(12, IntroducedKind::direction, 0.3));
  std::vector<AnalysedSae> saes;
  for (const auto& o : {exact, shrunk, iso, mult, dir, iso_all}) saes.push_back(AnalysedSae::of_oracle(o));
  saes.push_back(AnalysedSae::of("relu-shrunk-16", oracle_sae(src, first_features(16), 0.8f, 1e-3f)));
  DarkMatterOptions opt;
  opt.train_rows = 12'000;
  opt.chunk_rows = 3000;
  const auto rep = analyse_dark_matter(src, saes, opt);
  REQUIRE(rep.saes.size() == 7);
  for (const auto& s : rep.saes) {
    INFO(s.label);
    CHECK(s.identity_max_abs < 1e-5);
    REQUIRE(s.truth);
    CHECK(s.truth->absent_share + s.truth->introduced_share - 2 * s.truth->cross_share == Approx(1).margin(1e-6));
  }
  const auto &e = rep.saes[0], &sh = rep.saes[1], &is = rep.saes[2], &mu = rep.saes[3], &di = rep.saes[4],
             &relu = rep.saes[6], &noise_only = rep.saes[5];
  // Every feature learned, 5 % isotropic noise: the whole error is the noise, unpredictable
  // (the check: FVU_nonlinear = 0.050 ± 0.005, error-vector R² ≈ 0).
  CHECK(noise_only.fvu_nonlinear == Approx(0.05).margin(0.005));
  CHECK(std::abs(noise_only.error_r2) < 0.01);
  CHECK(e.architecture == "oracle");
  CHECK(e.width == 12);
  CHECK(e.truth->captured_features == 12);
  // Exact: SaeError = Absent, a projection of x: linear, FVU = E‖Absent‖² / Σ Var(c) (4%: the
  // relative standard deviation of these means over 8,000 test rows is below 1.2%).
  CHECK(e.error_r2 > 0.99999);
  CHECK(e.fvu_nonlinear < 1e-8);
  CHECK(e.truth->introduced_share < 1e-9);
  CHECK(e.fvu == Approx(second_moment(complement(learned)) / total_variance()).epsilon(0.04));
  CHECK(e.l0 == Approx(second_moment(learned) / (1 + 1.0 / 12)).epsilon(0.04));
  // Shrinkage on the listed features: the same reconstruction as the shrunk ReLU oracle.
  CHECK(sh.width == 16);
  CHECK(sh.fvu == Approx(relu.fvu).epsilon(1e-5));
  CHECK(sh.truth->r2_introduced > 0.99999);
  CHECK(sh.fvu_nonlinear < 1e-8);
  // Isotropic noise of variance fraction 0.05: it adds 0.05 to FVU, none of it predictable from
  // x, so FVU_nonlinear = 0.05 too. The noise energy over 8,000 x 32 draws has a relative standard
  // deviation of 0.3% and tr(Σ_x) measured on 20,000 rows against the test rows' ~1%: 0.0025 is
  // about 4σ.
  CHECK(is.fvu - e.fvu == Approx(0.05).margin(0.0025));
  CHECK(is.fvu_nonlinear == Approx(0.05).margin(0.0025));
  CHECK(std::abs(is.truth->r2_introduced) < 0.01);  // overfitting 33 coefficients on 12,000 rows: ~0.003
  CHECK(iso->isotropic_sigma() == Approx(std::sqrt(0.05 * total_variance() / kDim)).epsilon(0.03));
  // Multiplicative noise c (1 + 0.3 n): E‖Introduced‖² = 0.09 E‖Σ_L c_i d_i‖², unpredictable.
  CHECK(mu.fvu == Approx((second_moment(complement(learned)) + 0.09 * second_moment(learned)) / total_variance())
                      .epsilon(0.04));
  CHECK(std::abs(mu.truth->r2_introduced) < 0.01);
  CHECK(mu.fvu_nonlinear > 0.9 * 0.09 * second_moment(learned) / total_variance());
  // Direction error: fixed tilted directions, so Introduced = Σ_L c_i (d̃_i - d_i) is linear in c,
  // hence in x: fully predictable, no nonlinear error.
  CHECK(dir->mean_abs_cos() > 0.85);
  CHECK(dir->mean_abs_cos() < 0.995);
  CHECK(di.truth->mcc == Approx(dir->mean_abs_cos()));
  CHECK(di.truth->r2_introduced > 0.9999);
  CHECK(di.fvu_nonlinear < 1e-6);
  CHECK(di.fvu > e.fvu);
  // The same oracle twice gives the same numbers (draws are functions of the row, not the pass).
  std::vector<AnalysedSae> again{AnalysedSae::of_oracle(mult)};
  CHECK(analyse_dark_matter(src, again, opt).saes[0].fvu == mu.fvu);
}

TEST_CASE("oracle selections, the exported SAE, and errors that name the field", "[analysis][dark_matter][oracle]") {
  OrthogonalSource src(4'000);
  SECTION("random selections are distinct, seeded and reproducible") {
    OracleSpec r;
    r.selection = OracleSelection::random, r.m = 10, r.seed = 3;
    const OracleSae a(src, r), b(src, r);
    r.seed = 4;
    const OracleSae c(src, r);
    CHECK(a.selected() == b.selected());
    CHECK(a.selected() != c.selected());
    std::vector<std::int32_t> s = a.selected();
    std::sort(s.begin(), s.end());
    CHECK(std::adjacent_find(s.begin(), s.end()) == s.end());
    CHECK(s.front() >= 0);
    CHECK(s.back() < static_cast<std::int32_t>(kFeatures));
  }
  SECTION("the export is an ordinary JumpReLU SAE that reconstructs the learned features on an orthonormal dictionary") {
    const OracleSae o(src, top(12));
    auto sae = o.to_inference_sae();
    CHECK(sae.architecture() == "jumprelu");
    const auto dir = std::filesystem::temp_directory_path() / ("synthsae_oracle_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    saelens::save_sae(sae, dir);
    auto loaded = saelens::load_sae(dir);
    std::filesystem::remove_all(dir);
    ActivationChunk c;
    src.read(0, 400, c);
    Matrix<float> a("a", 400, kDim), b("b", 400, kDim), z("z", 400, 12);
    o.reconstruct(c, a);
    loaded.encode(c.x, z);
    loaded.decode(z, b);
    const auto ha = Kokkos::create_mirror_view_and_copy(HostSpace(), a);
    const auto hb = Kokkos::create_mirror_view_and_copy(HostSpace(), b);
    for (std::size_t i = 0; i < 400 * kDim; ++i) REQUIRE(ha.data()[i] == Approx(hb.data()[i]).margin(1e-5));
    CHECK_FALSE(o.export_drops_error());
    CHECK(OracleSae(src, top(12, IntroducedKind::isotropic, 0.1)).export_drops_error());
  }
  SECTION("bad specs") {
    CHECK_THROWS_WITH(OracleSae(src, top(0)), Catch::Contains("oracle m") && Catch::Contains("0"));
    CHECK_THROWS_WITH(OracleSae(src, top(25)), Catch::Contains("oracle m") && Catch::Contains("25"));
    CHECK_THROWS_WITH(OracleSae(src, top(3, IntroducedKind::shrinkage, 1.5)), Catch::Contains("shrinkage"));
    CHECK_THROWS_WITH(OracleSae(src, top(3, IntroducedKind::direction, NAN)), Catch::Contains("level"));
    OracleSpec l;
    l.selection = OracleSelection::list, l.features = {1, 5, 1};
    CHECK_THROWS_WITH(OracleSae(src, l), Catch::Contains("oracle features") && Catch::Contains("twice"));
    l.features = {1, 24};
    CHECK_THROWS_WITH(OracleSae(src, l), Catch::Contains("oracle features") && Catch::Contains("24"));
    // A source without ground truth has nothing to read the oracle from.
    const auto dir = temp_dir("oracle_files");
    std::vector<float> rows(10 * kDim, 1.0f);
    io::write_npy_f32(dir / "acts.npy", rows.data(), {10, kDim});
    FileSourceOptions fo;
    fo.activations = dir / "acts.npy";
    FileSource files(fo);
    CHECK_THROWS_WITH(OracleSae(files, top(3)), Catch::Contains("ground truth"));
    std::filesystem::remove_all(dir);
  }
  SECTION("the CLI's spec") {
    const auto a = parse_oracle_spec("top:256");
    CHECK(a.selection == OracleSelection::most_frequent);
    CHECK(a.m == 256);
    CHECK(a.error == IntroducedKind::none);
    const auto b = parse_oracle_spec("random:10,seed=3,isotropic=0.05");
    CHECK(b.selection == OracleSelection::random);
    CHECK(b.m == 10);
    CHECK(b.seed == 3);
    CHECK(b.error == IntroducedKind::isotropic);
    CHECK(b.level == 0.05);
    CHECK(b.label() == "oracle:random-10-seed3+isotropic-0.05");
    for (const char* bad : {"top", "top:x", "top:-3", "foo:3", "top:3,bogus=1", "top:3,isotropic=0.1,shrinkage=0.1",
                            "top:3,isotropic", "top:3,seed=1.5"})
      CHECK_THROWS_WITH(parse_oracle_spec(bad), Catch::Contains("--oracle") && Catch::Contains(bad));
    CHECK_THROWS_WITH(parse_oracle_spec("list:/nonexistent/features.txt"), Catch::Contains("/nonexistent/features.txt"));
  }
}

// ---- The noise-injection test (noise_injection.hpp): closed forms on an exact oracle ----------

TEST_CASE("noise injection: the grid's corners follow from the injected variances", "[analysis][dark_matter][injection]") {
  OrthogonalSource src(6'000);
  auto sae = oracle_sae(src, first_features(20), 1.0f, 1e-3f);  // x' = Sae(x) spans 20 of 32 dimensions
  NoiseInjectionOptions opt;
  opt.levels = {0, 0.5, 1};
  opt.ablation = {0, 0.25, 0.5};
  opt.chunk_rows = 1000;
  const auto rep = noise_injection_experiment(src, sae, "exact-20", opt);
  REQUIRE(rep.grid.size() == 9);
  REQUIRE(rep.ablation.size() == 3);
  CHECK(rep.rows == 6'000);
  CHECK(rep.train_rows == 4'000);
  CHECK(rep.test_rows == 2'000);
  auto cell = [&](double a, double r) {
    for (const auto& c : rep.grid)
      if (c.x_noise == a && c.recon_noise == r) return c;
    FAIL("no cell");
    return NoiseInjectionCell{};
  };
  // No noise, nothing masked: E = X - x' = 0 exactly, and so is its prediction.
  CHECK(cell(0, 0).fvu == 0);
  CHECK(cell(0, 0).fvu_with_linear < 1e-20);
  // Reconstruction noise only: E = -rms n_r, independent of X = x'. Σ‖E‖² / SST(x') = 1 up to
  // the sampling error of 2,000 x 32 squared normals (0.6%) and rms measured on all 6,000 rows
  // against the test rows' SST (~2%); none of it is predictable (32 coefficients fitted on 4,000
  // rows overfit by ~0.01).
  CHECK(cell(0, 1).fvu == Approx(1).margin(0.06));
  CHECK(cell(0, 1).fvu_with_linear == Approx(1).margin(0.06));
  CHECK(std::abs(cell(0, 1).dense()) < 0.02);
  CHECK(cell(0, 0.5).fvu == Approx(0.25).margin(0.015));
  // x'-noise only: E = rms n_a and SST(X) = 2 rms² d per row, so FVU = 1/2. In the 12 dimensions
  // x' does not reach, X is the noise itself (predicted exactly): est. Dense ≥ 12/32 of 1/2.
  CHECK(cell(1, 0).fvu == Approx(0.5).margin(0.03));
  CHECK(cell(1, 0).dense() > 12.0 / 32 * 0.5 - 0.01);
  CHECK(cell(1, 0).fvu_with_linear < cell(1, 0).fvu);
  // The sweep masks the lowest-mean latents first: 5 and 10 of 20, and each adds error.
  CHECK(rep.ablation[0].masked_latents == 0);
  CHECK(rep.ablation[1].masked_latents == 5);
  CHECK(rep.ablation[2].masked_latents == 10);
  CHECK(rep.ablation[0].fvu < rep.ablation[1].fvu);
  CHECK(rep.ablation[1].fvu < rep.ablation[2].fvu);
  CHECK(std::isfinite(rep.corr_x_dense));
  const auto j = to_json(rep);
  CHECK(j["grid"].size() == 9);
  CHECK(j["correlation"]["x_noise"].contains("estimated_dense"));

  SECTION("in-sample, as the paper fits") {
    opt.in_sample = true;
    opt.ablation.clear();
    const auto in = noise_injection_experiment(src, sae, "exact-20", opt);
    CHECK(in.train_rows == 6'000);
    CHECK(in.test_rows == 6'000);
    CHECK(in.ablation.empty());
    CHECK(in.grid.size() == 9);
  }
  SECTION("bad options name the field") {
    opt.levels = {0.5};
    CHECK_THROWS_WITH(noise_injection_experiment(src, sae, "x", opt), Catch::Contains("levels"));
    opt.levels = {0, -1};
    CHECK_THROWS_WITH(noise_injection_experiment(src, sae, "x", opt), Catch::Contains("levels") && Catch::Contains("-1"));
    opt.levels = {0, 1};
    opt.ablation = {0, 1};
    CHECK_THROWS_WITH(noise_injection_experiment(src, sae, "x", opt), Catch::Contains("ablation"));
    opt.ablation = {0};
    opt.train_rows = 6'000;
    CHECK_THROWS_WITH(noise_injection_experiment(src, sae, "x", opt), Catch::Contains("train_rows"));
  }
}

// ---- Dense components in the ground-truth split ----------------------------------------------

TEST_CASE("a world's dense part: an oracle of every feature leaves exactly Dense, as linearly predictable as "
          "the Wiener formula says",
          "[analysis][dark_matter][dense]") {
  SyntheticModelConfig c;
  c.num_features = 16;
  c.hidden_dim = 32;
  c.firing_probability = Zipfian{0.5, 0.4, 0.05};
  c.mean_firing_magnitudes = ConstantMagnitude{1.0};
  c.std_firing_magnitudes = ConstantMagnitude{0.3};
  c.seed = 5;
  DenseComponentSpec iso;
  iso.kind = DenseComponentSpec::Kind::isotropic, iso.variance_fraction = 0.2;
  c.dense_components = {iso};
  SyntheticModel world(c);
  SyntheticSource src(world, 20'000);
  REQUIRE(src.has_dense());
  std::vector<AnalysedSae> saes;
  saes.push_back(AnalysedSae::of_oracle(std::make_shared<OracleSae>(src, top(16))));
  saes.push_back(AnalysedSae::of_oracle(std::make_shared<OracleSae>(src, top(8, IntroducedKind::shrinkage, 0.3))));
  saes.push_back(AnalysedSae::of_oracle(std::make_shared<OracleSae>(src, top(16, IntroducedKind::isotropic, 0.05))));
  DarkMatterOptions opt;
  opt.train_rows = 12'000;
  const auto rep = analyse_dark_matter(src, saes, opt);
  for (const auto& s : rep.saes) {
    INFO(s.label);
    REQUIRE(s.truth);
    const auto& t = *s.truth;
    // SaeError = Absent + Dense - Introduced, so the six energy terms add to 1.
    CHECK(t.absent_share + t.dense_share + t.introduced_share +
              2 * (t.absent_dense_share - t.cross_share - t.dense_introduced_share) ==
          Approx(1).margin(1e-6));
  }
  const auto& all = rep.saes[0];
  CHECK(all.truth->dense_share == Approx(1).margin(1e-6));
  CHECK(all.truth->absent_share < 1e-12);
  CHECK(all.truth->introduced_share < 1e-9);
  // FVU = E‖Dense‖² / tr Σ_x = 0.2: the test rows' variance and the fraction set from 16,384
  // other rows differ by ~1%.
  CHECK(all.fvu == Approx(0.2).epsilon(0.04));
  // Wiener: the best linear prediction of Dense from x = F + Dense with independent Σ_F and
  // Σ_D = σ² I explains tr(Σ_D (Σ_D + Σ_F)^-1 Σ_D) / tr(Σ_D) of it; Σ_F measured here on the
  // same rows. 33 coefficients per dimension fitted on 12,000 rows overfit by ~0.003.
  {
    ActivationChunk ch;
    src.read(0, 20'000, ch);
    const auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), ch.x);
    const auto hd = Kokkos::create_mirror_view_and_copy(HostSpace(), ch.dense);
    Eigen::MatrixXd f(20'000, 32);
    for (int i = 0; i < 20'000; ++i)
      for (int k = 0; k < 32; ++k) f(i, k) = double(hx(i, k)) - hd(i, k);
    const Eigen::MatrixXd centred = f.rowwise() - f.colwise().mean();
    const Eigen::MatrixXd sigma_f = centred.transpose() * centred / 20'000.0;
    const double s2 = double(world.dense_parts().isotropic_std) * world.dense_parts().isotropic_std;
    const Eigen::MatrixXd sigma_d = s2 * Eigen::MatrixXd::Identity(32, 32);
    const double wiener = (sigma_d * (sigma_d + sigma_f).inverse() * sigma_d).trace() / sigma_d.trace();
    INFO("Wiener " << wiener << ", measured " << all.truth->r2_dense_pooled);
    CHECK(all.truth->r2_dense_pooled == Approx(wiener).margin(0.02));
    // The 16 features span at most 16 of 32 dimensions: in the rest x is Dense itself.
    CHECK(wiener > 0.5);
  }
  // All of the linear error is Dense's prediction; the nonlinear error is Dense's remainder.
  CHECK(all.truth->linear_from_dense == Approx(1).margin(1e-6));
  CHECK(all.truth->nonlinear_from_dense == Approx(1).margin(1e-6));
  CHECK(all.fvu_nonlinear == Approx(all.fvu * (1 - all.truth->r2_dense_pooled)).epsilon(1e-3));
  // The oracle-family identities with f_I = 0.05 isotropic noise on top: FVU = f_I + f_D
  // and FVU_nonlinear = f_I + (1 - R²(Dense | x)) f_D (the noise is independent of x; the
  // test-row sums hold each to about 1 % of itself).
  const auto& noisy = rep.saes[2];
  CHECK(noisy.fvu == Approx(0.05 + all.fvu).epsilon(0.03));
  CHECK(noisy.fvu_nonlinear == Approx(0.05 + (1 - all.truth->r2_dense_pooled) * all.fvu).epsilon(0.03));
  const auto j = to_json(rep);
  CHECK(j["saes"][0]["ground_truth"].contains("r2_dense"));
}
