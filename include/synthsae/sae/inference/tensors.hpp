#pragma once
// Copies between an SAE's device tensors and a safetensors container, for the inference forms'
// save and load. Loading checks each tensor's shape against what cfg.json implies.
#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/io/safetensors.hpp"
#include "synthsae/sae/parameters.hpp"

namespace synthsae::inference {

/// The float32 tensor of a device view (any rank; `shape` says how to read it).
template <class V>
io::Tensor to_tensor(const V& v, std::vector<std::int64_t> shape) {
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
  return io::make_tensor<float>(io::Dtype::F32, std::move(shape), std::span<const float>(h.data(), h.size()));
}

/// The tensors of one safetensors file, read into device views with their shapes checked.
struct TensorSource {
  const io::SafetensorsFile& file;
  std::string source;  ///< the file's path, for messages

  std::vector<float> values(const char* name, const std::vector<std::int64_t>& shape) const {
    const io::Tensor& t = file.at(name, source);
    if (t.shape != shape) {
      throw FormatError(source, std::string("tensor '") + name + "' has shape " + io::detail::shape_text(t.shape) +
                                    ", cfg.json implies " + io::detail::shape_text(shape));
    }
    return io::tensor_values<float>(t, source);
  }

  template <class V>
  void fill(const char* name, const V& v, const std::vector<std::int64_t>& shape) const {
    const auto vals = values(name, shape);
    auto h = Kokkos::create_mirror_view(v);
    std::copy(vals.begin(), vals.end(), h.data());
    Kokkos::deep_copy(v, h);
  }
};

/// Which of the common tensors a form keeps: W_enc (not when tied) and b_enc (not when the form
/// has its own biases); W_dec and b_dec always.
struct CoreTensors {
  bool encoder = true;
  bool encoder_bias = true;
};

inline void save_core_tensors(const SaeParameters<float>& p, io::SafetensorsFile& w, CoreTensors which) {
  const auto d = static_cast<std::int64_t>(p.input_dim()), s = static_cast<std::int64_t>(p.num_latents());
  if (which.encoder) w.tensors["W_enc"] = to_tensor(p.w_enc, {d, s});
  w.tensors["W_dec"] = to_tensor(p.w_dec, {s, d});
  if (which.encoder && which.encoder_bias) w.tensors["b_enc"] = to_tensor(p.b_enc, {s});
  w.tensors["b_dec"] = to_tensor(p.b_dec, {d});
}

inline SaeParameters<float> load_core_tensors(const TensorSource& src, std::size_t d, std::size_t s,
                                              CoreTensors which) {
  const auto di = static_cast<std::int64_t>(d), si = static_cast<std::int64_t>(s);
  SaeParameters<float> p;
  p.w_enc = Matrix<float>("W_enc", which.encoder ? d : 0, which.encoder ? s : 0);
  p.w_dec = Matrix<float>("W_dec", s, d);
  p.b_enc = Vector<float>("b_enc", which.encoder && which.encoder_bias ? s : 0);
  p.b_dec = Vector<float>("b_dec", d);
  if (which.encoder) src.fill("W_enc", p.w_enc, {di, si});
  src.fill("W_dec", p.w_dec, {si, di});
  if (which.encoder && which.encoder_bias) src.fill("b_enc", p.b_enc, {si});
  src.fill("b_dec", p.b_dec, {di});
  return p;
}

}  // namespace synthsae::inference
