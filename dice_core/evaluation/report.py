"""DICE against the baselines on the test split (the paper's Tables 1 and 2, plus fairness).

For every representation (DICE, PCA, AE, AE + classification):
- clustering quality of its clusters on the test patients (Silhouette, Calinski-Harabasz, Davies-Bouldin);
- outcome prediction by a logistic regression on the representation, fitted on the training split,
  its threshold chosen on the validation split (Youden) unless one is given, scored on the test split;
  and the same on the representation plus the covariates (when the cohort has any), so that every
  representation can be set beside the reference, which has the covariates too;
- AUC within each group of the group column, with cluster membership as the predictor (the
  cluster's training outcome rate as the score) and with the representation's logistic regression.
Two more rows of outcome prediction: DICE's own outcome head, and the clinician's reference, a
logistic regression on per-variable summaries (mean, min, max, last) of the same bins plus the covariates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer

from ..model.dice import rows_of
from .baselines import Representation, all_baselines
from .metrics import (calibration_table, choose_threshold, clustering_metrics, fit_representation_classifier,
                      group_auc, outcome_metrics, summary_features)

REFERENCE = "summary statistics + covariates (reference)"
DICE_HEAD = "DICE outcome head"


@dataclass
class EvaluationResult:
    clustering: pd.DataFrame  # one row per representation
    prediction: pd.DataFrame  # one row per predictor
    groups: pd.DataFrame  # one row per representation x predictor x group
    calibration: pd.DataFrame  # DICE outcome head on the test split
    representations: dict = field(default_factory=dict)  # name -> Representation (all patients)
    test_probabilities: dict = field(default_factory=dict)  # predictor -> (test) probabilities
    threshold_rule: str = "youden on the validation split"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"clustering": self.clustering, "prediction": self.prediction, "group_auc": self.groups,
                "calibration": self.calibration}

    def to_dict(self) -> dict:
        return {"threshold_rule": self.threshold_rule,
                **{name: t.to_dict("records") for name, t in self.tables().items()}}


def _cluster_rate_score(clusters, train_rows, y):
    """Each patient's score = the training outcome rate of their cluster (membership as predictor)."""
    k = int(clusters.max()) + 1
    rates = np.array([y[train_rows][clusters[train_rows] == j].mean() if np.any(clusters[train_rows] == j)
                      else y[train_rows].mean() for j in range(k)])
    return rates[clusters]


def _predict_row(name, y, prob, rows, threshold):
    """Outcome metrics on the test rows at a threshold chosen on the validation rows."""
    train, val, test = rows
    thr = threshold if threshold is not None else choose_threshold(y[val], prob[val])
    return {"predictor": name, **outcome_metrics(y[test], prob[test], thr)}


def evaluate(model, cohort, threshold=None, baselines=True, progress=None, should_stop=None) -> EvaluationResult:
    """Evaluate a fitted DICE model (and, by default, the baselines) on its own split of `cohort`."""
    progress = progress or (lambda e: None)
    should_stop = should_stop or (lambda: False)
    data = model.prepare(cohort)
    y = data.y.astype(int)
    split = model.split_
    rows = tuple(rows_of(data, getattr(split, part)) for part in ("train", "val", "test"))
    train, val, test = rows

    progress({"stage": "DICE representation", "fraction": 0.0})
    z, _, head_prob = model._forward(data)
    reps = [Representation("DICE", z, model.predict(z))]
    if baselines:
        forward = lambda e: progress({**e, "fraction": 0.05 + 0.85 * e.get("fraction", 0.0)})
        reps += all_baselines(data, train, val, model.config, forward, should_stop)

    progress({"stage": "metrics", "fraction": 0.9})
    clustering, prediction, groups, probs = [], [], [], {}

    def probe(name, features):
        """The logistic regression on `features` (fitted on train): its row and test probabilities."""
        clf = fit_representation_classifier(features[train], y[train], seed=model.config.seed)
        prob = clf.predict_proba(features)[:, 1]
        prediction.append(_predict_row(name, y, prob, rows, threshold))
        probs[name] = prob[test]
        return prob

    for rep in reps:
        clustering.append({"representation": rep.name, **clustering_metrics(rep.z[test], rep.clusters[test])})
        prob = probe(f"{rep.name} representation", rep.z)
        if data.V.shape[1]:
            probe(f"{rep.name} representation + covariates", np.concatenate([rep.z, data.V], axis=1))
        if data.groups is not None:
            membership = _cluster_rate_score(rep.clusters, train, y)
            for predictor, score in (("cluster membership", membership), ("representation", prob)):
                g = group_auc(y[test], score[test], data.groups[test])
                g.insert(0, "predictor", predictor)
                g.insert(0, "representation", rep.name)
                groups.append(g)

    prediction.append(_predict_row(DICE_HEAD, y, head_prob, rows, threshold))
    probs[DICE_HEAD] = head_prob[test]
    ref_prob = reference_probabilities(data, train, model.config.seed)
    prediction.append(_predict_row(REFERENCE, y, ref_prob, rows, threshold))
    probs[REFERENCE] = ref_prob[test]
    progress({"stage": "evaluation done", "fraction": 1.0})
    return EvaluationResult(
        clustering=pd.DataFrame(clustering), prediction=pd.DataFrame(prediction),
        groups=pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(),
        calibration=calibration_table(y[test], head_prob[test]),
        representations={r.name: r for r in reps}, test_probabilities=probs,
        threshold_rule="given" if threshold is not None else "youden on the validation split")


def reference_probabilities(data, train_rows, seed=0) -> np.ndarray:
    """The clinician's reference: logistic regression on mean/min/max/last of each variable plus covariates."""
    values = data.X[..., :data.n_features]
    summaries, _ = summary_features(values, data.mask, data.feature_names)
    imputer = SimpleImputer(keep_empty_features=True).fit(summaries[train_rows])
    features = np.concatenate([imputer.transform(summaries), data.V], axis=1)
    clf = fit_representation_classifier(features[train_rows], data.y[train_rows].astype(int), seed=seed)
    return clf.predict_proba(features)[:, 1]
