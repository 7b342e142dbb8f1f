#pragma once
// SAELens "matching_pursuit": tied (only W_dec and b_dec); the encoder is the greedy pursuit of
// matching_pursuit_sae.hpp. cfg: residual_threshold, max_iterations (null means d_in),
// stop_on_duplicate_support. The pursuit's buffers persist between calls.
#include <cstdint>
#include <string_view>

#include "synthsae/io/json.hpp"
#include "synthsae/sae/inference/tensors.hpp"
#include "synthsae/sae/matching_pursuit_sae.hpp"

namespace synthsae::inference {

struct MatchingPursuitForm {
  static constexpr std::string_view saelens_name = "matching_pursuit";
  static constexpr CoreTensors core{.encoder = false, .encoder_bias = false};
  MatchingPursuit pursuit;

  void validate(const SaeParameters<float>&) const { pursuit.validate(); }
  bool rescales_on_decode() const { return false; }
  /// Tied: SAELens adds b_dec on decode only when it subtracts it on encode.
  static constexpr bool b_dec_tied_to_input = true;
  void encode(const SaeParameters<float>& p, const Matrix<float>& xc, const Matrix<float>& z) {
    const std::size_t rows = xc.extent(0), s = p.num_latents();
    const auto iters = static_cast<std::size_t>(pursuit.max_iterations);
    if (scores_.extent(0) != rows || scores_.extent(1) != s || val_.extent(1) != iters) {
      scores_ = Matrix<float>("mp_scores", rows, s);
      val_ = Matrix<float>("mp_val", rows, iters);
      sel_ = decltype(sel_)("mp_sel", rows, iters);
    }
    if (gram_.extent(0) != s) gram_ = Matrix<float>("mp_gram", s, s);
    detail::matching_pursuit_encode(pursuit, xc, p.w_dec, scores_, gram_, sel_, val_, z);
  }
  void write_config(io::Json& cfg) const {
    cfg["residual_threshold"] = pursuit.residual_threshold;
    cfg["max_iterations"] = pursuit.max_iterations;
    cfg["stop_on_duplicate_support"] = pursuit.stop_on_duplicate_support;
  }
  static MatchingPursuitForm read_config(const io::Json& cfg, std::size_t d_in) {
    MatchingPursuitForm f;
    const auto iters = cfg.find("max_iterations");
    f.pursuit.max_iterations =
        (iters == cfg.end() || iters->is_null()) ? 0 : io::json_field<int>(cfg, "max_iterations", "");
    f.pursuit.residual_threshold = io::json_field_or<double>(cfg, "residual_threshold", "", 1e-2);
    f.pursuit.stop_on_duplicate_support = io::json_field_or<bool>(cfg, "stop_on_duplicate_support", "", true);
    if (f.pursuit.max_iterations == 0) f.pursuit.max_iterations = static_cast<int>(d_in);  // SAELens: null means d_in
    return f;
  }
  void save_tensors(const SaeParameters<float>& p, io::SafetensorsFile& w) const { save_core_tensors(p, w, core); }
  void load_tensors(const TensorSource&, SaeParameters<float>&) {}

 private:
  Matrix<float> scores_, gram_, val_;
  Kokkos::View<std::int32_t**, Kokkos::LayoutRight, MemSpace> sel_;
};

}  // namespace synthsae::inference
