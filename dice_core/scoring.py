"""Scoring new patients with a fitted (or loaded) DICE model."""
from __future__ import annotations

import numpy as np
import pandas as pd


def score_patients(model, cohort_or_prepared) -> pd.DataFrame:
    """One row per patient: risk level (cluster), its training outcome rate, predicted probability,
    distance to every centroid and the classifier's soft membership of every cluster."""
    if not hasattr(cohort_or_prepared, "X"):  # a Cohort, not PreparedData
        model.check_inputs(cohort_or_prepared)
    data = model.prepare(cohort_or_prepared)
    z, memberships, prob = model._forward(data)
    dist = model.distances(z)
    cluster = dist.argmin(1) if len(z) else np.zeros(0, int)
    k = model.config.n_clusters
    out = pd.DataFrame({
        "patient_id": data.patient_ids,
        "cluster": cluster,
        "risk_level": cluster + 1,  # 1 = highest risk, as clinicians read it
        "cluster_outcome_rate": model.cluster_rates_[cluster] if len(z) else np.zeros(0),
        "probability": prob,
    })
    for j in range(k):
        out[f"distance_{j}"] = dist[:, j]
    for j in range(k):
        out[f"membership_{j}"] = memberships[:, j]
    return out
