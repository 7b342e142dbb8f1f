#pragma once
// Batches of a world kept for reuse. SAEs trained on one stream side by side (synthsae bench
// trains every architecture of an L0 and seed on the same stream) then draw each batch once
// instead of once per SAE. A batch is kept under its sampling seed, first sample and size; the
// world's draws are a pure function of those (Philox streams), so a kept batch is the drawn
// batch, bit for bit.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <type_traits>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/core/host_copy.hpp"
#include "synthsae/world/activation_sampler.hpp"

namespace synthsae {

/// A batch of samples: sparse ground truth and the hidden vectors [B, D]; in a world with dense
/// components also their part of each sample (`dense`, [B, D]; empty otherwise).
struct SampleBatch {
  SparseBatch<float> features;
  Matrix<float> hidden;
  Matrix<float> dense;
};

/// to = from, element for element, reusing to's storage where its shapes match.
inline void copy_batch(const SampleBatch& from, SampleBatch& to) {
  auto match = [](auto& dst, const auto& src, const char* label) {
    using V = std::decay_t<decltype(dst)>;
    if (src.size() == 0) {
      dst = V();
      return;
    }
    // Ranks 1 and 2 only (extent(1) of a rank-1 View is 1).
    if (dst.extent(0) != src.extent(0) || dst.extent(1) != src.extent(1))
      dst = V(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), src.layout());
    copy_view(dst, src);
  };
  match(to.features.ids, from.features.ids, "feature_ids");
  match(to.features.values, from.features.values, "feature_values");
  match(to.features.counts, from.features.counts, "feature_counts");
  match(to.hidden, from.hidden, "hidden");
  match(to.dense, from.dense, "dense");
}

/// The last `capacity` batches kept (the oldest leaves first), with counts of the batches found
/// and not found.
class BatchCache {
 public:
  explicit BatchCache(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) throw ConfigError("batch cache capacity", "0", "must be at least 1");
  }

  /// Copies the batch kept for (seed, first, size) into `out`; false (and `out` untouched)
  /// when there is none.
  bool copy_into(std::uint64_t seed, std::uint64_t first, std::size_t size, SampleBatch& out) {
    const Entry* e = find(seed, first, size);
    if (!e) {
      ++misses_;
      return false;
    }
    copy_batch(e->batch, out);
    ++hits_;
    return true;
  }

  /// Keeps a copy of `batch`, the samples [first, first + B) of stream `seed`.
  void keep(std::uint64_t seed, std::uint64_t first, const SampleBatch& batch) {
    if (find(seed, first, batch.hidden.extent(0))) return;
    Entry entry;
    if (entries_.size() == capacity_) {  // the oldest leaves; its storage takes the new batch
      entry = std::move(entries_.front());
      entries_.pop_front();
    }
    entry.seed = seed;
    entry.first = first;
    copy_batch(batch, entry.batch);
    entries_.push_back(std::move(entry));
  }

  /// Keeps at most `capacity` batches from now on (the oldest leave first).
  void set_capacity(std::size_t capacity) {
    if (capacity == 0) throw ConfigError("batch cache capacity", "0", "must be at least 1");
    capacity_ = capacity;
    while (entries_.size() > capacity_) entries_.pop_front();
  }
  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return entries_.size(); }
  std::size_t hits() const { return hits_; }
  std::size_t misses() const { return misses_; }

  /// Bytes a copy of `b` takes (for choosing a capacity).
  static std::size_t bytes_of(const SampleBatch& b) {
    return b.features.ids.span() * sizeof(std::int32_t) + b.features.values.span() * sizeof(float) +
           b.features.counts.span() * sizeof(std::int32_t) + (b.hidden.span() + b.dense.span()) * sizeof(float);
  }

 private:
  struct Entry {
    std::uint64_t seed = 0, first = 0;
    SampleBatch batch;
  };
  const Entry* find(std::uint64_t seed, std::uint64_t first, std::size_t size) const {
    for (const Entry& e : entries_)
      if (e.seed == seed && e.first == first && e.batch.hidden.extent(0) == size) return &e;
    return nullptr;
  }
  std::size_t capacity_;
  std::deque<Entry> entries_;
  std::size_t hits_ = 0, misses_ = 0;
};

}  // namespace synthsae
