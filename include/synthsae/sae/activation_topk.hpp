#pragma once
// TopK (per sample) and BatchTopK (over the whole batch) activations (reference §8.3, §8.4).
//
// With rescale_acts_by_decoder_norm (the training default) the ranking key is h_j |W_dec_j| and
// the reported activation z_j = ReLU(h_j |W_dec_j|), while the decoder uses z_j / |W_dec_j| = h_j:
// the norms cancel in the reconstruction, so c = h on the selected entries either way.
// BatchTopK keeps floor(k B) entries over the batch and tracks theta, an EMA (rate
// topk_threshold_lr) of the smallest positive kept activation, its JumpReLU threshold at export.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include "synthsae/sae/active_set.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/step_buffers.hpp"
#include "synthsae/sae/top_k_select.hpp"

namespace synthsae {

namespace detail {

/// key = rescale ? h * norms : h.
template <class T>
void ranking_key(StepBuffers<T>& b, bool rescale) {
  const auto h = b.h, key = b.key;
  const auto norms = b.norms;
  const int s = static_cast<int>(h.extent(1));
  Kokkos::parallel_for("synthsae::ranking_key", Kokkos::RangePolicy<ExecSpace>(0, h.extent(0)), KOKKOS_LAMBDA(int i) {
    for (int j = 0; j < s; ++j) key(i, j) = rescale ? h(i, j) * norms(j) : h(i, j);
  });
}

/// c = h where selected and key > 0 (ReLU of the selected values), else 0.
template <class T, class Mask>
void coefficients_from_mask(StepBuffers<T>& b, const Mask& mask) {
  const auto h = b.h, key = b.key, c = b.c;
  const int s = static_cast<int>(h.extent(1));
  Kokkos::parallel_for("synthsae::topk_coefficients", Kokkos::RangePolicy<ExecSpace>(0, h.extent(0)), KOKKOS_LAMBDA(int i) {
    for (int j = 0; j < s; ++j) c(i, j) = (mask(i, j) && key(i, j) > T(0)) ? h(i, j) : T(0);
  });
}

/// dh = dc where c != 0 (the selected, positive entries: c = h there).
template <class T>
void backward_through_selection(StepBuffers<T>& b) {
  const auto c = b.c, dc = b.dc, dh = b.dh;
  const int s = static_cast<int>(c.extent(1));
  Kokkos::parallel_for("synthsae::topk_backward", Kokkos::RangePolicy<ExecSpace>(0, c.extent(0)), KOKKOS_LAMBDA(int i) {
    for (int j = 0; j < s; ++j) dh(i, j) = c(i, j) != T(0) ? dc(i, j) : T(0);
  });
}

}  // namespace detail

struct TopK {
  static constexpr std::string_view name = "topk";
  static constexpr bool selects_active_latents = true;
  int k = 100;
  bool rescale_acts_by_decoder_norm = true;

  template <class T>
  struct State {
    Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask;
  };

  bool rescales_by_decoder_norm() const { return rescale_acts_by_decoder_norm; }
  template <class T>
  void add_parameters(SaeParameters<T>&) const {
    if (k < 1) throw ConfigError("k", show(k), "must be >= 1");
  }

  template <class T>
  void forward(StepBuffers<T>& b, const SaeParameters<T>&, State<T>& st, bool) const {
    detail::ranking_key(b, rescale_acts_by_decoder_norm);
    if (st.mask.extent(0) != b.h.extent(0) || st.mask.extent(1) != b.h.extent(1)) {
      st.mask = decltype(st.mask)("topk_mask", b.h.extent(0), b.h.extent(1));
    }
    row_top_k(b.key, std::min<int>(k, static_cast<int>(b.h.extent(1))), st.mask, Kokkos::View<const std::uint8_t*, MemSpace>());
    detail::coefficients_from_mask(b, st.mask);
  }

  template <class T>
  void backward(StepBuffers<T>& b, const SaeParameters<T>&, SaeParameters<T>&, State<T>&) const {
    detail::backward_through_selection(b);
  }

  /// The sparse step's forward: the selected positive entries as an active set (values h);
  /// b.key is filled (AuxK ranks it), b.c is not written.
  template <class T>
  void forward_active(StepBuffers<T>& b, const SaeParameters<T>&, State<T>& st, bool, ActiveSet<T>& a) const {
    detail::ranking_key(b, rescale_acts_by_decoder_norm);
    if (st.mask.extent(0) != b.h.extent(0) || st.mask.extent(1) != b.h.extent(1)) {
      st.mask = decltype(st.mask)("topk_mask", b.h.extent(0), b.h.extent(1));
    }
    row_top_k(b.key, std::min<int>(k, static_cast<int>(b.h.extent(1))), st.mask, Kokkos::View<const std::uint8_t*, MemSpace>());
    const auto mask = st.mask;
    const auto h = b.h, key = b.key;
    a.gather(b.h.extent(0), b.h.extent(1), KOKKOS_LAMBDA(int i, int j, T& v) {
      const bool keep = mask(i, j) && key(i, j) > T(0);
      if (keep) v = h(i, j);
      return keep;
    });
  }
};

struct BatchTopK {
  static constexpr std::string_view name = "batchtopk";
  static constexpr bool selects_active_latents = true;
  double k = 100;
  bool rescale_acts_by_decoder_norm = true;
  double topk_threshold_lr = 0.01;

  template <class T>
  struct State {
    double threshold = 0;  ///< EMA of the smallest positive kept activation (float64, as the reference)
  };

  bool rescales_by_decoder_norm() const { return rescale_acts_by_decoder_norm; }
  template <class T>
  void add_parameters(SaeParameters<T>&) const {
    if (!(k > 0)) throw ConfigError("k", show(k), "must be > 0");
    if (!(topk_threshold_lr >= 0 && topk_threshold_lr <= 1)) throw ConfigError("topk_threshold_lr", show(topk_threshold_lr), "must be in [0, 1]");
  }

  /// Fills b.key and returns tau: an entry is kept <=> float(key) >= tau. Tau is at least the
  /// smallest positive float, so one comparison also demands key > 0 (no unpredictable branch
  /// per entry).
  template <class T>
  float keep_threshold(StepBuffers<T>& b) const {
    detail::ranking_key(b, rescale_acts_by_decoder_norm);
    const auto m = static_cast<std::size_t>(std::floor(k * double(b.h.extent(0))));
    return std::max(batch_top_m_threshold(b.key, m), std::numeric_limits<float>::denorm_min());
  }

  template <class T>
  void forward(StepBuffers<T>& b, const SaeParameters<T>&, State<T>& st, bool training) const {
    const float tau = keep_threshold(b);
    const auto h = b.h, key = b.key, c = b.c;
    const int s = static_cast<int>(h.extent(1));
    double smallest = std::numeric_limits<double>::infinity();
    const T largest = std::numeric_limits<T>::max();
    Kokkos::parallel_reduce(
        "synthsae::batch_topk_keep", Kokkos::RangePolicy<ExecSpace>(0, h.extent(0)),
        KOKKOS_LAMBDA(int i, double& min_kept) {
          T row_min = largest;
          bool any = false;
          for (int j = 0; j < s; ++j) {
            const T k = key(i, j);
            const bool keep = static_cast<float>(k) >= tau;
            c(i, j) = keep ? h(i, j) : T(0);
            row_min = keep && k < row_min ? k : row_min;
            any = any || keep;
          }
          if (any && double(row_min) < min_kept) min_kept = double(row_min);
        },
        Kokkos::Min<double>(smallest));
    if (training && std::isfinite(smallest)) {
      st.threshold = (1.0 - topk_threshold_lr) * st.threshold + topk_threshold_lr * smallest;
    }
  }

  template <class T>
  void backward(StepBuffers<T>& b, const SaeParameters<T>&, SaeParameters<T>&, State<T>&) const {
    detail::backward_through_selection(b);
  }

  /// The sparse step's forward: the kept entries as an active set (values h), and the
  /// threshold update; b.key is filled, b.c is not written.
  template <class T>
  void forward_active(StepBuffers<T>& b, const SaeParameters<T>&, State<T>& st, bool training, ActiveSet<T>& a) const {
    const float tau = keep_threshold(b);
    const auto h = b.h, key = b.key;
    a.gather(b.h.extent(0), b.h.extent(1), KOKKOS_LAMBDA(int i, int j, T& v) {
      const bool keep = static_cast<float>(key(i, j)) >= tau;
      if (keep) v = h(i, j);
      return keep;
    });
    if (!training || a.entries == 0) return;
    const auto starts = a.row_start;
    const auto cols = a.col;
    double smallest = std::numeric_limits<double>::infinity();
    Kokkos::parallel_reduce("synthsae::batch_topk_min_kept", Kokkos::RangePolicy<ExecSpace>(0, a.rows()), KOKKOS_LAMBDA(int i, double& min_kept) {
      for (int e = starts(i); e < starts(i + 1); ++e)
        if (double(key(i, cols(e))) < min_kept) min_kept = double(key(i, cols(e)));
    }, Kokkos::Min<double>(smallest));
    st.threshold = (1.0 - topk_threshold_lr) * st.threshold + topk_threshold_lr * smallest;
  }
};

}  // namespace synthsae
