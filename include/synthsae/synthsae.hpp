#pragma once
// synthsae: SynthSAEBench in C++20 and Kokkos. The one header most users include.
#include "synthsae/core/backend.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/float16.hpp"
#include "synthsae/core/gemm.hpp"
#include "synthsae/core/kokkos_compat.hpp"
#include "synthsae/core/philox.hpp"
#include "synthsae/io/atomic_file.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/io/safetensors.hpp"
