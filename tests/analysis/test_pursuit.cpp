// Inference-time optimisation on a frozen decoder (analysis/pursuit.hpp): exact recovery on an
// orthonormal dictionary (reference §2.10's unit test), gradient and plain matching pursuit
// against a direct host transcription of the reference's algorithm (residual and correlations
// recomputed from scratch every iteration), OMP against brute-force least squares on the support
// it chose, and the errors.
#include <catch2/catch.hpp>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <vector>

#include "sae/sae_test_support.hpp"
#include "synthsae/analysis/pursuit.hpp"

using namespace synthsae;
using namespace synthsae::analysis;

namespace {

using Dense = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Dense to_eigen(const Matrix<double>& m) {
  auto h = Kokkos::create_mirror_view_and_copy(HostSpace(), m);
  Dense out(h.extent(0), h.extent(1));
  for (std::size_t i = 0; i < h.extent(0); ++i)
    for (std::size_t k = 0; k < h.extent(1); ++k) out(i, k) = h(i, k);
  return out;
}

Matrix<double> to_view(const Dense& m) {
  Matrix<double> out("m", m.rows(), m.cols());
  auto h = Kokkos::create_mirror_view(out);
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index k = 0; k < m.cols(); ++k) h(i, k) = m(i, k);
  Kokkos::deep_copy(out, h);
  return out;
}

Kokkos::View<const int*, MemSpace> budgets(const std::vector<int>& t) {
  Kokkos::View<int*, MemSpace> out("budgets", t.size());
  auto h = Kokkos::create_mirror_view(out);
  for (std::size_t i = 0; i < t.size(); ++i) h(i) = t[i];
  Kokkos::deep_copy(out, h);
  return out;
}

Dense run(const Dense& s, const Dense& dict, const std::vector<int>& t, PursuitOptions opt) {
  Matrix<double> codes("codes", s.rows(), dict.rows());
  pursue<double>(to_view(s), to_view(dict), budgets(t), codes, opt);
  return to_eigen(codes);
}

/// The reference's algorithm for one row, transcribed directly: r and g from scratch each
/// iteration. gradient: S = (w != 0) plus the best atom, exact line search, clip; matching:
/// the best atom's code grows by g_j / |d_j|^2. Selection: signed argmax with non-negativity,
/// argmax of |g| without.
Eigen::RowVectorXd direct(const Eigen::RowVectorXd& s, const Dense& D, int t, bool gradient, bool nonneg) {
  const Eigen::Index m = D.rows();
  Eigen::RowVectorXd w = Eigen::RowVectorXd::Zero(m);
  for (int it = 0; it < t; ++it) {
    const Eigen::RowVectorXd r = s - w * D;
    const Eigen::RowVectorXd g = r * D.transpose();
    Eigen::Index best = 0;
    for (Eigen::Index j = 1; j < m; ++j)
      if ((nonneg ? g(j) : std::fabs(g(j))) > (nonneg ? g(best) : std::fabs(g(best)))) best = j;
    if (!gradient) {
      const double v = g(best) / D.row(best).squaredNorm();
      if (nonneg && v <= 0) break;
      w(best) += v;
      continue;
    }
    Eigen::RowVectorXd gs = Eigen::RowVectorXd::Zero(m);
    for (Eigen::Index j = 0; j < m; ++j)
      if (w(j) != 0 || j == best) gs(j) = g(j);
    const Eigen::RowVectorXd c = gs * D;
    const double cc = c.squaredNorm();
    const double alpha = cc > 0 ? c.dot(r) / cc : 0.0;
    w += alpha * gs;
    if (nonneg) w = w.cwiseMax(0.0);
  }
  return w;
}

/// rows x d with unit rows in random directions (an overcomplete dictionary when rows > d).
Dense random_dictionary(int rows, int d, std::uint64_t seed) {
  Dense D = to_eigen(test::random_input(rows, d, seed));
  for (int j = 0; j < rows; ++j) D.row(j).normalize();
  return D;
}

}  // namespace

TEST_CASE("pursuit on an orthonormal dictionary recovers exactly t-sparse non-negative codes", "[analysis][pursuit]") {
  const int d = 16, m = 12, n = 5;
  // Orthonormal rows: Q of a random matrix's QR.
  const Dense a = to_eigen(test::random_input(d, d, 3));
  const Dense q = Eigen::HouseholderQR<Dense>(a).householderQ();
  const Dense D = q.topRows(m);
  Dense codes = Dense::Zero(n, m);
  std::vector<int> t(n);
  for (int i = 0; i < n; ++i) {
    t[i] = 1 + i;  // 1 .. 5 atoms, distinct positive magnitudes
    for (int k = 0; k < t[i]; ++k) codes(i, (3 * i + 5 * k) % m) = 0.5 + 0.37 * k + 0.11 * i;
  }
  const Dense s = codes * D;
  for (auto method : {PursuitMethod::gradient, PursuitMethod::orthogonal, PursuitMethod::matching}) {
    INFO(pursuit_name(method));
    const Dense got = run(s, D, t, {method, true});
    CHECK((got - codes).cwiseAbs().maxCoeff() < 1e-12);
    const double fvu = (s - got * D).squaredNorm() / (s.rowwise() - s.colwise().mean()).squaredNorm();
    CHECK(fvu < 1e-10);
    // One iteration fewer leaves exactly the smallest code out (t = 1 rows get nothing).
    std::vector<int> fewer(t);
    for (auto& v : fewer) v -= 1;
    const Dense partial = run(s, D, fewer, {method, true});
    for (int i = 0; i < n; ++i) CHECK((partial.row(i).array() != 0).count() == t[i] - 1);
  }
  // In float: the same codes to float rounding.
  Matrix<float> sf("s", n, d), Df("D", m, d), cf("codes", n, m);
  {
    auto hs = Kokkos::create_mirror_view(sf);
    auto hd = Kokkos::create_mirror_view(Df);
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < d; ++k) hs(i, k) = float(s(i, k));
    for (int j = 0; j < m; ++j)
      for (int k = 0; k < d; ++k) hd(j, k) = float(D(j, k));
    Kokkos::deep_copy(sf, hs), Kokkos::deep_copy(Df, hd);
  }
  pursue<float>(sf, Df, budgets(t), cf);
  auto hc = Kokkos::create_mirror_view_and_copy(HostSpace(), cf);
  double worst = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) worst = std::max(worst, std::fabs(double(hc(i, j)) - codes(i, j)));
  CHECK(worst < 1e-5);  // codes of order 1, ~10 float operations each
}

TEST_CASE("gradient and matching pursuit equal the reference's algorithm run directly", "[analysis][pursuit]") {
  const int d = 8, m = 20, n = 7;
  const Dense D = random_dictionary(m, d, 11);
  const Dense s = to_eigen(test::random_input(n, d, 12));
  const std::vector<int> t{0, 1, 2, 3, 5, 7, 9};
  for (bool gradient : {true, false})
    for (bool nonneg : {true, false}) {
      INFO((gradient ? "gradient" : "matching") << (nonneg ? ", non-negative" : ", signed"));
      const Dense got = run(s, D, t, {gradient ? PursuitMethod::gradient : PursuitMethod::matching, nonneg});
      double worst = 0, active = 0;
      for (int i = 0; i < n; ++i) {
        const Eigen::RowVectorXd want = direct(s.row(i), D, t[i], gradient, nonneg);
        worst = std::max(worst, (got.row(i) - want).cwiseAbs().maxCoeff());
        active += (want.array() != 0).count();
      }
      // The Gram-matrix updates and the from-scratch residuals differ by rounding only.
      CHECK(worst < 1e-10);
      CHECK(active > 10);  // not vacuous
      CHECK(got.row(0).isZero());  // budget 0
    }
}

TEST_CASE("OMP's codes are the least squares on the support it chose", "[analysis][pursuit]") {
  const int d = 10, m = 24, n = 6;
  const Dense D = random_dictionary(m, d, 21);
  const Dense s = to_eigen(test::random_input(n, d, 22));
  const std::vector<int> t{1, 2, 3, 4, 6, 8};
  for (bool nonneg : {false, true}) {
    INFO((nonneg ? "non-negative selection" : "signed"));
    const Dense got = run(s, D, t, {PursuitMethod::orthogonal, nonneg});
    for (int i = 0; i < n; ++i) {
      std::vector<int> support;
      for (int j = 0; j < m; ++j)
        if (got(i, j) != 0) support.push_back(j);
      if (!nonneg) CHECK(int(support.size()) == t[i]);  // a signed selection always finds an atom
      REQUIRE(!support.empty());
      Dense Ds(support.size(), d);
      for (std::size_t q = 0; q < support.size(); ++q) Ds.row(q) = D.row(support[q]);
      // Brute force: the normal equations of min |s - w_S D_S|, solved by a full-pivot LU.
      const Eigen::VectorXd w = (Ds * Ds.transpose()).fullPivLu().solve(Ds * s.row(i).transpose());
      for (std::size_t q = 0; q < support.size(); ++q) CHECK(got(i, support[q]) == Approx(w(q)).margin(1e-9));
      // The residual is orthogonal to every chosen atom.
      const Eigen::RowVectorXd r = s.row(i) - got.row(i) * D;
      CHECK((Ds * r.transpose()).cwiseAbs().maxCoeff() < 1e-9);
    }
  }
}

TEST_CASE("pursuit: shapes and names are checked", "[analysis][pursuit]") {
  Matrix<double> s("s", 3, 4), D("D", 5, 4), wrong_d("D", 5, 3), codes("codes", 3, 5), wrong_codes("codes", 3, 4);
  CHECK_THROWS_AS(pursue<double>(s, wrong_d, budgets({1, 1, 1}), codes), ShapeError);
  CHECK_THROWS_AS(pursue<double>(s, D, budgets({1, 1}), codes), ShapeError);
  CHECK_THROWS_AS(pursue<double>(s, D, budgets({1, 1, 1}), wrong_codes), ShapeError);
  CHECK_THROWS_WITH(parse_pursuit("lasso"), Catch::Contains("pursuit") && Catch::Contains("lasso"));
  CHECK(parse_pursuit("omp") == PursuitMethod::orthogonal);
}
