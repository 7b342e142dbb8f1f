#pragma once
// BatchTopK (reference §8.4): keeps floor(k B) entries over the whole batch and tracks theta, an
// EMA (rate topk_threshold_lr) of the smallest positive kept activation: its JumpReLU threshold
// at export, and the persistent part of its run state (saved in checkpoints).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/selection.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

namespace detail {
/// BatchTopK's row writer for the candidate pass (threshold_from_candidates): row i of the
/// ranking keys, and with write_and_list the row written and its candidates listed
/// (write_keys_listing: one loop on AVX-512 hosts, the two steps elsewhere).
template <class T>
struct RankingKeyRows {
  Matrix<T> h;
  Vector<T> norms;
  Matrix<T> key;
  bool rescale;
  void operator()(int i) const { ranking_key_row(h, norms, key, i, rescale); }
  void write_and_list(int i, float floor, std::int64_t base, std::vector<std::uint32_t>& bits,
                      std::vector<std::int64_t>& positions) const {
    write_keys_listing(&h(i, 0), rescale ? norms.data() : nullptr, &key(i, 0), static_cast<int>(h.extent(1)), floor,
                       base, bits, positions);
  }
};
}  // namespace detail

struct BatchTopK {
  static constexpr std::string_view name = "batchtopk";
  static constexpr bool selects_active_latents = true;
  double k = 100;
  bool rescale_acts_by_decoder_norm = true;
  double topk_threshold_lr = 0.01;

  template <class T>
  struct State {
    double threshold = 0;  ///< EMA of the smallest positive kept activation (float64, as the reference)
    /// Persistent run state: the threshold survives a checkpoint (train/checkpoint.hpp).
    template <class Archive>
    void persist(Archive& ar) {
      ar("threshold", threshold);
    }
  };

  bool rescales_by_decoder_norm() const { return rescale_acts_by_decoder_norm; }
  /// Folding an input scale s divides W_dec by s: the decoder-norm-scaled activations the
  /// threshold is compared with shrink by s, so it does too (SAELens, PR #763).
  template <class T>
  void fold_input_scale(State<T>& st, double s) const {
    if (rescale_acts_by_decoder_norm) st.threshold /= s;
  }
  void validate(std::size_t, std::size_t d_sae) const {
    if (!(k > 0)) throw ConfigError("k", show(k), "must be > 0");
    if (!(k <= static_cast<double>(d_sae))) throw ConfigError("k", show(k), "must be <= d_sae = " + show(d_sae));
    if (!(topk_threshold_lr >= 0 && topk_threshold_lr <= 1))
      throw ConfigError("topk_threshold_lr", show(topk_threshold_lr), "must be in [0, 1]");
  }
  template <class T>
  void add_parameters(SaeParameters<T>&) const {}
  /// m = floor(k B): the entries a batch of B rows keeps (before ties at the threshold).
  std::size_t batch_keep_count(std::size_t rows) const { return static_cast<std::size_t>(std::floor(k * double(rows))); }
  /// The screened encoder's selection: the batch's m largest keys.
  ScreenedSelection screened_selection(std::size_t rows) const { return {batch_keep_count(rows), false}; }

  /// Fills b.key and returns tau: an entry is kept <=> float(key) >= tau. Tau is at least the
  /// smallest positive float, so one comparison also demands key > 0 (no unpredictable branch
  /// per entry).
  template <class T>
  float keep_threshold(StepBuffers<T>& b) const {
    const std::size_t m = batch_keep_count(b.h.extent(0));
    float tau = 0;
    if constexpr (host_accessible_v<MemSpace>) {
      // The keys are listed as they are computed, row by row (one pass over the batch, not three).
      tau = batch_top_m_threshold_writing(b.key, m, b.top_m,
                                          detail::RankingKeyRows<T>{b.h, b.norms, b.key, rescale_acts_by_decoder_norm});
    } else {
      detail::ranking_key(b, rescale_acts_by_decoder_norm);
      tau = batch_top_m_threshold(b.key, m, b.top_m);
    }
    return std::max(tau, std::numeric_limits<float>::denorm_min());
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
    auto kept = KOKKOS_LAMBDA(int i, int j, T& v) {
      const bool keep = static_cast<float>(key(i, j)) >= tau;
      if (keep) v = h(i, j);
      return keep;
    };
    bool listed = false;
    if constexpr (host_accessible_v<MemSpace>) {
      // Every kept entry is among the threshold's listed candidates (>= tau >= their floor):
      // the set is read off that short list, not off the whole batch.
      if (key.data() != nullptr && b.top_m.listed_from == static_cast<const void*>(key.data())) {
        a.gather_listed(h.extent(0), h.extent(1), b.top_m.candidate_positions.data(), b.top_m.listed, kept);
        listed = true;
      }
    }
    if (!listed) a.gather(h.extent(0), h.extent(1), kept);
    if (!training || a.entries == 0) return;
    double smallest = std::numeric_limits<double>::infinity();
    if constexpr (std::is_same_v<T, float>) {
      // Above the smallest positive float, tau is the m-th largest key itself (batch_top_m_threshold
      // returns an entry), so it is the least kept key: no pass over the kept entries. Float keys
      // only: a double key just below tau may round up to it and be kept.
      if (tau > std::numeric_limits<float>::denorm_min()) smallest = double(tau);
    }
    if (!std::isfinite(smallest)) smallest = min_kept_key(b, a);
    st.threshold = (1.0 - topk_threshold_lr) * st.threshold + topk_threshold_lr * smallest;
  }

 private:
  /// The least key among a's entries.
  template <class T>
  static double min_kept_key(const StepBuffers<T>& b, const ActiveSet<T>& a) {
    const auto key = b.key;
    const auto starts = a.row_start;
    const auto cols = a.col;
    double smallest = std::numeric_limits<double>::infinity();
    Kokkos::parallel_reduce(
        "synthsae::batch_topk_min_kept", Kokkos::RangePolicy<ExecSpace>(0, a.rows()),
        KOKKOS_LAMBDA(int i, double& min_kept) {
          for (int e = starts(i); e < starts(i + 1); ++e)
            if (double(key(i, cols(e))) < min_kept) min_kept = double(key(i, cols(e)));
        },
        Kokkos::Min<double>(smallest));
    return smallest;
  }
};

}  // namespace synthsae
