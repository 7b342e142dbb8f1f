#pragma once
// The supervised ceiling: one logistic-regression probe on x per true feature (the paper
// compares SAE latents' F1 with these, about 0.97 on the 16k world). All probes train together
// as one linear map [D, F] with per-feature binary cross-entropy and Adam on fresh samples, and
// are evaluated on other fresh samples at the 0.5 decision threshold.
#include <cmath>
#include <cstdint>
#include <vector>

#include "synthsae/core/gemm.hpp"
#include "synthsae/core/host_copy.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae {

struct ProbeOptions {
  std::size_t train_samples = 500'000;
  std::size_t eval_samples = 50'000;
  std::size_t batch = 1024;
  double lr = 3e-2;
  /// Fresh regions of the sample stream, away from training and evaluation.
  std::uint64_t first_train_sample = (std::uint64_t(1) << 62) + (std::uint64_t(1) << 60);
  std::uint64_t first_eval_sample = (std::uint64_t(1) << 62) + (std::uint64_t(1) << 61);
};

struct ProbeResult {
  double precision = 0, recall = 0, f1 = 0;  ///< macro means over the probed features
  std::size_t features = 0;
};

/// Trains and evaluates probes for `features` (distinct indices into the world's features).
inline ProbeResult supervised_probe_scores(SyntheticModel& world, const std::vector<std::int32_t>& features,
                                           const ProbeOptions& opt = {}) {
  const std::size_t d = world.hidden_dim(), f = features.size();
  ProbeResult result;
  result.features = f;
  if (f == 0) return result;
  if (opt.batch == 0) throw ConfigError("probe batch", "0", "must be >= 1");
  // column_of[feature] = probe column or -1
  Vector<std::int32_t> column_of("probe_column_of", world.num_features());
  {
    auto h = Kokkos::create_mirror_view(column_of);
    for (std::size_t i = 0; i < h.extent(0); ++i) h(i) = -1;
    for (std::size_t c = 0; c < f; ++c) {
      if (features[c] < 0 || static_cast<std::size_t>(features[c]) >= world.num_features()) {
        throw ConfigError("probe feature", show(features[c]), "is not a feature of this world");
      }
      h(features[c]) = static_cast<std::int32_t>(c);
    }
    Kokkos::deep_copy(column_of, h);
  }
  const std::size_t b = opt.batch;
  Matrix<float> w("probe_w", d, f), x("probe_x", b, d), logits("probe_logits", b, f), grad_w("probe_grad_w", d, f);
  Vector<float> bias("probe_b", f), m_w_flat("m_w", d * f), v_w_flat("v_w", d * f), m_b("m_b", f), v_b("v_b", f),
      grad_b("probe_grad_b", f);
  Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> labels("probe_labels", b, f);
  SparseBatch<float> truth;

  // Inputs are standardised by one scale (their RMS entry) so one learning rate suits any world.
  double scale = 1.0;
  auto load_batch = [&](std::uint64_t first) {
    world.sample_features_at(truth, first, b);
    world.hidden_at(truth, first, x);
    const auto xx = x;
    const float s = static_cast<float>(scale);
    const int di = static_cast<int>(d);
    host_rows(
        "synthsae::probe_scale", static_cast<std::int64_t>(b), di, KOKKOS_LAMBDA(int i) {
          for (int k = 0; k < di; ++k) xx(i, k) *= s;
        });
    fill_view(labels, std::uint8_t(0));
    const auto ids = truth.ids;
    const auto counts = truth.counts;
    const auto col = column_of;
    const auto lab = labels;
    host_rows(
        "synthsae::probe_labels", static_cast<std::int64_t>(b), 64, KOKKOS_LAMBDA(int i) {
          for (int q = 0; q < counts(i); ++q) {
            const int c = col(ids(i, q));
            if (c >= 0) lab(i, c) = 1;
          }
        });
  };
  {
    load_batch(opt.first_train_sample);
    double sq = 0;
    const auto xx = x;
    const int di = static_cast<int>(d);
    Kokkos::parallel_reduce(
        "synthsae::probe_rms", Kokkos::RangePolicy<ExecSpace>(0, b),
        KOKKOS_LAMBDA(int i, double& acc) {
          for (int k = 0; k < di; ++k) acc += double(xx(i, k)) * xx(i, k);
        },
        sq);
    scale = 1.0 / std::sqrt(std::max(sq / double(b * d), 1e-12));
  }

  const long steps = static_cast<long>(opt.train_samples / b);
  const int fi = static_cast<int>(f);
  for (long t = 1; t <= steps; ++t) {
    load_batch(opt.first_train_sample + std::uint64_t(t - 1) * b);
    gemm(Op::N, Op::N, 1.0f, x, w, 0.0f, logits);
    const auto lg = logits;
    const auto lab = labels;
    const auto bb = bias;
    const float inv_b = 1.0f / float(b);
    host_rows(
        "synthsae::probe_grad", static_cast<std::int64_t>(b), 20 * std::int64_t{fi}, KOKKOS_LAMBDA(int i) {
          for (int c = 0; c < fi; ++c) {
            const float p = 1.0f / (1.0f + kmath::exp(-(lg(i, c) + bb(c))));
            lg(i, c) = (p - float(lab(i, c))) * inv_b;  // dBCE/dlogit, averaged over the batch
          }
        });
    gemm(Op::T, Op::N, 1.0f, x, logits, 0.0f, grad_w);
    const int bi = static_cast<int>(b);
    const auto gb = grad_b;
    host_rows(
        "synthsae::probe_grad_b", static_cast<std::int64_t>(f), bi, KOKKOS_LAMBDA(int c) {
          float acc = 0;
          for (int i = 0; i < bi; ++i) acc += lg(i, c);
          gb(c) = acc;
        });
    const float lr = static_cast<float>(opt.lr), b1 = 0.9f, b2 = 0.999f;
    const float bias1 = 1.0f - float(std::pow(0.9, double(t))),
                sqrt_bias2 = float(std::sqrt(1.0 - std::pow(0.999, double(t))));
    auto adam = [&](const Vector<float>& p, const Vector<float>& g, const Vector<float>& m, const Vector<float>& v) {
      host_rows(
          "synthsae::probe_adam", static_cast<std::int64_t>(p.extent(0)), 10, KOKKOS_LAMBDA(int i) {
            m(i) = b1 * m(i) + (1 - b1) * g(i);
            v(i) = b2 * v(i) + (1 - b2) * g(i) * g(i);
            p(i) -= lr / bias1 * m(i) / (kmath::sqrt(v(i)) / sqrt_bias2 + 1e-8f);
          });
    };
    adam(Vector<float>(w.data(), w.size()), Vector<float>(grad_w.data(), grad_w.size()), m_w_flat, v_w_flat);
    adam(bias, grad_b, m_b, v_b);
  }

  Kokkos::View<std::int64_t**, Kokkos::LayoutRight, MemSpace> counts("probe_confusion", f, 3);  // tp, fp, fn
  for (std::size_t done = 0; done < opt.eval_samples; done += b) {
    load_batch(opt.first_eval_sample + done);
    gemm(Op::N, Op::N, 1.0f, x, w, 0.0f, logits);
    const auto lg = logits;
    const auto lab = labels;
    const auto bb = bias;
    const auto cnt = counts;
    const int rows = static_cast<int>(std::min(b, opt.eval_samples - done));
    host_rows(
        "synthsae::probe_eval", static_cast<std::int64_t>(f), 3 * std::int64_t{rows}, KOKKOS_LAMBDA(int c) {
          for (int i = 0; i < rows; ++i) {
            const bool pred = lg(i, c) + bb(c) > 0.0f, truth_on = lab(i, c) != 0;
            cnt(c, 0) += pred && truth_on;
            cnt(c, 1) += pred && !truth_on;
            cnt(c, 2) += !pred && truth_on;
          }
        });
  }
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), counts);
  for (std::size_t c = 0; c < f; ++c) {
    const double tp = double(h(c, 0)), fp = double(h(c, 1)), fn = double(h(c, 2));
    const double p = tp + fp > 0 ? tp / (tp + fp) : 0, r = tp + fn > 0 ? tp / (tp + fn) : 0;
    result.precision += p, result.recall += r, result.f1 += p + r > 0 ? 2 * p * r / (p + r) : 0;
  }
  result.precision /= double(f), result.recall /= double(f), result.f1 /= double(f);
  return result;
}

}  // namespace synthsae
