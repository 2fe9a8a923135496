"""Exact statistics: fit_logistic and pairwise_lr_test checked against statsmodels and closed forms."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import chi2
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from dice_core.errors import ConfigError, ModelFileError
from dice_core.stats import (SignificanceResult, add_intercept, fit_logistic, holm, pairwise_lr_test,
                             significance_threshold)


def statsmodels_logit(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-12, maxiter=200)


def random_cohort(seed, n=600, K=4, with_covariates=True):
    """Clusters with distinct risks plus a numeric covariate (age) and a 3-level dummy-coded one."""
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, K, n)
    age = rng.normal(60, 15, n)
    race = rng.integers(0, 3, n)
    V = pd.DataFrame({"age": age, "race_b": (race == 1).astype(float), "race_c": (race == 2).astype(float)})
    eta = -1.0 + np.linspace(1.2, 0.0, K)[clusters] + rng.normal(0, 0.3, K)[clusters]
    eta = eta + (0.02 * (age - 60) + 0.4 * V["race_b"].to_numpy() if with_covariates else 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return clusters, y, (V if with_covariates else None)


def design(clusters, V, K, dropped):
    """intercept + one-hot columns of the clusters not in `dropped` + covariates."""
    onehot = np.eye(K)[clusters]
    columns = [onehot[:, k] for k in range(K) if k not in dropped]
    extra = [] if V is None else [np.asarray(V, dtype=float)]
    return add_intercept(np.column_stack(columns + extra))


# ----------------------------------------------------------------------------- fit_logistic

def test_fit_logistic_matches_statsmodels():
    rng = np.random.default_rng(0)
    X = add_intercept(rng.normal(size=(2000, 8)) * [1, 2, 5, 1, 1, 0.5, 3, 10])
    y = (rng.random(2000) < 1 / (1 + np.exp(-X @ rng.normal(0, 0.3, 9)))).astype(int)
    fit = fit_logistic(X, y)
    reference = statsmodels_logit(X, y)
    assert fit.converged and not fit.separated and fit.aliased == ()
    np.testing.assert_allclose(fit.params, reference.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.bse, reference.bse, rtol=1e-8)
    assert fit.loglik == pytest.approx(reference.llf, rel=1e-12)
    np.testing.assert_allclose(fit.predict_proba(X), reference.predict(X), atol=1e-10)


def test_add_intercept():
    np.testing.assert_array_equal(add_intercept([1.0, 2.0]), [[1, 1], [1, 2]])
    assert add_intercept(np.empty((3, 0))).shape == (3, 1)


def test_aliased_columns_are_dropped_and_recorded():
    rng = np.random.default_rng(2)
    x = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-x))).astype(int)
    X = np.column_stack([np.ones(300), x, np.full(300, 7.0), 2 * x + 1, np.zeros(300), rng.normal(size=300)])
    fit = fit_logistic(X, y)
    assert fit.aliased == (2, 3, 4)
    assert np.isnan(fit.params[[2, 3, 4]]).all() and np.isnan(fit.bse[[2, 3, 4]]).all()
    reference = statsmodels_logit(X[:, [0, 1, 5]], y)
    np.testing.assert_allclose(fit.params[[0, 1, 5]], reference.params, rtol=1e-8)
    assert fit.loglik == pytest.approx(reference.llf, rel=1e-12)
    assert not fit.separated


def test_complete_separation_is_flagged_not_raised():
    x = np.linspace(-1, 1, 40)
    fit = fit_logistic(add_intercept(x), (x > 0).astype(int))
    assert fit.separated
    assert fit.loglik == pytest.approx(0.0, abs=1e-6)  # the supremum of a separated likelihood
    assert np.isfinite(fit.params).all()


def test_quasi_separation_from_a_group_without_events_is_flagged():
    rng = np.random.default_rng(3)
    group = rng.integers(0, 3, 500)
    y = (rng.random(500) < 0.4).astype(int)
    y[group == 0] = 0
    X = add_intercept(np.column_stack([group == 0, group == 1]).astype(float))
    fit = fit_logistic(X, y)
    assert fit.separated and "fitted probabilities" in fit.message
    assert fit.params[1] < -15  # the coefficient of the event-free group runs off to -inf
    # the log-likelihood reaches its supremum: that of the other rows (event-free rows add 0)
    others = group != 0
    expected = statsmodels_logit(X[others][:, [0, 2]], y[others]).llf
    assert fit.loglik == pytest.approx(expected, abs=1e-6)


def test_fit_logistic_rejects_bad_input():
    with pytest.raises(ConfigError, match="only 0 and 1"):
        fit_logistic(np.ones((3, 1)), [0, 1, 2])
    with pytest.raises(ConfigError, match="3 rows but y has 2"):
        fit_logistic(np.ones((3, 1)), [0, 1])
    with pytest.raises(ConfigError, match=r"column\(s\) \[1\] hold NaN"):
        fit_logistic(np.column_stack([np.ones(3), [1.0, np.nan, 2.0]]), [0, 1, 0])


# ----------------------------------------------------------------------------- pairwise_lr_test

@pytest.mark.parametrize("seed,K", [(0, 2), (1, 3), (2, 4), (3, 5)])
def test_p_values_match_statsmodels_lr_test(seed, K):
    clusters, y, V = random_cohort(seed, K=K)
    result = pairwise_lr_test(clusters, y, V, n_clusters=K)
    full = statsmodels_logit(design(clusters, V, K, {K - 1}), y)
    for k1 in range(K):
        for k2 in range(k1 + 1, K):
            null = statsmodels_logit(design(clusters, V, K, {k1, k2}), y)
            G = 2 * (full.llf - null.llf)
            assert result.G[k1, k2] == pytest.approx(G, rel=1e-6, abs=1e-8)
            assert result.p_values[k1, k2] == pytest.approx(chi2.sf(G, 1), rel=1e-6, abs=1e-12)
    assert not result.separated and result.notes == []


def test_alt_model_is_a_reparametrisation_with_k1_as_reference():
    clusters, y, V = random_cohort(4, K=4)
    result = pairwise_lr_test(clusters, y, V)
    for k1 in range(4):  # fit alt literally with column k1 removed: same log-likelihood every time
        alt = statsmodels_logit(design(clusters, V, 4, {k1}), y)
        assert alt.llf == pytest.approx(result.loglik_full, rel=1e-10)


def test_matrix_shape_symmetry_and_pairs():
    clusters, y, V = random_cohort(5, K=5)
    result = pairwise_lr_test(clusters, y, V)
    assert result.p_values.shape == result.G.shape == (5, 5)
    np.testing.assert_array_equal(result.p_values, result.p_values.T)
    np.testing.assert_array_equal(result.G, result.G.T)
    assert np.all(np.diag(result.p_values) == 0) and np.all(np.diag(result.G) == 0)
    pairs = result.pairs()
    assert len(pairs) == 10 and (pairs["k1"] < pairs["k2"]).all()
    np.testing.assert_array_equal(pairs["p"], result.p_values[pairs["k1"], pairs["k2"]])
    assert result.max_p == pairs["p"].max() and result.min_G == pairs["G"].min()
    assert result.all_significant == bool((pairs["p"] < 0.05).all())


def test_two_clusters_equal_a_plain_lr_test():
    clusters, y, _ = random_cohort(6, K=2, with_covariates=False)
    result = pairwise_lr_test(clusters, y)
    plain = statsmodels_logit(add_intercept((clusters == 0).astype(float)), y)
    assert result.p_values[0, 1] == pytest.approx(plain.llr_pvalue, rel=1e-6)
    assert result.G[0, 1] == pytest.approx(plain.llr, rel=1e-6)


def test_odds_ratios_and_ci_match_statsmodels():
    clusters, y, V = random_cohort(7, K=4)
    result = pairwise_lr_test(clusters, y, V)
    full = statsmodels_logit(design(clusters, V, 4, {3}), y)
    np.testing.assert_allclose(result.odds_ratios, [*np.exp(full.params[1:4]), 1.0], rtol=1e-6)
    np.testing.assert_allclose(result.odds_ratio_ci[:3], np.exp(full.conf_int()[1:4]), rtol=1e-6)
    assert np.isnan(result.odds_ratio_ci[3]).all()
    assert result.covariate_names == ["age", "race_b", "race_c"]


def test_reference_parameter_changes_odds_ratios_not_p_values():
    clusters, y, V = random_cohort(8, K=3)
    default = pairwise_lr_test(clusters, y, V)
    result = pairwise_lr_test(clusters, y, V, reference=0)
    full = statsmodels_logit(design(clusters, V, 3, {0}), y)
    np.testing.assert_allclose(result.odds_ratios, [1.0, *np.exp(full.params[1:3])], rtol=1e-6)
    np.testing.assert_allclose(result.p_values, default.p_values, rtol=1e-9)
    summary = result.summary()
    assert summary.loc[0, "note"] == "reference level" and np.isnan(summary.loc[0, "p_vs_reference"])
    np.testing.assert_allclose(summary["p_vs_reference"][1:], result.p_values[1:, 0])


def test_summary_rates_and_wilson_intervals():
    clusters, y, V = random_cohort(9, K=3)
    summary = pairwise_lr_test(clusters, y, V).summary()
    sizes = np.bincount(clusters, minlength=3)
    events = np.bincount(clusters, weights=y, minlength=3)
    np.testing.assert_array_equal(summary["size"], sizes)
    np.testing.assert_array_equal(summary["events"], events)
    np.testing.assert_allclose(summary["outcome_rate"], events / sizes)
    low, high = proportion_confint(events, sizes, method="wilson")
    np.testing.assert_allclose(summary["rate_ci_low"], low, rtol=1e-10)
    np.testing.assert_allclose(summary["rate_ci_high"], high, rtol=1e-10)
    assert list(summary.columns) == ["cluster", "size", "events", "outcome_rate", "rate_ci_low", "rate_ci_high",
                                     "odds_ratio", "or_ci_low", "or_ci_high", "p_vs_reference", "note"]


def saturated_loglik(y, clusters, groups):
    """Closed-form maximum log-likelihood of y ~ group (no covariates), with 0 log 0 = 0."""
    total = 0.0
    for group in groups:
        member = np.isin(clusters, group)
        n, e = member.sum(), y[member].sum()
        total += sum(a * np.log(a / n) for a in (e, n - e) if a > 0)
    return total


def test_separated_clusters_are_flagged_and_g_is_the_exact_limit():
    rng = np.random.default_rng(10)
    clusters = rng.integers(0, 4, 400)
    y = (rng.random(400) < 0.4).astype(int)
    y[clusters == 1] = 0  # no events
    y[clusters == 2] = 1  # only events
    result = pairwise_lr_test(clusters, y)
    assert result.separated and result.separation_clusters == [1, 2]
    full = saturated_loglik(y, clusters, [[0], [1], [2], [3]])
    for k1 in range(4):
        for k2 in range(k1 + 1, 4):
            groups = [[k] for k in range(4) if k not in (k1, k2)] + [[k1, k2]]
            expected = 2 * (full - saturated_loglik(y, clusters, groups))
            assert result.G[k1, k2] == pytest.approx(expected, rel=1e-8, abs=1e-8)
    assert result.odds_ratios[1] == 0.0 and result.odds_ratios[2] == np.inf
    assert np.isnan(result.odds_ratio_ci[1:3]).all()
    assert np.isfinite(result.odds_ratios[0]) and np.isfinite(result.odds_ratio_ci[0]).all()
    summary = result.summary()
    assert "no events" in summary.loc[1, "note"] and "only events" in summary.loc[2, "note"]


def test_separated_clusters_with_covariates_match_fit_without_their_rows():
    clusters, y, V = random_cohort(11, K=3)
    y = y.copy()
    y[clusters == 0] = 1
    result = pairwise_lr_test(clusters, y, V)
    assert result.separation_clusters == [0] and result.odds_ratios[0] == np.inf
    rest = clusters != 0  # cluster 0's rows add 0 at the supremum
    full = statsmodels_logit(design(clusters[rest], V[rest], 3, {0, 2}), y[rest])
    merged = statsmodels_logit(design(clusters[rest], V[rest], 3, {0, 1, 2}), y[rest])
    assert result.G[1, 2] == pytest.approx(2 * (full.llf - merged.llf), rel=1e-6)
    assert result.odds_ratios[1] == pytest.approx(np.exp(full.params[1]), rel=1e-6)


def test_separated_reference_gives_limit_odds_ratios():
    rng = np.random.default_rng(12)
    clusters = rng.integers(0, 3, 300)
    y = (rng.random(300) < 0.5).astype(int)
    y[clusters == 2] = 0
    result = pairwise_lr_test(clusters, y)
    assert result.separation_clusters == [2]
    np.testing.assert_array_equal(result.odds_ratios, [np.inf, np.inf, 1.0])
    assert np.all(np.isfinite(result.p_values))


def test_separation_by_a_covariate_is_flagged():
    rng = np.random.default_rng(13)
    clusters = rng.integers(0, 2, 200)
    x = rng.normal(size=200)
    result = pairwise_lr_test(clusters, (x > 0).astype(int), x)
    assert result.separated and result.separation_clusters == []
    assert any("separation by the covariates" in note for note in result.notes)


def test_empty_cluster_gives_nan_with_reason():
    clusters, y, V = random_cohort(14, K=3)
    result = pairwise_lr_test(clusters, y, V, n_clusters=4, reference=2)
    assert result.empty_clusters == [3]
    assert np.isnan(result.p_values[3, :3]).all() and np.isnan(result.G[:3, 3]).all()
    assert np.isfinite(result.p_values[:3, :3]).all()
    assert not result.all_significant
    pairs = result.pairs().set_index(["k1", "k2"])
    assert pairs.loc[(0, 3), "note"] == "cluster 3 empty: no test"
    assert np.isnan(result.outcome_rates[3]) and np.isnan(result.odds_ratios[3])
    assert "empty cluster" in result.summary().loc[3, "note"]


def test_constant_covariate_is_tolerated():
    clusters, y, V = random_cohort(15, K=3)
    V = V.assign(site=1.0)
    with_constant = pairwise_lr_test(clusters, y, V)
    without = pairwise_lr_test(clusters, y, V.drop(columns="site"))
    np.testing.assert_allclose(with_constant.p_values, without.p_values, rtol=1e-9)


def test_pairwise_lr_test_rejects_bad_input():
    with pytest.raises(ConfigError, match="only 0 and 1"):
        pairwise_lr_test([0, 1, 1], [0, 2, 1])
    with pytest.raises(ConfigError, match="outside 0..1"):
        pairwise_lr_test([0, 1, 2], [0, 1, 1], n_clusters=2)
    with pytest.raises(ConfigError, match="'race' is not numeric"):
        pairwise_lr_test([0, 1, 1], [0, 1, 1], pd.DataFrame({"race": ["a", "b", "c"]}))
    with pytest.raises(ConfigError, match=r"\['age'\] hold missing"):
        pairwise_lr_test([0, 1, 1], [0, 1, 1], pd.DataFrame({"age": [1.0, np.nan, 3.0]}))
    with pytest.raises(ConfigError, match="reference=5"):
        pairwise_lr_test([0, 1, 1], [0, 1, 1], reference=5)


def test_significance_threshold():
    assert significance_threshold(0.05) == pytest.approx(3.841458820694124)
    assert significance_threshold(0.01) == pytest.approx(6.6348966010212145)


# ----------------------------------------------------------------------------- Holm, serialisation

def test_holm_matches_statsmodels_and_is_monotone():
    rng = np.random.default_rng(16)
    K = 5
    upper = np.triu_indices(K, k=1)
    P = np.zeros((K, K))
    P[upper] = rng.random(10) ** 3
    P = P + P.T
    adjusted = holm(P)
    expected = multipletests(P[upper], method="holm")[1]
    np.testing.assert_allclose(adjusted[upper], expected, rtol=1e-12)
    np.testing.assert_array_equal(adjusted, adjusted.T)
    order = np.argsort(P[upper])
    assert np.all(np.diff(adjusted[upper][order]) >= 0) and np.all(adjusted[upper] >= P[upper])


def test_holm_ignores_nan_pairs():
    P = np.array([[0, 0.01, np.nan], [0.01, 0, 0.04], [np.nan, 0.04, 0]])
    adjusted = holm(P)
    assert np.isnan(adjusted[0, 2])
    np.testing.assert_allclose([adjusted[0, 1], adjusted[1, 2]], multipletests([0.01, 0.04], method="holm")[1])


def test_to_dict_is_json_safe_and_round_trips():
    rng = np.random.default_rng(17)
    clusters = rng.integers(0, 3, 200)
    y = (rng.random(200) < 0.4).astype(int)
    y[clusters == 1] = 1
    result = pairwise_lr_test(clusters, y, n_clusters=4, reference=2)  # 3 empty, 1 separated
    text = json.dumps(result.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["odds_ratios"][1] == "inf" and data["p_values"][0][3] is None
    back = SignificanceResult.from_dict(data)
    for name in ("p_values", "G", "sizes", "events", "outcome_rates", "odds_ratios", "odds_ratio_ci"):
        np.testing.assert_array_equal(getattr(back, name), getattr(result, name))
    assert back.notes == result.notes and back.separation_clusters == [1] and back.empty_clusters == [3]
    pd.testing.assert_frame_equal(back.summary(), result.summary())


def test_from_dict_rejects_foreign_records():
    with pytest.raises(ModelFileError, match="format"):
        SignificanceResult.from_dict({"format": "something-else"})
    data = pairwise_lr_test([0, 0, 1, 1, 1], [0, 1, 0, 1, 1]).to_dict()
    del data["G"]
    with pytest.raises(ModelFileError, match=r"missing \['G'\]"):
        SignificanceResult.from_dict(data)


def test_stats_never_imports_torch():
    code = "import dice_core.stats.significance, sys; assert 'torch' not in sys.modules"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)
