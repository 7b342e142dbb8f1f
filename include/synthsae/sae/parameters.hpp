#pragma once
// SAE parameters and their initialisation (reference §8.1): b_dec = 0; W_dec [S, D]
// Kaiming-uniform U(-sqrt(6/D), sqrt(6/D)) with each row rescaled to decoder_init_norm; W_enc =
// W_dec^T (an independent copy); b_enc = 0. Architecture-specific vectors (JumpReLU's log
// threshold, Gated's b_gate / r_mag / b_mag) live in `extra`, by name.
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/huge_pages.hpp"
#include "synthsae/core/memory_check.hpp"

namespace synthsae {

template <class T>
struct SaeParameters {
  Matrix<T> w_enc;  ///< [D, S]
  Vector<T> b_enc;  ///< [S]
  Matrix<T> w_dec;  ///< [S, D]
  Vector<T> b_dec;  ///< [D]
  std::map<std::string, Vector<T>> extra;

  std::size_t input_dim() const { return w_dec.extent(1); }
  std::size_t num_latents() const { return w_dec.extent(0); }

  /// Zero-filled parameters of the same shapes (gradients, Adam moments).
  SaeParameters zeros_like() const {
    SaeParameters z;
    z.w_enc = zero_matrix_on_huge_pages<T>("w_enc", w_enc.extent(0), w_enc.extent(1));
    z.b_enc = Vector<T>("b_enc", b_enc.extent(0));
    z.w_dec = zero_matrix_on_huge_pages<T>("w_dec", w_dec.extent(0), w_dec.extent(1));
    z.b_dec = Vector<T>("b_dec", b_dec.extent(0));
    for (const auto& [name, v] : extra) z.extra[name] = Vector<T>(name, v.extent(0));
    return z;
  }

  /// Deep copy.
  SaeParameters clone() const {
    SaeParameters c = zeros_like();
    Kokkos::deep_copy(c.w_enc, w_enc);
    Kokkos::deep_copy(c.b_enc, b_enc);
    Kokkos::deep_copy(c.w_dec, w_dec);
    Kokkos::deep_copy(c.b_dec, b_dec);
    for (const auto& [name, v] : extra) Kokkos::deep_copy(c.extra[name], v);
    return c;
  }

  /// Every tensor as a flat view, in a fixed order (name, view): for optimisers and files.
  void for_each_flat(const std::function<void(const std::string&, const Vector<T>&)>& f) const {
    f("W_enc", Vector<T>(w_enc.data(), w_enc.size()));
    f("b_enc", b_enc);
    f("W_dec", Vector<T>(w_dec.data(), w_dec.size()));
    f("b_dec", b_dec);
    for (const auto& [name, v] : extra) f(name, v);
  }
};

/// Kaiming-uniform decoder rows rescaled to `decoder_init_norm` (if given), W_enc = W_dec^T,
/// zero biases. Draws come from Philox stream (seed, row), so initialisation is identical on
/// every backend.
template <class T>
SaeParameters<T> initial_parameters(std::size_t d_in, std::size_t d_sae, std::optional<double> decoder_init_norm,
                                    std::uint64_t seed) {
  if (d_in == 0) throw ConfigError("d_in", "0", "must be >= 1");
  if (d_sae == 0) throw ConfigError("d_sae", "0", "must be >= 1");
  // W_enc and W_dec, their gradients and Adam's two moments of each: six d_in x d_sae arrays.
  require_memory("d_in x d_sae", show(d_in) + " x " + show(d_sae),
                 static_cast<long double>(d_in) * d_sae * sizeof(T) * 6, "training this SAE");
  if (decoder_init_norm && !(*decoder_init_norm > 0))
    throw ConfigError("decoder_init_norm", show(*decoder_init_norm), "must be > 0");
  SaeParameters<T> p;
  p.w_dec = zero_matrix_on_huge_pages<T>("w_dec", d_sae, d_in);  // rows read at random by sparse steps
  p.w_enc = zero_matrix_on_huge_pages<T>("w_enc", d_in, d_sae);
  p.b_enc = Vector<T>("b_enc", d_sae);
  p.b_dec = Vector<T>("b_dec", d_in);
  const T bound = static_cast<T>(std::sqrt(6.0 / double(d_in)));
  const bool rescale = decoder_init_norm.has_value();
  const T target = static_cast<T>(decoder_init_norm.value_or(1.0));
  const int d = static_cast<int>(d_in);
  auto w_dec = p.w_dec;
  auto w_enc = p.w_enc;
  Kokkos::parallel_for(
      "synthsae::init_w_dec", Kokkos::RangePolicy<ExecSpace>(0, d_sae), KOKKOS_LAMBDA(int j) {
        RandomStream s(seed, static_cast<std::uint64_t>(j));
        T sum_sq = 0;
        for (int k = 0; k < d; ++k) {
          const T v = (T(2) * s.uniform<T>() - T(1)) * bound;
          w_dec(j, k) = v;
          sum_sq += v * v;
        }
        if (rescale) {
          const T scale = target / kmath::sqrt(sum_sq > T(0) ? sum_sq : T(1e-30));
          for (int k = 0; k < d; ++k) w_dec(j, k) *= scale;
        }
        for (int k = 0; k < d; ++k) w_enc(k, j) = w_dec(j, k);
      });
  return p;
}

/// Folds an input scale s (the trainer's activation-norm factor) into the linear parameters so
/// that the SAE takes unscaled input: W_enc <- s W_enc, W_dec <- W_dec / s, b_dec <- b_dec / s.
/// The pre-activations are unchanged, (x - b_dec / s)(s W_enc) = (s x - b_dec) W_enc, so b_enc and
/// every threshold on them stay as they are (SAELens's base fold_activation_norm_scaling_factor).
template <class T>
void fold_input_scale_linear(SaeParameters<T>& p, double s, bool scale_decoder = true) {
  const auto w_enc = Vector<T>(p.w_enc.data(), p.w_enc.size());
  const auto w_dec = Vector<T>(p.w_dec.data(), p.w_dec.size());
  const auto b_dec = p.b_dec;
  const T f = static_cast<T>(s);
  Kokkos::parallel_for(
      "synthsae::fold_w_enc", Kokkos::RangePolicy<ExecSpace>(0, w_enc.extent(0)), KOKKOS_LAMBDA(int i) { w_enc(i) *= f; });
  if (scale_decoder) {
    Kokkos::parallel_for(
        "synthsae::fold_w_dec", Kokkos::RangePolicy<ExecSpace>(0, w_dec.extent(0)),
        KOKKOS_LAMBDA(int i) { w_dec(i) /= f; });
  }
  Kokkos::parallel_for(
      "synthsae::fold_b_dec", Kokkos::RangePolicy<ExecSpace>(0, b_dec.extent(0)), KOKKOS_LAMBDA(int i) { b_dec(i) /= f; });
}

}  // namespace synthsae
