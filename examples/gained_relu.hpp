#pragma once
// A researcher's own activation, written against the ActivationPolicy concept
// (synthsae/sae/concepts.hpp; docs/policies.md#write-your-own-activation):
//   c_bj = ReLU(h_bj) * exp(g_j)
// with a learned per-latent log-gain g ("log_gain", initialised to 0). Its hand-written
// backward: dh = dc exp(g) [h > 0];  dg_j = sum_b dc_bj ReLU(h_bj) exp(g_j).
// tests/sae/test_custom_activation.cpp checks both against finite differences.
#include <string_view>

#include <synthsae/sae/kernels/step_buffers.hpp>
#include <synthsae/sae/parameters.hpp>

namespace example {

using namespace synthsae;

struct GainedRelu {
  static constexpr std::string_view name = "gained_relu";

  template <class T>
  struct State {};  // no run state (a State with persistent members lists them in persist())

  bool rescales_by_decoder_norm() const { return false; }
  void validate(std::size_t /*d_in*/, std::size_t /*d_sae*/) const {}

  /// Adds the activation's own parameter; the optimiser and checkpoints pick it up by name.
  template <class T>
  void add_parameters(SaeParameters<T>& p) const {
    p.extra["log_gain"] = Vector<T>("log_gain", p.num_latents());
  }

  /// key (what AuxK ranks) = h;  c = ReLU(h) exp(g).
  template <class T>
  void forward(StepBuffers<T>& b, const SaeParameters<T>& p, State<T>&, bool /*training*/) const {
    const auto h = b.h, c = b.c, key = b.key;
    const auto g = p.extra.at("log_gain");
    const int s = static_cast<int>(h.extent(1));
    Kokkos::parallel_for(
        "example::gained_relu", Kokkos::RangePolicy<ExecSpace>(0, h.extent(0)), KOKKOS_LAMBDA(int i) {
          for (int j = 0; j < s; ++j) {
            key(i, j) = h(i, j);
            c(i, j) = h(i, j) > T(0) ? h(i, j) * kmath::exp(g(j)) : T(0);
          }
        });
  }

  /// One thread per latent: the dh column and the summed log-gain gradient (no atomics).
  template <class T>
  void backward(StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& grads, State<T>&) const {
    const auto h = b.h, dc = b.dc, dh = b.dh;
    const auto g = p.extra.at("log_gain"), dg = grads.extra.at("log_gain");
    const int rows = static_cast<int>(h.extent(0));
    Kokkos::parallel_for(
        "example::gained_relu_backward", Kokkos::RangePolicy<ExecSpace>(0, h.extent(1)), KOKKOS_LAMBDA(int j) {
          const T gain = kmath::exp(g(j));
          T sum = 0;
          for (int i = 0; i < rows; ++i) {
            const bool on = h(i, j) > T(0);
            dh(i, j) = on ? dc(i, j) * gain : T(0);
            sum += on ? dc(i, j) * h(i, j) * gain : T(0);
          }
          dg(j) += sum;
        });
  }
};

}  // namespace example
