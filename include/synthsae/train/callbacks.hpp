#pragma once
// Training callbacks, detected at compile time by the Trainer: a progress display (a live line
// on a terminal, plain periodic lines otherwise), a CSV log of training statistics, periodic
// evaluation through a user function, and periodic checkpoints.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <unistd.h>

#include "synthsae/core/error.hpp"
#include "synthsae/io/json.hpp"
#include "synthsae/train/trainer.hpp"

namespace synthsae {

/// "step 1200/9765  1.2M samples  48.1k samples/s  ETA 2m58s  loss 3.412  L0 25.0  dead 3"
struct ProgressDisplay {
  std::FILE* out = stderr;
  long every_steps = 0;  ///< 0: every 0.25 s on a terminal, every 10 % otherwise
  std::string label;     ///< printed before each line (which run, where several take turns)
  bool terminal = false;
  double last_print = -1;

  template <class Tr>
  void on_start(const Tr&) {
    terminal = ::isatty(::fileno(out)) != 0;
  }

  static std::string duration(double s) {
    char buf[32];
    if (s >= 3600)
      std::snprintf(buf, sizeof buf, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
    else
      std::snprintf(buf, sizeof buf, "%dm%02ds", int(s / 60), int(s) % 60);
    return buf;
  }

  std::string line(const StepInfo& i) const {
    const double rate = i.elapsed_seconds > 0 ? double(i.samples) / i.elapsed_seconds : 0;
    const double eta = rate > 0 ? double(i.total_steps - i.step) * (double(i.samples) / double(i.step)) / rate : 0;
    char buf[256];
    std::snprintf(buf, sizeof buf, "step %ld/%ld  %.3gM samples  %.1fk samples/s  ETA %s  loss %.4g  L0 %.1f  dead %zu",
                  i.step, i.total_steps, double(i.samples) / 1e6, rate / 1e3, duration(eta).c_str(), i.losses.total(),
                  i.l0, i.dead_latents);
    std::string text = label.empty() ? std::string(buf) : label + "  " + buf;
    if (i.skipped_steps > 0) text += "  skipped " + std::to_string(i.skipped_steps) + " non-finite";
    return text;
  }

  template <class Tr>
  void on_step(const StepInfo& i, Tr&) {
    const bool last = i.step == i.total_steps;
    bool show_now;
    if (every_steps > 0)
      show_now = i.step % every_steps == 0;
    else if (terminal)
      show_now = i.elapsed_seconds - last_print >= 0.25;
    else
      show_now = i.step % std::max<long>(1, i.total_steps / 10) == 0;
    if (!show_now && !last) return;
    last_print = i.elapsed_seconds;
    if (terminal)
      std::fprintf(out, "\r\033[K%s%s", line(i).c_str(), last ? "\n" : "");
    else
      std::fprintf(out, "%s\n", line(i).c_str());
    std::fflush(out);
  }
};

/// metrics.csv, the one schema of training logs (library and CLI): a row of training statistics
/// every `every_steps` steps and at the last step, and, every `eval_every` steps, a row with the
/// ground-truth evaluation `evaluate` returns (SAELens keys; its columns are empty on other rows).
struct CsvLog {
  static constexpr const char* kHeader =
      "step,samples,loss,mse,inner_mse,penalty,aux,l0,dead_latents,lr,coefficient,grad_norm,skipped_steps,seconds,"
      "mcc,uniqueness,explained_variance,f1_score,eval_sae_l0";
  std::filesystem::path path;
  long every_steps = 100;
  long eval_every = 0;
  std::function<io::Json(const StepInfo&)> evaluate;
  std::ofstream file;

  template <class Tr>
  void on_start(const Tr&) {
    if (file.is_open()) return;  // a run fitted in pieces (Trainer::fit_steps) keeps one file
    file.open(path, std::ios::trunc);
    if (!file) throw IoError(path.string(), "cannot open for writing");
    file << kHeader << '\n';
  }
  /// Each row is composed whole before it is written: an evaluation that throws leaves no half
  /// row for the next one to continue (a run fitted in pieces keeps the file), and a failed
  /// write (a full disk) is an IoError, not a silently short log.
  template <class Tr>
  void on_step(const StepInfo& i, Tr&) {
    const bool eval_now = eval_every > 0 && evaluate && i.step % eval_every == 0;
    if (i.step % std::max<long>(1, every_steps) != 0 && !eval_now && i.step != i.total_steps) return;
    std::ostringstream row;
    row << i.step << ',' << i.samples << ',' << i.losses.total() << ',' << i.losses.mse << ',' << i.losses.inner_mse
        << ',' << i.losses.penalty << ',' << i.losses.aux << ',' << i.l0 << ',' << i.dead_latents << ',' << i.lr << ','
        << i.coefficient << ',' << i.grad_norm << ',' << i.skipped_steps << ',' << i.elapsed_seconds;
    if (eval_now) {
      const io::Json r = evaluate(i);
      row << ',' << r["mcc"].get<double>() << ',' << r["uniqueness"].get<double>() << ','
          << r["explained_variance"].get<double>() << ',' << r["classification"]["f1_score"].get<double>() << ','
          << r["sae_l0"].get<double>();
    } else {
      row << ",,,,,";
    }
    row << '\n';
    file << row.str();
    file.flush();
    if (!file) throw IoError(path.string(), "cannot write the row of step " + std::to_string(i.step));
  }
  template <class Tr>
  void on_end(const StepInfo&, Tr&) {
    file.close();
  }
};

/// Calls `evaluate(info)` every `every_steps` steps, e.g. a ground-truth evaluation.
struct PeriodicEvaluation {
  long every_steps = 0;
  std::function<void(const StepInfo&)> evaluate;
  template <class Tr>
  void on_step(const StepInfo& i, Tr&) {
    if (every_steps > 0 && evaluate && i.step % every_steps == 0) evaluate(i);
  }
};

/// Saves a checkpoint into `dir` every `every_steps` steps.
struct PeriodicCheckpoint {
  std::filesystem::path dir;
  long every_steps = 0;
  template <class Tr>
  void on_step(const StepInfo& i, Tr& trainer) {
    if (every_steps > 0 && i.step % every_steps == 0 && i.step != i.total_steps) trainer.save_checkpoint(dir);
  }
};

}  // namespace synthsae
