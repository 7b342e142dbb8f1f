#pragma once
// A seeded random train/test split of rows [0, n) with exactly n_train train rows (the paper:
// a random 150k of its ≈247k tokens). Each row gets a 64-bit Philox key; the train rows are
// the n_train smallest keys. Only the threshold key is kept, so a row's side is a pure
// function of (seed, row) and costs no memory per row after construction.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"

namespace synthsae::analysis {

class RowSplit {
 public:
  RowSplit() = default;
  RowSplit(std::uint64_t rows, std::uint64_t train_rows, std::uint64_t seed) : n_(rows), n_train_(train_rows), seed_(seed) {
    if (rows < 2) throw ConfigError("rows", show(rows), "a train/test split needs at least 2 rows");
    if (train_rows < 1 || train_rows >= rows)
      throw ConfigError("train_rows", show(train_rows), "must be in [1, " + show(rows - 1) + "] for " + show(rows) + " rows");
    std::vector<std::uint64_t> keys(rows);
    for (std::uint64_t i = 0; i < rows; ++i) keys[i] = key(i);
    std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(train_rows - 1), keys.end());
    threshold_ = keys[train_rows - 1];
    // Keys are distinct with probability 1 - n²/2⁶⁵; count instead of assuming it.
    std::uint64_t train = 0;
    for (std::uint64_t i = 0; i < rows; ++i) train += key(i) <= threshold_;
    n_train_ = train;
  }

  std::uint64_t rows() const { return n_; }
  std::uint64_t train_rows() const { return n_train_; }
  std::uint64_t test_rows() const { return n_ - n_train_; }
  std::uint64_t seed() const { return seed_; }
  bool is_train(std::uint64_t row) const { return key(row) <= threshold_; }

 private:
  std::uint64_t key(std::uint64_t row) const {
    const auto b = philox_block(seed_, 0x5350'4c49'5400ull /* "SPLIT" */, row);
    return (std::uint64_t(b[1]) << 32) | b[0];
  }
  std::uint64_t n_ = 0, n_train_ = 0, seed_ = 0, threshold_ = 0;
};

}  // namespace synthsae::analysis
