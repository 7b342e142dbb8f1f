#pragma once
// The hierarchy forest (reference §4): configuration, breadth-first generation, probability
// compensation, hierarchy.json, and the flat per-feature tables the sampler reads.
//
// Semantics kept from the reference: feature indices are assigned level by level across the
// whole forest; compensation uses the immediate parent's *base* probability plus an ME term;
// mutually exclusive groups are chosen among parents at eligible depths with >= 2 children.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"

namespace synthsae {

/// An integer, or a range [min, max] drawn uniformly per parent.
struct BranchingFactor {
  int min = 100;
  int max = 100;
  bool is_range() const { return min != max; }
};

struct HierarchyConfig {
  int total_root_nodes = 100;
  BranchingFactor branching_factor{100, 100};
  int max_depth = 2;
  double mutually_exclusive_portion = 0.0;
  int mutually_exclusive_min_depth = 0;
  std::optional<int> mutually_exclusive_max_depth;
  bool compensate_probabilities = false;
  bool scale_children_by_parent = false;
  bool branching_factor_was_list = false;  ///< JSON round trip: [a, a] stays a list

  void validate() const {
    if (total_root_nodes <= 0) throw ConfigError("hierarchy.total_root_nodes", show(total_root_nodes), "must be > 0");
    if (branching_factor.min < 2 || branching_factor.min > branching_factor.max) {
      throw ConfigError("hierarchy.branching_factor",
                        branching_factor.is_range()
                            ? "[" + show(branching_factor.min) + ", " + show(branching_factor.max) + "]"
                            : show(branching_factor.min),
                        "must be >= 2 (a range needs 2 <= min <= max)");
    }
    if (max_depth < 1) throw ConfigError("hierarchy.max_depth", show(max_depth), "must be >= 1");
    if (!(mutually_exclusive_portion >= 0 && mutually_exclusive_portion <= 1)) {
      throw ConfigError("hierarchy.mutually_exclusive_portion", show(mutually_exclusive_portion), "must be in [0, 1]");
    }
    if (mutually_exclusive_min_depth < 0) {
      throw ConfigError("hierarchy.mutually_exclusive_min_depth", show(mutually_exclusive_min_depth), "must be >= 0");
    }
    if (mutually_exclusive_max_depth && *mutually_exclusive_max_depth < mutually_exclusive_min_depth) {
      throw ConfigError("hierarchy.mutually_exclusive_max_depth", show(*mutually_exclusive_max_depth),
                        "must be >= mutually_exclusive_min_depth (" + show(mutually_exclusive_min_depth) + ")");
    }
  }

  io::Json to_json() const {
    io::Json bf = (branching_factor.is_range() || branching_factor_was_list)
                      ? io::Json::array({branching_factor.min, branching_factor.max})
                      : io::Json(branching_factor.min);
    return {{"total_root_nodes", total_root_nodes},
            {"branching_factor", bf},
            {"max_depth", max_depth},
            {"mutually_exclusive_portion", mutually_exclusive_portion},
            {"mutually_exclusive_min_depth", mutually_exclusive_min_depth},
            {"mutually_exclusive_max_depth",
             mutually_exclusive_max_depth ? io::Json(*mutually_exclusive_max_depth) : io::Json(nullptr)},
            {"compensate_probabilities", compensate_probabilities},
            {"scale_children_by_parent", scale_children_by_parent}};
  }

  static HierarchyConfig from_json(const io::Json& j) {
    HierarchyConfig h;
    const char* ctx = "hierarchy";
    h.total_root_nodes = io::json_field_or<int>(j, "total_root_nodes", ctx, h.total_root_nodes);
    if (j.contains("branching_factor") && j["branching_factor"].is_array()) {
      const auto& bf = j["branching_factor"];
      if (bf.size() != 2 || !bf[0].is_number_integer() || !bf[1].is_number_integer()) {
        throw ConfigError("hierarchy.branching_factor", bf.dump(), "must be an integer or [min, max]");
      }
      h.branching_factor = {bf[0].get<int>(), bf[1].get<int>()};
      h.branching_factor_was_list = true;
    } else {
      const int b = io::json_field_or<int>(j, "branching_factor", ctx, 100);
      h.branching_factor = {b, b};
    }
    h.max_depth = io::json_field_or<int>(j, "max_depth", ctx, h.max_depth);
    h.mutually_exclusive_portion =
        io::json_field_or<double>(j, "mutually_exclusive_portion", ctx, h.mutually_exclusive_portion);
    h.mutually_exclusive_min_depth =
        io::json_field_or<int>(j, "mutually_exclusive_min_depth", ctx, h.mutually_exclusive_min_depth);
    if (j.contains("mutually_exclusive_max_depth") && !j["mutually_exclusive_max_depth"].is_null()) {
      h.mutually_exclusive_max_depth = io::json_field<int>(j, "mutually_exclusive_max_depth", ctx);
    }
    h.compensate_probabilities = io::json_field_or<bool>(j, "compensate_probabilities", ctx, false);
    h.scale_children_by_parent = io::json_field_or<bool>(j, "scale_children_by_parent", ctx, false);
    h.validate();
    return h;
  }
};

struct HierarchyNode {
  std::int64_t feature_index = -1;  ///< -1: organisational node without a feature
  std::vector<int> children;        ///< node indices, in order
  bool mutually_exclusive_children = false;
  bool scale_children_by_parent = false;
  std::optional<std::string> feature_id;
};

/// A forest of nodes; `roots` lists the root node indices in order.
struct Forest {
  std::vector<HierarchyNode> nodes;
  std::vector<int> roots;

  bool empty() const { return roots.empty(); }
  std::size_t num_hierarchical_features() const {
    return static_cast<std::size_t>(
        std::count_if(nodes.begin(), nodes.end(), [](const auto& n) { return n.feature_index >= 0; }));
  }
};

/// Breadth-first generation (reference §4.2). `seed` drives branching ranges and the choice
/// of mutually exclusive parents (Philox streams; the reference uses Python's MT19937).
inline Forest generate_hierarchy(std::size_t num_features, const HierarchyConfig& cfg, std::uint64_t seed) {
  cfg.validate();
  Forest forest;
  RandomStream rng(seed, /*stream: hierarchy*/ 0x48494552ull);
  std::size_t next_index = 0;
  struct Frontier {
    int node, depth;
  };
  std::vector<Frontier> parents_with_depth, frontier;
  for (int r = 0; r < cfg.total_root_nodes && next_index < num_features; ++r) {
    forest.nodes.push_back({static_cast<std::int64_t>(next_index++), {}, false, false, std::nullopt});
    const int id = static_cast<int>(forest.nodes.size()) - 1;
    forest.roots.push_back(id);
    parents_with_depth.push_back({id, 0});
    frontier.push_back({id, 0});
  }
  while (!frontier.empty()) {
    std::vector<Frontier> next;
    for (const auto [node, depth] : frontier) {
      if (depth >= cfg.max_depth) continue;
      const int k = cfg.branching_factor.is_range()
                        ? cfg.branching_factor.min + static_cast<int>(rng.uniform_below(static_cast<std::uint32_t>(
                                                         cfg.branching_factor.max - cfg.branching_factor.min + 1)))
                        : cfg.branching_factor.min;
      std::vector<int> children;
      for (int c = 0; c < k && next_index < num_features; ++c) {
        forest.nodes.push_back({static_cast<std::int64_t>(next_index++), {}, false, false, std::nullopt});
        const int child = static_cast<int>(forest.nodes.size()) - 1;
        if (depth + 1 < cfg.max_depth) {
          next.push_back({child, depth + 1});
          parents_with_depth.push_back({child, depth + 1});
        }
        children.push_back(child);
      }
      forest.nodes[node].children = std::move(children);
    }
    frontier = std::move(next);
  }
  std::vector<int> eligible;
  for (const auto [node, depth] : parents_with_depth) {
    if (depth >= cfg.mutually_exclusive_min_depth &&
        (!cfg.mutually_exclusive_max_depth || depth <= *cfg.mutually_exclusive_max_depth) &&
        forest.nodes[node].children.size() >= 2) {
      eligible.push_back(node);
    }
  }
  const auto m = static_cast<std::size_t>(std::floor(double(eligible.size()) * cfg.mutually_exclusive_portion));
  // m distinct eligible parents, uniformly (partial Fisher-Yates).
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t j = i + rng.uniform_below(static_cast<std::uint32_t>(eligible.size() - i));
    std::swap(eligible[i], eligible[j]);
    forest.nodes[eligible[i]].mutually_exclusive_children = true;
  }
  if (cfg.scale_children_by_parent) {
    for (const auto [node, depth] : parents_with_depth) forest.nodes[node].scale_children_by_parent = true;
  }
  return forest;
}

/// Checks a forest read from a file: node indices in range, each node reached once (no cycle,
/// at most one parent), feature indices in [0, num_features) and unique, ME parents with >= 2
/// children. Errors name the node.
inline void validate_forest(const Forest& forest, std::size_t num_features, std::string_view source) {
  std::vector<int> seen(forest.nodes.size(), 0);
  std::vector<char> feature_used(num_features, 0);
  std::vector<int> stack(forest.roots.begin(), forest.roots.end());
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    if (id < 0 || static_cast<std::size_t>(id) >= forest.nodes.size())
      throw FormatError(source, "node index " + show(id) + " out of range");
    if (seen[id]++) throw FormatError(source, "node " + show(id) + " is reached twice (a cycle or two parents)");
    const auto& n = forest.nodes[id];
    if (n.feature_index >= 0) {
      if (static_cast<std::size_t>(n.feature_index) >= num_features) {
        throw FormatError(
            source, "feature_index " + show(n.feature_index) + " is not below num_features = " + show(num_features));
      }
      if (feature_used[n.feature_index]++)
        throw FormatError(source, "feature_index " + show(n.feature_index) + " appears twice in the forest");
    }
    if (n.mutually_exclusive_children && n.children.size() < 2) {
      throw FormatError(source, "node with feature_index " + show(n.feature_index) +
                                    " is mutually exclusive with fewer than 2 children");
    }
    for (int c : n.children) stack.push_back(c);
  }
}

/// Compensation factors (reference §4.3): p'_i = min(1, p_i c_i).
inline std::vector<double> probability_correction_factors(const Forest& forest, const std::vector<double>& p) {
  std::vector<double> c(p.size(), 1.0);
  struct Item {
    int node;
    double parent_prob;
  };
  // Pass 1 assigns c_i = 1 / p_parent; pass 2 multiplies in the ME terms. The reference
  // multiplies after a node's children were visited (and assigned), which this order keeps.
  std::vector<double> node_prob(forest.nodes.size(), 0.0);
  std::vector<Item> stack;
  for (int r : forest.roots) stack.push_back({r, 1.0});
  while (!stack.empty()) {
    const auto [id, parent_prob] = stack.back();
    stack.pop_back();
    const auto& n = forest.nodes[id];
    node_prob[id] = parent_prob;  // organisational nodes pass their parent's probability through
    if (n.feature_index >= 0) {
      if (parent_prob > 0) c[n.feature_index] = 1.0 / parent_prob;
      node_prob[id] = p[n.feature_index];
    }
    for (int ch : n.children) stack.push_back({ch, node_prob[id]});
  }
  for (std::size_t id = 0; id < forest.nodes.size(); ++id) {
    const auto& n = forest.nodes[id];
    if (!n.mutually_exclusive_children || !(node_prob[id] > 0)) continue;
    double sum = 0;
    int with_feature = 0;
    for (int ch : n.children) {
      if (forest.nodes[ch].feature_index >= 0) {
        sum += p[forest.nodes[ch].feature_index];
        ++with_feature;
      }
    }
    if (with_feature < 2) continue;
    for (int ch : n.children) {
      const auto f = forest.nodes[ch].feature_index;
      if (f >= 0) c[f] *= 1.0 + std::max(0.0, sum - p[f]) / node_prob[id];
    }
  }
  return c;
}

/// The forest flattened per feature for the sampler: CSR children lists over features,
/// parent feature, depth, and the ME / rescale flags of each feature *as a parent*.
/// Features outside the forest are top-level (parent -1, depth 0), like roots.
struct HierarchyTables {
  std::vector<std::int32_t> parent;         ///< [N] parent feature or -1
  std::vector<std::int32_t> depth;          ///< [N]
  std::vector<std::int32_t> child_offsets;  ///< [N + 1] CSR over `children`
  std::vector<std::int32_t> children;       ///< child features in forest order
  std::vector<std::uint8_t> exclusive;      ///< [N] my children are mutually exclusive
  std::vector<std::uint8_t> rescales;       ///< [N] my children are scaled by my value / my mean
  std::vector<std::int32_t> top_level;      ///< features with no parent, ascending
  int max_depth = 0;
};

inline HierarchyTables flatten_hierarchy(const Forest& forest, std::size_t num_features) {
  HierarchyTables t;
  t.parent.assign(num_features, -1);
  t.depth.assign(num_features, 0);
  t.exclusive.assign(num_features, 0);
  t.rescales.assign(num_features, 0);
  std::vector<std::vector<std::int32_t>> kids(num_features);
  struct Item {
    int node, depth;
  };
  std::vector<Item> stack;
  for (int r : forest.roots) stack.push_back({r, 0});
  while (!stack.empty()) {
    const auto [id, depth] = stack.back();
    stack.pop_back();
    const auto& n = forest.nodes[id];
    if (n.feature_index < 0) {
      throw FormatError("hierarchy", "organisational nodes (feature_index null) are not supported by the sampler yet");
    }
    const auto f = static_cast<std::int32_t>(n.feature_index);
    t.depth[f] = depth;
    t.max_depth = std::max(t.max_depth, depth);
    t.exclusive[f] = n.mutually_exclusive_children && n.children.size() >= 2;
    t.rescales[f] = n.scale_children_by_parent;
    for (int c : n.children) {
      const auto cf = static_cast<std::int32_t>(forest.nodes[c].feature_index);
      if (cf < 0)
        throw FormatError("hierarchy",
                          "organisational nodes (feature_index null) are not supported by the sampler yet");
      t.parent[cf] = f;
      kids[f].push_back(cf);
      stack.push_back({c, depth + 1});
    }
  }
  t.child_offsets.assign(num_features + 1, 0);
  for (std::size_t f = 0; f < num_features; ++f) {
    t.child_offsets[f + 1] = t.child_offsets[f] + static_cast<std::int32_t>(kids[f].size());
    t.children.insert(t.children.end(), kids[f].begin(), kids[f].end());
    if (t.parent[f] < 0) t.top_level.push_back(static_cast<std::int32_t>(f));
  }
  return t;
}

// ---- hierarchy.json ----------------------------------------------------------------------

namespace detail {

inline io::Json node_to_json(const Forest& forest, int id) {
  const auto& n = forest.nodes[id];
  io::Json children = io::Json::array();
  for (int c : n.children) children.push_back(node_to_json(forest, c));
  return {{"feature_index", n.feature_index >= 0 ? io::Json(n.feature_index) : io::Json(nullptr)},
          {"mutually_exclusive_children", n.mutually_exclusive_children},
          {"scale_children_by_parent", n.scale_children_by_parent},
          {"feature_id", n.feature_id ? io::Json(*n.feature_id) : io::Json(nullptr)},
          {"children", children}};
}

inline int node_from_json(Forest& forest, const io::Json& j, std::string_view source, int depth) {
  if (depth > 10000) throw FormatError(source, "hierarchy is nested deeper than 10000 levels");
  if (!j.is_object()) throw FormatError(source, "a hierarchy node is not a JSON object: " + j.dump().substr(0, 80));
  HierarchyNode n;
  const auto fi = j.find("feature_index");
  if (fi != j.end() && !fi->is_null()) {
    if (!fi->is_number_integer() || fi->get<std::int64_t>() < 0)
      throw FormatError(source, "invalid feature_index " + fi->dump());
    n.feature_index = fi->get<std::int64_t>();
  }
  auto flag = [&](const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return false;
    if (!it->is_boolean())
      throw FormatError(source, std::string(key) + " of feature_index " + show(n.feature_index) + " is not a boolean");
    return it->get<bool>();
  };
  n.mutually_exclusive_children = flag("mutually_exclusive_children");
  n.scale_children_by_parent = flag("scale_children_by_parent");
  if (const auto id = j.find("feature_id"); id != j.end() && !id->is_null()) {
    if (!id->is_string())
      throw FormatError(source, "feature_id of feature_index " + show(n.feature_index) + " is not a string");
    n.feature_id = id->get<std::string>();
  }
  const int self = static_cast<int>(forest.nodes.size());
  forest.nodes.push_back(n);
  if (const auto ch = j.find("children"); ch != j.end() && !ch->is_null()) {
    if (!ch->is_array())
      throw FormatError(source, "children of feature_index " + show(n.feature_index) + " is not an array");
    std::vector<int> children;
    for (const auto& c : *ch) children.push_back(node_from_json(forest, c, source, depth + 1));
    forest.nodes[self].children = std::move(children);
  }
  return self;
}

}  // namespace detail

inline io::Json forest_to_json(const Forest& forest) {
  io::Json roots = io::Json::array();
  for (int r : forest.roots) roots.push_back(detail::node_to_json(forest, r));
  return {{"roots", roots}};
}

inline Forest forest_from_json(const io::Json& j, std::size_t num_features, std::string_view source) {
  if (!j.is_object() || !j.contains("roots") || !j["roots"].is_array())
    throw FormatError(source, "expected {\"roots\": [...]}");
  Forest forest;
  for (const auto& r : j["roots"]) forest.roots.push_back(detail::node_from_json(forest, r, source, 0));
  validate_forest(forest, num_features, source);
  return forest;
}

}  // namespace synthsae
