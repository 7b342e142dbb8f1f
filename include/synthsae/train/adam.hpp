#pragma once
// Adam (beta1, beta2, eps = 1e-8, no weight decay) over every SAE parameter, with global
// gradient-norm clipping (max norm 1, as the reference always applies) and a skipped, counted
// step when the gradient is not finite.
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__AVX__) && !defined(__CUDACC__)
#include <immintrin.h>
#define SYNTHSAE_ADAM_AVX 1
#endif

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/host_parallel.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

struct AdamConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double max_grad_norm = 1.0;  ///< <= 0 disables clipping
};

template <class T>
class Adam {
 public:
  Adam(const SaeParameters<T>& params, AdamConfig cfg) : cfg_(cfg), m_(params.zeros_like()), v_(params.zeros_like()) {
    if (!(cfg.beta1 >= 0 && cfg.beta1 < 1)) throw ConfigError("adam_beta1", show(cfg.beta1), "must be in [0, 1)");
    if (!(cfg.beta2 >= 0 && cfg.beta2 < 1)) throw ConfigError("adam_beta2", show(cfg.beta2), "must be in [0, 1)");
  }

  /// Global L2 norm of the gradient (float64 accumulation).
  static double gradient_norm(const SaeParameters<T>& g) {
    double total = 0;
    g.for_each_flat([&](const std::string&, const Vector<T>& v) {
      // Blocks of 1,024 with sixteen independent float64 sums (four AVX registers): fewer
      // chains would make this bound by the addition's latency, not by memory. Threaded on the
      // host (the same bits at any thread count: host_rows_sum's fixed chunks).
      const int n = static_cast<int>(v.extent(0)), blocks = (n + 1023) / 1024;
      const T* data = v.data();
      const double part = host_rows_sum(
          "synthsae::grad_norm", blocks, 2048, KOKKOS_LAMBDA(int blk, double& acc) {
            constexpr int kLanes = 16;
            const int i0 = blk * 1024, i1 = i0 + 1024 < n ? i0 + 1024 : n;
            double s[kLanes] = {};
            int i = i0;
            for (; i + kLanes <= i1; i += kLanes)
              for (int u = 0; u < kLanes; ++u) s[u] += double(data[i + u]) * double(data[i + u]);
            for (; i < i1; ++i) s[0] += double(data[i]) * double(data[i]);
            acc += sum_in_tree(s);
          });
      total += part;
    });
    return std::sqrt(total);
  }

  /// Clips, then applies one step at learning rate `lr`. Returns false (and changes nothing)
  /// when the gradient norm is not finite.
  bool step(SaeParameters<T>& params, const SaeParameters<T>& grads, double lr) {
    const double norm = gradient_norm(grads);
    last_grad_norm_ = norm;
    if (!std::isfinite(norm)) {
      ++skipped_;
      return false;
    }
    const double clip =
        (cfg_.max_grad_norm > 0 && norm > cfg_.max_grad_norm) ? cfg_.max_grad_norm / (norm + 1e-6) : 1.0;
    ++t_;
    const T b1 = T(cfg_.beta1), b2 = T(cfg_.beta2), eps = T(cfg_.eps), scale = T(clip);
    const T bias1 = T(1.0 - std::pow(cfg_.beta1, double(t_)));
    const T sqrt_bias2 = T(std::sqrt(1.0 - std::pow(cfg_.beta2, double(t_))));
    const T step_size = T(lr) / bias1;
    std::vector<Vector<T>> p, g, m, v;
    params.for_each_flat([&](const std::string&, const Vector<T>& x) { p.push_back(x); });
    grads.for_each_flat([&](const std::string&, const Vector<T>& x) { g.push_back(x); });
    m_.for_each_flat([&](const std::string&, const Vector<T>& x) { m.push_back(x); });
    v_.for_each_flat([&](const std::string&, const Vector<T>& x) { v.push_back(x); });
    for (std::size_t t = 0; t < p.size(); ++t) {
      const auto pp = p[t], gg = g[t], mm = m[t], vv = v[t];
      // Host: blocks of 1,024 (adam_update's eight AVX lanes where the build has AVX). GPU: one
      // thread per element (coalesced). The same arithmetic per element either way.
      constexpr int kBlock = host_accessible_v<ExecSpace> ? 1024 : 1;
      const int n = static_cast<int>(pp.extent(0)), blocks = (n + kBlock - 1) / kBlock;
      host_rows(
          "synthsae::adam", blocks, kBlock * 8, KOKKOS_LAMBDA(int blk) {
            const int i0 = blk * kBlock, len = (i0 + kBlock < n ? i0 + kBlock : n) - i0;
            adam_update(pp.data() + i0, gg.data() + i0, mm.data() + i0, vv.data() + i0, len, scale, b1, b2, step_size,
                        sqrt_bias2, eps);
          });
    }
    return true;
  }

  static SYNTHSAE_HD void adam_update(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, int n,
                                      T scale, T b1, T b2, T step_size, T sqrt_bias2, T eps) {
    int i = 0;
#ifdef SYNTHSAE_ADAM_AVX
    // std::sqrt may set errno, so compilers keep this loop scalar unless -fno-math-errno is
    // given (a consumer's choice, not ours): eight lanes by hand, the same operations per element
    // (square root and divisions correctly rounded in both forms; FMA where the scalar loop is
    // contracted to one).
    if constexpr (std::is_same_v<T, float>) i = adam_update_avx(p, g, m, v, n, scale, b1, b2, step_size, sqrt_bias2, eps);
#endif
    for (; i < n; ++i) {
      const T gi = g[i] * scale;
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      p[i] -= step_size * m[i] / (kmath::sqrt(v[i]) / sqrt_bias2 + eps);
    }
  }

#ifdef SYNTHSAE_ADAM_AVX
  /// adam_update's first n - n % 8 elements, eight at a time; returns how many it did.
  static int adam_update_avx(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                             int n, float scale, float b1, float b2, float step_size, float sqrt_bias2, float eps) {
    const __m256 vscale = _mm256_set1_ps(scale), vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2);
    const __m256 one_b1 = _mm256_set1_ps(1.0f - b1), one_b2 = _mm256_set1_ps(1.0f - b2);
    const __m256 vstep = _mm256_set1_ps(step_size), vbias2 = _mm256_set1_ps(sqrt_bias2), veps = _mm256_set1_ps(eps);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), vscale);
      const __m256 g1 = _mm256_mul_ps(one_b1, gi), g2 = _mm256_mul_ps(_mm256_mul_ps(one_b2, gi), gi);
#ifdef __FMA__
      const __m256 mi = _mm256_fmadd_ps(vb1, _mm256_loadu_ps(m + i), g1);
      const __m256 vi = _mm256_fmadd_ps(vb2, _mm256_loadu_ps(v + i), g2);
#else
      const __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), g1);
      const __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), g2);
#endif
      _mm256_storeu_ps(m + i, mi);
      _mm256_storeu_ps(v + i, vi);
      const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vbias2), veps);
      _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_loadu_ps(p + i), _mm256_div_ps(_mm256_mul_ps(vstep, mi), denom)));
    }
    return i;
  }
#endif

  long steps() const { return t_; }
  long skipped() const { return skipped_; }
  double last_grad_norm() const { return last_grad_norm_; }
  SaeParameters<T>& first_moment() { return m_; }
  SaeParameters<T>& second_moment() { return v_; }
  void set_steps(long t, long skipped) { t_ = t, skipped_ = skipped; }

 private:
  AdamConfig cfg_;
  SaeParameters<T> m_, v_;
  long t_ = 0, skipped_ = 0;
  double last_grad_norm_ = 0;
};

}  // namespace synthsae
