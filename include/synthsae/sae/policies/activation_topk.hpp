#pragma once
// TopK (reference §8.3) and AbsTopK (SAELens 6.54): the k largest ranking keys per sample. With rescale_acts_by_decoder_norm
// (the training default) the key is h_j |W_dec_j| and z_j = ReLU(h_j |W_dec_j|), while the decoder
// uses z_j / |W_dec_j| = h_j: the norms cancel in the reconstruction, so c = h on the selected
// entries either way.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/row_top_k_lists.hpp"
#include "synthsae/sae/kernels/selection.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae {

/// Per-sample top-k, by the ranking key (TopK: ReLU of the k largest) or by its magnitude with the
/// sign kept (AbsTopK). The two activations differ only in that choice; each is a plain aggregate
/// (TopK{.k = 8} works).
template <bool ByMagnitude>
struct RowTopK {
  static constexpr std::string_view name = ByMagnitude ? "abstopk" : "topk";
  static constexpr bool selects_active_latents = true;
  int k = 100;
  bool rescale_acts_by_decoder_norm = true;

  template <class T>
  struct State {
    Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask;
    RowTopKLists<T> lists;  ///< the host's sparse forward
  };

  bool rescales_by_decoder_norm() const { return rescale_acts_by_decoder_norm; }
  /// The screened encoder's selection (TopK; AbsTopK ranks magnitudes, which it does not bound):
  /// each row's k largest keys.
  ScreenedSelection screened_selection(std::size_t) const
    requires(!ByMagnitude)
  {
    return {static_cast<std::size_t>(k), true};
  }
  void validate(std::size_t, std::size_t d_sae) const {
    if (k < 1) throw ConfigError("k", show(k), "must be >= 1");
    if (static_cast<std::size_t>(k) > d_sae) throw ConfigError("k", show(k), "must be <= d_sae = " + show(d_sae));
  }
  template <class T>
  void add_parameters(SaeParameters<T>&) const {}

  template <class T>
  void forward(StepBuffers<T>& b, const SaeParameters<T>&, State<T>& st, bool) const {
    select(b, st);
    detail::coefficients_from_mask(b, st.mask, ByMagnitude);
  }

  template <class T>
  void backward(StepBuffers<T>& b, const SaeParameters<T>&, SaeParameters<T>&, State<T>&) const {
    detail::backward_through_selection(b);
  }

  /// The sparse step's forward: the selected entries as an active set (values h; TopK keeps the
  /// positive ones); b.key is filled (AuxK ranks it), b.c is not written.
  template <class T>
  void forward_active(StepBuffers<T>& b, const SaeParameters<T>&, State<T>& st, bool, ActiveSet<T>& a) const {
    if constexpr (host_accessible_v<MemSpace>) {  // the same set, listed per row (row_top_k_lists.hpp)
      row_top_k_active(b, k, rescale_acts_by_decoder_norm, ByMagnitude, st.lists, a);
      return;
    }
    select(b, st);
    const auto mask = st.mask;
    const auto h = b.h, key = b.key;
    a.gather(
        b.h.extent(0), b.h.extent(1), KOKKOS_LAMBDA(int i, int j, T& v) {
          const bool keep = mask(i, j) && (ByMagnitude || key(i, j) > T(0));
          if (keep) v = h(i, j);
          return keep;
        });
  }

 private:
  template <class T>
  void select(StepBuffers<T>& b, State<T>& st) const {
    detail::ranking_key(b, rescale_acts_by_decoder_norm, ByMagnitude);
    if (st.mask.extent(0) != b.h.extent(0) || st.mask.extent(1) != b.h.extent(1)) {
      st.mask = decltype(st.mask)("topk_mask", b.h.extent(0), b.h.extent(1));
    }
    row_top_k(b.key, std::min<int>(k, static_cast<int>(b.h.extent(1))), st.mask,
              Kokkos::View<const std::uint8_t*, MemSpace>());
  }
};

using TopK = RowTopK<false>;

/// AbsTopK (SAELens "abstopk", after "AbsTopK: Rethinking Sparse Autoencoders For Bidirectional
/// Features"): the k largest |h_j| (|h_j| |W_dec_j| with rescaling) per sample, signs kept, no ReLU,
/// so a latent fires in either direction. AuxK then ranks dead latents by magnitude too (it reads
/// the same key) and takes their signed values.
using AbsTopK = RowTopK<true>;

}  // namespace synthsae
