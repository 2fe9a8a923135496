"""Two-dimensional maps of a learned representation (UMAP), for pictures only.

The map is fitted on the training patients; validation, test and new patients are placed on the
same map with `transform`, so a new patient lands among the training patients most like them.

UMAP is slow the first time in a process (numba compiles for ~20-30 s), so the dashboard builds
maps in a background process and keeps the coordinates on disk (`save_map` / `load_map`). A new
patient scored later is placed with `place_near`: the average position of its nearest training
patients in the representation, which is how UMAP itself initialises `transform`, without keeping
a fitted UMAP object (that could only be stored with pickle).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError

MAP_COLUMNS = ["patient_id", "x", "y", "split"]


class MapEmbedding:
    """UMAP fitted on training patients; `transform` places any other patients on the same map."""

    def __init__(self, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1):
        self.seed = seed
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist

    def fit(self, Z_train) -> "MapEmbedding":
        Z_train = np.asarray(Z_train, dtype=np.float32)
        if len(Z_train) < 5:
            raise ConfigError(f"a map needs at least 5 training patients; got {len(Z_train)}")
        import umap  # slow import (numba): only when a map is built

        # UMAP needs n_neighbors < n; tiny cohorts (tests, demos) get fewer neighbours.
        n_neighbors = int(min(self.n_neighbors, len(Z_train) - 1))
        self.umap_ = umap.UMAP(n_neighbors=n_neighbors, min_dist=self.min_dist, random_state=self.seed,
                               n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", spectral init notes
            self.train_xy_ = self.umap_.fit_transform(Z_train).astype(np.float64)
        return self

    def transform(self, Z) -> np.ndarray:
        Z = np.asarray(Z, dtype=np.float32)
        if len(Z) == 0:
            return np.zeros((0, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.umap_.transform(Z).astype(np.float64)


def fit_umap(Z_train, seed: int = 0, **kwargs) -> MapEmbedding:
    """A UMAP map fitted on the training representation (see MapEmbedding)."""
    return MapEmbedding(seed=seed, **kwargs).fit(Z_train)


def build_map(Z: np.ndarray, patient_ids, splits, seed: int = 0) -> pd.DataFrame:
    """Coordinates of every patient: fitted on rows whose split is "train", the others transformed.

    Returns a DataFrame with columns patient_id, x, y, split (one row per input row, same order).
    """
    splits = np.asarray(splits).astype(str)
    is_train = splits == "train"
    embedding = fit_umap(Z[is_train], seed=seed)
    xy = np.zeros((len(Z), 2))
    xy[is_train] = embedding.train_xy_
    xy[~is_train] = embedding.transform(Z[~is_train])
    return pd.DataFrame({"patient_id": np.asarray(patient_ids).astype(str), "x": xy[:, 0], "y": xy[:, 1],
                         "split": splits})


def place_near(Z_new, Z_ref, xy_ref, k: int = 10) -> np.ndarray:
    """Place new patients on an existing map at the distance-weighted mean of their k nearest
    reference patients in the representation (UMAP's own initialisation of `transform`)."""
    Z_new, Z_ref, xy_ref = (np.asarray(a, dtype=np.float64) for a in (Z_new, Z_ref, xy_ref))
    if len(Z_ref) == 0:
        raise ConfigError("the map has no reference patients to place new patients among")
    k = int(min(k, len(Z_ref)))
    d2 = ((Z_new[:, None, :] - Z_ref[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d2, axis=1)[:, :k]
    dist = np.sqrt(np.take_along_axis(d2, nearest, axis=1))
    weights = 1.0 / (dist + 1e-6)
    weights /= weights.sum(1, keepdims=True)
    return (xy_ref[nearest] * weights[:, :, None]).sum(1)


def save_map(frame: pd.DataFrame, path, meta: dict | None = None) -> Path:
    """Write map coordinates as CSV (plus a small JSON beside it), readable by anyone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame[MAP_COLUMNS].to_csv(tmp, index=False)
    tmp.replace(path)  # readers never see half a file
    if meta is not None:
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def load_map(path) -> pd.DataFrame | None:
    """Coordinates written by save_map, or None when the map is not (yet) there."""
    path = Path(path)
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"patient_id": str, "split": str})
