#pragma once
// A device float matrix as a host Eigen matrix in double: for the small host-side analyses
// (tegum geometry, downstream losses) that work in Eigen.
#include <Eigen/Core>

#include "synthsae/core/backend.hpp"

namespace synthsae {

inline Eigen::MatrixXd host_eigen(const Matrix<float>& m) {
  const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), m);
  Eigen::MatrixXd e(h.extent(0), h.extent(1));
  for (std::size_t i = 0; i < h.extent(0); ++i)
    for (std::size_t k = 0; k < h.extent(1); ++k) e(i, k) = h(i, k);
  return e;
}

}  // namespace synthsae
