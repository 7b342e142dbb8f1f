#pragma once
// Standard normal tail and quantile in double precision, callable from host and device.
#include <cmath>
#include <limits>

#include "synthsae/core/backend.hpp"

namespace synthsae {

/// Phi(x).
SYNTHSAE_HD double normal_cdf(double x) { return 0.5 * kmath::erfc(-x * 0.70710678118654752440); }

/// Q(x) = 1 - Phi(x), accurate in the upper tail.
SYNTHSAE_HD double normal_tail(double x) { return 0.5 * kmath::erfc(x * 0.70710678118654752440); }

/// sqrt(2 pi), and acc * x + c with one rounding where the hardware fuses it (normal_tail_bound's
/// Horner steps; the host sampler's AVX2 + FMA lanes make the same operations, so the same bits).
/// Without FMA hardware a library fma would be slow, and the bound's last bits change no decision
/// (it only spares the exact test), so a plain product and sum there.
inline constexpr double kRootTwoPiDouble = 2.50662827463100050242;
SYNTHSAE_HD double horner_step(double x, double acc, double c) {
#if defined(__FMA__) || defined(__CUDACC__)
  return fused_multiply_add(x, acc, c);
#else
  return x * acc + c;
#endif
}

/// An upper bound of Q(s) for s >= 0 without a transcendental function, tight in the tail where
/// the sampler's features sit (about 1.3 Q(s) at s = 3): Q(s) <= e^-x min(1/2, 1/(s sqrt(2 pi)))
/// with x = s^2 / 2 (Chernoff and Mills' ratio), and e^x >= 1 + x + ... + x^6/6! for x >= 0.
/// Equal to Q(0) = 1/2 at 0.
SYNTHSAE_HD double normal_tail_bound(double s) {
  const double x = 0.5 * s * s;
  double exp_lower = horner_step(x, 1.0 / 720, 1.0 / 120);
  exp_lower = horner_step(x, exp_lower, 1.0 / 24);
  exp_lower = horner_step(x, exp_lower, 1.0 / 6);
  exp_lower = horner_step(x, exp_lower, 0.5);
  exp_lower = horner_step(x, exp_lower, 1.0);
  exp_lower = horner_step(x, exp_lower, 1.0);
  const double mills = s * kRootTwoPiDouble;
  return 1 / (exp_lower * (mills > 2 ? mills : 2));
}

/// Phi^-1(p): Acklam's rational approximation (relative error 1.15e-9) refined by one Halley
/// step on erfc, which brings it to about full double precision. p <= 0 gives -inf, p >= 1 +inf.
SYNTHSAE_HD double normal_quantile(double p) {
  if (p <= 0) return -std::numeric_limits<double>::infinity();
  if (p >= 1) return std::numeric_limits<double>::infinity();
  const double a0 = -3.969683028665376e+01, a1 = 2.209460984245205e+02, a2 = -2.759285104469687e+02,
               a3 = 1.383577518672690e+02, a4 = -3.066479806614716e+01, a5 = 2.506628277459239e+00;
  const double b0 = -5.447609879822406e+01, b1 = 1.615858368580409e+02, b2 = -1.556989798598866e+02,
               b3 = 6.680131188771972e+01, b4 = -1.328068155288572e+01;
  const double c0 = -7.784894002430293e-03, c1 = -3.223964580411365e-01, c2 = -2.400758277161838e+00,
               c3 = -2.549732539343734e+00, c4 = 4.374664141464968e+00, c5 = 2.938163982698783e+00;
  const double d0 = 7.784695709041462e-03, d1 = 3.224671290700398e-01, d2 = 2.445134137142996e+00,
               d3 = 3.754408661907416e+00;
  const double p_low = 0.02425;
  double x;
  if (p < p_low) {
    const double q = kmath::sqrt(-2 * kmath::log(p));
    x = (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  } else if (p <= 1 - p_low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q /
        (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1);
  } else {
    const double q = kmath::sqrt(-2 * kmath::log1p(-p));
    x = -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) / ((((d0 * q + d1) * q + d2) * q + d3) * q + 1);
  }
  // Halley step on the side where the CDF is small, to avoid cancellation near p = 1.
  const double e = x < 0 ? normal_cdf(x) - p : (1 - p) - normal_tail(x);
  const double u = e * 2.50662827463100050242 * kmath::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

}  // namespace synthsae
