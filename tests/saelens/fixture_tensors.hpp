#pragma once
// Reading SAELens fixture tensors (flat lists in torch's row-major order) into views and comparing
// views with them: shared by the tests that check our weights, losses and gradients against
// SAELens's own (tests/data/saelens, scripts/saelens_fixtures.py).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/io/json.hpp"

namespace synthsae::test {

inline const std::filesystem::path kSaelensData =
    std::filesystem::path(SYNTHSAE_SOURCE_DIR) / "tests" / "data" / "saelens";

/// Copies a fixture's flat tensor into a view of the same size.
template <class View>
void load_tensor(const io::Json& tensors, const std::string& name, const View& view) {
  const auto values = tensors.at(name).get<std::vector<double>>();
  REQUIRE(values.size() == view.size());
  auto h = Kokkos::create_mirror_view(view);
  for (std::size_t i = 0; i < values.size(); ++i) h.data()[i] = static_cast<typename View::value_type>(values[i]);
  Kokkos::deep_copy(view, h);
}

/// max_i |ours_i - theirs_i| / (1 + |theirs_i|) over a tensor.
template <class View>
double worst_error(const io::Json& tensors, const std::string& name, const View& view) {
  const auto values = tensors.at(name).get<std::vector<double>>();
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), view);
  REQUIRE(values.size() == h.size());
  double worst = 0;
  for (std::size_t i = 0; i < values.size(); ++i)
    worst = std::max(worst, std::fabs(double(h.data()[i]) - values[i]) / (1 + std::fabs(values[i])));
  return worst;
}

/// A fixture's batch (a list of rows) as a float matrix.
inline Matrix<float> fixture_rows(const io::Json& rows_json) {
  const auto rows = rows_json.get<std::vector<std::vector<double>>>();
  Matrix<float> x("fixture_x", rows.size(), rows.at(0).size());
  auto h = Kokkos::create_mirror_view(x);
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t k = 0; k < rows[i].size(); ++k) h(i, k) = static_cast<float>(rows[i][k]);
  Kokkos::deep_copy(x, h);
  return x;
}

}  // namespace synthsae::test
