// Compositions that must not compile, one per SYNTHSAE_CASE (tests/CMakeLists.txt builds each as
// its own target and expects the rule's message); with no case defined the file compiles (the
// control: a failure is then the rule firing, not a broken header).
#include "synthsae/sae/sae.hpp"
#include "synthsae/train/trainer.hpp"

using namespace synthsae;

#if defined(SYNTHSAE_CASE_L0_STEP_WITHOUT_THRESHOLD)
void use() { Sae<Relu, L0StepPenalty> sae(4, 8); }  // L0StepPenalty needs JumpReLU's threshold
#elif defined(SYNTHSAE_CASE_PRE_ACTIVATION_WITHOUT_THRESHOLD)
void use() { Sae<TopK, NoPenalty, JumpReluPreActivation> sae(4, 8); }
#elif defined(SYNTHSAE_CASE_MATRYOSHKA_AUX_WITHOUT_NESTING)
void use() { Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, NoNesting> sae(4, 8); }
#elif defined(SYNTHSAE_CASE_ACTIVATION_WITHOUT_BACKWARD)
struct ForwardOnly {
  static constexpr std::string_view name = "forward_only";
  template <class T>
  struct State {};
  bool rescales_by_decoder_norm() const { return false; }
  void validate(std::size_t, std::size_t) const {}
  template <class T>
  void add_parameters(SaeParameters<T>&) const {}
  template <class T>
  void forward(StepBuffers<T>&, const SaeParameters<T>&, State<T>&, bool) const {}
};
void use() { Sae<ForwardOnly> sae(4, 8); }
#elif defined(SYNTHSAE_CASE_TRAINER_OF_NON_SAE)
struct NotAnSae {
  using Scalar = float;
};
void use(Trainer<NotAnSae>* trainer) { (void)trainer; }
#else
void use() { Sae<JumpRelu, L0StepPenalty, JumpReluPreActivation> sae(4, 8); }  // the control: a valid composition
#endif
