// The sparse training step (active latents only) against the dense one: same losses and
// gradients for every TopK-family composition, auxiliary loss on dead latents included.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>

#include "sae_test_support.hpp"
#include "synthsae/core/counter_rng.hpp"
#include "synthsae/sae/kernels/output_map.hpp"
#include "synthsae/sae/sae.hpp"

using namespace synthsae;

namespace {

constexpr int kStepBatch = 24, kStepIn = 12, kStepLatents = 40;

Matrix<double> step_input(std::uint64_t seed) { return test::random_input(kStepBatch, kStepIn, seed); }

// Latents 1, 1 + stride, 1 + 2 stride, ... dead: stride 3 kills 13 of 40, more than k_aux = kStepIn / 2
// = 6 (AuxK selects per row); stride 9 kills 5 (AuxK takes them all: its GEMM form).
DeadMask dead_every(int stride, std::size_t& count) { return test::dead_every(kStepLatents, stride, count); }

// Both paths sum the same products in different orders: in float64 they agree to ~1e-15
// relative; 1e-12 (relative to the tensor's largest entry) would still catch any missing term.
template <class S>
void check_same_step(S& sae, std::uint64_t seed, int dead_stride) {
  REQUIRE(S::has_sparse_step);
  const bool with_dead = dead_stride > 0;
  const auto x = step_input(seed);
  std::size_t num_dead = 0;
  const DeadMask dead = with_dead ? dead_every(dead_stride, num_dead) : DeadMask();
  SaeParameters<double> sparse = sae.parameters().zeros_like(), dense = sae.parameters().zeros_like();
  const auto state = sae.activation_state();
  sae.set_sparse_step(true);
  const StepLosses ls = sae.forward_backward(x, sparse, dead, num_dead);
  sae.activation_state() = state;
  sae.set_sparse_step(false);
  const StepLosses ld = sae.forward_backward(x, dense, dead, num_dead);
  CHECK(ls.mse == Approx(ld.mse).epsilon(1e-12));
  CHECK(ls.inner_mse == Approx(ld.inner_mse).epsilon(1e-12).margin(1e-300));
  CHECK(ls.aux == Approx(ld.aux).epsilon(1e-12).margin(1e-300));
  if (with_dead) CHECK(ls.aux > 0);
  test::check_same_tensors(sparse, dense, 1e-12);
}

}  // namespace

TEST_CASE("Sparse step = dense step: TopK, AbsTopK and BatchTopK, with and without dead latents", "[sae][sparse]") {
  TopKSae<double> topk(kStepIn, kStepLatents, TopK{4, true}, {}, AuxK{0.7}, {}, 0.5, 11);
  check_same_step(topk, 1, 0);
  check_same_step(topk, 2, 3);
  check_same_step(topk, 2, 9);
  AbsTopKSae<double> abs_topk(kStepIn, kStepLatents, AbsTopK{4, true}, {}, AuxK{0.7}, {}, 0.5, 13);
  check_same_step(abs_topk, 5, 0);
  check_same_step(abs_topk, 6, 3);
  BatchTopKSae<double> btk(kStepIn, kStepLatents, BatchTopK{3.5, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 12);
  check_same_step(btk, 3, 0);
  check_same_step(btk, 4, 3);
  check_same_step(btk, 4, 9);
}

TEST_CASE("Sparse step = dense step: Matryoshka BatchTopK (prefix reconstructions)", "[sae][sparse]") {
  MatryoshkaBatchTopKSae<double> mat(kStepIn, kStepLatents, BatchTopK{5, true, 0.01}, {}, AuxK{1.0}, Matryoshka{{4, 10, 25}},
                                     0.5, 13);
  check_same_step(mat, 5, 0);
  check_same_step(mat, 6, 3);
  check_same_step(mat, 6, 9);
}

namespace {

// Per latent, the rows of the last batch where z != 0, counted from the matrix (which a sparse
// step writes only now).
template <class S>
std::vector<std::int64_t> firing_from_z(const S& sae) {
  auto z = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.last_activations());
  std::vector<std::int64_t> fired(z.extent(1), 0);
  for (std::size_t i = 0; i < z.extent(0); ++i)
    for (std::size_t j = 0; j < z.extent(1); ++j) fired[j] += z(i, j) != 0.0;
  return fired;
}

// After a sparse step: the counts from the active set (added to 1 everywhere) equal z's, then z
// is written and the SAE no longer offers them.
template <class S>
void check_firing_counts(const S& sae, std::int64_t expected_total) {
  std::vector<std::int64_t> counts(kStepLatents, 1);
  const auto rows = sae.add_last_firing_counts(counts);
  REQUIRE(rows.has_value());
  CHECK(*rows == std::size_t(kStepBatch));
  const auto fired = firing_from_z(sae);
  std::int64_t total = 0;
  for (int j = 0; j < kStepLatents; ++j) {
    CHECK(counts[j] == fired[j] + 1);
    total += fired[j];
  }
  CHECK(total == expected_total);
  CHECK_FALSE(sae.add_last_firing_counts(counts).has_value());
}

}  // namespace

TEST_CASE("A sparse step's firing counts come from its active set; z is written when asked for", "[sae][sparse]") {
  if constexpr (!host_accessible_v<MemSpace>) return;  // the host's trainer counts this way
  const auto x = step_input(7);
  std::size_t num_dead = 0;
  const DeadMask dead = dead_every(3, num_dead);
  // BatchTopK keeps floor(3.5 x 24) = 84 entries (no ties among random keys); AuxK's dead latents
  // add to the gradients, never to z.
  BatchTopKSae<double> btk(kStepIn, kStepLatents, BatchTopK{3.5, true, 0.01}, {}, AuxK{1.0}, {}, 0.5, 12);
  SaeParameters<double> g = btk.parameters().zeros_like();
  btk.forward_backward(x, g, dead, num_dead);
  check_firing_counts(btk, 84);
  std::vector<std::int64_t> counts(kStepLatents, 0);
  btk.set_sparse_step(false);  // the dense step writes z itself
  btk.forward_backward(x, g, dead, num_dead);
  CHECK_FALSE(btk.add_last_firing_counts(counts).has_value());
  // The adaptive ReLU step, sparse here (crossover 1): z = c on its gathered entries, h > 0.
  StandardSae<double> relu(kStepIn, kStepLatents, Relu{}, L1Penalty{0.7}, {}, {}, 0.5, 3);
  relu.set_sparse_step_max_density(1.0);
  SaeParameters<double> gr = relu.parameters().zeros_like();
  relu.forward_backward(x, gr);
  REQUIRE(relu.last_step_was_sparse());
  const test::HostSae host(x, relu.parameters());
  std::int64_t positive = 0;
  for (int i = 0; i < kStepBatch; ++i)
    for (int j = 0; j < kStepLatents; ++j) positive += host.pre(i, j) > 0;
  check_firing_counts(relu, positive);
  // MatryoshkaAuxK reads b.z in its sparse hook, so that composition writes z in the step.
  using MatAux = Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka, double>;
  STATIC_REQUIRE(MatAux::policies_read_feature_acts);
  STATIC_REQUIRE_FALSE(BatchTopKSae<double>::policies_read_feature_acts);
  MatAux mat(kStepIn, kStepLatents, BatchTopK{3.5, true, 0.01}, {}, MatryoshkaAuxK{1.0, {4, 10, 25}},
             Matryoshka{{4, 10, 25}}, 0.5, 13);
  SaeParameters<double> gm = mat.parameters().zeros_like();
  mat.forward_backward(x, gm, dead, num_dead);
  REQUIRE(mat.last_step_was_sparse());
  CHECK_FALSE(mat.add_last_firing_counts(counts).has_value());
}

TEST_CASE("Compositions with a penalty or a dense activation keep the dense step", "[sae][sparse]") {
  STATIC_REQUIRE(!StandardSae<double>::has_sparse_step);
  STATIC_REQUIRE(!JumpReluSae<double>::has_sparse_step);
  STATIC_REQUIRE(!Sae<TopK, L1Penalty, NoAux, NoNesting, double>::has_sparse_step);
  STATIC_REQUIRE(BatchTopKSae<float>::has_sparse_step);
}

TEST_CASE("Sparse kernels: row-ordered (device) and column-ordered (host) versions agree", "[sae][sparse]") {
  // Both sum the same products per output element in different orders; float64 agreement to
  // 1e-12 of the largest entry. Widths below d_sae exercise the Matryoshka prefixes.
  const auto xc = step_input(21);
  const auto g = step_input(22);
  ActiveSet<double> a;
  a.gather(
      kStepBatch, kStepLatents, KOKKOS_LAMBDA(int i, int j, double& v) {
        v = 0.1 * (i + 1) - 0.03 * j;
        return (i * 7 + j * 3) % 5 == 0;
      });
  REQUIRE(a.entries > std::size_t(kStepBatch));
  const auto grad = a.grad;
  Kokkos::parallel_for(
      Kokkos::RangePolicy<ExecSpace>(0, a.entries), KOKKOS_LAMBDA(int e) { grad(e) = 0.5 - 0.01 * e; });
  auto compare = [](const auto& x, const auto& y) { CHECK(test::relative_worst_gap(x, y) <= 1e-12); };
  Matrix<double> xc_t("xc_t", kStepIn, kStepBatch), enc_rows("enc_rows", kStepIn, kStepLatents), enc_cols("enc_cols", kStepIn, kStepLatents);
  Vector<double> b_rows("b_rows", kStepLatents), b_cols("b_cols", kStepLatents);
  kernels::transpose(xc, xc_t);
  kernels::sparse_encoder_grad_by_rows(a, xc_t, enc_rows, b_rows, false);
  // One entry by hand: W_enc(k, j) = sum over active (i, j) of xc(i, k) grad.
  auto hx = Kokkos::create_mirror_view_and_copy(HostSpace(), xc);
  auto he = Kokkos::create_mirror_view_and_copy(HostSpace(), enc_rows);
  auto starts = Kokkos::create_mirror_view_and_copy(HostSpace(), a.row_start);
  auto cols = Kokkos::create_mirror_view_and_copy(HostSpace(), a.col);
  auto grads = Kokkos::create_mirror_view_and_copy(HostSpace(), a.grad);
  double expected = 0;
  for (int i = 0; i < kStepBatch; ++i)
    for (int e = starts(i); e < starts(i + 1); ++e)
      if (cols(e) == 5) expected += hx(i, 2) * grads(e);
  CHECK(he(2, 5) == Approx(expected).epsilon(1e-12));
  // The column-ordered versions exist on host backends only (their index is built there).
  if constexpr (host_accessible_v<MemSpace>) {
    for (int width : {kStepLatents, 17}) {
      Matrix<double> by_rows("by_rows", kStepLatents, kStepIn), by_cols("by_cols", kStepLatents, kStepIn);
      Kokkos::deep_copy(by_rows, 1.0), Kokkos::deep_copy(by_cols, 1.0);
      kernels::sparse_decoder_grad_by_rows(a, g, by_rows, true, width);
      kernels::sparse_decoder_grad_by_columns(a, g, by_cols, true, width);
      compare(by_rows, by_cols);
    }
    kernels::sparse_encoder_grad_by_columns(a, xc, enc_cols, b_cols, false);
    compare(enc_rows, enc_cols);
    compare(b_rows, b_cols);
  }
  // The GPU's forms: the column index built by the stable bucket index (the same order as the
  // host's counting sort, entry for entry), then one team per latent over the inputs; on the host
  // the teams have one thread.
  auto as_vector = [&](const Kokkos::View<int*, MemSpace>& v, std::size_t n) {
    auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), v);
    return std::vector<int>(h.data(), h.data() + n);
  };
  if constexpr (host_accessible_v<MemSpace>) {
    a.columns_indexed = false;
    a.index_columns(kStepLatents);
    const auto starts_host = as_vector(a.col_start, kStepLatents + 1), order_host = as_vector(a.by_column, a.entries),
               rows_host = as_vector(a.entry_row, a.entries);
    a.index_columns_on_device(kStepLatents);
    CHECK(as_vector(a.col_start, kStepLatents + 1) == starts_host);
    CHECK(as_vector(a.by_column, a.entries) == order_host);
    CHECK(as_vector(a.entry_row, a.entries) == rows_host);
  }
  for (int width : {kStepLatents, 17}) {
    Matrix<double> by_rows("by_rows", kStepLatents, kStepIn), by_teams("by_teams", kStepLatents, kStepIn);
    Kokkos::deep_copy(by_rows, 1.0), Kokkos::deep_copy(by_teams, 1.0);
    kernels::sparse_decoder_grad_by_rows(a, g, by_rows, true, width);
    kernels::sparse_decoder_grad_by_teams(a, g, by_teams, true, width);
    compare(by_rows, by_teams);
  }
  Matrix<double> enc_teams("enc_teams", kStepIn, kStepLatents);
  Vector<double> b_teams("b_teams", kStepLatents);
  kernels::sparse_encoder_grad_by_teams(a, xc, enc_teams, b_teams, false);
  compare(enc_rows, enc_teams);
  compare(b_rows, b_teams);
}

TEST_CASE("Matryoshka per-level aux loss: sparse = dense, and the value by hand", "[sae][sparse]") {
  using MatAuxSae = Sae<BatchTopK, NoPenalty, MatryoshkaAuxK, Matryoshka, double>;
  const std::vector<int> widths = {4, 10, 25};
  MatAuxSae sae(kStepIn, kStepLatents, BatchTopK{5, true, 0.01}, {}, MatryoshkaAuxK{0.9, widths}, Matryoshka{widths}, 0.5, 14);
  check_same_step(sae, 7, 3);
  sae.aux_state().term.dense_when_all = false;  // each level through the sparse kernels too
  check_same_step(sae, 7, 3);
  sae.aux_state().term.dense_when_all = true;
  CHECK_THROWS_WITH((MatAuxSae(kStepIn, kStepLatents, BatchTopK{5}, {}, MatryoshkaAuxK{1.0, {4, 10}}, Matryoshka{widths})),
                    Catch::Contains("matryoshka_widths"));

  // By hand on the host: levels [0,4) [4,10) [10,25) [25,40); dead = every third latent from 1.
  const auto x = step_input(8);
  std::size_t num_dead = 0;
  const DeadMask dead = dead_every(3, num_dead);  // 1 to 5 per level: each level's GEMM form by default
  SaeParameters<double> g = sae.parameters().zeros_like();
  const auto state = sae.activation_state();
  const double aux = sae.forward_backward(x, g, dead, num_dead).aux;
  sae.activation_state() = state;
  sae.aux_state().term.dense_when_all = false;  // the same value through the sparse kernels
  CHECK(sae.forward_backward(x, g, dead, num_dead).aux == Approx(aux).epsilon(1e-12));
  sae.aux_state().term.dense_when_all = true;
  const auto& p = sae.parameters();
  const test::HostSae host(x, p);
  const auto xh = host.x, wd = host.w_dec;
  const auto bd = host.b_dec;
  auto z = Kokkos::create_mirror_view_and_copy(HostSpace(), sae.last_activations());
  auto pre = [&](int i, int j) { return host.pre(i, j); };
  std::vector<double> norm(kStepLatents);
  for (int j = 0; j < kStepLatents; ++j) norm[j] = host.norm(j);
  const int half = kStepIn / 2;
  double expected = 0;
  int lo = 0;
  for (int hi : {4, 10, 25, kStepLatents}) {
    std::vector<int> level_dead;
    for (int j = lo; j < hi; ++j)
      if (j % 3 == 1) level_dead.push_back(j);
    const int k_level = std::min<int>(half, level_dead.size());
    const double scale = std::min(double(level_dead.size()) / half, 1.0);
    double level = 0;
    for (int i = 0; i < kStepBatch; ++i) {
      std::vector<int> cand = level_dead;
      std::stable_sort(cand.begin(), cand.end(),
                       [&](int a, int b) { return pre(i, a) * norm[a] > pre(i, b) * norm[b]; });
      for (int k = 0; k < kStepIn; ++k) {
        double prefix = bd(k), e = 0;
        for (int j = 0; j < hi; ++j)
          if (z(i, j) != 0) prefix += pre(i, j) * wd(j, k);
        for (int q = 0; q < k_level; ++q) e += pre(i, cand[q]) * wd(cand[q], k);
        const double diff = e - (xh(i, k) - prefix);
        level += diff * diff;
      }
    }
    expected += scale * level / kStepBatch;
    lo = hi;
  }
  CHECK(aux == Approx(0.9 * expected).epsilon(1e-10));
}

TEST_CASE("AuxK's GEMM form (every dead latent selected) equals its sparse kernels", "[sae][sparse]") {
  // One AuxK term on a float64 TopK SAE's step buffers, run twice on the same inputs: through the
  // four GEMMs over the dead columns and through the sparse kernels over the same active set.
  // Both sum the same products in other orders: 1e-12 of each tensor's largest entry.
  TopKSae<double> sae(kStepIn, kStepLatents, TopK{4, true}, {}, AuxK{1.0}, {}, 0.5, 15);
  const auto x = step_input(9);
  std::size_t num_dead = 0;
  const DeadMask dead = dead_every(9, num_dead);
  SaeParameters<double> g0 = sae.parameters().zeros_like();
  sae.set_sparse_step(true);
  sae.forward_backward(x, g0, DeadMask(), 0);  // fills the step buffers (h, key, x_hat)
  auto& b = sae.training_buffers();
  const auto& p = sae.parameters();
  std::map<bool, SaeParameters<double>> grads;
  std::map<bool, double> sq;
  std::map<bool, std::vector<double>> dh;
  for (const bool gemm_form : {true, false}) {
    detail::SparseAuxTerm<double> term;
    term.dense_when_all = gemm_form;
    grads.emplace(gemm_form, p.zeros_like());
    auto& g = grads.at(gemm_form);
    sq[gemm_form] = term.run(b, p, g, dead, kStepIn / 2, b.x_hat, 0.25);
    CHECK(term.all_selected == gemm_form);
    term.encoder_grad(b, g);
    REQUIRE(term.selected.entries == std::size_t(kStepBatch) * num_dead);
    const auto grad = Kokkos::create_mirror_view_and_copy(HostSpace(), term.selected.grad);
    const auto col = Kokkos::create_mirror_view_and_copy(HostSpace(), term.selected.col);
    for (std::size_t e = 0; e < term.selected.entries; ++e) {
      CHECK(col(e) % 9 == 1);
      dh[gemm_form].push_back(grad(e));
    }
  }
  CHECK(sq[true] == Approx(sq[false]).epsilon(1e-12));
  CHECK(sq[true] > 0);
  double largest = 0, worst = 0;
  for (std::size_t e = 0; e < dh[true].size(); ++e) {
    largest = std::max(largest, std::fabs(dh[false][e]));
    worst = std::max(worst, std::fabs(dh[true][e] - dh[false][e]));
  }
  CHECK(largest > 0);
  CHECK(worst <= 1e-12 * largest);
  test::check_same_tensors(grads.at(true), grads.at(false), 1e-12, "b_dec");  // AuxK's term has no b_dec
}

TEST_CASE("AuxK at d_in = 4,096: k_aux = 2,048 is above the heap's limit and still selects exactly",
          "[sae][sparse][select]") {
  // Every modern language model is at least this wide; per-sample top-k used to stop at 1,024.
  const int d = 4096, s = 4096, rows = 4;
  TopKSae<float> sae(d, s, TopK{32, true}, {}, AuxK{1.0}, {}, 0.5, 5);
  Matrix<float> x("x", rows, d);
  auto hx = Kokkos::create_mirror_view(x);
  RandomStream r(5, 0);
  for (int i = 0; i < rows; ++i)
    for (int k = 0; k < d; ++k) hx(i, k) = r.normal<float>();
  Kokkos::deep_copy(x, hx);
  Kokkos::View<std::uint8_t*, MemSpace> dead("dead", s);
  Kokkos::deep_copy(dead, std::uint8_t(1));
  SaeParameters<float> sparse = sae.parameters().zeros_like(), dense = sae.parameters().zeros_like();
  sae.set_sparse_step(true);
  const StepLosses ls = sae.forward_backward(x, sparse, dead, s);
  sae.set_sparse_step(false);
  const StepLosses ld = sae.forward_backward(x, dense, dead, s);
  CHECK(std::isfinite(ls.aux));
  CHECK(ls.aux > 0);
  // Float sums in two orders over 2,048 selected latents: 1e-4 relative.
  CHECK(ls.aux == Approx(ld.aux).epsilon(1e-4));
}

TEST_CASE("Sparse kernels: the GPU's one-team-per-row forms equal the per-row forms", "[sae][sparse]") {
  // Decode sums each element in the same order either way; the squared error and the entries' dot
  // products are team reductions there: float64 agreement to 1e-12 of the largest entry. Widths
  // below d_sae exercise the Matryoshka prefixes, the output map the per-row normalisations.
  const auto x = step_input(31);
  const auto g_in = step_input(32);
  const auto w = test::random_input(kStepLatents, kStepIn, 33);
  Vector<double> bias("bias", kStepIn);
  Kokkos::deep_copy(bias, 0.25);
  ActiveSet<double> a;
  a.gather(
      kStepBatch, kStepLatents, KOKKOS_LAMBDA(int i, int j, double& v) {
        v = 0.2 * (i % 5) - 0.05 * j + 0.3;
        return (i * 5 + j * 7) % 6 == 0;
      });
  REQUIRE(a.entries > std::size_t(kStepBatch));
  OutputMap<double> map;
  map.target = test::random_input(kStepBatch, kStepIn, 34);
  map.scale = Vector<double>("scale", kStepBatch), map.shift = Vector<double>("shift", kStepBatch);
  Kokkos::deep_copy(map.scale, 1.5), Kokkos::deep_copy(map.shift, -0.125);
  for (int width : {kStepLatents, 17}) {
    INFO("width " << width);
    Matrix<double> rows_out("rows_out", kStepBatch, kStepIn), teams_out("teams_out", kStepBatch, kStepIn);
    kernels::sparse_decode(a, w, bias, rows_out, width);  // the host's form here
    kernels::sparse_decode_by_teams(a, w, bias, teams_out, width);
    CHECK(test::relative_worst_gap(rows_out, teams_out) <= 1e-12);
    for (bool accumulate : {false, true}) {
      Kokkos::deep_copy(a.grad, 0.5);
      kernels::sparse_row_dots(a, g_in, w, accumulate, width);
      Vector<double> rows_grad("rows_grad", a.entries);
      Kokkos::deep_copy(rows_grad, Kokkos::subview(a.grad, Kokkos::make_pair(std::size_t(0), a.entries)));
      Kokkos::deep_copy(a.grad, 0.5);
      kernels::sparse_row_dots_by_teams(a, g_in, w, accumulate, width);
      CHECK(test::relative_worst_gap(rows_grad, Kokkos::subview(a.grad, Kokkos::make_pair(std::size_t(0), a.entries))) <= 1e-12);
    }
    for (bool mapped : {false, true}) {
      const OutputMap<double> use = mapped ? map : OutputMap<double>{};
      Matrix<double> xh_rows("xh_rows", kStepBatch, kStepIn), g_rows("g_rows", kStepBatch, kStepIn);
      Matrix<double> xh_teams("xh_teams", kStepBatch, kStepIn), g_teams("g_teams", kStepBatch, kStepIn);
      Kokkos::deep_copy(a.grad, 0.5);
      const double mse_rows = kernels::sparse_reconstruct(a, w, bias, x, xh_rows, g_rows, width, true, use);
      Vector<double> grad_rows("grad_rows", a.entries);
      Kokkos::deep_copy(grad_rows, Kokkos::subview(a.grad, Kokkos::make_pair(std::size_t(0), a.entries)));
      Kokkos::deep_copy(a.grad, 0.5);
      const double mse_teams = kernels::sparse_reconstruct_by_teams(a, w, bias, x, xh_teams, g_teams, width, true, use);
      CHECK(mse_teams == Approx(mse_rows).epsilon(1e-12));
      CHECK(mse_rows > 0);
      CHECK(test::relative_worst_gap(xh_rows, xh_teams) <= 1e-12);
      CHECK(test::relative_worst_gap(g_rows, g_teams) <= 1e-12);
      CHECK(test::relative_worst_gap(grad_rows, Kokkos::subview(a.grad, Kokkos::make_pair(std::size_t(0), a.entries))) <= 1e-12);
    }
  }
}

TEST_CASE("ActiveSet::gather keeps exactly the selected entries, in row and column order", "[sae][sparse]") {
  // 37 x 1,000 (1,000 = 62 blocks of 16 and a tail of 8) with about 1% selected, so that most of
  // the fill pass's blocks are empty and skipped; and one dense selection (every block taken).
  constexpr int rows = 37, cols = 1000;
  for (int modulus : {97, 2}) {
    INFO("every " << modulus << "th entry by a hash");
    auto chosen = [modulus](int i, int j) { return (i * 7919 + j * 104729) % modulus == 0; };
    ActiveSet<double> a;
    a.gather(
        rows, cols, KOKKOS_LAMBDA(int i, int j, double& v) {
          const bool on = (i * 7919 + j * 104729) % modulus == 0;
          if (on) v = i * 1024.0 + j;  // exact: no rounding to differ between the sides
          return on;
        });
    auto starts = Kokkos::create_mirror_view_and_copy(HostSpace(), a.row_start);
    auto col = Kokkos::create_mirror_view_and_copy(HostSpace(), a.col);
    auto val = Kokkos::create_mirror_view_and_copy(HostSpace(), a.value);
    std::size_t e = 0;
    for (int i = 0; i < rows; ++i) {
      REQUIRE(starts(i) == static_cast<int>(e));
      for (int j = 0; j < cols; ++j) {
        if (!chosen(i, j)) continue;
        REQUIRE(e < a.entries);
        REQUIRE(col(e) == j);
        REQUIRE(val(e) == i * 1024.0 + j);
        ++e;
      }
    }
    CHECK(e == a.entries);
    CHECK(e > std::size_t(modulus == 2 ? 18000 : 300));
  }
}

TEST_CASE("dot_contiguous equals the float64 sum for every length and offset", "[sae][sparse]") {
  // Lengths 0..100 cover the 32-lane body and every tail. Float terms of size ~1: the float sum's
  // error is at most ~n ulp of the sum of |terms| (relative 6e-8 each), far below a dropped or
  // doubled term.
  RandomStream rng(9, 0);
  std::vector<float> a(140), b(140);
  for (int i = 0; i < 140; ++i) a[i] = rng.normal<float>(), b[i] = rng.normal<float>();
  for (int offset : {0, 3}) {
    for (int n = 0; n <= 100; ++n) {
      double exact = 0, magnitude = 0;
      for (int k = 0; k < n; ++k) {
        exact += double(a[offset + k]) * double(b[offset + k]);
        magnitude += std::abs(double(a[offset + k]) * double(b[offset + k]));
      }
      INFO("n " << n << " offset " << offset);
      const float got = kernels::dot_contiguous(a.data() + offset, b.data() + offset, n);
      REQUIRE(std::abs(double(got) - exact) <= 1e-6 * magnitude + 1e-30);
    }
  }
}

TEST_CASE("dot_contiguous's AVX form equals the fixed tree of 32 fused sums bit for bit", "[sae][sparse]") {
#ifdef SYNTHSAE_DOT_AVX
  // The reference: s[u] gets element k with k % 32 == u through std::fma, then the pairwise tree
  // (16, 8, 4, 2, 1). Any other order of the sums or a lost tail lane changes the bits of some of
  // these 2 x 140 random dot products.
  RandomStream rng(10, 0);
  std::vector<float> a(180), b(180);
  for (int i = 0; i < 180; ++i) a[i] = rng.normal<float>(), b[i] = rng.normal<float>();
  for (int offset : {0, 5}) {
    for (int n = 0; n <= 140; ++n) {
      float s[32] = {};
      for (int k = 0; k < n; ++k) s[k % 32] = std::fma(a[offset + k], b[offset + k], s[k % 32]);
      for (int half = 16; half > 0; half /= 2)
        for (int u = 0; u < half; ++u) s[u] += s[u + half];
      INFO("n " << n << " offset " << offset);
      REQUIRE(kernels::dot_contiguous(a.data() + offset, b.data() + offset, n) == s[0]);
    }
  }
#else
  SUCCEED("no AVX2 + FMA in this build: dot_contiguous is the portable form, tested above");
#endif
}

TEST_CASE("BatchTopK's active set read off the threshold's candidate list equals the full gather",
          "[sae][sparse]") {
  // 1,024 x 300 (large enough for the host's candidate path), k = 6 per sample over the batch;
  // pre-activations N(0, 1), decoder norms in [0.5, 1.5] (the key rescales by them).
  constexpr int rows = 1024, cols = 300;
  StepBuffers<float> b;
  b.resize(rows, 4, cols);
  RandomStream rng(21, 0);
  auto h = Kokkos::create_mirror_view(b.h);
  auto norms = Kokkos::create_mirror_view(b.norms);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) h(i, j) = rng.normal<float>();
  for (int j = 0; j < cols; ++j) norms(j) = 0.5f + float(j % 11) / 10.0f;
  Kokkos::deep_copy(b.h, h), Kokkos::deep_copy(b.norms, norms);
  const SaeParameters<float> params = initial_parameters<float>(4, cols, 0.1, 1);
  const BatchTopK policy{6, true, 0.01};
  for (int step = 0; step < 3; ++step) {  // later steps search the sample above the previous answer
    INFO("step " << step);
    BatchTopK::State<float> state;
    ActiveSet<float> listed;
    policy.forward_active(b, params, state, true, listed);
    const bool took_list = b.top_m.listed_from == static_cast<const void*>(b.key.data());
    if constexpr (host_accessible_v<MemSpace>) REQUIRE(took_list);
    const float tau = std::max(batch_top_m_threshold(b.key, std::size_t(6) * rows),
                               std::numeric_limits<float>::denorm_min());
    const auto key = b.key, hh = b.h;
    ActiveSet<float> full;
    full.gather(
        rows, cols, KOKKOS_LAMBDA(int i, int j, float& v) {
          const bool keep = key(i, j) >= tau;
          if (keep) v = hh(i, j);
          return keep;
        });
    REQUIRE(listed.entries == full.entries);
    REQUIRE(full.entries >= std::size_t(6) * rows);
    // The threshold's EMA (from 0, rate 0.01) takes the least kept key: tau itself for float
    // keys, here checked against every key of the batch.
    auto keys = Kokkos::create_mirror_view_and_copy(HostSpace(), b.key);
    double least = std::numeric_limits<double>::infinity();
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j)
        if (keys(i, j) >= tau) least = std::min(least, double(keys(i, j)));
    CHECK(state.threshold == 0.01 * least);
    auto ls = Kokkos::create_mirror_view_and_copy(HostSpace(), listed.row_start);
    auto fs = Kokkos::create_mirror_view_and_copy(HostSpace(), full.row_start);
    auto lc = Kokkos::create_mirror_view_and_copy(HostSpace(), listed.col);
    auto fc = Kokkos::create_mirror_view_and_copy(HostSpace(), full.col);
    auto lv = Kokkos::create_mirror_view_and_copy(HostSpace(), listed.value);
    auto fv = Kokkos::create_mirror_view_and_copy(HostSpace(), full.value);
    for (int i = 0; i <= rows; ++i) REQUIRE(ls(i) == fs(i));
    for (std::size_t e = 0; e < full.entries; ++e) {
      REQUIRE(lc(e) == fc(e));
      REQUIRE(lv(e) == fv(e));
    }
    // The next step's pre-activations: shifted, so the threshold moves.
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) h(i, j) = 1.1f * h(i, j) + 0.05f;
    Kokkos::deep_copy(b.h, h);
  }
}

TEST_CASE("BatchTopK's threshold EMA with fewer positive keys than k B: the least positive key", "[sae][sparse]") {
  // 256 x 64, k = 4 (m = 1,024), only 100 positive pre-activations: tau is the smallest positive
  // float, every positive key is kept, and the EMA takes the least of them by a pass over them.
  constexpr int rows = 256, cols = 64;
  StepBuffers<float> b;
  b.resize(rows, 4, cols);
  RandomStream rng(7, 0);
  auto h = Kokkos::create_mirror_view(b.h);
  auto norms = Kokkos::create_mirror_view(b.norms);
  double least = std::numeric_limits<double>::infinity();
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) h(i, j) = -1.0f - rng.uniform<float>();
  for (int q = 0; q < 100; ++q) h((q * 37) % rows, (q * 11) % cols) = 0.25f + rng.uniform<float>();
  for (int j = 0; j < cols; ++j) norms(j) = 1.0f + float(j % 3) / 4.0f;
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j)
      if (h(i, j) > 0) least = std::min(least, double(h(i, j) * norms(j)));
  Kokkos::deep_copy(b.h, h), Kokkos::deep_copy(b.norms, norms);
  const SaeParameters<float> params = initial_parameters<float>(4, cols, 0.1, 1);
  BatchTopK::State<float> state;
  ActiveSet<float> active;
  BatchTopK{4, true, 0.5}.forward_active(b, params, state, true, active);
  REQUIRE(active.entries == 100);
  CHECK(state.threshold == 0.5 * least);
}

TEST_CASE("Sparse encoder gradient in float: the host's tiled transpose equals the per-element sums",
          "[sae][sparse]") {
  // d_in 37 = four 8-row tiles and a tail of 5; 50 latents = three whole blocks of 16 (tiled) and
  // a block of 2 (scalar); 64 latents = rows of whole, aligned cache lines, which the
  // non-accumulating form writes with streaming stores. Each element sums the same products in
  // the same order in both forms, so they agree to float rounding (relative 1e-5 of the largest
  // entry; a misplaced element is off by the size of the entries).
  constexpr int batch = 40, d = 37;
  const auto xc64 = test::random_input(batch, d, 41);
  Matrix<float> xc("xc", batch, d);
  {
    auto h64 = Kokkos::create_mirror_view_and_copy(HostSpace(), xc64);
    auto h = Kokkos::create_mirror_view(xc);
    for (int i = 0; i < batch; ++i)
      for (int k = 0; k < d; ++k) h(i, k) = static_cast<float>(h64(i, k));
    Kokkos::deep_copy(xc, h);
  }
  for (const int latents : {50, 64}) {
    ActiveSet<float> a;
    a.gather(
        batch, latents, KOKKOS_LAMBDA(int i, int j, float& v) {
          v = 1.0f;
          return (i * 5 + j * 3) % 4 == 0;
        });
    const auto grad = a.grad;
    Kokkos::parallel_for(
        Kokkos::RangePolicy<ExecSpace>(0, a.entries), KOKKOS_LAMBDA(int e) { grad(e) = 0.5f - 0.01f * float(e % 97); });
    for (bool accumulate : {false, true}) {
      INFO("latents " << latents << ", accumulate " << accumulate);
      Matrix<float> by_cols("by_cols", d, latents), by_teams("by_teams", d, latents);
      // The streaming form needs 64-byte rows at 64-byte addresses: the case must reach it.
      if (latents == 64) REQUIRE(reinterpret_cast<std::uintptr_t>(by_cols.data()) % 64 == 0);
      Vector<float> b_cols("b_cols", latents), b_teams("b_teams", latents);
      Kokkos::deep_copy(by_cols, 0.25f), Kokkos::deep_copy(by_teams, 0.25f);
      kernels::sparse_encoder_grad(a, xc, by_cols, b_cols, accumulate);  // the host's form on a host build
      kernels::sparse_encoder_grad_by_teams(a, xc, by_teams, b_teams, accumulate);
      auto c = Kokkos::create_mirror_view_and_copy(HostSpace(), by_cols);
      auto t = Kokkos::create_mirror_view_and_copy(HostSpace(), by_teams);
      double largest = 0, worst = 0;
      for (int k = 0; k < d; ++k)
        for (int j = 0; j < latents; ++j) {
          largest = std::max(largest, std::fabs(double(t(k, j))));
          worst = std::max(worst, std::fabs(double(c(k, j)) - double(t(k, j))));
        }
      CHECK(largest > 0.5);
      CHECK(worst <= 1e-5 * largest);
    }
  }
}

TEST_CASE("column_sums: blocks of 16 columns and a tail, each column summed over its rows", "[sae][sparse]") {
  // 5 x 37 (two blocks of 16 and a tail of 5), exact in float64 (values k + i / 8).
  Matrix<double> m("m", 5, 37);
  auto h = Kokkos::create_mirror_view(m);
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 37; ++k) h(i, k) = k + i / 8.0;
  Kokkos::deep_copy(m, h);
  Vector<double> out("out", 37);
  Kokkos::deep_copy(out, 1.0);
  // sum_i (k + i / 8) = 5 k + 10 / 8, times 2: first over the 1.0 fill, then added to itself.
  kernels::column_sums(m, out, 2.0, false);
  auto once = Kokkos::create_mirror_view_and_copy(HostSpace(), out);
  for (int k = 0; k < 37; ++k) CHECK(once(k) == 2.0 * (5.0 * k + 1.25));
  kernels::column_sums(m, out, 2.0, true);
  auto twice = Kokkos::create_mirror_view_and_copy(HostSpace(), out);
  for (int k = 0; k < 37; ++k) CHECK(twice(k) == 4.0 * (5.0 * k + 1.25));
}
