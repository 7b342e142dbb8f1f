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
    io::require_known_keys(j,
                           {"total_root_nodes", "branching_factor", "max_depth", "mutually_exclusive_portion",
                            "mutually_exclusive_min_depth", "mutually_exclusive_max_depth",
                            "compensate_probabilities", "scale_children_by_parent"},
                           "hierarchy");
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
  /// synthsae's extension (hierarchy.json key "synthsae_coactivation", written only when > 0):
  /// the probability that, in a given sample, this node's exclusion is skipped and its active
  /// children all stay (0: SAELens's exclusion; 1: independent children). Only on a mutually
  /// exclusive node. SAELens ignores the key and reads such a world as fully exclusive.
  double coactivation = 0.0;
};

/// A forest of nodes; `roots` lists the root node indices in order.
struct Forest {
  std::vector<HierarchyNode> nodes;
  std::vector<int> roots;
  /// Set by generate_hierarchy: nodes the config asked for after all num_features were used (a
  /// lower bound: their subtrees were never drawn). SAELens truncates the same way, silently.
  std::size_t nodes_cut = 0;

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
  if (static_cast<std::size_t>(cfg.total_root_nodes) > num_features)
    forest.nodes_cut += static_cast<std::size_t>(cfg.total_root_nodes) - num_features;
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
      if (static_cast<std::size_t>(k) > num_features - next_index)
        forest.nodes_cut += static_cast<std::size_t>(k) - (num_features - next_index);
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

/// What to tell a user whose hierarchy config asks for more features than the world has.
inline std::string hierarchy_truncation_note(const Forest& forest, std::size_t num_features) {
  return "the hierarchy config asks for more features than num_features = " + std::to_string(num_features) +
         ": built its first " + std::to_string(forest.nodes.size()) + " nodes breadth first and cut at least " +
         std::to_string(forest.nodes_cut) + " more, as SAELens does (silently there)";
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
    if (!(n.coactivation >= 0 && n.coactivation <= 1))
      throw FormatError(source, "synthsae_coactivation = " + show(n.coactivation) + " of the node with feature_index " +
                                    show(n.feature_index) + " is not in [0, 1]");
    if (n.coactivation > 0 && !n.mutually_exclusive_children)
      throw FormatError(source, "synthsae_coactivation = " + show(n.coactivation) + " on the node with feature_index " +
                                    show(n.feature_index) + ", whose children are not mutually exclusive");
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

/// The forest flattened per feature for the sampler, in SAELens 6.54's semantics, which also
/// cover organisational nodes (`feature_index` null):
/// - a feature's parent is its *effective* parent, the nearest ancestor with a feature (-1: none);
///   its depth counts every node above it, organisational ones included;
/// - each node's feature children form one sibling group, anchored at the node's feature or, for
///   an organisational node, at its effective parent (a root organisational node: anchor "none",
///   index N). A group is mutually exclusive when its node is and it has >= 2 feature children;
///   an organisational node's group is then decided in every sample its anchor is active (SAELens
///   gives it parent -1, "always active"; the gate by the effective parent zeroes the rest anyway);
/// - a group is scaled by its anchor's value / mean when its own node has
///   scale_children_by_parent (so an organisational node's flag applies, as in SAELens).
/// Forests without organisational nodes give one group per feature parent, as before.
struct HierarchyTables {
  std::vector<std::int32_t> parent;  ///< [N] effective parent feature or -1
  std::vector<std::int32_t> depth;   ///< [N] tree depth, organisational levels included
  std::vector<std::uint8_t> scaled;  ///< [N] value multiplied by parent value / parent mean
  /// [N + 2] CSR over groups per anchor feature; anchor N ("none") lists only its exclusive
  /// groups (the members of its other groups are simply top-level).
  std::vector<std::int32_t> group_offsets;
  std::vector<std::int32_t> member_offsets;  ///< [G + 1] CSR over `members`
  std::vector<std::int32_t> members;         ///< feature children, in forest order per group
  std::vector<std::uint8_t> group_exclusive, group_scaled;  ///< [G]
  /// [G] probability that a sample skips the group's exclusion (HierarchyNode::coactivation)
  std::vector<float> group_coactivation;
  std::vector<std::int32_t> group_depth;                    ///< [G] depth of the group's node
  /// [G] Philox counter of the group's winner draw: 2N + f for feature f's own children (the
  /// layout of activation_sampler.hpp), 4N + k for the k-th organisational group.
  std::vector<std::uint64_t> group_counter;
  std::vector<std::int32_t> top_level;  ///< no parent and in no exclusive group, ascending
  int max_depth = 0;

  std::size_t num_groups() const { return group_exclusive.size(); }
};

inline HierarchyTables flatten_hierarchy(const Forest& forest, std::size_t num_features) {
  const auto n = static_cast<std::int32_t>(num_features);
  HierarchyTables t;
  t.parent.assign(num_features, -1);
  t.depth.assign(num_features, 0);
  t.scaled.assign(num_features, 0);
  struct Group {
    std::vector<std::int32_t> members;
    bool exclusive, scaled;
    int depth;
    std::uint64_t counter;
    float coactivation;
  };
  std::vector<std::vector<Group>> by_anchor(num_features + 1);
  std::vector<char> in_root_exclusive(num_features, 0);
  struct Item {
    int node, depth;
    std::int32_t effective_parent;
  };
  std::vector<Item> queue;  // breadth-first, as SAELens numbers its groups
  for (int r : forest.roots) queue.push_back({r, 0, -1});
  std::uint64_t organisational_groups = 0;
  for (std::size_t head = 0; head < queue.size(); ++head) {
    const auto [id, depth, effective_parent] = queue[head];
    const auto& node = forest.nodes[id];
    const bool has_feature = node.feature_index >= 0;
    const auto anchor = has_feature ? static_cast<std::int32_t>(node.feature_index) : effective_parent;
    if (has_feature) t.depth[anchor] = depth, t.max_depth = std::max(t.max_depth, depth);
    Group g{{}, false, node.scale_children_by_parent && anchor >= 0, depth, 0, 0.0f};
    for (int c : node.children) {
      const auto f = forest.nodes[c].feature_index;
      if (f >= 0) {
        g.members.push_back(static_cast<std::int32_t>(f));
        t.parent[f] = anchor;
        t.scaled[f] = g.scaled;
      }
      queue.push_back({c, depth + 1, anchor});
    }
    if (g.members.empty()) continue;
    g.exclusive = node.mutually_exclusive_children && node.children.size() >= 2 && g.members.size() >= 2;
    g.coactivation = g.exclusive ? static_cast<float>(node.coactivation) : 0.0f;
    g.counter = has_feature ? 2 * std::uint64_t(num_features) + std::uint64_t(anchor)
                            : 4 * std::uint64_t(num_features) + organisational_groups++;
    if (anchor < 0) {
      if (!g.exclusive) continue;  // plain top-level features
      for (auto f : g.members) in_root_exclusive[f] = 1;
    }
    by_anchor[anchor < 0 ? n : anchor].push_back(std::move(g));
  }
  t.group_offsets.assign(num_features + 2, 0);
  t.member_offsets.assign(1, 0);
  for (std::size_t a = 0; a <= num_features; ++a) {
    for (auto& g : by_anchor[a]) {
      t.members.insert(t.members.end(), g.members.begin(), g.members.end());
      t.member_offsets.push_back(static_cast<std::int32_t>(t.members.size()));
      t.group_exclusive.push_back(g.exclusive);
      t.group_scaled.push_back(g.scaled);
      t.group_coactivation.push_back(g.coactivation);
      t.group_depth.push_back(g.depth);
      t.group_counter.push_back(g.counter);
    }
    t.group_offsets[a + 1] = static_cast<std::int32_t>(t.group_exclusive.size());
  }
  for (std::int32_t f = 0; f < n; ++f)
    if (t.parent[f] < 0 && !in_root_exclusive[f]) t.top_level.push_back(f);
  return t;
}

// ---- hierarchy.json ----------------------------------------------------------------------

namespace detail {

inline io::Json node_to_json(const Forest& forest, int id) {
  const auto& n = forest.nodes[id];
  io::Json children = io::Json::array();
  for (int c : n.children) children.push_back(node_to_json(forest, c));
  io::Json j{{"feature_index", n.feature_index >= 0 ? io::Json(n.feature_index) : io::Json(nullptr)},
             {"mutually_exclusive_children", n.mutually_exclusive_children},
             {"scale_children_by_parent", n.scale_children_by_parent},
             {"feature_id", n.feature_id ? io::Json(*n.feature_id) : io::Json(nullptr)},
             {"children", children}};
  if (n.coactivation > 0) j["synthsae_coactivation"] = n.coactivation;  // SAELens's files stay as they were
  return j;
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
  if (const auto co = j.find("synthsae_coactivation"); co != j.end() && !co->is_null()) {
    if (!co->is_number())
      throw FormatError(source, "synthsae_coactivation of feature_index " + show(n.feature_index) + " is not a number");
    n.coactivation = co->get<double>();  // its range is checked by validate_forest
  }
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
