// Generic run state (sae/run_state.hpp, train/checkpoint.hpp): a policy that carries state of
// its own resumes bit for bit with no change to the trainer, and the state really matters.
#include <catch2/catch.hpp>

#include <filesystem>

#include "synthsae/io/json.hpp"
#include "synthsae/io/safetensors.hpp"
#include "synthsae/sae/sae.hpp"
#include "synthsae/train/trainer.hpp"
#include "synthsae/world/synthetic_model.hpp"

using namespace synthsae;

namespace synthsae::test {

/// Test-only auxiliary loss with run state: a per-latent running mean m_j of the pre-activations
/// (stopped gradient) and a call counter; loss = c 0.9^min(calls, 30) mean_b sum_j m_j h_bj.
/// Both the mean and the counter steer the gradient, so losing either changes the run.
struct RunningMeanAux {
  static constexpr std::string_view name = "running_mean_test";
  double coefficient = 0.05;

  template <class T>
  struct State {
    long calls = 0;
    Vector<T> mean;
    template <class Archive>
    void persist(Archive& ar) {
      ar("calls", calls);
      ar("mean", mean);
    }
  };

  void validate(std::size_t, std::size_t) const {}

  template <class T>
  double accumulate(StepBuffers<T>& b, const SaeParameters<T>&, SaeParameters<T>&, State<T>& st, const DeadMask&,
                    std::size_t) const {
    const int rows = static_cast<int>(b.h.extent(0)), s = static_cast<int>(b.h.extent(1));
    if (st.mean.extent(0) != static_cast<std::size_t>(s)) st.mean = Vector<T>("running_mean", s);
    const T decay = static_cast<T>(coefficient * std::pow(0.9, double(std::min<long>(st.calls, 30))) / rows);
    const auto h = b.h, dh = b.dh;
    const auto m = st.mean;
    double value = 0;
    Kokkos::parallel_reduce(
        "test::running_mean_aux", Kokkos::RangePolicy<ExecSpace>(0, s),
        KOKKOS_LAMBDA(int j, double& acc) {
          T col = 0;
          for (int i = 0; i < rows; ++i) {
            acc += double(decay) * double(m(j)) * double(h(i, j));
            dh(i, j) += decay * m(j);
            col += h(i, j);
          }
          m(j) = T(0.8) * m(j) + T(0.2) * col / T(rows);
        },
        value);
    ++st.calls;
    return value;
  }
};

}  // namespace synthsae::test

namespace {

using StatefulSae = Sae<Relu, L1Penalty, test::RunningMeanAux>;

SyntheticModelConfig small_world() {
  SyntheticModelConfig c;
  c.num_features = 48;
  c.hidden_dim = 16;
  c.firing_probability = ConstantFiring{0.08};
  c.std_firing_magnitudes = ConstantMagnitude{0.1};
  c.seed = 4;
  return c;
}

std::vector<float> all_parameters(const StatefulSae& sae) {
  std::vector<float> out;
  sae.parameters().for_each_flat([&](const std::string&, const Vector<float>& v) {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
    out.insert(out.end(), h.data(), h.data() + h.extent(0));
  });
  return out;
}

}  // namespace

TEST_CASE("a user's policy with run state resumes bit for bit through the generic checkpoint", "[train][checkpoint]") {
  TrainerConfig cfg;
  cfg.training_samples = 64 * 30;
  cfg.batch_size = 64;
  cfg.lr.lr = 1e-3;
  cfg.coefficient_warm_up_steps = 10;
  auto make = [] { return StatefulSae(16, 24, Relu{}, L1Penalty{0.5}, test::RunningMeanAux{}, {}, 0.1, 3); };

  SyntheticModel world_a(small_world());
  StatefulSae straight = make();
  Trainer(straight, world_a, cfg).fit();

  const auto dir = std::filesystem::temp_directory_path() / "synthsae_stateful_resume";
  std::filesystem::remove_all(dir);
  {
    SyntheticModel world_b(small_world());
    StatefulSae first = make();
    Trainer tb(first, world_b, cfg);
    tb.fit_steps(13);
    tb.save_checkpoint(dir);
  }
  // The policy's state is in the checkpoint under its slot's name, with no trainer code for it.
  const auto state = io::read_json_file(dir / kCheckpointStateFile);
  CHECK(state.at("sae.aux.calls").get<long>() == 13);
  CHECK(io::read_safetensors(dir / kCheckpointTensorsFile).contains("sae.aux.mean"));

  auto resume = [&](bool forget_policy_state) {
    SyntheticModel world(small_world());
    StatefulSae sae = make();
    Trainer t(sae, world, cfg);
    t.load_checkpoint(dir);
    if (forget_policy_state) sae.aux_state() = {};
    t.fit();
    return std::make_pair(all_parameters(sae), sae.aux_state().calls);
  };
  const auto [resumed, calls] = resume(false);
  CHECK(calls == 30);
  CHECK(resumed == all_parameters(straight));
  // Control: the same resume without the policy's state diverges, so the check above can fail.
  const auto [forgetful, forgetful_calls] = resume(true);
  CHECK(forgetful_calls == 17);
  CHECK(forgetful != all_parameters(straight));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a checkpoint missing a policy's state is a clear error naming the entry", "[train][checkpoint]") {
  TrainerConfig cfg;
  cfg.training_samples = 64 * 4;
  cfg.batch_size = 64;
  SyntheticModel world(small_world());
  StatefulSae sae(16, 24, Relu{}, L1Penalty{0.5}, test::RunningMeanAux{}, {}, 0.1, 3);
  Trainer t(sae, world, cfg);
  t.fit_steps(2);
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_stateful_bad";
  std::filesystem::remove_all(dir);
  t.save_checkpoint(dir);
  // The state read back is the copy in the tensors file's metadata.
  auto file = io::read_safetensors(dir / kCheckpointTensorsFile);
  auto state = io::parse_json(file.metadata.at(kCheckpointStateMetadataKey), "state");
  state.erase("sae.aux.calls");
  file.metadata[kCheckpointStateMetadataKey] = state.dump();
  io::write_safetensors(dir / kCheckpointTensorsFile, file);
  CHECK_THROWS_WITH(t.load_checkpoint(dir),
                    Catch::Contains("checkpoint.safetensors") && Catch::Contains("sae.aux.calls"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a checkpoint torn between its two files by a kill resumes from the tensors file's own state",
          "[train][checkpoint]") {
  TrainerConfig cfg;
  cfg.training_samples = 64 * 6;
  cfg.batch_size = 64;
  const auto dir = std::filesystem::temp_directory_path() / "synthsae_torn_checkpoint";
  std::filesystem::remove_all(dir);
  SyntheticModel world(small_world());
  StatefulSae sae(16, 24, Relu{}, L1Penalty{0.5}, test::RunningMeanAux{}, {}, 0.1, 3);
  Trainer t(sae, world, cfg);
  t.fit_steps(2);
  t.save_checkpoint(dir);
  const auto behind = io::read_json_file(dir / kCheckpointStateFile);  // step 2
  t.fit_steps(1);
  t.save_checkpoint(dir);
  io::write_json_file(dir / kCheckpointStateFile, behind);  // as if killed before the second write

  SyntheticModel world_b(small_world());
  StatefulSae sae_b(16, 24, Relu{}, L1Penalty{0.5}, test::RunningMeanAux{}, {}, 0.1, 3);
  Trainer resumed(sae_b, world_b, cfg);
  resumed.load_checkpoint(dir);
  CHECK(resumed.step() == 3);
  CHECK(sae_b.aux_state().calls == 3);

  // A checkpoint of an earlier version (no state in the metadata) is read from trainer_state.json.
  auto file = io::read_safetensors(dir / kCheckpointTensorsFile);
  file.metadata.erase(kCheckpointStateMetadataKey);
  io::write_safetensors(dir / kCheckpointTensorsFile, file);
  Trainer older(sae_b, world_b, cfg);
  older.load_checkpoint(dir);
  CHECK(older.step() == 2);
  std::filesystem::remove_all(dir);
}

#include <limits>

#include "synthsae/world/presets.hpp"

TEST_CASE("repeated non-finite steps stop the run with a NumericalError; the skipped ones are counted",
          "[train][numerics]") {
  SyntheticModel world(preset("tiny"));
  TrainerConfig cfg;
  cfg.batch_size = 256;
  cfg.training_samples = 256 * 50;
  cfg.max_consecutive_skipped_steps = 5;
  StandardSae<float> sae(world.hidden_dim(), 32, Relu{}, L1Penalty{0.5}, {}, {}, 0.1, 1);
  Trainer trainer(sae, world, cfg);
  trainer.fit_steps(3);
  CHECK(trainer.optimizer().skipped() == 0);
  const auto w_dec = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().w_dec);
  // A NaN bias makes every loss and gradient NaN: each step is skipped, the fifth in a row stops.
  Kokkos::deep_copy(sae.parameters().b_dec, std::numeric_limits<float>::quiet_NaN());
  CHECK_THROWS_WITH(trainer.fit(), Catch::Contains("last 5 steps") && Catch::Contains("non-finite") &&
                                       Catch::Contains("max_consecutive_skipped_steps"));
  CHECK(trainer.optimizer().skipped() == 5);
  CHECK(trainer.step() == 3 + 4);  // four skipped steps advanced the count; the fifth threw first
  // The other weights are those of the last finite step.
  const auto after = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.parameters().w_dec);
  bool same = true;
  for (std::size_t i = 0; i < after.size(); ++i) same = same && after.data()[i] == w_dec.data()[i];
  CHECK(same);
  cfg.max_consecutive_skipped_steps = 0;
  CHECK_THROWS_WITH(Trainer(sae, world, cfg), Catch::Contains("max_consecutive_skipped_steps = 0"));
}
