#pragma once
// Where the dark-matter analyses get their rows (reference dark-matter.md §1.4): a synthetic
// world (rows with their sparse ground truth) or a user's activation files (.npy or raw
// float32, memory-mapped), optionally with precomputed SAE outputs or errors and a token-position
// filter. A source is read in chunks, any number of times, and gives the same rows each time.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/row_loops.hpp"
#include "synthsae/io/npy.hpp"
#include "synthsae/world/synthetic_model.hpp"

namespace synthsae::analysis {

/// Rows [first, first + x.extent(0)) of a source.
struct ActivationChunk {
  std::uint64_t first = 0;
  Matrix<float> x;                          ///< [n, d] in device memory
  std::optional<SparseBatch<float>> truth;  ///< the world's sparse coefficients (synthetic sources)
  Matrix<float> dense;                      ///< [n, d] the world's dense part (empty when it has none)
  std::vector<Matrix<float>> provided;      ///< [n, d] precomputed SAE outputs (file sources)
  std::size_t rows() const { return x.extent(0); }
};

class ActivationSource {
 public:
  virtual ~ActivationSource() = default;
  virtual std::uint64_t rows() const = 0;
  virtual std::size_t dim() const = 0;
  /// Precomputed reconstructions each chunk carries (chunk.provided).
  virtual std::size_t provided_reconstructions() const { return 0; }
  /// The true feature directions [N, d] when the chunks carry ground truth (chunk.truth), else null.
  virtual const Matrix<float>* true_features() const { return nullptr; }
  /// Whether chunks carry the world's dense part (chunk.dense).
  virtual bool has_dense() const { return false; }
  /// The world's bias b [d] (x = Σ c_i d_i + b) when there is ground truth; null means b = 0.
  virtual const Vector<float>* true_bias() const { return nullptr; }
  virtual void read(std::uint64_t first, std::size_t count, ActivationChunk& out) = 0;
  /// One line for the report and the progress display.
  virtual std::string describe() const = 0;
};

/// Samples [first_sample, first_sample + rows) of a world's stream (the default region is one
/// neither training, which starts at 0, nor evaluate(), which starts at 2^62, reaches). Chunks
/// are kept in memory up to `cache_bytes`, so the analysis's later passes do not redraw them.
class SyntheticSource final : public ActivationSource {
 public:
  static constexpr std::uint64_t kDefaultFirstSample = (std::uint64_t(1) << 62) + (std::uint64_t(1) << 61);

  SyntheticSource(SyntheticModel& world, std::uint64_t rows, std::uint64_t first_sample = kDefaultFirstSample,
                  std::size_t cache_bytes = std::size_t(2) << 30)
      : world_(world), rows_(rows), first_(first_sample), cache_limit_(cache_bytes) {
    if (rows == 0) throw ConfigError("samples", "0", "must be at least 1");
  }
  std::uint64_t rows() const override { return rows_; }
  std::size_t dim() const override { return world_.hidden_dim(); }
  const Matrix<float>* true_features() const override { return &world_.feature_vectors(); }
  const Vector<float>* true_bias() const override { return &world_.bias(); }
  bool has_dense() const override { return world_.has_dense(); }
  std::string describe() const override {
    return "synthetic world (" + show(world_.num_features()) + " features in " + show(world_.hidden_dim()) +
           " dimensions, seed " + show(world_.seed()) + "), samples from " + show(first_) + " of stream " +
           show(world_.sampling_seed());
  }
  void read(std::uint64_t first, std::size_t count, ActivationChunk& out) override {
    if (first + count > rows_) throw ShapeError("SyntheticSource: rows past " + show(rows_));
    if (const auto it = cache_.find(first); it != cache_.end() && it->second.rows() == count) {
      out = it->second;
      return;
    }
    ActivationChunk c;
    c.first = first;
    c.truth.emplace();
    world_.sample_features_at(*c.truth, first_ + first, count);
    c.x = Matrix<float>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "source_x"), count, dim());
    world_.hidden_at(*c.truth, first_ + first, c.x, &c.dense);
    const std::size_t bytes = count * (dim() * 4 * (c.dense.extent(0) ? 2 : 1) + c.truth->capacity() * 8);
    if (cached_bytes_ + bytes <= cache_limit_) cache_[first] = c, cached_bytes_ += bytes;
    out = c;
  }

 private:
  SyntheticModel& world_;
  std::uint64_t rows_, first_;
  std::size_t cache_limit_, cached_bytes_ = 0;
  std::map<std::uint64_t, ActivationChunk> cache_;
};

/// A user's activations: rows of an .npy file (`<f4` or `<f2`, C order) or a raw float32 file
/// of a given width, memory-mapped; optionally SAE outputs (or errors, x - x_hat) of the same
/// shape, and token positions for the paper's filter (keep positions ≥ min_position).
struct FileSourceOptions {
  std::filesystem::path activations;
  std::size_t raw_width = 0;  ///< > 0: `activations` is raw little-endian float32 of this width
  std::vector<std::filesystem::path> sae_outputs, sae_errors;
  std::optional<std::filesystem::path> positions;  ///< integer .npy, one per row
  std::optional<std::uint64_t> context_length;     ///< instead: position = row % context_length
  std::int64_t min_position = 0;
};

class FileSource final : public ActivationSource {
 public:
  explicit FileSource(const FileSourceOptions& o)
      : opt_(o),
        acts_(o.raw_width ? io::NpyArray::open_raw_f32(o.activations, o.raw_width) : io::NpyArray::open(o.activations)) {
    if (acts_.rows() == 0 || acts_.row_width() == 0)
      throw FormatError(o.activations.string(), "no activations (shape has a zero dimension)");
    auto open_like = [&](const std::filesystem::path& p) {
      auto a = io::NpyArray::open(p);
      if (a.rows() != acts_.rows() || a.row_width() != acts_.row_width())
        throw FormatError(p.string(), "has " + show(a.rows()) + " rows of width " + show(a.row_width()) +
                                          "; the activations have " + show(acts_.rows()) + " of width " +
                                          show(acts_.row_width()));
      return a;
    };
    for (const auto& p : o.sae_outputs) extra_.push_back({open_like(p), false});
    for (const auto& p : o.sae_errors) extra_.push_back({open_like(p), true});
    if (o.positions && o.context_length)
      throw ConfigError("positions", o.positions->string(), "give a positions file or a context length, not both");
    if (o.context_length && *o.context_length == 0) throw ConfigError("context_length", "0", "must be at least 1");
    const bool filter = (o.positions || o.context_length) && o.min_position > 0;
    if (o.min_position > 0 && !filter)
      throw ConfigError("min_position", show(o.min_position), "needs token positions (a positions file or a context length)");
    if (filter) {
      std::vector<std::int64_t> pos(acts_.rows());
      if (o.positions) {
        const auto pa = io::NpyArray::open(*o.positions);
        if (pa.rows() != acts_.rows() || pa.row_width() != 1)
          throw FormatError(o.positions->string(), "has " + show(pa.rows()) + " x " + show(pa.row_width()) +
                                                       " entries; expected one position per activation row (" +
                                                       show(acts_.rows()) + ")");
        pa.read_rows_i64(0, pa.rows(), pos.data());
      } else {
        for (std::uint64_t i = 0; i < acts_.rows(); ++i) pos[i] = static_cast<std::int64_t>(i % *o.context_length);
      }
      for (std::uint64_t i = 0; i < acts_.rows(); ++i)
        if (pos[i] >= o.min_position) kept_.push_back(i);
      if (kept_.empty())
        throw ConfigError("min_position", show(o.min_position), "keeps no row of " + o.activations.string());
    }
  }
  std::uint64_t rows() const override { return kept_.empty() ? acts_.rows() : kept_.size(); }
  std::size_t dim() const override { return acts_.row_width(); }
  std::size_t provided_reconstructions() const override { return extra_.size(); }
  std::string describe() const override {
    return opt_.activations.string() + " (" + show(acts_.rows()) + " rows of width " + show(dim()) + ", " +
           show(rows()) + " kept)";
  }
  void read(std::uint64_t first, std::size_t count, ActivationChunk& out) override {
    if (first + count > rows()) throw ShapeError("FileSource: rows past " + show(rows()));
    out.first = first;
    out.truth.reset();
    out.dense = Matrix<float>();
    out.x = load(acts_, first, count);
    out.provided.clear();
    for (const auto& e : extra_) {
      Matrix<float> m = load(e.array, first, count);
      if (e.is_error) {  // x_hat = x - error
        const auto xx = out.x;
        for_each_entry(
            "synthsae::source_error_to_output", count, dim(), KOKKOS_LAMBDA(int i, int j) { m(i, j) = xx(i, j) - m(i, j); });
      }
      out.provided.push_back(m);
    }
  }

 private:
  Matrix<float> load(const io::NpyArray& a, std::uint64_t first, std::size_t count) const {
    Matrix<float> dev(Kokkos::view_alloc(Kokkos::WithoutInitializing, "source_rows"), count, dim());
    auto host = Kokkos::create_mirror_view(dev);
    if (kept_.empty()) {
      a.read_rows_f32(first, count, host.data());
    } else {
      for (std::size_t i = 0; i < count; ++i) a.read_rows_f32(kept_[first + i], 1, host.data() + i * dim());
    }
    Kokkos::deep_copy(dev, host);
    return dev;
  }
  struct Extra {
    io::NpyArray array;
    bool is_error;
  };
  FileSourceOptions opt_;
  io::NpyArray acts_;
  std::vector<Extra> extra_;
  std::vector<std::uint64_t> kept_;
};

}  // namespace synthsae::analysis
