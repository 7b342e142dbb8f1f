#pragma once
// init_sae_to_match_features: SAELens's init_sae_to_match_feature_dict. The first
// m = min(d_sae, N) encoder columns become the (optionally permuted) true feature vectors plus
// Gaussian noise of standard deviation `noise_level`, and the decoder becomes the encoder's
// transpose (all of it, as SAELens assigns W_dec = W_enc^T). A tied SAE (Matching Pursuit, no
// W_enc) gets the same rows in its decoder. For starting from a known good point, for testing
// evaluation code against ground truth, and for initialisation ablations. The noise is drawn from
// a synthsae stream (`seed`), not torch's global generator.
#include <cstdint>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

template <class T>
void init_sae_to_match_features(SaeParameters<T>& p, const Matrix<float>& features, double noise_level = 0.0,
                                const std::vector<std::int64_t>& feature_ordering = {}, std::uint64_t seed = 0) {
  const std::size_t n = features.extent(0), d = features.extent(1), s = p.num_latents();
  if (d != p.input_dim())
    throw ShapeError("features have " + show(d) + " dimensions, the SAE's d_in is " + show(p.input_dim()));
  if (!(noise_level >= 0)) throw ConfigError("noise_level", show(noise_level), "must be >= 0");
  if (!feature_ordering.empty() && feature_ordering.size() != n)
    throw ConfigError("feature_ordering", show(feature_ordering.size()) + " entries", "must have num_features = " + show(n));
  for (auto f : feature_ordering)
    if (f < 0 || static_cast<std::size_t>(f) >= n)
      throw ConfigError("feature_ordering", show(f), "must index a feature in [0, " + show(n) + ")");
  const std::size_t m = std::min(s, n);
  auto hf = Kokkos::create_mirror_view_and_copy(HostSpace(), features);
  const bool tied = p.w_enc.size() == 0;
  auto hdec = Kokkos::create_mirror_view_and_copy(HostSpace(), p.w_dec);
  auto henc = Kokkos::create_mirror_view_and_copy(HostSpace(), p.w_enc);
  RandomStream noise(seed, /*stream: feature-matched init*/ 0x494E4954ull);
  for (std::size_t j = 0; j < m; ++j) {
    const std::size_t f = feature_ordering.empty() ? j : static_cast<std::size_t>(feature_ordering[j]);
    for (std::size_t k = 0; k < d; ++k) {
      const T v = static_cast<T>(hf(f, k) + (noise_level > 0 ? noise_level * noise.normal<double>() : 0.0));
      if (tied) {
        hdec(j, k) = v;
      } else {
        henc(k, j) = v;
      }
    }
  }
  if (!tied) {
    for (std::size_t j = 0; j < s; ++j)
      for (std::size_t k = 0; k < d; ++k) hdec(j, k) = henc(k, j);
    Kokkos::deep_copy(p.w_enc, henc);
  }
  Kokkos::deep_copy(p.w_dec, hdec);
}

}  // namespace synthsae
