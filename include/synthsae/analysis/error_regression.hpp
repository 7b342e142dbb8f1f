#pragma once
// B*: an SAE's error SaeError = x - Sae(x) regressed on x (the paper's LinearError fit, Eq. 11),
// over a source's rows in chunks, or over the train side of a RowSplit. Shared by the SAEs trained
// on error components and the downstream analysis.
#include <cstdint>
#include <functional>
#include <string>

#include "synthsae/analysis/activation_source.hpp"
#include "synthsae/analysis/chunk_reconstruction.hpp"
#include "synthsae/analysis/linear_probe.hpp"
#include "synthsae/analysis/row_split.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"

namespace synthsae::analysis {

/// What every analysis that fits on a seeded train split and scores on the rest takes.
struct RegressionPassOptions {
  std::uint64_t train_rows = 0;  ///< 0: 60 % of the rows
  std::uint64_t split_seed = 0;
  std::size_t chunk_rows = 4096;
  ProbeOptions probe;
  /// Called as (pass, rows done, rows).
  std::function<void(const std::string&, std::uint64_t, std::uint64_t)> progress;
  void validate() const {
    probe.validate();
    if (chunk_rows == 0) throw ConfigError("chunk_rows", "0", "must be at least 1");
  }
};

/// Fits SaeError on x over rows [0, rows) of `source` (every row when rows = 0), only the train
/// rows of `split` when it is given (a split over at least those rows).
inline ProbeFit fit_error_regression(ActivationSource& source, const ChunkReconstruction& reconstruct,
                                     const ProbeOptions& probe = {}, std::size_t chunk_rows = 4096,
                                     std::uint64_t rows = 0, const RowSplit* split = nullptr) {
  const std::size_t d = source.dim();
  const std::uint64_t n = rows ? std::min(rows, source.rows()) : source.rows();
  const std::uint64_t fit_rows = split ? split->train_rows() : n;
  if (fit_rows <= d + 1)
    throw ConfigError("fit rows", show(fit_rows),
                      "the error regression on " + show(d) + " inputs needs more than " + show(d + 1) + " rows");
  if (split && split->rows() < n) throw ShapeError("fit_error_regression: a split over fewer rows than are read");
  LinearProbe fit(d, d, probe);
  ActivationChunk c;
  Matrix<float> err;
  std::vector<std::int32_t> train;
  for (std::uint64_t first = 0; first < n; first += chunk_rows) {
    const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_rows, n - first));
    source.read(first, count, c);
    if (err.extent(0) != count) err = Matrix<float>("error_fit_e", count, d);
    reconstruct(c, err);
    const auto x = c.x, e = err;
    for_each_entry(
        "synthsae::error_fit_target", count, d, KOKKOS_LAMBDA(int i, int k) { e(i, k) = x(i, k) - e(i, k); });
    if (!split) {
      fit.add(c.x, err);
      continue;
    }
    train.clear();
    for (std::size_t i = 0; i < count; ++i)
      if (split->is_train(first + i)) train.push_back(std::int32_t(i));
    if (!train.empty()) fit.add(c.x, err, device_rows(train));
  }
  return fit.solve();
}

/// The same for a trained SAE, over every row of `source`.
inline ProbeFit fit_error_regression(ActivationSource& source, InferenceSae& base, const ProbeOptions& probe = {},
                                     std::size_t chunk_rows = 4096) {
  if (base.input_dim() != source.dim())
    throw ShapeError("the base SAE reads " + show(base.input_dim()) + " dimensions, the activations have " +
                     show(source.dim()));
  return fit_error_regression(source, sae_reconstruction(std::make_shared<InferenceSae>(base)), probe, chunk_rows);
}

}  // namespace synthsae::analysis
