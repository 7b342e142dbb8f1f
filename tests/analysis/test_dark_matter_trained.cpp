// The reference's calibration regime for trained SAEs (dark-matter.md §3.4): random unit
// features, d = 64, N = 256, Zipf firing with true L0 ≈ 4.6, magnitudes |N(μ_i, 0.3)| with μ
// falling from 1.5 to 1.0; TopK SAEs with k = 4 at three widths. The ground-truth split must
// show what the paper could only argue: the Absent part of the error is more linearly
// predictable from x than the Introduced part, at every width.
#include <catch2/catch.hpp>

#include "synthsae/analysis/dark_matter.hpp"
#include "synthsae/analysis/error_component_saes.hpp"
#include "synthsae/analysis/noise_injection.hpp"
#include "synthsae/sae/inference/export.hpp"
#include "synthsae/sae/sae.hpp"
#include "synthsae/train/trainer.hpp"

using namespace synthsae;
using namespace synthsae::analysis;

namespace {

SyntheticModelConfig calibration_world() {
  SyntheticModelConfig c;
  c.num_features = 256;
  c.hidden_dim = 64;
  c.firing_probability = Zipfian{0.7, 0.3, 0.01};
  c.mean_firing_magnitudes = LinearMagnitude{{1.5, 1.0}};
  c.std_firing_magnitudes = ConstantMagnitude{0.3};
  c.bias = BiasSpec{BiasSpec::Kind::none, 0};
  c.seed = 3;
  return c;
}

}  // namespace

TEST_CASE("trained TopK SAEs: Absent is more linearly predictable than Introduced at every width",
          "[analysis][dark_matter][trained]") {
  SyntheticModel world(calibration_world());
  std::vector<AnalysedSae> saes;
  for (std::size_t width : {32, 64, 128}) {
    TopKSae<> sae(64, width, TopK{4, true}, {}, AuxK{}, {}, 0.5, 7 + width);
    TrainerConfig cfg;
    cfg.batch_size = 1024;
    cfg.training_samples = 1024 * 1500;
    cfg.lr.lr = 2e-3;
    Trainer trainer(sae, world, cfg);
    trainer.fit();
    saes.push_back(AnalysedSae::of("topk-" + std::to_string(width), export_inference(sae)));
  }
  for (std::size_t w = 0; w < 3; ++w)  // the same decoders with gradient pursuit's codes (§2.10)
    saes.push_back(AnalysedSae::pursued(saes[w].label + "+gp", *saes[w].sae));
  SyntheticSource source(world, 50'000);
  DarkMatterOptions opt;
  opt.train_rows = 30'000;
  const auto rep = analyse_dark_matter(source, saes, opt);
  REQUIRE(rep.saes.size() == 6);
  for (std::size_t w = 0; w < 3; ++w) {
    const auto& s = rep.saes[w];
    INFO(s.label << ": R2(Absent) " << s.truth->r2_absent << ", R2(Introduced) " << s.truth->r2_introduced << ", FVU "
                 << s.fvu << ", FVU_nl " << s.fvu_nonlinear << ", captured " << s.truth->captured_features);
    // Reference §3.4: 0.80 vs 0.30 at width 32, 0.43 vs 0.07 at 128; with 20k test rows of 64
    // dimensions the R² estimates move by ~0.01, far below the gap asserted here.
    CHECK(s.truth->r2_absent > s.truth->r2_introduced + 0.1);
    CHECK(s.identity_max_abs < 1e-4);
    CHECK(s.fvu_nonlinear < s.fvu);
  }
  // Wider SAEs learn more features and leave less error, less of it linearly predictable.
  CHECK(rep.saes[0].truth->captured_features < rep.saes[2].truth->captured_features);
  CHECK(rep.saes[0].fvu > rep.saes[2].fvu);
  CHECK(rep.saes[0].error_r2 > rep.saes[2].error_r2);
  // FVU_nonlinear roughly flat across widths (§2.4: coefficient of variation below 0.15; the
  // reference measured 0.125-0.163 over four widths), the power law converging below FVU(W_max).
  REQUIRE(rep.breakdown.fitted);
  CHECK(rep.breakdown.h_cv < 0.15);
  CHECK(rep.breakdown.c < rep.saes[2].fvu);
  // Across widths (§2.3): error norms of nearer widths predict each other better, and the
  // smaller SAE's nonlinear-error norm always adds something.
  const auto& cw = rep.cross_width[0];
  CHECK(cw.r2[0][1] > cw.r2[0][2]);
  CHECK(cw.r2[0][1] > 0.6);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = i + 1; j < 3; ++j) CHECK(cw.fvu_decrease_percent[i][j] > 0);
  // Per token, nonlinear-error norms vary less across widths than linear-error norms.
  CHECK(rep.series.cv_nonlinear < rep.series.cv_linear);
  // Inference-time optimisation (reference §2.10, its trained-TopK table): gradient pursuit on the
  // frozen decoder with each row's own L0 lowers FVU, and lowers FVU_nonlinear by less in relative
  // terms - pursuit mostly fixes errors x predicts linearly (shrinkage). The pursued entries stay
  // out of the across-width analyses, whose matrix keeps the three widths.
  CHECK(cw.labels.size() == 3);
  for (std::size_t w = 0; w < 3; ++w) {
    const auto &base = rep.saes[w], &gp = rep.saes[3 + w];
    INFO(gp.label << ": FVU " << base.fvu << " -> " << gp.fvu << ", FVU_nl " << base.fvu_nonlinear << " -> "
                  << gp.fvu_nonlinear << ", L0 " << base.l0 << " -> " << gp.l0);
    CHECK(gp.architecture == "topk+gp");
    CHECK(gp.fvu < base.fvu);
    CHECK((base.fvu_nonlinear - gp.fvu_nonlinear) / base.fvu_nonlinear < (base.fvu - gp.fvu) / base.fvu);
    CHECK(gp.l0 <= base.l0 + 1e-9);  // the support never exceeds the encoder's budget
  }
  // Fig. 1's encoder band: e(W) = the pursued FVU_nonlinear at each data width, the band [e, h]
  // stacked between the nonlinear and the linear bands (each edge clamped into [0, curve]).
  const auto& b = rep.breakdown;
  REQUIRE(b.has_encoder_band);
  REQUIRE(b.encoder_boundary.size() == 3);
  REQUIRE(b.band_widths.size() >= 3);
  for (std::size_t w = 0; w < 3; ++w) {
    INFO("width " << b.band_widths[w] << ": e " << b.encoder_boundary[w] << ", h " << b.h);
    CHECK(b.band_widths[w] == double(rep.saes[w].width));
    CHECK(b.encoder_boundary[w] == rep.saes[3 + w].fvu_nonlinear);
    const double curve = b.absent[w];
    CHECK(b.nonlinear[w] == Approx(std::min(b.encoder_boundary[w], curve)).epsilon(1e-12));
    CHECK(b.encoder[w] == Approx(std::clamp(b.h, b.nonlinear[w], curve)).epsilon(1e-12));
    CHECK(b.linear[w] >= b.encoder[w]);
  }
  // Beyond the data e is held at the largest width's value.
  CHECK(b.nonlinear.back() == Approx(std::min(b.encoder_boundary[2], b.absent.back())).epsilon(1e-12));

  // The paper's noise-injection test (Table 1, Fig. 15) on the width-64 SAE, as reference §3.7
  // ran it: 60,000 rows, 40,000 to fit, levels {0, .25, .5, .75, 1} x rms. The reference
  // measured 0.963 / -0.005 / -0.002 / 0.931; over 25 grid cells a correlation moves by a few
  // hundredths between seeds, so the bounds below (the reference's own criterion) hold with room.
  {
    SyntheticSource rows(world, 60'000);
    NoiseInjectionOptions ni;
    const auto inj = noise_injection_experiment(rows, *saes[1].sae, saes[1].label, ni);
    INFO("corr: " << inj.corr_x_dense << " " << inj.corr_x_introduced << " " << inj.corr_recon_dense << " "
                  << inj.corr_recon_introduced);
    CHECK(inj.corr_x_dense > 0.9);
    CHECK(inj.corr_recon_introduced > 0.9);
    CHECK(std::abs(inj.corr_x_introduced) < 0.15);
    CHECK(std::abs(inj.corr_recon_dense) < 0.15);
    // Fig. 15: masking up to half the latents raises FVU, while FVU(recon + linear prediction)
    // stays nearly flat (reference: 0.41 -> 0.59 against 0.33 -> 0.29).
    REQUIRE(inj.ablation.size() == 6);
    const double rise = inj.ablation.back().fvu - inj.ablation.front().fvu;
    double lo = 1e9, hi = -1e9;
    for (const auto& c : inj.ablation) lo = std::min(lo, c.fvu_with_linear), hi = std::max(hi, c.fvu_with_linear);
    INFO("FVU " << inj.ablation.front().fvu << " -> " << inj.ablation.back().fvu << "; with linear " << lo << " .. " << hi);
    CHECK(rise > 0.1);
    CHECK(hi - lo < 0.5 * rise);
  }

  // SAEs trained on the width-64 SAE's LinearError and NonlinearError (reference §2.8, §3.5:
  // TopK, width 256, k = 4; FVU 0.172 against 0.362, absent features recovered 33.8 % against
  // 1.5 %). Here 1,500 steps instead of 4,000 and one seed: the gaps are several times larger
  // than what a seed or the shorter run moves.
  {
    SyntheticSource fit_rows(world, 60'000, kErrorFitSample, 0);
    auto base = *saes[1].sae;
    const auto fit = fit_error_regression(fit_rows, base);
    ErrorSaeOptions eo;
    eo.score_rows = 20'000;
    eo.base_captured = captured_features(base.decoder_weights(), world.feature_vectors(), 0.9).captured;
    std::vector<ErrorSaeReport> r;
    for (auto which : {ErrorComponent::linear, ErrorComponent::nonlinear}) {
      TopKSae<> err_sae(64, 256, TopK{4, true}, {}, AuxK{}, {}, 0.5, 11);
      TrainerConfig cfg;
      cfg.batch_size = 1024;
      cfg.training_samples = 1024 * 1500;
      cfg.lr.lr = 2e-3;
      r.push_back(train_on_error_component(err_sae, world, ErrorComponentMap(base, fit, which), cfg, eo));
    }
    INFO("linear: FVU " << r[0].fvu << ", recovered " << r[0].recovered_absent << ", max-cos " << r[0].mean_max_cos_absent
                        << "; nonlinear: FVU " << r[1].fvu << ", recovered " << r[1].recovered_absent << ", max-cos "
                        << r[1].mean_max_cos_absent << "; absent " << r[0].absent_features);
    CHECK(r[0].component == "linear");
    CHECK(r[0].absent_features == 256 - rep.saes[1].truth->captured_features);
    CHECK(r[0].fvu < r[1].fvu);
    CHECK(r[0].recovered_absent > r[1].recovered_absent + 0.1);
    CHECK(r[0].mean_max_cos_absent > r[1].mean_max_cos_absent);
    CHECK(r[0].l0 <= 4.0 + 1e-9);
    // The two components add up to the error: E‖Lin‖² + E‖Nonlin‖² ≈ E‖SaeError‖² (the cross term
    // is zero in expectation for a least-squares fit; 20,000 rows leave a few per cent).
    CHECK(r[0].mean_sq_component + r[1].mean_sq_component ==
          Approx(rep.saes[1].mean_sq_error).epsilon(0.05));
  }
}
