"""Evaluation metrics on small deterministic data, checked by hand and against scikit-learn."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, roc_auc_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from dice_core.errors import ConfigError
from dice_core.evaluation.metrics import (calibration_table, choose_threshold, clustering_metrics,
                                          fit_representation_classifier, group_auc, outcome_metrics,
                                          representation_auc, summary_features)

# six patients: positives score 0.35, 0.8, 0.9; negatives 0.1, 0.2, 0.4
Y = np.array([0, 0, 1, 1, 0, 1])
PROB = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])


def blobs(seed=0, n=120, K=3, d=4):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % K
    return rng.normal(size=(n, d)) + 4.0 * np.eye(K, d)[labels], labels


# ----------------------------------------------------------------------------- clustering

def test_clustering_metrics_match_sklearn():
    Z, labels = blobs()
    result = clustering_metrics(Z, labels)
    assert result["silhouette"] == pytest.approx(silhouette_score(Z, labels))
    assert result["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(Z, labels))
    assert result["davies_bouldin"] == pytest.approx(davies_bouldin_score(Z, labels))
    assert result["silhouette_sample_size"] == 120 and result["note"] == ""
    assert result["silhouette"] > 0.5  # well-separated blobs


def test_silhouette_is_subsampled_above_max_samples_and_says_so():
    Z, labels = blobs(n=300)
    result = clustering_metrics(Z, labels, max_samples=100, seed=3)
    assert result["silhouette_sample_size"] == 100 and "subsample of 100 of 300" in result["note"]
    assert result["silhouette"] == pytest.approx(silhouette_score(Z, labels, sample_size=100, random_state=3))
    assert result["silhouette"] != silhouette_score(Z, labels)
    assert result == clustering_metrics(Z, labels, max_samples=100, seed=3)  # the seed reproduces it
    assert result["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(Z, labels))  # not subsampled


def test_single_cluster_gives_nan_with_a_note():
    Z, _ = blobs()
    result = clustering_metrics(Z, np.zeros(len(Z)))
    assert np.isnan([result["silhouette"], result["calinski_harabasz"], result["davies_bouldin"]]).all()
    assert "1 distinct cluster" in result["note"]


def test_clustering_metrics_rejects_mismatched_shapes():
    with pytest.raises(ConfigError, match="Z has shape"):
        clustering_metrics(np.zeros((5, 2)), np.zeros(4))


# ----------------------------------------------------------------------------- outcome metrics

def test_outcome_metrics_by_hand():
    m = outcome_metrics(Y, PROB, threshold=0.5)  # predicted positive: 0.8 and 0.9
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 0, 3, 1)
    assert m["auc"] == pytest.approx(8 / 9)  # 8 of the 9 (positive, negative) pairs are ordered
    assert m["acc"] == pytest.approx(5 / 6)
    assert (m["tpr"], m["fnr"]) == pytest.approx((2 / 3, 1 / 3))
    assert (m["fpr"], m["tnr"]) == (0.0, 1.0)
    assert (m["ppv"], m["npv"]) == pytest.approx((1.0, 3 / 4))
    assert (m["threshold"], m["n"], m["prevalence"]) == (0.5, 6, 0.5)


def test_outcome_metrics_threshold_is_inclusive():
    m = outcome_metrics(Y, PROB, threshold=0.35)
    assert (m["tp"], m["fp"]) == (3, 1)


def test_zero_denominators_give_nan_not_errors():
    m = outcome_metrics([0, 0, 0], [0.1, 0.2, 0.3], threshold=0.5)
    assert np.isnan(m["auc"]) and "one outcome class" in m["note"]
    assert np.isnan(m["tpr"]) and np.isnan(m["fnr"]) and np.isnan(m["ppv"])
    assert m["tnr"] == 1.0 and m["acc"] == 1.0


def test_outcome_metrics_rejects_bad_input():
    with pytest.raises(ConfigError, match="6 outcomes but 2"):
        outcome_metrics(Y, [0.1, 0.2])
    with pytest.raises(ConfigError, match="only 0 and 1"):
        outcome_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ConfigError, match="NaN"):
        outcome_metrics([0, 1], [0.1, np.nan])


def test_choose_threshold_rules():
    # Youden J: 0.8 -> 2/3 - 0 and 0.35 -> 1 - 1/3 tie; the higher threshold wins
    assert choose_threshold(Y, PROB, "youden") == 0.8
    # F1: 0.35 -> 3 tp, 1 fp: F1 = 6/7, the best
    assert choose_threshold(Y, PROB, "f1") == 0.35
    # prevalence 1/2: three patients at or above 0.4
    threshold = choose_threshold(Y, PROB, "prevalence")
    assert threshold == 0.4 and np.sum(PROB >= threshold) == 3
    assert choose_threshold([1, 1], [0.2, 0.3]) == 0.5
    with pytest.raises(ConfigError, match="'best' is unknown"):
        choose_threshold(Y, PROB, "best")


# ----------------------------------------------------------------------------- representation probe

def probe_data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 5)) * [1, 10, 0.1, 1, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-(Z[:, 0] + 0.1 * Z[:, 1])))).astype(int)
    return Z, y


def test_representation_classifier_is_standardised_logistic_regression():
    Z, y = probe_data()
    model = fit_representation_classifier(Z, y)
    scaler = StandardScaler().fit(Z)
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(Z), y)
    np.testing.assert_allclose(model.predict_proba(Z), reference.predict_proba(scaler.transform(Z)), atol=1e-6)


def test_representation_classifier_with_cross_validated_c():
    Z, y = probe_data()
    model = fit_representation_classifier(Z, y, C="cv")
    assert model[-1].C_ in model[-1].Cs_
    assert roc_auc_score(y, model.predict_proba(Z)[:, 1]) > 0.75


def test_representation_auc_is_the_test_auc_of_the_training_fit():
    Z, y = probe_data(n=300)
    train, test = slice(0, 200), slice(200, 300)
    auc = representation_auc(Z[train], y[train], Z[test], y[test])
    model = fit_representation_classifier(Z[train], y[train])
    assert auc == pytest.approx(roc_auc_score(y[test], model.predict_proba(Z[test])[:, 1]))
    assert auc > 0.7


def test_representation_classifier_needs_two_classes():
    with pytest.raises(ConfigError, match="one class only"):
        fit_representation_classifier(np.zeros((4, 2)), [1, 1, 1, 1])


# ----------------------------------------------------------------------------- groups, calibration

def test_group_auc():
    groups = ["a", "a", "a", "b", "b", None]
    table = group_auc(Y, PROB, groups, min_size=3)
    assert list(table["group"]) == ["(missing)", "a", "b"]
    assert list(table["n"]) == [1, 3, 2] and list(table["positives"]) == [1, 1, 1]
    row = table.set_index("group")
    assert row.loc["a", "auc"] == pytest.approx(roc_auc_score([0, 0, 1], [0.1, 0.4, 0.35]))  # = 0.5
    assert row.loc["b", "auc"] == 1.0
    assert np.isnan(row.loc["(missing)", "auc"]) and row.loc["(missing)", "note"] == "one outcome class"
    assert list(table["small_group"]) == [True, False, True]


def test_calibration_table_matches_sklearn_and_counts_every_patient():
    rng = np.random.default_rng(4)
    prob = rng.random(500) ** 2
    y = (rng.random(500) < prob).astype(int)
    for strategy in ("uniform", "quantile"):
        table = calibration_table(y, prob, n_bins=5, strategy=strategy)
        observed, predicted = calibration_curve(y, prob, n_bins=5, strategy=strategy)
        np.testing.assert_allclose(table["observed_rate"], observed)
        np.testing.assert_allclose(table["mean_predicted"], predicted)
        assert table["n"].sum() == 500
        assert ((table["mean_predicted"] >= table["bin_low"]) & (table["mean_predicted"] <= table["bin_high"])).all()


def test_calibration_table_skips_empty_bins():
    table = calibration_table(Y, PROB, n_bins=4)  # no probability in [0.5, 0.75)
    np.testing.assert_allclose(table["bin_low"], [0.0, 0.25, 0.75])
    np.testing.assert_array_equal(table["n"], [2, 2, 2])
    np.testing.assert_allclose(table["observed_rate"], [0.0, 0.5, 1.0])


# ----------------------------------------------------------------------------- summary features

def test_summary_features_by_hand():
    X = np.arange(12, dtype=float).reshape(2, 3, 2)  # patient 0: hr 0, 2, 4; lab 1, 3, 5
    mask = np.array([[[1, 0], [0, 0], [1, 0]],   # patient 0: hr at steps 0 and 2, lab never
                     [[1, 1], [1, 0], [0, 0]]])  # patient 1: hr at 0 and 1 (6, 8), lab at 0 (7)
    S, names = summary_features(X, mask, ["hr", "lab"])
    assert names == ["hr_mean", "lab_mean", "hr_min", "lab_min", "hr_max", "lab_max", "hr_last", "lab_last"]
    np.testing.assert_array_equal(S[0], [2, np.nan, 0, np.nan, 4, np.nan, 4, np.nan])
    np.testing.assert_array_equal(S[1], [7, 7, 6, 7, 8, 7, 8, 7])


def test_summary_features_ignore_unobserved_values():
    X = np.array([[[5.0], [100.0], [1.0]]])
    S, _ = summary_features(X, np.array([[[1], [0], [1]]]))
    np.testing.assert_array_equal(S, [[3.0, 1.0, 5.0, 1.0]])


def test_summary_features_rejects_mask_channels_in_x():
    with pytest.raises(ConfigError, match=r"X\[\.\.\., :F\]"):
        summary_features(np.zeros((2, 3, 4)), np.zeros((2, 3, 2)))


def test_metrics_never_import_torch():
    code = "import dice_core.evaluation.metrics, sys; assert 'torch' not in sys.modules"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)
