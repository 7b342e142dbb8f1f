// The run recipes' data stream: seed 0 reads the world's own stream, every other seed a stream of
// its own, so that runs with different --seed see different data (as SAELens's runs do).
#include <catch2/catch.hpp>

#include <cstdint>
#include <set>

#include "synthsae/train/run_recipes.hpp"

using synthsae::recipes::data_stream_seed;

TEST_CASE("data_stream_seed: seed 0 is the world's stream, other seeds distinct streams", "[recipes]") {
  for (const std::uint64_t world : {std::uint64_t{0}, std::uint64_t{42}, ~std::uint64_t{0}}) {
    CHECK(data_stream_seed(world, 0) == world);
    std::set<std::uint64_t> streams{world};
    for (std::uint64_t seed = 1; seed <= 10'000; ++seed) streams.insert(data_stream_seed(world, seed));
    CHECK(streams.size() == 10'001);  // no seed collides with another or with the world's own stream
  }
  // The same seed on another world is another stream (the world's stream is mixed in).
  CHECK(data_stream_seed(1, 7) != data_stream_seed(2, 7));
  // splitmix64's published sequence from state 0 (e220a8397b1dcdaf, 6e789e6aa1b965f4, ...): seed 1 on
  // world stream 0 is its second output.
  CHECK(data_stream_seed(0, 1) == 0x6E789E6AA1B965F4ull);
}
