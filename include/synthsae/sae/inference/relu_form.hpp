#pragma once
// SAELens "standard": z = ReLU(xc W_enc + b_enc).
#include <string_view>

#include "synthsae/core/gemm.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/sae/inference/encoder_kernels.hpp"
#include "synthsae/sae/inference/tensors.hpp"

namespace synthsae::inference {

struct ReluForm {
  static constexpr std::string_view saelens_name = "standard";
  static constexpr CoreTensors core{};

  void validate(const SaeParameters<float>&) const {}
  bool rescales_on_decode() const { return false; }
  void encode(const SaeParameters<float>& p, const Matrix<float>& xc, const Matrix<float>& z) {
    gemm(Op::N, Op::N, 1.0f, xc, p.w_enc, 0.0f, z);
    kernels::relu_gate(z, p.b_enc, p.b_enc, false);
  }
  void write_config(io::Json&) const {}
  static ReluForm read_config(const io::Json&, std::size_t) { return {}; }
  void save_tensors(const SaeParameters<float>& p, io::SafetensorsFile& w) const { save_core_tensors(p, w, core); }
  void load_tensors(const TensorSource&, SaeParameters<float>&) {}
};

}  // namespace synthsae::inference
