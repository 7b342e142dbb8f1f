// BatchCache (world/batch_cache.hpp): a world that shares a cache gives the batches it would draw,
// bit for bit, whether a batch is drawn or taken from the cache; a batch is found only under its
// own stream, first sample and size; the oldest batch leaves first.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <vector>

#include "synthsae/world/synthetic_model.hpp"

using namespace synthsae;

namespace {

SyntheticModelConfig small_world(bool with_dense) {
  SyntheticModelConfig c;
  c.num_features = 64;
  c.hidden_dim = 32;
  c.firing_probability = Zipfian{0.5, 0.3, 0.02};
  c.mean_firing_magnitudes = ConstantMagnitude{1.0};
  c.std_firing_magnitudes = ConstantMagnitude{0.2};
  c.seed = 7;
  if (with_dense) {
    DenseComponentSpec d;
    d.kind = DenseComponentSpec::Kind::isotropic, d.variance_fraction = 0.2;
    c.dense_components = {d};
  }
  return c;
}

template <class V>
std::vector<unsigned char> bytes_of(const V& v) {
  const auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
  std::vector<unsigned char> out(h.span() * sizeof(typename V::value_type));
  if (!out.empty()) std::memcpy(out.data(), h.data(), out.size());
  return out;
}

/// Every array of the batch, bit for bit (ids and values only up to each row's count: the slots
/// past it are not part of the batch).
void require_same(const SampleBatch& a, const SampleBatch& b) {
  REQUIRE(a.features.counts.extent(0) == b.features.counts.extent(0));
  REQUIRE(bytes_of(a.features.counts) == bytes_of(b.features.counts));
  const auto ca = Kokkos::create_mirror_view_and_copy(HostSpace(), a.features.counts);
  const auto ia = Kokkos::create_mirror_view_and_copy(HostSpace(), a.features.ids);
  const auto ib = Kokkos::create_mirror_view_and_copy(HostSpace(), b.features.ids);
  const auto va = Kokkos::create_mirror_view_and_copy(HostSpace(), a.features.values);
  const auto vb = Kokkos::create_mirror_view_and_copy(HostSpace(), b.features.values);
  for (std::size_t i = 0; i < ca.extent(0); ++i)
    for (int j = 0; j < ca(i); ++j) {
      REQUIRE(ia(i, j) == ib(i, j));
      REQUIRE(std::memcmp(&va(i, j), &vb(i, j), sizeof(float)) == 0);
    }
  REQUIRE(bytes_of(a.hidden) == bytes_of(b.hidden));
  REQUIRE(a.dense.extent(0) == b.dense.extent(0));
  REQUIRE(bytes_of(a.dense) == bytes_of(b.dense));
}

}  // namespace

TEST_CASE("a shared batch cache gives the drawn batches bit for bit", "[world][batch_cache]") {
  for (const bool with_dense : {false, true}) {
    CAPTURE(with_dense);
    SyntheticModel plain(small_world(with_dense)), cached(small_world(with_dense));
    auto cache = std::make_shared<BatchCache>(4);
    cached.share_batches(cache);
    SampleBatch want, got;
    // Two readers of one stream in turns, as synthsae bench's runs: the first draws, the second
    // finds; then a batch of another size and one of another stream, which are drawn.
    for (std::uint64_t first : {0u, 1000u, 2000u}) {
      plain.set_position(first);
      plain.sample_into(want, 100);
      for (int reader = 0; reader < 2; ++reader) {
        cached.set_position(first);
        cached.sample_into(got, 100);
        REQUIRE(cached.position() == first + 100);
        require_same(want, got);
      }
    }
    CHECK(cache->misses() == 3);
    CHECK(cache->hits() == 3);
    plain.set_position(1000);
    plain.sample_into(want, 60);
    cached.set_position(1000);
    cached.sample_into(got, 60);  // same first sample, another size: not the kept batch
    require_same(want, got);
    CHECK(cache->misses() == 4);
    plain.set_sampling_seed(plain.sampling_seed() + 1);
    cached.set_sampling_seed(cached.sampling_seed() + 1);
    plain.set_position(0);
    plain.sample_into(want, 100);
    cached.set_position(0);
    cached.sample_into(got, 100);  // another stream at a kept position
    require_same(want, got);
    CHECK(cache->misses() == 5);
    CHECK(cache->hits() == 3);
    CHECK(cache->size() == 4);  // five kept, the oldest (stream 0 at sample 0) left
    cached.set_sampling_seed(plain.sampling_seed() - 1);
    cached.set_position(0);
    cached.sample_into(got, 100);
    CHECK(cache->misses() == 6);
    cached.set_position(2000);
    cached.sample_into(got, 100);  // still kept, and a copy: drawing into `got` since changed nothing kept
    CHECK(cache->hits() == 4);
    plain.set_sampling_seed(plain.sampling_seed() - 1);
    plain.set_position(2000);
    plain.sample_into(want, 100);
    require_same(want, got);
  }
}

TEST_CASE("a batch cache refuses no room and shrinks from its oldest batch", "[world][batch_cache]") {
  REQUIRE_THROWS_AS(BatchCache(0), ConfigError);
  SyntheticModel world(small_world(false));
  auto cache = std::make_shared<BatchCache>(3);
  world.share_batches(cache);
  SampleBatch b;
  for (std::uint64_t first : {0u, 10u, 20u}) {
    world.set_position(first);
    world.sample_into(b, 10);
  }
  REQUIRE(cache->size() == 3);
  REQUIRE_THROWS_AS(cache->set_capacity(0), ConfigError);
  cache->set_capacity(1);
  CHECK(cache->size() == 1);
  SampleBatch out;
  CHECK_FALSE(cache->copy_into(world.sampling_seed(), 10, 10, out));
  CHECK(cache->copy_into(world.sampling_seed(), 20, 10, out));
  world.share_batches(nullptr);  // no cache: drawn again
  world.set_position(20);
  world.sample_into(b, 10);
  CHECK(cache->hits() == 1);
  require_same(out, b);
}
