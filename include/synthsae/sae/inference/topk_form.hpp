#pragma once
// SAELens "topk": the k largest of ReLU(xc W_enc + b_enc) per sample, ranked by h |W_dec_j| when
// rescale_acts_by_decoder_norm (then the decoder divides by the norms again). cfg: k,
// rescale_acts_by_decoder_norm. SAELens "abstopk": the k largest |h| (|h| |W_dec_j|), signs kept.
#include <cstdint>
#include <string_view>

#include "synthsae/core/gemm.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/sae/inference/encoder_kernels.hpp"
#include "synthsae/sae/inference/tensors.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/kernels/top_k_select.hpp"

namespace synthsae::inference {

template <bool ByMagnitude>
struct RowTopKForm {
  static constexpr std::string_view saelens_name = ByMagnitude ? "abstopk" : "topk";
  static constexpr CoreTensors core{};
  int k = 0;
  bool rescale_acts_by_decoder_norm = false;

  void validate(const SaeParameters<float>& p) const {
    if (k < 1 || static_cast<std::size_t>(k) > p.num_latents())
      throw ConfigError("k", show(k), "must be in [1, d_sae = " + show(p.num_latents()) + "]");
  }
  bool rescales_on_decode() const { return rescale_acts_by_decoder_norm; }

  void encode(const SaeParameters<float>& p, const Matrix<float>& xc, const Matrix<float>& z) {
    const std::size_t rows = xc.extent(0), s = p.num_latents();
    gemm(Op::N, Op::N, 1.0f, xc, p.w_enc, 0.0f, z);
    if constexpr (ByMagnitude) {
      synthsae::kernels::add_to_rows(z, p.b_enc);  // signed: no ReLU
    } else {
      kernels::relu_gate(z, p.b_enc, p.b_enc, false);
    }
    if (norms_.extent(0) != s) norms_ = Vector<float>("inference_norms", s);
    synthsae::kernels::row_norms(p.w_dec, norms_);
    if (key_.extent(0) != rows || key_.extent(1) != s) {
      key_ = Matrix<float>("inference_key", rows, s);
      mask_ = decltype(mask_)("inference_mask", rows, s);
    }
    const auto zz = z, key = key_;
    const auto norms = norms_;
    const bool rescale = rescale_acts_by_decoder_norm;
    for_each_entry(
        "synthsae::inference_key", rows, s,
        KOKKOS_LAMBDA(int i, int j) { key(i, j) = rescale ? zz(i, j) * norms(j) : zz(i, j); });
    if constexpr (ByMagnitude) {  // rank by |key|, output the signed key: rank in a copy
      if (magnitude_.extent(0) != rows || magnitude_.extent(1) != s) magnitude_ = Matrix<float>("inference_abs_key", rows, s);
      const auto mag = magnitude_;
      for_each_entry(
          "synthsae::inference_abs_key", rows, s, KOKKOS_LAMBDA(int i, int j) { mag(i, j) = key(i, j) < 0.0f ? -key(i, j) : key(i, j); });
      row_top_k(magnitude_, k, mask_, Kokkos::View<const std::uint8_t*, MemSpace>());
    } else {
      row_top_k(key_, k, mask_, Kokkos::View<const std::uint8_t*, MemSpace>());
    }
    const auto mask = mask_;
    for_each_entry(
        "synthsae::inference_topk", rows, s, KOKKOS_LAMBDA(int i, int j) { zz(i, j) = mask(i, j) ? key(i, j) : 0.0f; });
  }

  void write_config(io::Json& cfg) const {
    cfg["k"] = k;
    cfg["rescale_acts_by_decoder_norm"] = rescale_acts_by_decoder_norm;
  }
  static RowTopKForm read_config(const io::Json& cfg, std::size_t) {
    RowTopKForm f;
    f.k = io::json_field<int>(cfg, "k", "");
    f.rescale_acts_by_decoder_norm = io::json_field_or<bool>(cfg, "rescale_acts_by_decoder_norm", "", false);
    return f;
  }
  void save_tensors(const SaeParameters<float>& p, io::SafetensorsFile& w) const { save_core_tensors(p, w, core); }
  void load_tensors(const TensorSource&, SaeParameters<float>&) {}

 private:
  Matrix<float> key_, magnitude_;
  Vector<float> norms_;
  Kokkos::View<std::uint8_t**, Kokkos::LayoutRight, MemSpace> mask_;
};

using TopKForm = RowTopKForm<false>;
using AbsTopKForm = RowTopKForm<true>;

}  // namespace synthsae::inference
