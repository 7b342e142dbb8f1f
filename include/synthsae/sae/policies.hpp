#pragma once
// Every policy the library ships, one header each under policies/ (docs/policies.md):
//   activations  Relu, JumpRelu, TopK, BatchTopK
//   penalties    NoPenalty, L1Penalty, L0StepPenalty, L0TanhPenalty
//   aux losses   NoAux, AuxK, MatryoshkaAuxK, JumpReluPreActivation
//   nestings     NoNesting, Matryoshka
// A researcher's own policy is one more header that satisfies the slot's concept (concepts.hpp).
#include "synthsae/sae/policies/activation_batchtopk.hpp"
#include "synthsae/sae/policies/activation_jumprelu.hpp"
#include "synthsae/sae/policies/activation_relu.hpp"
#include "synthsae/sae/policies/activation_topk.hpp"
#include "synthsae/sae/policies/aux_k.hpp"
#include "synthsae/sae/policies/aux_matryoshka.hpp"
#include "synthsae/sae/policies/aux_none.hpp"
#include "synthsae/sae/policies/aux_pre_activation.hpp"
#include "synthsae/sae/policies/nesting_matryoshka.hpp"
#include "synthsae/sae/policies/nesting_none.hpp"
#include "synthsae/sae/policies/penalty_l0_step.hpp"
#include "synthsae/sae/policies/penalty_l0_tanh.hpp"
#include "synthsae/sae/policies/penalty_l1.hpp"
#include "synthsae/sae/policies/penalty_none.hpp"
