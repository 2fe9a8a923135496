"""Cluster profiles in the units clinicians read: what distinguishes each risk level.

These summarise the raw events (not the standardised model input), so a heart rate reads as
beats per minute. Clusters come from the model; nothing here trains anything.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kruskal


def patient_means(events: pd.DataFrame, patient_ids=None) -> pd.DataFrame:
    """Mean value of each numeric variable per patient (patients x variables; NaN = never measured)."""
    numeric = events.dropna(subset=["value"])
    table = numeric.pivot_table(index="patient_id", columns="variable", values="value", aggfunc="mean")
    if patient_ids is not None:
        table = table.reindex(pd.Index([str(p) for p in patient_ids], name="patient_id"))
    return table


def distinguishing_variables(events: pd.DataFrame, clusters: pd.Series, top: int | None = None,
                             min_patients: int = 5) -> pd.DataFrame:
    """Variables ranked by how much their per-patient mean differs between clusters
    (Kruskal-Wallis H; variables measured in fewer than `min_patients` per cluster are skipped).

    clusters: Series of cluster numbers indexed by patient id.
    Returns variable, H, p, patients (measured), and the per-cluster median as mean_k columns.
    """
    means = patient_means(events, clusters.index)
    labels = clusters.to_numpy()
    K = int(labels.max()) + 1 if len(labels) else 0
    rows = []
    for variable in means.columns:
        groups = [means[variable].to_numpy()[labels == k] for k in range(K)]
        groups = [g[np.isfinite(g)] for g in groups]
        if K < 2 or min(len(g) for g in groups) < min_patients:
            continue
        if np.ptp(np.concatenate(groups)) == 0:
            continue  # constant: nothing to tell apart
        h, p = kruskal(*groups)
        row = {"variable": variable, "H": float(h), "p": float(p), "patients": int(sum(len(g) for g in groups))}
        row.update({f"median_{k}": float(np.median(g)) for k, g in enumerate(groups)})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["variable", "H", "p", "patients"])
    out = out.sort_values("H", ascending=False).reset_index(drop=True)
    return out.head(top) if top else out


def cluster_signatures(events: pd.DataFrame, clusters: pd.Series, top: int = 3) -> pd.DataFrame:
    """Per cluster, the variables whose mean differs most from the other patients', as a
    standardised mean difference (SMD: difference of means / pooled standard deviation).

    Returns cluster, variable, smd, direction ('higher'/'lower'), cluster_mean, others_mean.
    """
    means = patient_means(events, clusters.index)
    labels = clusters.to_numpy()
    rows = []
    for k in sorted(np.unique(labels)):
        inside, outside = means[labels == k], means[labels != k]
        for variable in means.columns:
            a, b = inside[variable].dropna(), outside[variable].dropna()
            if len(a) < 3 or len(b) < 3:
                continue
            pooled = np.sqrt((a.var() * (len(a) - 1) + b.var() * (len(b) - 1)) / (len(a) + len(b) - 2))
            if not pooled > 0:
                continue
            smd = (a.mean() - b.mean()) / pooled
            rows.append({"cluster": int(k), "variable": variable, "smd": float(smd),
                         "direction": "higher" if smd > 0 else "lower",
                         "cluster_mean": float(a.mean()), "others_mean": float(b.mean())})
    out = pd.DataFrame(rows, columns=["cluster", "variable", "smd", "direction", "cluster_mean", "others_mean"])
    if out.empty:
        return out
    out["abs_smd"] = out["smd"].abs()
    out = out.sort_values(["cluster", "abs_smd"], ascending=[True, False]).groupby("cluster").head(top)
    return out.drop(columns="abs_smd").reset_index(drop=True)


def binned_values(events: pd.DataFrame, variables, bin_hours: float = 1.0, window_hours: float | None = None):
    """Per patient, variable and time bin: the mean value; time is the bin's start in hours."""
    ev = events[events["variable"].isin(list(variables))].dropna(subset=["value"])
    if window_hours is not None:
        ev = ev[(ev["time"] >= 0) & (ev["time"] < window_hours)]
    ev = ev.assign(time=np.floor(ev["time"] / bin_hours) * bin_hours)
    return ev.groupby(["patient_id", "variable", "time"], as_index=False)["value"].mean()


def cluster_trajectories(events: pd.DataFrame, clusters: pd.Series, variables, bin_hours: float = 1.0,
                         window_hours: float | None = None, min_patients: int = 3) -> pd.DataFrame:
    """Mean and standard error of each variable per cluster and time bin, over patients (each
    patient's values in a bin averaged first). Bins with fewer than `min_patients` are left out.

    Returns variable, cluster, time, mean, sem, patients.
    """
    binned = binned_values(events[events["patient_id"].isin(clusters.index)], variables, bin_hours, window_hours)
    binned["cluster"] = clusters.reindex(binned["patient_id"]).to_numpy()
    g = binned.groupby(["variable", "cluster", "time"])["value"]
    out = g.agg(mean="mean", sd="std", patients="count").reset_index()
    out["sem"] = (out["sd"] / np.sqrt(out["patients"])).fillna(0.0)
    out = out[out["patients"] >= min_patients].drop(columns="sd")
    order = {v: i for i, v in enumerate(variables)}
    out = out.sort_values(["variable", "cluster", "time"], key=lambda s: s.map(order) if s.name == "variable" else s)
    return out.reset_index(drop=True)
