#pragma once
// Where the time of a piece of work goes, kernel by kernel, on any backend. While a KernelTimer
// is alive, Kokkos's tool callbacks fence the device at each kernel's start and end and charge
// the time to that kernel's label; the time between kernels (cuBLAS products, copies, host
// work) goes to kBetweenKernels. The fences serialise the device and add their own latency, so
// the sum runs slower than unmeasured work: read the shares, take totals from a plain run.
#include <Kokkos_Core.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace synthsae {

class KernelTimer {
 public:
  static constexpr const char* kBetweenKernels = "(between kernels: GEMM, copies, host)";

  struct Entry {
    double seconds = 0;
    std::int64_t calls = 0;
  };

  /// Starts charging; one timer at a time (the callbacks are process-wide).
  KernelTimer() {
    if (active() != nullptr) throw std::logic_error("KernelTimer: another timer is already running");
    Kokkos::fence();
    mark_ = Clock::now();
    active() = this;
    set_callbacks(&begin_kernel, &end_kernel);
  }
  ~KernelTimer() {
    stop();
  }
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;

  /// Stops charging (the time up to now is counted); later kernels are not seen.
  void stop() {
    if (active() != this) return;
    Kokkos::fence();
    charge(Clock::now());
    set_callbacks(nullptr, nullptr);
    active() = nullptr;
  }

  /// Seconds and launches per label, kBetweenKernels included.
  const std::map<std::string, Entry>& entries() const { return entries_; }

  double total_seconds() const {
    double s = 0;
    for (const auto& [name, e] : entries_) s += e.seconds;
    return s;
  }

 private:
  using Clock = std::chrono::steady_clock;

  static KernelTimer*& active() {
    static KernelTimer* timer = nullptr;
    return timer;
  }

  static void set_callbacks(Kokkos_Profiling_beginFunction begin,
                            Kokkos_Profiling_endFunction end) {  // the C types: Kokkos 3.4 and 4.7 agree on them
    namespace tools = Kokkos::Tools::Experimental;
    tools::set_begin_parallel_for_callback(begin);
    tools::set_end_parallel_for_callback(end);
    tools::set_begin_parallel_reduce_callback(begin);
    tools::set_end_parallel_reduce_callback(end);
    tools::set_begin_parallel_scan_callback(begin);
    tools::set_end_parallel_scan_callback(end);
  }

  /// Charges the time since the last event to the kernel running (or to kBetweenKernels).
  void charge(Clock::time_point now) {
    const double dt = std::chrono::duration<double>(now - mark_).count();
    entries_[running_.empty() ? std::string(kBetweenKernels) : running_.back()].seconds += dt;
    mark_ = now;
  }

  static void begin_kernel(const char* name, std::uint32_t, std::uint64_t* id) {
    KernelTimer* t = active();
    if (t == nullptr) return;
    Kokkos::fence();  // what was launched before this kernel belongs to the time before it
    t->charge(Clock::now());
    t->running_.emplace_back(name);
    ++t->entries_[t->running_.back()].calls;
    *id = t->running_.size();
  }

  static void end_kernel(std::uint64_t) {
    KernelTimer* t = active();
    if (t == nullptr || t->running_.empty()) return;
    Kokkos::fence();
    t->charge(Clock::now());
    t->running_.pop_back();
  }

  std::map<std::string, Entry> entries_;
  std::vector<std::string> running_;  // a kernel launched from inside another's callback nests
  Clock::time_point mark_;
};

}  // namespace synthsae
