"""Evaluation metrics of the DICE paper, section 4 (numpy / scikit-learn / pandas only).

- clustering quality on a representation: Silhouette, Calinski-Harabasz, Davies-Bouldin;
- outcome prediction at a stated threshold: AUC, ACC, FPR, TPR, FNR, TNR, PPV, NPV;
- the logistic-regression probe on a representation (Table 2);
- AUC within groups (fairness), calibration table;
- the clinician reference: per-variable summaries (mean, min, max, last) of the binned window.

Undefined values (a single cluster, one outcome class, a zero denominator) come back as NaN with
a note, never as an exception.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import (calinski_harabasz_score, davies_bouldin_score, precision_recall_curve,
                             roc_auc_score, roc_curve, silhouette_score)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import ConfigError

THRESHOLD_RULES = ("youden", "f1", "prevalence")
SUMMARY_STATISTICS = ("mean", "min", "max", "last")


# ----------------------------------------------------------------------------- clustering

def clustering_metrics(Z, labels, *, max_samples: int = 5000, seed: int = 0) -> dict:
    """Silhouette (higher is better), Calinski-Harabasz (higher) and Davies-Bouldin (lower) of
    representation Z (n, d) with cluster labels (n,).

    Above max_samples patients the silhouette (O(n^2)) is computed on a random subsample of
    max_samples, drawn with `seed`; "silhouette_sample_size" says how many were used.
    With fewer than 2 distinct labels (or as many labels as patients) every metric is NaN and
    "note" says why.
    """
    Z = np.asarray(Z, dtype=float)
    labels = np.asarray(labels)
    if Z.ndim != 2 or Z.shape[0] != labels.shape[0]:
        raise ConfigError(f"clustering_metrics: Z has shape {Z.shape} but there are {labels.shape[0]} labels")
    n, n_labels = Z.shape[0], np.unique(labels).size
    result = {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan,
              "n": n, "n_clusters": n_labels, "silhouette_sample_size": 0, "note": ""}
    if not 2 <= n_labels <= n - 1:
        result["note"] = (f"{n_labels} distinct cluster(s) among {n} patients: the metrics need "
                          f"between 2 and n-1 clusters")
        return result
    sample_size = min(n, max_samples)
    result["silhouette"] = float(silhouette_score(
        Z, labels, sample_size=sample_size if n > max_samples else None, random_state=seed))
    result["silhouette_sample_size"] = sample_size
    if n > max_samples:
        result["note"] = f"silhouette on a random subsample of {sample_size} of {n} patients (seed {seed})"
    result["calinski_harabasz"] = float(calinski_harabasz_score(Z, labels))
    result["davies_bouldin"] = float(davies_bouldin_score(Z, labels))
    return result


# ----------------------------------------------------------------------------- outcome prediction

def outcome_metrics(y_true, prob, threshold: float = 0.5) -> dict:
    """AUC and the confusion-matrix rates when predicting positive for prob >= threshold.

    Keys: auc, acc, fpr, tpr, fnr, tnr, ppv, npv, threshold, n, prevalence, tp, fp, tn, fn, note.
    A rate whose denominator is 0 (e.g. PPV when nobody is predicted positive) is NaN; the AUC is
    NaN when y_true holds one class only.
    """
    y, prob = _check_binary(y_true, prob, "outcome_metrics")
    predicted = prob >= threshold
    tp = int(np.sum(predicted & (y == 1)))
    fp = int(np.sum(predicted & (y == 0)))
    tn = int(np.sum(~predicted & (y == 0)))
    fn = int(np.sum(~predicted & (y == 1)))
    notes = []
    auc = np.nan
    if np.unique(y).size == 2:
        auc = float(roc_auc_score(y, prob))
    else:
        notes.append("one outcome class only: AUC undefined")
    return {
        "auc": auc, "acc": _ratio(tp + tn, y.size), "fpr": _ratio(fp, fp + tn),
        "tpr": _ratio(tp, tp + fn), "fnr": _ratio(fn, tp + fn), "tnr": _ratio(tn, fp + tn),
        "ppv": _ratio(tp, tp + fp), "npv": _ratio(tn, tn + fn), "threshold": float(threshold),
        "n": int(y.size), "prevalence": _ratio(tp + fn, y.size),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn, "note": "; ".join(notes),
    }


def choose_threshold(y, prob, rule: str = "youden") -> float:
    """A decision threshold chosen on VALIDATION data (never on the test split).

    rule: "youden" maximises TPR - FPR; "f1" maximises F1; "prevalence" predicts positive for the
    same fraction of patients as the observed prevalence. Ties go to the highest threshold.
    With one outcome class only, returns 0.5.
    """
    if rule not in THRESHOLD_RULES:
        raise ConfigError(f"threshold rule {rule!r} is unknown; use one of {THRESHOLD_RULES}")
    y, prob = _check_binary(y, prob, "choose_threshold")
    if np.unique(y).size < 2:
        return 0.5
    if rule == "youden":
        fpr, tpr, thresholds = roc_curve(y, prob)
        finite = np.isfinite(thresholds)  # the first threshold is +inf (nobody positive)
        return _best_threshold(thresholds[finite], (tpr - fpr)[finite])
    if rule == "f1":
        precision, recall, thresholds = precision_recall_curve(y, prob)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
        return _best_threshold(thresholds, f1)
    # prevalence: the (1 - prevalence) quantile of the scores
    return float(np.quantile(prob, 1.0 - y.mean(), method="higher"))


def fit_representation_classifier(Z_train, y_train, seed: int = 0, C: float | str = 1.0) -> Pipeline:
    """Logistic regression on a standardised representation (the paper's Table 2 probe).

    C=1.0 (scikit-learn's default, L2 penalty) unless C="cv": then C is chosen from 10 values on a
    log grid by 5-fold cross-validated AUC on the training data. Returns a fitted Pipeline with
    predict_proba.
    """
    Z, y = np.asarray(Z_train, dtype=float), np.asarray(y_train).astype(int).ravel()
    if Z.ndim != 2 or Z.shape[0] != y.size:
        raise ConfigError(f"fit_representation_classifier: Z has shape {Z.shape} but y has {y.size} values")
    if np.unique(y).size < 2:
        raise ConfigError("fit_representation_classifier: the training outcome has one class only; "
                          "the training split needs patients with and without the outcome")
    if C == "cv":
        # l1_ratios=(0,): plain L2 as with C=1.0; the two flags keep scikit-learn 1.9 from warning
        model = LogisticRegressionCV(Cs=10, cv=5, l1_ratios=(0.0,), scoring="roc_auc", max_iter=1000,
                                     random_state=seed, use_legacy_attributes=False)
    else:
        model = LogisticRegression(C=float(C), max_iter=1000, random_state=seed)
    return make_pipeline(StandardScaler(), model).fit(Z, y)


def representation_auc(Z_train, y_train, Z_eval, y_eval, *, seed: int = 0, C: float | str = 1.0) -> float:
    """AUC on (Z_eval, y_eval) of the logistic regression fitted on (Z_train, y_train);
    NaN when y_eval holds one class only."""
    model = fit_representation_classifier(Z_train, y_train, seed=seed, C=C)
    prob = model.predict_proba(np.asarray(Z_eval, dtype=float))[:, 1]
    return outcome_metrics(y_eval, prob)["auc"]


# ----------------------------------------------------------------------------- fairness, calibration

def group_auc(y, prob, groups, min_size: int = 30) -> pd.DataFrame:
    """AUC within each group (e.g. race): columns group, n, positives, auc, small_group, note.

    A group with one outcome class has auc NaN and note "one outcome class" (not an error);
    small_group is True when n < min_size (its AUC is too noisy to compare). Missing group
    values form the group "(missing)".
    """
    y, prob = _check_binary(y, prob, "group_auc")
    groups = pd.Series(np.asarray(groups, dtype=object)).fillna("(missing)").astype(str).to_numpy()
    if groups.size != y.size:
        raise ConfigError(f"group_auc: {groups.size} group values for {y.size} patients")
    rows = []
    for group in sorted(set(groups)):
        member = groups == group
        n, positives = int(member.sum()), int(y[member].sum())
        one_class = positives in (0, n)
        rows.append({"group": group, "n": n, "positives": positives,
                     "auc": np.nan if one_class else float(roc_auc_score(y[member], prob[member])),
                     "small_group": n < min_size, "note": "one outcome class" if one_class else ""})
    return pd.DataFrame(rows, columns=["group", "n", "positives", "auc", "small_group", "note"])


def calibration_table(y, prob, n_bins: int = 10, strategy: str = "uniform") -> pd.DataFrame:
    """Reliability table: one row per non-empty bin of predicted probability with columns
    bin_low, bin_high, n, mean_predicted, observed_rate (sklearn's calibration_curve + counts)."""
    y, prob = _check_binary(y, prob, "calibration_table")
    if prob.min() < 0 or prob.max() > 1:
        raise ConfigError("calibration_table: predicted probabilities must lie in [0, 1]")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(prob, np.linspace(0, 100, n_bins + 1))
    else:
        raise ConfigError(f"calibration strategy {strategy!r} must be 'uniform' or 'quantile'")
    observed, predicted = calibration_curve(y, prob, n_bins=n_bins, strategy=strategy)
    bin_ids = np.searchsorted(edges[1:-1], prob)  # the same binning as calibration_curve
    counts = np.bincount(bin_ids, minlength=len(edges) - 1)
    used = np.flatnonzero(counts > 0)
    return pd.DataFrame({"bin_low": edges[used], "bin_high": edges[used + 1], "n": counts[used],
                         "mean_predicted": predicted, "observed_rate": observed})


# ----------------------------------------------------------------------------- summary reference

def summary_features(X, mask, feature_names=None) -> tuple[np.ndarray, list[str]]:
    """Per-variable summaries over the binned window, the clinician's reference representation.

    X: (P, T, F) binned values (standardised or not) and mask: (P, T, F), 1 where observed.
    Returns S (P, 4F) laid out as [mean of each variable | min | max | last observed], computed
    on observed entries only, and names like "HR_mean". A variable never observed for a patient
    gives NaN: fill those with training-set means afterwards (e.g. sklearn's SimpleImputer fitted
    on the training rows, keep_empty_features=True).
    """
    X = np.asarray(X, dtype=float)
    observed = np.asarray(mask).astype(bool)
    if X.ndim != 3 or X.shape != observed.shape:
        raise ConfigError(f"summary_features: X has shape {X.shape} and mask {observed.shape}; both must be "
                          f"(patients, steps, features) alike (pass only the value channels, X[..., :F])")
    P, T, F = X.shape
    names = list(feature_names) if feature_names is not None else [f"f{j}" for j in range(F)]
    if len(names) != F:
        raise ConfigError(f"summary_features: {len(names)} feature names for {F} features")
    values = np.where(observed, X, np.nan)
    any_observed = observed.any(axis=1)  # (P, F)
    with np.errstate(invalid="ignore"):
        count = observed.sum(axis=1)
        mean = np.where(any_observed, np.nansum(values, axis=1) / np.maximum(count, 1), np.nan)
        low = np.where(any_observed, np.min(np.where(observed, X, np.inf), axis=1), np.nan)
        high = np.where(any_observed, np.max(np.where(observed, X, -np.inf), axis=1), np.nan)
    last_step = T - 1 - np.argmax(observed[:, ::-1, :], axis=1)  # (P, F) last observed step
    last = np.take_along_axis(X, last_step[:, None, :], axis=1)[:, 0, :]
    last = np.where(any_observed, last, np.nan)
    S = np.concatenate([mean, low, high, last], axis=1)
    return S, [f"{name}_{stat}" for stat in SUMMARY_STATISTICS for name in names]


# ----------------------------------------------------------------------------- helpers

def _best_threshold(thresholds, score) -> float:
    """The highest threshold whose score is within rounding of the best score."""
    best = score >= np.max(score) - 1e-12
    return float(np.max(thresholds[best]))


def _ratio(numerator, denominator) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def _check_binary(y, prob, where):
    y = np.asarray(y, dtype=float).ravel()
    prob = np.asarray(prob, dtype=float).ravel()
    if y.size != prob.size:
        raise ConfigError(f"{where}: {y.size} outcomes but {prob.size} predicted probabilities")
    if y.size == 0:
        raise ConfigError(f"{where}: no patients")
    if not np.all((y == 0) | (y == 1)):
        raise ConfigError(f"{where}: the outcome must hold only 0 and 1")
    if not np.all(np.isfinite(prob)):
        raise ConfigError(f"{where}: predicted probabilities hold NaN or inf")
    return y.astype(int), prob
