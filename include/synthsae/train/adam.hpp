#pragma once
// Adam (beta1, beta2, eps = 1e-8, no weight decay) over every SAE parameter, with global
// gradient-norm clipping (max norm 1, as the reference always applies) and a skipped, counted
// step when the gradient is not finite.
#include <cmath>
#include <string>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
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
      double part = 0;
      Kokkos::parallel_reduce("synthsae::grad_norm", Kokkos::RangePolicy<ExecSpace>(0, v.extent(0)),
                              KOKKOS_LAMBDA(int i, double& acc) { acc += double(v(i)) * double(v(i)); }, part);
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
    const double clip = (cfg_.max_grad_norm > 0 && norm > cfg_.max_grad_norm) ? cfg_.max_grad_norm / (norm + 1e-6) : 1.0;
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
      Kokkos::parallel_for("synthsae::adam", Kokkos::RangePolicy<ExecSpace>(0, pp.extent(0)), KOKKOS_LAMBDA(int i) {
        const T gi = gg(i) * scale;
        mm(i) = b1 * mm(i) + (T(1) - b1) * gi;
        vv(i) = b2 * vv(i) + (T(1) - b2) * gi * gi;
        pp(i) -= step_size * mm(i) / (kmath::sqrt(vv(i)) / sqrt_bias2 + eps);
      });
    }
    return true;
  }

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
