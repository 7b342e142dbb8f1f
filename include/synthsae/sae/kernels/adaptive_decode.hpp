#pragma once
// x_hat = c W_dec + b from the nonzero coefficients when they are few. An evaluation's
// activations fire a few latents of thousands per sample (8 of 1,024 on cpu-1k), and the dense
// product then spends nearly all its work multiplying zeros.
#include <cstddef>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"

namespace synthsae {

/// Decodes a batch of coefficients through the GEMM or through their nonzero entries, chosen per
/// batch by its density: a count pass over the coefficients decides, and above the crossover the
/// GEMM runs as before (the dense path's values are unchanged). Both give (z / divisor) W + bias to
/// float rounding; the sparse form adds each row's entries in latent order onto the bias.
template <class T>
class AdaptiveDecode {
 public:
  /// The crossover: the sparse form when at most this fraction of the batch's entries is
  /// nonzero. bench_sae's BM_Decode (768 <- 4,096, batch 1,024, 2 AVX2 cores) puts the two forms
  /// even at about 15 %: a random decoder row read per entry costs several times a packed GEMM
  /// tile's multiply-add. A third of that keeps a margin for faster GEMMs. A GPU build keeps the
  /// GEMM (0) until the crossover is measured against cuBLAS there.
  static constexpr double default_max_density = host_accessible_v<ExecSpace> ? 0.05 : 0.0;

  /// x_hat [B, D] = (z / divisor) W + bias for z [B, S], W [S, D]; an empty divisor divides by
  /// nothing (z itself), an empty bias adds nothing.
  void decode(const Matrix<T>& z, const Vector<T>& divisor, const Matrix<T>& w, const Vector<T>& bias,
              const Matrix<T>& x_hat) {
    const std::size_t rows = z.extent(0), s = z.extent(1), d = w.extent(1);
    const bool divide = divisor.extent(0) != 0, add_bias = bias.extent(0) != 0;
    // The sparse form indexes W and x_hat without the GEMM's own shape check: the same check here.
    if (w.extent(0) != s || x_hat.extent(0) != rows || x_hat.extent(1) != d || (divide && divisor.extent(0) != s) ||
        (add_bias && bias.extent(0) != d))
      throw ShapeError("decode: z [" + show(rows) + ", " + show(s) + "], W_dec [" + show(w.extent(0)) + ", " + show(d) +
                       "], x_hat [" + show(x_hat.extent(0)) + ", " + show(x_hat.extent(1)) + "], divisor [" +
                       show(divisor.extent(0)) + "], bias [" + show(bias.extent(0)) + "] do not fit");
    const auto max_entries = static_cast<std::size_t>(max_density_ * double(rows) * double(s));
    last_sparse_ = false;
    if (max_entries > 0) {
      const auto zz = z;
      const auto div = divisor;
      last_sparse_ = active_.gather(
          rows, s,
          KOKKOS_LAMBDA(int i, int j, T& v) {
            const T value = zz(i, j);
            if (value != T(0)) v = divide ? value / div(j) : value;
            return value != T(0);
          },
          max_entries);
    }
    if (last_sparse_) {
      if (!add_bias && zero_bias_.extent(0) != d) zero_bias_ = Vector<T>("decode_zero_bias", d);
      kernels::sparse_decode(active_, w, add_bias ? bias : zero_bias_, x_hat, static_cast<int>(s));
      return;
    }
    Matrix<T> c = z;
    if (divide) {
      if (c_.extent(0) != rows || c_.extent(1) != s) c_ = Matrix<T>("decode_c", rows, s);
      c = c_;
      const auto zz = z;
      const auto div = divisor;
      for_each_entry(
          "synthsae::decode_coefficients", rows, s, KOKKOS_LAMBDA(int i, int j) { c(i, j) = zz(i, j) / div(j); });
    }
    gemm(Op::N, Op::N, T(1), c, w, T(0), x_hat);
    if (add_bias) kernels::add_to_rows(x_hat, bias);
  }

  /// 0 always takes the GEMM, 1 always the sparse form.
  void set_max_density(double fraction) {
    if (!(fraction >= 0 && fraction <= 1)) throw ConfigError("sparse_decode_max_density", show(fraction), "must be in [0, 1]");
    max_density_ = fraction;
  }
  double max_density() const { return max_density_; }
  /// Whether the last decode took the sparse form.
  bool last_was_sparse() const { return last_sparse_; }

 private:
  ActiveSet<T> active_;
  Matrix<T> c_;
  Vector<T> zero_bias_;
  double max_density_ = default_max_density;
  bool last_sparse_ = false;
};

}  // namespace synthsae
