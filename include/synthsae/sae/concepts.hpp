#pragma once
// Every concept of the sae/ folder, in one place (docs/policies.md says what each asks):
//   the four policy slots of Sae<Activation, Penalty, Aux, Nesting> — ActivationPolicy,
//   PenaltyPolicy, AuxLossPolicy, NestingPolicy — their sparse-step refinements, and
//   TrainableSae, the one contract the Trainer, evaluate() and the exporters require of an SAE
//   (Sae<...>, GatedSae, MatchingPursuitSae and any user SAE).
// A policy that misses a member fails with the concept's name; a composition whose policies do
// not fit each other fails with a static_assert in sae.hpp that names the rule.
#include <concepts>
#include <cstddef>
#include <string_view>

#include "synthsae/sae/kernels/active_set.hpp"
#include "synthsae/sae/kernels/step_buffers.hpp"
#include "synthsae/sae/parameters.hpp"
#include "synthsae/sae/run_state.hpp"
#include "synthsae/sae/step_interface.hpp"

namespace synthsae {

/// Activation slot: maps pre-activations h to decoder coefficients c (and SAELens's z).
template <class A, class T = float>
concept ActivationPolicy = requires(const A& a, StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g,
                                    typename A::template State<T>& st, std::size_t n) {
  { A::name } -> std::convertible_to<std::string_view>;
  { a.rescales_by_decoder_norm() } -> std::same_as<bool>;
  a.validate(n, n);
  a.add_parameters(g);
  a.forward(b, p, st, true);
  a.backward(b, p, g, st);
};

/// An active penalty holds its own `coefficient`, which the trainer only scales (PenaltyScale).
template <class P>
concept OwnsCoefficientIfActive = !P::active || requires(const P& pen) {
  { pen.coefficient } -> std::convertible_to<double>;
};

/// Penalty slot: a sparsity term on z with value and gradient.
template <class P, class T = float>
concept PenaltyPolicy = OwnsCoefficientIfActive<P> &&
    requires(const P& pen, const StepBuffers<T>& b, const Matrix<T>& m, const SaeParameters<T>& p, SaeParameters<T>& g,
             std::size_t n) {
  { P::active } -> std::convertible_to<bool>;
  pen.validate(n, n);
  { pen.forward(b, m, p, 1.0) } -> std::same_as<double>;
  pen.backward(b, m, m, p, g, 1.0);
};

/// Auxiliary-loss slot: adds a term (typically on dead latents) after the activation's backward.
template <class X, class T = float>
concept AuxLossPolicy = requires(const X& aux, StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g,
                                 typename X::template State<T>& st, const DeadMask& dead, std::size_t n) {
  aux.validate(n, n);
  { aux.accumulate(b, p, g, st, dead, std::size_t(0)) } -> std::same_as<double>;
};

/// Nesting slot: inner reconstructions (Matryoshka) added to the loss.
template <class N, class T = float>
concept NestingPolicy = requires(const N& n, StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g,
                                 typename N::template State<T>& st, std::size_t d) {
  n.validate(d, d);
  { n.accumulate(b, p, g, st) } -> std::same_as<double>;
};

/// An activation whose output has few nonzeros per row, with dLoss/dh = dLoss/dc on them and
/// zero elsewhere (TopK, BatchTopK): the SAE may then take the sparse step (kernels/active_set.hpp).
template <class A, class T = float>
concept SelectsActiveLatents = requires(const A& a, StepBuffers<T>& b, const SaeParameters<T>& p,
                                        typename A::template State<T>& st, ActiveSet<T>& active) {
  requires A::selects_active_latents;
  a.forward_active(b, p, st, true, active);
};

/// An activation that fires on a data-dependent number of latents (ReLU, JumpReLU): dense at
/// initialisation, a few dozen of thousands once trained. The SAE gathers the entries its step
/// needs and takes the sparse step when they are few (Sae::set_sparse_step_max_density);
/// backward_active turns dLoss/dc into dLoss/dh on them (and the activation's own gradients).
template <class A, class T = float>
concept GathersActiveLatents = requires(const A& a, const StepBuffers<T>& b, const SaeParameters<T>& p,
                                        SaeParameters<T>& g, ActiveSet<T>& active, std::size_t n) {
  { a.gather_active(b, p, active, n) } -> std::same_as<bool>;
  a.backward_active(b, p, g, active);
};

/// A penalty with a form on the active set (value, and its dLoss/dc added to grad), when
/// has_sparse_form() says so for its configuration. An inactive penalty has nothing to add.
template <class P, class T = float>
concept SparsePenaltyPolicy = !P::active || requires(const P& pen, const StepBuffers<T>& b, ActiveSet<T>& a,
                                                     const SaeParameters<T>& p, SaeParameters<T>& g) {
  { pen.has_sparse_form() } -> std::same_as<bool>;
  { pen.forward_active(b, a, p, 1.0) } -> std::same_as<double>;
  pen.backward_active(b, a, p, g, 1.0);
};

/// Nesting and auxiliary policies that can work on the active set instead of dense [B, S] arrays.
/// In the sparse steps b.c is never written and b.z only on request: a policy whose sparse hook
/// reads b.z declares `static constexpr bool sparse_step_reads_feature_acts = true` (Sae then
/// writes z before the hooks; MatryoshkaAuxK does this).
template <class N, class T = float>
concept SparseNestingPolicy = requires(const N& n, StepBuffers<T>& b, const ActiveSet<T>& a, const SaeParameters<T>& p,
                                       SaeParameters<T>& g, typename N::template State<T>& st) {
  { n.accumulate_sparse(b, a, p, g, st) } -> std::same_as<double>;
};
template <class X, class T = float>
concept SparseAuxLossPolicy = requires(const X& aux, StepBuffers<T>& b, const SaeParameters<T>& p, SaeParameters<T>& g,
                                       typename X::template State<T>& st, const DeadMask& dead) {
  { aux.accumulate_sparse(b, p, g, st, dead, std::size_t(0)) } -> std::same_as<double>;
};

/// What the Trainer, evaluate() and the exporters require of an SAE: shapes, parameters (which
/// the optimiser updates in place), one training step (loss + gradients), its last activations
/// (dead-latent tracking, L0), batch encode/decode, its penalty (for the coefficient schedule),
/// and its persistent run state (checkpoints; run_state.hpp).
template <class S>
concept TrainableSae = requires(S& sae, const S& csae, const Matrix<typename S::Scalar>& x,
                                SaeParameters<typename S::Scalar>& g, const DeadMask& dead, PenaltyScale scale,
                                const Matrix<typename S::Scalar>& z, PersistProbe& archive) {
  typename S::Scalar;
  typename S::penalty_type;
  { csae.input_dim() } -> std::convertible_to<std::size_t>;
  { csae.num_latents() } -> std::convertible_to<std::size_t>;
  { sae.parameters() } -> std::same_as<SaeParameters<typename S::Scalar>&>;
  { sae.forward_backward(x, g, dead, std::size_t(0), scale) } -> std::same_as<StepLosses>;
  { csae.last_activations() } -> std::convertible_to<const Matrix<typename S::Scalar>&>;
  { csae.penalty() } -> std::convertible_to<const typename S::penalty_type&>;
  sae.encode(x, z);
  sae.decode(z, z);
  sae.persist(archive);
  sae.fold_input_scale(1.0);
};

}  // namespace synthsae
