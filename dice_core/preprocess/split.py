"""Train / validation / test split of patients, stratified by outcome (paper: 4 : 1 : 1)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from ..data.validate import check_split_feasible
from ..errors import ConfigError


@dataclass
class Split:
    """Patient ids of each split (numpy arrays of str)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def to_dict(self) -> dict:
        return {name: [str(p) for p in getattr(self, name)] for name in ("train", "val", "test")}

    @classmethod
    def from_dict(cls, data: dict) -> "Split":
        return cls(*(np.asarray(data[name], dtype=str) for name in ("train", "val", "test")))


def stratified_split(patient_ids, y, seed: int = 0, ratios=(4.0, 1.0, 1.0)) -> Split:
    """Split patients into train/val/test with the outcome rate kept in each; same seed, same split.

    Raises ConfigError when the classes are too small for every split to hold both outcomes.
    """
    ids = np.asarray([str(p) for p in patient_ids])
    y = np.asarray(y)
    if len(ids) != len(y):
        raise ConfigError(f"{len(ids)} patient ids but {len(y)} outcomes; give one outcome per patient")
    if len(set(ids)) != len(ids):
        raise ConfigError("patient ids repeat; each patient must appear once in a split")
    check_split_feasible(len(ids), int(np.sum(y == 1)), n_clusters=1, ratios=ratios)
    r_train, r_val, r_test = (float(r) for r in ratios)
    positions = np.arange(len(ids))
    rest, test = train_test_split(positions, test_size=r_test / (r_train + r_val + r_test), stratify=y,
                                  random_state=seed)
    train, val = train_test_split(rest, test_size=r_val / (r_train + r_val), stratify=y[rest], random_state=seed)
    return Split(train=ids[train], val=ids[val], test=ids[test])
