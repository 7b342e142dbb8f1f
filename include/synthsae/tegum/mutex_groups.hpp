#pragma once
// Firing of features in groups (../shared/reference/dark-matter.md §2.12): the tegum-factor
// hypothesis is about features that never fire together. A group fires with probability q_g
// and then, when mutually exclusive, exactly one member, chosen with probabilities pi_j
// (uniform or Zipf). Every member's marginal is then p_j = q_g pi_j, and the controls keep
// exactly those marginals:
//   independent: each member fires on its own with p_j (co-activation allowed);
//   correlated:  a gate opens with q_g, then each member fires on its own with pi_j
//                (Cov(i, j) = q_g (1 - q_g) pi_i pi_j > 0);
//   coactivation = rho in [0, 1] mixes mutex with independent per sample and group: with
//                probability rho the group draws as `independent` (0: mutex, 1: independent).
// Features not in a group ("ungrouped") fire independently. Values of firing features are
// uniform in (0, 1) (the toy model of superposition's convention) or 1.
//
// A draw is a pure function of (seed, row): rows can be drawn in any order and in parallel.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "synthsae/core/counter_rng.hpp"
#include "synthsae/core/error.hpp"

namespace synthsae::tegum {

enum class GroupFiring { mutex, independent, correlated };

inline const char* name_of(GroupFiring f) {
  switch (f) {
    case GroupFiring::mutex: return "mutex";
    case GroupFiring::independent: return "independent";
    case GroupFiring::correlated: return "correlated";
  }
  return "?";
}

inline GroupFiring group_firing_from(const std::string& name, const char* field = "firing") {
  if (name == "mutex") return GroupFiring::mutex;
  if (name == "independent") return GroupFiring::independent;
  if (name == "correlated") return GroupFiring::correlated;
  throw ConfigError(field, "\"" + name + "\"", "must be mutex, independent or correlated");
}

enum class FiringValue { uniform, one };

struct MutexGroupsConfig {
  std::vector<int> group_sizes;          ///< members of each group; features 0.. in group order
  int ungrouped_features = 0;            ///< independent features after the groups
  double group_probability = 0.5;        ///< q_g, the same for every group
  double member_zipf_exponent = 0;       ///< pi_j proportional to (j + 1)^-s within a group; 0: uniform
  double ungrouped_probability = 0.05;   ///< firing probability of each ungrouped feature
  GroupFiring firing = GroupFiring::mutex;
  double coactivation = 0;               ///< rho_co: share of (sample, group) draws made independently
  FiringValue value = FiringValue::uniform;
  std::uint64_t seed = 0;

  int num_groups() const { return static_cast<int>(group_sizes.size()); }
  int num_features() const {  // validate() keeps the total within 10,000,000
    long long n = ungrouped_features;
    for (int g : group_sizes) n += g;
    return static_cast<int>(n);
  }

  void validate() const {
    if (group_sizes.empty()) throw ConfigError("group_sizes", "[]", "needs at least one group");
    for (std::size_t g = 0; g < group_sizes.size(); ++g)
      if (group_sizes[g] < 1 || group_sizes[g] > 1000000)
        throw ConfigError("group_sizes[" + std::to_string(g) + "]", show(group_sizes[g]), "must be in [1, 1000000]");
    if (ungrouped_features < 0 || ungrouped_features > 10000000)
      throw ConfigError("ungrouped_features", show(ungrouped_features), "must be in [0, 10000000]");
    long long total = ungrouped_features;
    for (int g : group_sizes) total += g;
    if (total > 10000000) throw ConfigError("group_sizes", show(total) + " features", "must total <= 10,000,000");
    auto probability = [](const char* field, double p) {
      if (!(p > 0 && p <= 1)) throw ConfigError(field, show(p), "must be a probability in (0, 1]");
    };
    probability("group_probability", group_probability);
    if (ungrouped_features > 0) probability("ungrouped_probability", ungrouped_probability);
    if (!(member_zipf_exponent >= 0 && member_zipf_exponent <= 100))
      throw ConfigError("member_zipf_exponent", show(member_zipf_exponent), "must be in [0, 100]");
    if (!(coactivation >= 0 && coactivation <= 1))
      throw ConfigError("coactivation", show(coactivation), "must be in [0, 1]");
    if (coactivation > 0 && firing != GroupFiring::mutex)
      throw ConfigError("coactivation", show(coactivation), "mixes mutex with independent firing; the firing is not mutex");
  }
};

/// One drawn row: the firing features with their values, in increasing feature order, and how
/// many members of each group fired (the ground truth of co-activation).
struct TegumRow {
  std::vector<int> features;
  std::vector<double> values;
  std::vector<int> active_per_group;
};

class MutexGroupSampler {
 public:
  explicit MutexGroupSampler(MutexGroupsConfig cfg) : cfg_(std::move(cfg)) {
    cfg_.validate();
    int first = 0;
    for (int g = 0; g < cfg_.num_groups(); ++g) {
      const int size = cfg_.group_sizes[g];
      first_.push_back(first);
      std::vector<double> pi(size);
      double total = 0;
      for (int j = 0; j < size; ++j) total += pi[j] = std::pow(double(j + 1), -cfg_.member_zipf_exponent);
      for (auto& p : pi) p /= total;
      for (int j = 0; j < size; ++j) group_of_.push_back(g), choice_.push_back(pi[j]);
      first += size;
    }
    for (int j = 0; j < cfg_.ungrouped_features; ++j) group_of_.push_back(-1), choice_.push_back(1.0);
  }

  const MutexGroupsConfig& config() const { return cfg_; }
  int num_features() const { return static_cast<int>(group_of_.size()); }
  int num_groups() const { return cfg_.num_groups(); }
  /// Group of every feature; -1 for ungrouped features.
  const std::vector<int>& group_of() const { return group_of_; }
  int first_member(int g) const { return first_[g]; }
  /// pi_j: a member's probability of being the one chosen when its group fires.
  double choice_probability(int feature) const { return choice_[feature]; }
  /// p_j, the same under every firing mode.
  double marginal_probability(int feature) const {
    return group_of_[feature] < 0 ? cfg_.ungrouped_probability : cfg_.group_probability * choice_[feature];
  }

  TegumRow row(std::uint64_t r) const {
    // One stream per row; a row's draws are consumed in a fixed order (groups, then ungrouped).
    RandomStream rs(cfg_.seed, kStreamBase + r);
    TegumRow out;
    out.active_per_group.assign(num_groups(), 0);
    const double q = cfg_.group_probability;
    for (int g = 0; g < num_groups(); ++g) {
      const int first = first_[g], size = cfg_.group_sizes[g];
      GroupFiring mode = cfg_.firing;
      if (mode == GroupFiring::mutex && cfg_.coactivation > 0 && rs.uniform<double>() < cfg_.coactivation)
        mode = GroupFiring::independent;
      auto fire = [&](int f) {
        out.features.push_back(f);
        out.values.push_back(cfg_.value == FiringValue::uniform ? rs.uniform<double>() : 1.0);
        ++out.active_per_group[g];
      };
      if (mode == GroupFiring::mutex) {
        if (rs.uniform<double>() >= q) continue;
        double u = rs.uniform<double>(), acc = 0;
        int chosen = first + size - 1;  // the last member takes the rounding remainder
        for (int j = 0; j < size; ++j)
          if (u < (acc += choice_[first + j])) {
            chosen = first + j;
            break;
          }
        fire(chosen);
      } else if (mode == GroupFiring::independent) {
        for (int j = 0; j < size; ++j)
          if (rs.uniform<double>() < q * choice_[first + j]) fire(first + j);
      } else {  // correlated: a shared gate, then members on their own
        if (rs.uniform<double>() >= q) continue;
        for (int j = 0; j < size; ++j)
          if (rs.uniform<double>() < choice_[first + j]) fire(first + j);
      }
    }
    for (int f = num_features() - cfg_.ungrouped_features; f < num_features(); ++f)
      if (rs.uniform<double>() < cfg_.ungrouped_probability) {
        out.features.push_back(f);
        out.values.push_back(cfg_.value == FiringValue::uniform ? rs.uniform<double>() : 1.0);
      }
    return out;
  }

 private:
  static constexpr std::uint64_t kStreamBase = std::uint64_t(0x7e67) << 48;  // "tegum" rows
  MutexGroupsConfig cfg_;
  std::vector<int> group_of_, first_;
  std::vector<double> choice_;
};

}  // namespace synthsae::tegum
