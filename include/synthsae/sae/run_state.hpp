#pragma once
// Run state that must survive a checkpoint. A policy's State holds two kinds of members:
// persistent ones (BatchTopK's threshold, a researcher's counters) and scratch (masks, work
// arrays rebuilt every step). A State with persistent members lists them, by name, in
//   template <class Archive> void persist(Archive& ar) { ar("threshold", threshold); }
// (scalars: double, long, std::int64_t, bool; device vectors: Vector<float|double>, View<int64*>);
// everything it does not list is scratch. A vector still empty when a checkpoint is read (state
// a policy sizes on its first step) takes the saved length; otherwise the lengths must agree.
// An SAE forwards persist() to each slot's state under the slot's name (persist_slot), and
// train/checkpoint.hpp writes and reads every listed member, so a new policy with state resumes
// bit for bit without a change to the trainer.
#include <string>

namespace synthsae {

/// Visits `state`'s persistent members under "slot." if it has any.
template <class Archive, class State>
void persist_slot(Archive& ar, const std::string& slot, State& state) {
  if constexpr (requires { state.persist(ar); }) {
    ar.enter(slot);
    state.persist(ar);
    ar.leave();
  }
}

/// An archive that does nothing: what the TrainableSae concept passes to check that persist()
/// exists (train/checkpoint.hpp has the archives that write and read).
struct PersistProbe {
  static constexpr bool reading = false;
  void enter(const std::string&) {}
  void leave() {}
  template <class V>
  void operator()(const std::string&, V&) {}
};

}  // namespace synthsae
