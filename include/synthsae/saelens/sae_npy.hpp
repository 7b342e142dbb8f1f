#pragma once
// An SAE given as .npy files with SAELens's (and Gemma Scope's) tensor names: W_enc [d, m],
// b_enc [m], W_dec [m, d], b_dec [d], and threshold [m] for JumpReLU or a scalar k for TopK
// (k.npy); neither makes it a ReLU ("standard") SAE. For a user's own dumps next to their
// activations (reference dark-matter.md §1.4).
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "synthsae/io/npy.hpp"
#include "synthsae/sae/inference_sae.hpp"

namespace synthsae::saelens {

namespace detail {

inline std::vector<float> read_npy_values(const std::filesystem::path& p, std::vector<std::uint64_t> shape) {
  const auto a = io::NpyArray::open(p);
  const auto& got = a.header().shape;
  const bool scalar_ok = shape.empty() && a.rows() == 1 && a.row_width() == 1;
  if (!scalar_ok && got != shape) {
    auto text = [](const std::vector<std::uint64_t>& s) {
      std::string t = "[";
      for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
      return t + "]";
    };
    throw FormatError(p.string(), "has shape " + text(got) + ", expected " + text(shape));
  }
  std::vector<float> v(a.rows() * a.row_width());
  if (!v.empty()) a.read_rows_f32(0, a.rows(), v.data());
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) throw FormatError(p.string(), "entry " + show(i) + " is not finite");
  return v;
}

template <class View>
void fill(const View& dst, const std::vector<float>& v) {
  auto h = Kokkos::create_mirror_view(dst);
  std::copy(v.begin(), v.end(), h.data());
  Kokkos::deep_copy(dst, h);
}

}  // namespace detail

inline InferenceSae load_sae_npy(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw IoError(dir.string(), "is not a directory");
  const auto w_enc = io::NpyArray::open(dir / "W_enc.npy");
  if (w_enc.header().shape.size() != 2) throw FormatError((dir / "W_enc.npy").string(), "must be a matrix [d_in, d_sae]");
  const std::size_t d = w_enc.header().shape[0], m = w_enc.header().shape[1];
  if (d == 0 || m == 0) throw FormatError((dir / "W_enc.npy").string(), "has a zero dimension");
  InferenceSae sae;
  sae.params.w_enc = Matrix<float>("w_enc", d, m);
  sae.params.b_enc = Vector<float>("b_enc", m);
  sae.params.w_dec = Matrix<float>("w_dec", m, d);
  sae.params.b_dec = Vector<float>("b_dec", d);
  detail::fill(sae.params.w_enc, detail::read_npy_values(dir / "W_enc.npy", {d, m}));
  detail::fill(sae.params.b_enc, detail::read_npy_values(dir / "b_enc.npy", {m}));
  detail::fill(sae.params.w_dec, detail::read_npy_values(dir / "W_dec.npy", {m, d}));
  detail::fill(sae.params.b_dec, detail::read_npy_values(dir / "b_dec.npy", {d}));
  const bool has_threshold = std::filesystem::exists(dir / "threshold.npy");
  const bool has_k = std::filesystem::exists(dir / "k.npy");
  if (has_threshold && has_k) throw FormatError(dir.string(), "has both threshold.npy (JumpReLU) and k.npy (TopK)");
  if (has_threshold) {
    inference::JumpReluForm f{Vector<float>("threshold", m)};
    detail::fill(f.threshold, detail::read_npy_values(dir / "threshold.npy", {m}));
    sae.form = f;
  } else if (has_k) {
    const auto a = io::NpyArray::open(dir / "k.npy");
    if (a.rows() * a.row_width() != 1) throw FormatError((dir / "k.npy").string(), "must hold one number");
    double k = 0;
    if (a.dtype() == io::NpyDtype::I32 || a.dtype() == io::NpyDtype::I64) {
      std::int64_t v = 0;
      a.read_rows_i64(0, 1, &v);
      k = double(v);
    } else {
      float v = 0;
      a.read_rows_f32(0, 1, &v);
      k = v;
    }
    if (!(k >= 1 && k <= double(m)) || k != std::floor(k))
      throw FormatError((dir / "k.npy").string(), "k = " + show(k) + " must be an integer in [1, " + show(m) + "]");
    inference::TopKForm f;
    f.k = static_cast<int>(k);
    sae.form = f;
  } else {
    sae.form = inference::ReluForm{};
  }
  sae.validate();
  return sae;
}

}  // namespace synthsae::saelens
