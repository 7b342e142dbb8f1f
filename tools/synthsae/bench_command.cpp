// synthsae bench [--preset NAME] [--archs LIST] [--l0 LIST] [--seeds N] [--samples N]
//                [--width N] [--eval-samples N] [--lr X] --out DIR
// Trains every architecture at every L0 (and seed), prints the table, writes results.csv,
// results.json and SVG plots: metrics against L0, training curves, and a heat map of one
// SAE's decoder against the true features.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <synthsae/architectures.hpp>
#include <synthsae/metrics/decoder_similarity.hpp>
#include <synthsae/metrics/supervised_probes.hpp>
#include <synthsae/saelens/sae_directory.hpp>
#include <synthsae/train/callbacks.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "output_dir.hpp"
#include "svg_plot.hpp"
#include "train_request.hpp"
#include "world_arg.hpp"

namespace synthsae::cli {

namespace {

constexpr const char* kBenchUsage =
    "usage: synthsae bench [--preset NAME] [--archs LIST] [--l0 LIST] [--seeds N] [--samples N]\n"
    "                      [--width N] [--eval-samples N] [--lr X] [--gemm-math M] [--screen-encoder]\n"
    "                      [--no-probes] --out DIR\n"
    "\n"
    "  --preset NAME      world (default cpu-1k)\n"
    "  --archs LIST       comma-separated (default batchtopk,matryoshka_batchtopk,jumprelu,\n"
    "                     standard,matching_pursuit)\n"
    "  --l0 LIST          comma-separated target L0s (default 8)\n"
    "  --seeds N          SAE seeds per configuration (default 1)\n"
    "  --samples N        training samples per SAE (default 3,000,000)\n"
    "  --width N          SAE latents (default num_features / 4)\n"
    "  --eval-samples N   evaluation samples per SAE (default 50,000)\n"
    "  --lr X             learning rate (default 1e-3)\n"
    "  --gemm-math M      fp32 (default) | tf32 | bf16: the training runs' GEMM arithmetic, as\n"
    "                     `synthsae train --gemm-math` (bf16 on AMX tiles or AVX-512 BF16 where the CPU has them)\n"
    "  --screen-encoder   the runs that can (batchtopk, matryoshka_batchtopk, topk) screen their encoder\n"
    "                     product, as `synthsae train --screen-encoder`; the others train as usual\n"
    "  --no-probes        skip the supervised ceiling (logistic-regression probes on x for the\n"
    "                     features the first SAE's latents match)\n"
    "  --out DIR          results.csv, results.json, metrics_vs_l0.svg, training_curves.svg,\n"
    "                     decoder_heatmap.svg, and runs/<arch>-l0<L0>-seed<S>/ (each an SAE in\n"
    "                     SAELens's layout)\n"
    "The table shows each run's target L0 and the L0 it reached on the evaluation samples.\n"
    "The runs of one L0 and seed train side by side, each batch drawn once for all of them (the\n"
    "same SAEs as `synthsae train` makes one at a time; a group's runs are in memory together).\n";

struct Row {
  std::string arch;
  double l0 = 0;
  int seed = 0;
  io::Json result;
  std::filesystem::path dir;
};

// Reads step and a named column from a run's metrics.csv (empty cells skipped).
Series csv_series(const std::filesystem::path& csv, const std::string& column, const std::string& name) {
  Series s{name, {}, {}};
  std::ifstream in(csv);
  std::string line;
  if (!std::getline(in, line)) return s;
  std::vector<std::string> header;
  for (std::stringstream h(line); std::getline(h, line, ',');) header.push_back(line);
  const auto col = std::find(header.begin(), header.end(), column) - header.begin();
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream r(line);
    for (std::string c; std::getline(r, c, ',');) cells.push_back(c);
    if (static_cast<std::size_t>(col) < cells.size() && !cells[col].empty()) {
      s.x.push_back(std::stod(cells[0]));
      s.y.push_back(std::stod(cells[col]));
    }
  }
  return s;
}

}  // namespace

int run_bench(const std::vector<std::string>& argv) {
  try {
    const Args args(
        argv, {"--preset", "--archs", "--l0", "--seeds", "--samples", "--width", "--eval-samples", "--lr", "--gemm-math", "--out"},
        {"--no-probes", "--screen-encoder"});
    if (args.help()) {
      std::fputs(kBenchUsage, stdout);
      return 0;
    }
    if (!args.has("--out")) throw UsageError("--out is required");
    const std::string preset_name = args.text("--preset").value_or("cpu-1k");
    const auto archs =
        split_list(args.text("--archs").value_or("batchtopk,matryoshka_batchtopk,jumprelu,standard,matching_pursuit"), true);
    for (const auto& a : archs) {
      if (!architectures::known(a)) {
        throw UsageError("--archs: unknown architecture '" + a + "' (" + architectures::name_list() + ")");
      }
    }
    if (archs.empty()) throw UsageError("--archs: empty list");
    for (std::size_t i = 0; i < archs.size(); ++i)  // one run directory per name
      if (std::find(archs.begin() + i + 1, archs.end(), archs[i]) != archs.end())
        throw UsageError("--archs: '" + archs[i] + "' is given twice");
    std::vector<double> l0s;
    for (const auto& t : split_list(args.text("--l0").value_or("8"), true)) {
      const auto v = parse_number(t, 1, 4096);
      if (!v || std::floor(*v) != *v) throw UsageError("--l0: '" + t + "' is not an integer in [1, 4096]");
      l0s.push_back(*v);
    }
    if (l0s.empty()) throw UsageError("--l0: empty list");
    for (std::size_t i = 0; i < l0s.size(); ++i)
      if (std::find(l0s.begin() + i + 1, l0s.end(), l0s[i]) != l0s.end())
        throw UsageError("--l0: " + std::to_string(int(l0s[i])) + " is given twice");
    const int seeds = static_cast<int>(args.integer("--seeds", 1, 100).value_or(1));
    TrainRequest base;
    base.model = preset_name;
    base.samples = static_cast<std::size_t>(args.integer("--samples", 1, std::int64_t(1) << 40).value_or(3'000'000));
    base.width = static_cast<std::size_t>(args.integer("--width", 1, 1 << 24).value_or(0));
    base.eval_samples =
        static_cast<std::size_t>(args.integer("--eval-samples", 1, std::int64_t(1) << 40).value_or(50'000));
    base.lr = args.number("--lr", 1e-12, 10).value_or(1e-3);
    base.batch = 1024;
    if (auto m = args.text("--gemm-math")) base.gemm_math = gemm_math_argument(*m);
    base.screen_encoder = screen_encoder_argument(args.has("--screen-encoder"), base.gemm_math);
    base.screen_where_supported = true;
    if (base.samples < base.batch)
      throw UsageError("--samples = " + std::to_string(base.samples) + ": must be at least one batch (1024)");
    base.eval_every = std::max<long>(1, static_cast<long>(base.samples / base.batch / 8));
    const std::filesystem::path out_dir = *args.text("--out");

    try {
      const auto t_start = std::chrono::steady_clock::now();
      SyntheticModel world = world_from_argument(preset_name);
      const double world_seconds = seconds_since(t_start);
      StagedDirectory out(out_dir, {"results.json"});
      // The runs of one L0 and seed read the same stream: they train side by side, taking turns
      // chunk by chunk, and each batch is drawn once for all of them (BatchCache; the same bits
      // as drawing it per run). The drawing is timed here, as the job's shared generation.
      std::vector<std::optional<Row>> slots(l0s.size() * archs.size() * std::size_t(seeds));
      double shared_generation = 0;
      std::size_t batches_drawn = 0, batches_reused = 0;
      for (std::size_t li = 0; li < l0s.size(); ++li)
        for (int seed = 0; seed < seeds; ++seed) {
          const double l0 = l0s[li];
          struct Pending {
            std::size_t slot;
            std::string arch, name;
            std::unique_ptr<TrainingRun> run;
          };
          std::vector<Pending> group;
          std::string names;
          for (std::size_t ai = 0; ai < archs.size(); ++ai) {
            const auto& arch = archs[ai];
            TrainRequest r = base;
            r.arch = arch;
            r.seed = static_cast<std::uint64_t>(seed);
            r.k = static_cast<int>(l0);
            if (architectures::knobs_of(arch).target_l0) r.target_l0 = l0;
            const std::string name = arch + "-l0" + std::to_string(int(l0)) + "-seed" + std::to_string(seed);
            r.out = out.path() / "runs" / name;
            r.progress_label = name;
            r.progress_last_line_only = true;  // the group reports its progress (below)
            group.push_back({(li * archs.size() + ai) * std::size_t(seeds) + std::size_t(seed), arch, name,
                             start_training(r, world)});
            names += (names.empty() ? "" : ", ") + name;
          }
          std::fprintf(stderr, "synthsae bench: training %s side by side (each batch drawn once)\n", names.c_str());
          auto cache = std::make_shared<BatchCache>(1);
          world.share_batches(cache);
          SampleBatch scratch;
          long chunk = 1, steps_done = 0, next_report = 0;
          const long steps_total = group.front().run->steps_left();
          const auto t_group = std::chrono::steady_clock::now();
          for (;;) {
            const TrainingRun* lead = nullptr;  // the next chunk is drawn from its stream
            for (const auto& p : group)
              if (!p.run->done()) {
                lead = p.run.get();
                break;
              }
            if (!lead) break;
            const long n = std::min(chunk, lead->steps_left());
            const auto t0 = std::chrono::steady_clock::now();
            world.set_sampling_seed(lead->stream_seed());
            for (long i = 0; i < n; ++i) {
              world.set_position(lead->next_sample() + std::uint64_t(i) * lead->batch_size());
              world.sample_into(scratch, lead->batch_size());
            }
            Kokkos::fence();
            shared_generation += seconds_since(t0);
            // Chunks of up to 64 batches in 64 MiB, from the size of the latest batch (the
            // sampler's rows widen when a sample has more active features than they held).
            const std::size_t batch_bytes = std::max<std::size_t>(1, BatchCache::bytes_of(scratch));
            chunk = static_cast<long>(std::clamp<std::size_t>((std::size_t(64) << 20) / batch_bytes, 1, 64));
            cache->set_capacity(static_cast<std::size_t>(chunk));
            for (auto& p : group)
              if (!p.run->done()) p.run->advance(n);
            steps_done += n;
            if (steps_done >= next_report || steps_done >= steps_total) {  // the group's progress, every 10 %
              const double elapsed = seconds_since(t_group);
              const double eta = elapsed * double(steps_total - steps_done) / double(std::max(1L, steps_done));
              std::fprintf(stderr, "synthsae bench: L0 %g seed %d  step %ld/%ld  %.3gM samples per run  ETA %s\n", l0,
                           seed, steps_done, steps_total, double(steps_done) * double(lead->batch_size()) / 1e6,
                           ProgressDisplay::duration(eta).c_str());
              next_report = steps_done + std::max(1L, steps_total / 10);
            }
          }
          world.share_batches(nullptr);
          batches_drawn += cache->misses();
          batches_reused += cache->hits();
          for (auto& p : group) {
            slots[p.slot] = Row{p.arch, l0, seed, p.run->finish(), out_dir / "runs" / p.name};
            p.run.reset();  // its memory, before the next group's
          }
        }
      std::vector<Row> rows;
      for (auto& r : slots) rows.push_back(std::move(*r));

      // Table, CSV, JSON.
      std::ostringstream csv;
      csv << "architecture,l0,seed,f1,mcc,uniqueness,explained_variance,precision,recall,dead_latents,shrinkage,sae_l0,"
             "true_l0,seconds\n";
      io::Json all = io::Json::array();
      std::printf("\n%-22s %6s %5s %6s %6s %6s %6s %6s %6s %6s %6s %7s\n", "architecture", "target", "L0", "F1", "MCC",
                  "uniq", "EV", "prec", "recall", "dead", "shrink", "seconds");
      for (const auto& row : rows) {
        const auto& j = row.result;
        const auto& c = j["classification"];
        std::printf("%-22s %6.0f %5.1f %6.3f %6.3f %6.3f %6.3f %6.3f %6.3f %6d %6.3f %7.1f\n", row.arch.c_str(), row.l0,
                    j["sae_l0"].get<double>(), c["f1_score"].get<double>(), j["mcc"].get<double>(),
                    j["uniqueness"].get<double>(), j["explained_variance"].get<double>(), c["precision"].get<double>(),
                    c["recall"].get<double>(), j["dead_latents"].get<int>(), j["shrinkage"].get<double>(),
                    j["seconds"].get<double>());
        csv << row.arch << ',' << row.l0 << ',' << row.seed << ',' << c["f1_score"].get<double>() << ','
            << j["mcc"].get<double>() << ',' << j["uniqueness"].get<double>() << ','
            << j["explained_variance"].get<double>() << ',' << c["precision"].get<double>() << ','
            << c["recall"].get<double>() << ',' << j["dead_latents"].get<int>() << ',' << j["shrinkage"].get<double>()
            << ',' << j["sae_l0"].get<double>() << ',' << j["true_l0"].get<double>() << ','
            << j["seconds"].get<double>() << '\n';
        io::Json entry = j;
        entry["architecture"] = row.arch, entry["l0"] = row.l0, entry["seed"] = row.seed,
        entry["run"] = row.dir.string();
        all.push_back(entry);
      }
      // The supervised ceiling beside the SAEs: probes for the features the first SAE matches.
      io::Json ceiling = nullptr;
      const auto t_probes = std::chrono::steady_clock::now();
      if (!args.has("--no-probes")) {
        const InferenceSae first = saelens::load_sae(out.path() / "runs" / rows.front().dir.filename());
        const auto sim = decoder_similarity(first.params.w_dec, world.feature_vectors());
        std::vector<std::int32_t> features(sim.best_feature.begin(), sim.best_feature.end());
        std::sort(features.begin(), features.end());
        features.erase(std::unique(features.begin(), features.end()), features.end());
        const ProbeResult probes = supervised_probe_scores(world, features);
        std::printf(
            "%-22s %6s %5s %6.3f %6s %6s %6s %6.3f %6.3f   (supervised logistic-regression probes, %zu features)\n",
            "supervised probes", "-", "-", probes.f1, "-", "-", "-", probes.precision, probes.recall, probes.features);
        ceiling = {{"f1_score", probes.f1},
                   {"precision", probes.precision},
                   {"recall", probes.recall},
                   {"features", probes.features}};
      }
      const double probe_seconds = seconds_since(t_probes);
      // The job's time by phase, summed over the runs (each run's own split is in its entry).
      io::Json phases = {{"world", world_seconds}};
      for (const auto& row : rows)
        for (const auto& [phase, sec] : row.result["phase_seconds"].items())
          phases[phase] = phases.value(phase, 0.0) + sec.get<double>();
      // Each run's own generation is its copies from the cache; the drawing is counted once, here.
      phases["generation"] = phases.value("generation", 0.0) + shared_generation;
      phases["probes"] = probe_seconds;
      phases["total"] = seconds_since(t_start);
      std::printf("\ntime (s): world %.1f, generation %.1f, steps %.1f, periodic evaluation %.1f, final evaluation %.1f,"
                  " probes %.1f; total %.1f before plots\n",
                  world_seconds, phases.value("generation", 0.0), phases.value("steps", 0.0),
                  phases.value("periodic_evaluation", 0.0), phases.value("final_evaluation", 0.0), probe_seconds,
                  phases["total"].get<double>());
      std::printf("batches: %zu drawn, %zu reused (the runs of one L0 and seed share them)\n", batches_drawn,
                  batches_reused);
      const std::string csv_text = csv.str();
      io::write_file_atomically(out.path() / "results.csv", [&](std::ostream& o) { o << csv_text; });
      io::write_json_file(out.path() / "results.json", {{"preset", preset_name},
                                                         {"samples_per_sae", base.samples},
                                                         {"gemm_math", gemm_math_name(base.gemm_math)},
                                                         {"screen_encoder", base.screen_encoder},
                                                         {"runs", all},
                                                         {"supervised_probes", ceiling},
                                                         {"phase_seconds", phases},
                                                         {"batches", {{"drawn", batches_drawn},
                                                                      {"reused", batches_reused}}}});

      // Metrics against L0, one series per architecture (seed means).
      std::vector<std::pair<std::string, std::vector<Series>>> panels;
      for (const auto& [title, key, sub] : std::vector<std::tuple<std::string, std::string, std::string>>{
               {"F1 score", "classification", "f1_score"},
               {"MCC", "mcc", ""},
               {"Uniqueness", "uniqueness", ""},
               {"Explained variance", "explained_variance", ""}}) {
        std::vector<Series> series;
        for (const auto& arch : archs) {
          Series s{arch, {}, {}};
          for (const double l0 : l0s) {
            double sum = 0;
            int n = 0;
            for (const auto& row : rows)
              if (row.arch == arch && row.l0 == l0)
                sum += sub.empty() ? row.result[key].get<double>() : row.result[key][sub].get<double>(), ++n;
            s.x.push_back(l0), s.y.push_back(n ? sum / n : NAN);
          }
          series.push_back(s);
        }
        panels.emplace_back(title, series);
      }
      write_line_charts(out.path() / "metrics_vs_l0.svg", "L0", panels);

      // Training curves of the first L0 and seed.
      std::vector<Series> mse, f1;
      for (const auto& arch : archs) {
        const auto dir = out.path() / "runs" / (arch + "-l0" + std::to_string(int(l0s[0])) + "-seed0");
        mse.push_back(csv_series(dir / "metrics.csv", "mse", arch));
        f1.push_back(csv_series(dir / "metrics.csv", "f1_score", arch));
      }
      write_line_charts(out.path() / "training_curves.svg", "training step",
                        {{"Reconstruction MSE", mse}, {"F1 (periodic evaluation)", f1}});

      // Heat map: decoder rows of one SAE (Matryoshka if trained, else the first) against the true
      // features, latents ordered by their best-matching feature.
      {
        const auto pick =
            std::find_if(rows.begin(), rows.end(), [](const Row& r) { return r.arch == "matryoshka_batchtopk"; });
        const Row& row = pick != rows.end() ? *pick : rows.front();
        const auto dir = out.path() / "runs" / row.dir.filename();
        const InferenceSae sae = saelens::load_sae(dir);
        const auto sim = decoder_similarity(sae.params.w_dec, world.feature_vectors());
        const std::vector<std::size_t> latents = best_feature_ordering(sim);
        const std::size_t shown = std::min<std::size_t>(96, latents.size());
        std::vector<std::int32_t> features;
        for (std::size_t q = 0; q < shown; ++q)
          if (std::find(features.begin(), features.end(), sim.best_feature[latents[q]]) == features.end())
            features.push_back(sim.best_feature[latents[q]]);
        std::vector<double> cells(shown * features.size());
        for (std::size_t q = 0; q < shown; ++q)
          for (std::size_t c = 0; c < features.size(); ++c)
            cells[q * features.size() + c] = sim.abs_cos[latents[q] * sim.num_features + features[c]];
        write_heatmap(out.path() / "decoder_heatmap.svg", row.arch + " decoder vs true features (|cos|)",
                      "true feature (best matches, ascending)", "latent (ordered by best match)", cells, shown,
                      features.size());
      }
      out.commit();
      std::fprintf(stderr, "synthsae bench: wrote %s (results.csv, results.json, 3 SVG plots, runs/)\n",
                   out_dir.c_str());
      return 0;
    } catch (const UsageError&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "synthsae bench: %s\n", e.what());
      return 1;
    }
  } catch (const UsageError& e) {
    std::fprintf(stderr, "synthsae bench: %s\n\n%s", e.what(), kBenchUsage);
    return 2;
  }
}

}  // namespace synthsae::cli
