#pragma once
// Checkpoint archives: what survives a checkpoint is visited by name through persist(ar), once,
// for both directions (sae/run_state.hpp). Scalars go to trainer_state.json under their dotted
// name, device vectors to checkpoint.safetensors (whose metadata holds the same state, the copy
// that is read: one atomic file cannot be torn by a kill); the reader checks that every name is there with
// the right length and names the file and the entry when not. The trainer persists its own state
// (counters, Adam moments, dead-latent counters, autotuner) and the SAE's (each policy's State)
// through the same archive, so a new policy with state needs no change here.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>

#include "synthsae/core/backend.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/io/atomic_file.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/io/safetensors.hpp"

namespace synthsae {

inline constexpr const char* kCheckpointTensorsFile = "checkpoint.safetensors";
inline constexpr const char* kCheckpointStateFile = "trainer_state.json";
/// The metadata entry of checkpoint.safetensors that holds the trainer state (the same JSON).
inline constexpr const char* kCheckpointStateMetadataKey = "synthsae_trainer_state";

namespace detail {
/// Dotted prefixes for enter/leave.
struct ArchivePrefix {
  std::string prefix;
  void enter(const std::string& slot) { prefix += slot + "."; }
  void leave() {
    prefix.pop_back();
    const auto dot = prefix.find_last_of('.');
    prefix = dot == std::string::npos ? "" : prefix.substr(0, dot + 1);
  }
  std::string key(const std::string& name) const { return prefix + name; }
};

template <class V>
inline constexpr bool is_device_vector_v = Kokkos::is_view<V>::value;

template <class T>
constexpr io::Dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return io::Dtype::F32;
  else if constexpr (std::is_same_v<T, double>)
    return io::Dtype::F64;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return io::Dtype::I64;
  else
    static_assert(sizeof(T) == 0, "checkpoint: vectors of float, double or int64 only");
}
}  // namespace detail

class CheckpointWriter {
 public:
  static constexpr bool reading = false;
  void enter(const std::string& slot) { at_.enter(slot); }
  void leave() { at_.leave(); }

  template <class V>
  void operator()(const std::string& name, V& value) {
    if constexpr (detail::is_device_vector_v<V>) {
      using T = std::remove_const_t<typename V::value_type>;
      auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), value);
      tensors_.tensors[at_.key(name)] = io::make_tensor<T>(
          detail::dtype_of<T>(), {static_cast<std::int64_t>(h.extent(0))}, std::span<const T>(h.data(), h.extent(0)));
    } else {
      state_[at_.key(name)] = value;
    }
  }

  /// Writes both files into `dir` (created if needed), each atomically. The state also goes
  /// into the tensors file's metadata, and that copy is the one read back: a process killed
  /// between the two writes leaves a trainer_state.json one checkpoint behind, which a resume
  /// would otherwise pair with the newer tensors.
  void write(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    io::remove_stale_temporaries(dir);  // what a run killed mid-write left behind
    io::SafetensorsFile file = tensors_;
    file.metadata[kCheckpointStateMetadataKey] = state_.dump();
    io::write_safetensors(dir / kCheckpointTensorsFile, file);
    io::write_json_file(dir / kCheckpointStateFile, state_);  // for people and older readers
  }

 private:
  detail::ArchivePrefix at_;
  io::SafetensorsFile tensors_;
  io::Json state_ = io::Json::object();
};

class CheckpointReader {
 public:
  static constexpr bool reading = true;
  explicit CheckpointReader(const std::filesystem::path& dir)
      : tensors_path_((dir / kCheckpointTensorsFile).string()), state_path_((dir / kCheckpointStateFile).string()) {
    tensors_ = io::read_safetensors(tensors_path_);
    if (const auto it = tensors_.metadata.find(kCheckpointStateMetadataKey); it != tensors_.metadata.end()) {
      state_path_ = tensors_path_ + " (metadata " + kCheckpointStateMetadataKey + ")";
      state_ = io::parse_json(it->second, state_path_);
    } else {  // a checkpoint written before the state was kept in the tensors file
      state_ = io::read_json_file(state_path_);
    }
    if (!state_.is_object()) throw FormatError(state_path_, "is not a JSON object");
  }
  const std::string& state_path() const { return state_path_; }

  void enter(const std::string& slot) { at_.enter(slot); }
  void leave() { at_.leave(); }

  template <class V>
  void operator()(const std::string& name, V& value) {
    const std::string key = at_.key(name);
    if constexpr (detail::is_device_vector_v<V>) {
      using T = std::remove_const_t<typename V::value_type>;
      const auto values = io::tensor_values<T>(tensors_.at(key, tensors_path_), tensors_path_);
      if (value.extent(0) == 0 && !values.empty())
        value = V(key, values.size());  // lazily sized state takes the saved length
      if (values.size() != value.extent(0)) {
        throw FormatError(tensors_path_, "tensor '" + key + "' has " + show(values.size()) +
                                             " values, this run needs " + show(value.extent(0)));
      }
      auto h = Kokkos::create_mirror_view(value);
      for (std::size_t i = 0; i < values.size(); ++i) h(i) = values[i];
      Kokkos::deep_copy(value, h);
    } else {
      try {
        value = io::json_field<V>(state_, key, "trainer_state");
      } catch (const ConfigError& e) {
        throw FormatError(state_path_, e.what());
      }
    }
  }

 private:
  std::string tensors_path_, state_path_;
  detail::ArchivePrefix at_;
  io::SafetensorsFile tensors_;
  io::Json state_;
};

}  // namespace synthsae
