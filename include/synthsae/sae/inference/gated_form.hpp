#pragma once
// SAELens "gated": with H = xc W_enc, z = ReLU(H exp(r_mag) + b_mag) [H + b_gate > 0]; tensors
// b_gate, r_mag, b_mag [S] (kept in params.extra), no b_enc. Saved as trained (no folding).
#include <string_view>

#include "synthsae/core/gemm.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/sae/inference/encoder_kernels.hpp"
#include "synthsae/sae/inference/tensors.hpp"

namespace synthsae::inference {

struct GatedForm {
  static constexpr std::string_view saelens_name = "gated";
  static constexpr CoreTensors core{.encoder = true, .encoder_bias = false};
  static constexpr const char* kVectors[] = {"b_gate", "r_mag", "b_mag"};

  void validate(const SaeParameters<float>& p) const {
    for (const char* name : kVectors) {
      const auto it = p.extra.find(name);
      if (it == p.extra.end() || it->second.extent(0) != p.num_latents()) {
        throw ShapeError(std::string("gated SAE needs ") + name + " with d_sae = " + show(p.num_latents()) +
                         " entries");
      }
    }
  }
  bool rescales_on_decode() const { return false; }
  void encode(const SaeParameters<float>& p, const Matrix<float>& xc, const Matrix<float>& z) {
    gemm(Op::N, Op::N, 1.0f, xc, p.w_enc, 0.0f, z);
    const auto zz = z;
    const auto b_gate = p.extra.at("b_gate"), r_mag = p.extra.at("r_mag"), b_mag = p.extra.at("b_mag");
    for_each_entry(
        "synthsae::inference_gated", z.extent(0), z.extent(1), KOKKOS_LAMBDA(int i, int j) {
          const float h = zz(i, j);
          const float m = h * kmath::exp(r_mag(j)) + b_mag(j);
          zz(i, j) = (h + b_gate(j) > 0.0f && m > 0.0f) ? m : 0.0f;
        });
  }
  void write_config(io::Json&) const {}
  static GatedForm read_config(const io::Json&, std::size_t) { return {}; }
  void save_tensors(const SaeParameters<float>& p, io::SafetensorsFile& w) const {
    save_core_tensors(p, w, core);
    for (const char* name : kVectors)
      w.tensors[name] = to_tensor(p.extra.at(name), {static_cast<std::int64_t>(p.num_latents())});
  }
  void load_tensors(const TensorSource& src, SaeParameters<float>& p) {
    for (const char* name : kVectors) {
      p.extra[name] = Vector<float>(std::string(name), p.num_latents());
      src.fill(name, p.extra[name], {static_cast<std::int64_t>(p.num_latents())});
    }
  }
};

}  // namespace synthsae::inference
