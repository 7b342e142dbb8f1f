#pragma once
// The list of architectures: the one place the CLI (`train`, `bench`, `architectures`), the docs
// table (docs/architectures.md, checked against `synthsae architectures` by a test) and the SAELens
// loader's users read. Each entry is one header under architectures/ holding the training type,
// the SAELens name, the recipe, the trainer settings, the runner_config fields and the inference
// form it saves as. Adding an architecture = one header + one line here + its tests + its docs row.
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "synthsae/architectures/abstopk.hpp"
#include "synthsae/architectures/batchtopk.hpp"
#include "synthsae/architectures/gated.hpp"
#include "synthsae/architectures/jumprelu.hpp"
#include "synthsae/architectures/matching_pursuit.hpp"
#include "synthsae/architectures/matryoshka_batchtopk.hpp"
#include "synthsae/architectures/standard.hpp"
#include "synthsae/architectures/topk.hpp"
#include "synthsae/architectures/topk_l1.hpp"

namespace synthsae::architectures {

using All =
    std::tuple<Standard, TopK, AbsTopK, BatchTopK, MatryoshkaBatchTopK, JumpRelu, Gated, MatchingPursuit, TopKL1>;

/// Calls f(Arch{}) for every architecture, in list order.
template <class F>
void for_each(F&& f) {
  std::apply([&](auto... arch) { (f(arch), ...); }, All{});
}

/// Calls f(Arch{}) for the architecture called `name`; false when there is none.
template <class F>
bool visit(std::string_view name, F&& f) {
  bool found = false;
  for_each([&](auto arch) {
    if (!found && name == decltype(arch)::name) {
      found = true;
      f(arch);
    }
  });
  return found;
}

inline std::vector<std::string_view> names() {
  std::vector<std::string_view> out;
  for_each([&](auto arch) { out.push_back(decltype(arch)::name); });
  return out;
}

/// Whether `name` is in the list.
inline bool known(std::string_view name) {
  return visit(name, [](auto) {});
}

/// "standard, topk, ...": for messages.
inline std::string name_list() {
  std::string list;
  for (const auto n : names()) list += (list.empty() ? "" : ", ") + std::string(n);
  return list;
}

/// The knobs of the architecture called `name` (all false when unknown).
inline Knobs knobs_of(std::string_view name) {
  Knobs k;
  visit(name, [&](auto arch) { k = decltype(arch)::knobs; });
  return k;
}

/// The names that take a knob, for messages ("standard, gated").
template <class Pick>
std::string names_with(Pick pick) {
  std::string list;
  for_each([&](auto arch) {
    if (pick(decltype(arch)::knobs)) list += (list.empty() ? "" : ", ") + std::string(decltype(arch)::name);
  });
  return list;
}

/// The docs table (markdown): name, what it is, sparsity knobs, SAELens form it saves as.
inline std::string markdown_table() {
  std::string t = "| architecture | what it is | sparsity | saves as (SAELens) |\n| --- | --- | --- | --- |\n";
  for_each([&](auto arch) {
    using A = decltype(arch);
    std::string knobs;
    if (A::knobs.k) knobs += "--k";
    if (A::knobs.l1) knobs += std::string(knobs.empty() ? "" : ", ") + "--l1";
    if (A::knobs.target_l0) knobs += std::string(knobs.empty() ? "" : ", ") + "--target-l0";
    t += "| `" + std::string(A::name) + "` | " + std::string(A::summary) + " | " + knobs + " | `" +
         std::string(A::inference_form::saelens_name) + "` |\n";
  });
  return t;
}

}  // namespace synthsae::architectures
