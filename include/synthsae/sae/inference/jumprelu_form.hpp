#pragma once
// SAELens "jumprelu": z = h [h > 0][h > threshold_j], h = xc W_enc + b_enc; tensor threshold [S].
// BatchTopK and Matryoshka BatchTopK export to it as well (threshold = their running theta).
#include <string_view>

#include "synthsae/core/gemm.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/sae/inference/encoder_kernels.hpp"
#include "synthsae/sae/inference/tensors.hpp"

namespace synthsae::inference {

struct JumpReluForm {
  static constexpr std::string_view saelens_name = "jumprelu";
  static constexpr CoreTensors core{};
  Vector<float> threshold;  ///< [S]

  void validate(const SaeParameters<float>& p) const {
    if (threshold.extent(0) != p.num_latents()) {
      throw ShapeError("threshold has " + show(threshold.extent(0)) + " entries, d_sae is " + show(p.num_latents()));
    }
  }
  bool rescales_on_decode() const { return false; }
  void encode(const SaeParameters<float>& p, const Matrix<float>& xc, const Matrix<float>& z) {
    gemm(Op::N, Op::N, 1.0f, xc, p.w_enc, 0.0f, z);
    kernels::relu_gate(z, p.b_enc, threshold, true);
  }
  void write_config(io::Json&) const {}
  static JumpReluForm read_config(const io::Json&, std::size_t) { return {}; }
  void save_tensors(const SaeParameters<float>& p, io::SafetensorsFile& w) const {
    save_core_tensors(p, w, core);
    w.tensors["threshold"] = to_tensor(threshold, {static_cast<std::int64_t>(p.num_latents())});
  }
  void load_tensors(const TensorSource& src, SaeParameters<float>& p) {
    threshold = Vector<float>("threshold", p.num_latents());
    src.fill("threshold", threshold, {static_cast<std::int64_t>(p.num_latents())});
  }
};

}  // namespace synthsae::inference
