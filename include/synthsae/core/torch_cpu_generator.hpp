#pragma once
// PyTorch's CPU generator, for the few draws SAELens makes at load time that a saved directory does
// not store (the folded-normal firing magnitudes: torch.randn(n, generator=Generator().manual_seed(s))).
// Reproducing them is what makes a SAELens world directory load into SAELens's world.
//
// torch's CPU generator is MT19937 seeded with the low 32 bits of the seed. A float uniform is
// (random() & (2^24 - 1)) / 2^24. torch.randn of a float tensor of n >= 16 entries fills it with
// uniforms, then maps each block of 16 by Box-Muller, pairing entry j with j + 8:
//   r = sqrt(-2 log(1 - u_j)), t = 2 pi u_{j+8};  out_j = r cos t, out_{j+8} = r sin t,
// and when 16 does not divide n, redraws the last 16 uniforms and maps them again. Fewer than 16
// entries take the scalar double path: u1, u2 double uniforms (53 bits of random64()),
// r = sqrt(-2 log(1 - u2)), t = 2 pi u1, out = r cos t, with r sin t cached for the next draw.
// All in float. torch evaluates log, sin and cos of the blocks with its vectorised polynomials
// (which ones depends on the CPU it runs on), whose rounding differs from the C library's float
// functions used here by an ulp or two: the draws agree with torch's to a few float ulps, most
// of them bit for bit (torch's own results differ as much from one CPU capability to another). tests/world/test_torch_generator.cpp
// checks values printed by torch (tests/data/torch_randn/, made by scripts/torch_randn_fixture.py).
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace synthsae::torch_compat {

class CpuGenerator {
 public:
  explicit CpuGenerator(std::uint64_t seed) : engine_(static_cast<std::uint32_t>(seed & 0xFFFFFFFFu)) {}

  std::uint32_t random() { return static_cast<std::uint32_t>(engine_()); }
  std::uint64_t random64() {
    const std::uint64_t hi = random(), lo = random();
    return (hi << 32) | lo;
  }
  /// at::uniform_real_distribution<float>(0, 1).
  float uniform_float() { return static_cast<float>(random() & 0xFFFFFFu) * (1.0f / 16777216.0f); }
  /// at::uniform_real_distribution<double>(0, 1).
  double uniform_double() {
    return static_cast<double>(random64() & ((std::uint64_t(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
  }
  /// at::normal_distribution<double>(0, 1), with its cached second value.
  double normal_double() {
    if (next_normal_) {
      const double v = *next_normal_;
      next_normal_.reset();
      return v;
    }
    const double u1 = uniform_double(), u2 = uniform_double();
    const double r = std::sqrt(-2.0 * std::log1p(-u2));
    const double t = 2.0 * 3.14159265358979323846 * u1;
    next_normal_ = r * std::sin(t);
    return r * std::cos(t);
  }

  /// torch.randn(n, generator=this) as float32.
  std::vector<float> randn(std::size_t n) {
    std::vector<float> out(n);
    if (n < 16) {
      for (auto& v : out) v = static_cast<float>(normal_double());
      return out;
    }
    for (auto& v : out) v = uniform_float();
    for (std::size_t i = 0; i + 16 <= n; i += 16) box_muller_16(out.data() + i);
    if (n % 16 != 0) {
      float* tail = out.data() + n - 16;
      for (int j = 0; j < 16; ++j) tail[j] = uniform_float();
      box_muller_16(tail);
    }
    return out;
  }

 private:
  static void box_muller_16(float* data) {
    constexpr float two_pi = 2.0f * 3.14159265358979323846f;
    for (int j = 0; j < 8; ++j) {
      const float u1 = 1.0f - data[j];  // exact: data[j] has 24 significant bits
      const float radius = std::sqrt(-2.0f * std::log(u1));
      const float theta = two_pi * data[j + 8];
      data[j] = radius * std::cos(theta);
      data[j + 8] = radius * std::sin(theta);
    }
  }

  std::mt19937 engine_;
  std::optional<double> next_normal_;
};

}  // namespace synthsae::torch_compat
