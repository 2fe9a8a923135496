"""Turn a Cohort's irregular events into fixed-size arrays for the network (method: "Data").

`Preprocessor.fit` learns everything from the training split only: the variables, each variable's
kind, the standardisation, the covariate encoding and the training value ranges. `transform` bins
any cohort the same way, so a saved preprocessor (`to_dict`, JSON) prepares new patients exactly
as it prepared the training patients.

Binning (T = window_hours / bin_hours steps over [0, window); events outside are dropped):
- numeric variable: mean of the values in a step; observed where a step has a value; an
  unobserved step carries the patient's last observed value forward, before the first one the
  training mean; values are standardised with the training mean/std of observed step means;
- coded variable (every value empty, e.g. an order): number of events in the step; a step
  without an event is a true zero, not missing, so it is not imputed; mask = count > 0;
  standardised with the training mean/std of the counts over all steps.
The mask marks observed steps and, with `mask_as_input`, is appended to X as F extra channels.
Covariates: a numeric one is standardised (a missing value reads as the training mean, with a
missing indicator when training had missing values); a categorical one is one-hot against its most
frequent training level, so a missing value or a level never seen in training reads as that
reference level: `unseen_levels(cohort)` lists such values so they can be shown to the user.
All work is vectorised over patients (chunks of patients bound the memory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import PreprocessConfig
from ..data.validate import WINDOW_SETTING, as_text
from ..errors import CohortError, ConfigError

NUMERIC, CODED = "numeric", "coded"
MISSING_ONLY = "missing indicator"  # a numeric covariate with a single training value: only its missingness
CELLS_PER_CHUNK = 1 << 22  # patients x steps x features handled at once (bounds temporary memory)
FAR_OUTSIDE = 0.5  # out_of_range: beyond min/max by more than this share of the 1st-99th percentile span
FORMAT = "dice-preprocessor"
SKEWED = 2.0  # log_skewed: the skewness above which a non-negative variable is log-transformed


@dataclass
class PreparedData:
    """Arrays for P patients, T steps, F features and C covariate columns (see docs/architecture.md).

    X (P,T,F_in) float32: standardised, imputed values, then the mask channels when mask_as_input.
    mask (P,T,F) bool: True where the step was observed. V (P,C) float32: covariate design.
    y (P,) float32 or None. groups (P,) str ("" where missing) or None.
    """

    patient_ids: np.ndarray
    X: np.ndarray
    mask: np.ndarray
    V: np.ndarray
    y: np.ndarray | None
    groups: np.ndarray | None
    feature_names: list[str]
    covariate_names: list[str]

    @property
    def n_features(self) -> int:
        """F: value features per step (the width of the mask)."""
        return self.mask.shape[2]

    @property
    def n_inputs(self) -> int:
        """Encoder input width: F, or 2F with the mask channels."""
        return self.X.shape[2]

    @property
    def n_steps(self) -> int:
        return self.X.shape[1]

    def __len__(self) -> int:
        return len(self.patient_ids)

    def subset(self, index) -> "PreparedData":
        """Rows by position (ints), boolean mask, or patient ids (strings); order of `index` kept."""
        index = np.asarray(index)
        if index.dtype.kind in "USO":
            positions = pd.Index(self.patient_ids).get_indexer(index.astype(str))
            if (positions < 0).any():
                missing = index[positions < 0][:5].tolist()
                raise CohortError(f"patient ids {missing} are not in the prepared data")
            index = positions
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return PreparedData(self.patient_ids[index], self.X[index], self.mask[index], self.V[index],
                            pick(self.y), pick(self.groups), list(self.feature_names), list(self.covariate_names))


class Preprocessor:
    """Bins, imputes and standardises events; encodes covariates. Learns from the training split only."""

    def __init__(self, config: PreprocessConfig = PreprocessConfig()):
        self.config = config

    # ----------------------------------------------------------------------------------- fit

    def fit(self, cohort, train_ids) -> "Preprocessor":
        """Learn variables, kinds, standardisation, covariate encoding and value ranges from train_ids."""
        train_ids = pd.Index([str(p) for p in train_ids])
        unknown = train_ids.difference(cohort.patients.index)
        if len(unknown):
            raise CohortError(f"{len(unknown)} training patient ids are not in the cohort (e.g. "
                              f"{list(unknown[:5])}); split the same cohort that is being fitted")
        events = cohort.events
        rows = _lookup(events["patient_id"], train_ids)
        time = events["time"].to_numpy(dtype=float)
        value = events["value"].to_numpy(dtype=float)
        variable, names = pd.factorize(events["variable"])
        used = (rows >= 0) & self._in_window(time) & (variable >= 0)
        if not used.any():
            raise CohortError(f"the training patients have no events within the first "
                              f"{self.config.window_hours:g} hours; check the times (hours since the index "
                              f"time) or set a longer window ({WINDOW_SETTING})")
        seen = np.bincount(variable[used], minlength=len(names)) > 0
        has_values = np.bincount(variable[used & ~np.isnan(value)], minlength=len(names)) > 0
        numeric = dict(zip(names[seen].astype(str), has_values[seen]))
        self.variables_ = sorted(numeric)
        self.kinds_ = [NUMERIC if numeric[v] else CODED for v in self.variables_]
        cells = self._cells(events, train_ids, rows)
        self.logged_ = self._skewed_variables(cells) if self.config.log_skewed else []
        self.means_, self.stds_ = self._feature_statistics(cells, len(train_ids))
        self.ranges_ = self._value_ranges(cells)
        self.covariates_ = _fit_covariates(cohort.patients.loc[train_ids], cohort.covariates)
        self.group_ = cohort.group
        return self

    def _skewed_variables(self, cells) -> list[str]:
        """Numeric variables whose raw training values are all >= 0 with a skewness above SKEWED
        (coded variables have no values, so they never qualify)."""
        _, _, features, values = cells
        measured = ~np.isnan(values)
        by_feature = pd.Series(values[measured]).groupby(features[measured])
        chosen = by_feature.min().ge(0) & by_feature.skew().gt(SKEWED)
        return [self.variables_[f] for f in chosen.index[chosen]]

    def _feature_statistics(self, cells, n_patients: int):
        """Per feature: numeric -> mean/std of observed step means; coded -> of counts over all steps."""
        F = len(self.variables_)
        coded = np.array([k == CODED for k in self.kinds_])
        n, sums, squares = np.zeros(F), np.zeros(F), np.zeros(F)
        for _, _, x, observed in self._binned_chunks(cells, n_patients):
            x = np.where(observed | coded, x, 0.0)  # numeric: observed steps only; coded: every step
            n += (observed | coded).sum(axis=(0, 1))
            sums += x.sum(axis=(0, 1))
            squares += (x ** 2).sum(axis=(0, 1))
        means = sums / np.maximum(n, 1)
        variances = squares / np.maximum(n, 1) - means ** 2
        stds = np.where(variances > 1e-12, np.sqrt(np.maximum(variances, 0)), 1.0)  # constant: unscaled
        return means, stds

    def _value_ranges(self, cells) -> dict:
        """Training 1st/99th percentile, min and max of the raw values of each numeric variable."""
        _, _, features, values = cells
        measured = ~np.isnan(values)
        features, values = features[measured], values[measured]
        order = np.argsort(features, kind="stable")
        bounds = np.searchsorted(features[order], np.arange(len(self.variables_) + 1))
        ranges = {}
        for f, name in enumerate(self.variables_):
            v = values[order[bounds[f]:bounds[f + 1]]]
            if len(v):
                p01, p99 = np.percentile(v, [1, 99])
                ranges[name] = [float(p01), float(p99), float(v.min()), float(v.max())]
        return ranges

    # ----------------------------------------------------------------------------- transform

    def transform(self, cohort) -> PreparedData:
        """Arrays for every patient of `cohort` (in cohort.patients order)."""
        self._check_fitted()
        ids = cohort.patients.index.astype(str)
        P, T, F = len(ids), self.config.n_steps, len(self.variables_)
        X = np.zeros((P, T, 2 * F if self.config.mask_as_input else F), dtype=np.float32)
        mask = np.zeros((P, T, F), dtype=bool)
        for p0, p1, x, observed in self._binned_chunks(self._cells(cohort.events, ids), P):
            for t in range(1, T):  # carry forward, vectorised over patients and features (coded: no gaps)
                np.copyto(x[:, t], x[:, t - 1], where=np.isnan(x[:, t]))
            x -= self.means_
            x /= self.stds_
            x[np.isnan(x)] = 0.0  # before the first value: the training mean
            if self.config.clip_sd is not None:
                np.clip(x, -self.config.clip_sd, self.config.clip_sd, out=x)
            X[p0:p1, :, :F] = x
            mask[p0:p1] = observed
            if self.config.mask_as_input:
                X[p0:p1, :, F:] = observed
        patients = cohort.patients
        y = _outcome_array(patients)
        groups = None
        if self.group_ and self.group_ in patients:
            groups = patients[self.group_].astype(str).where(patients[self.group_].notna(), "").to_numpy(dtype=str)
        V, names = _encode_covariates(patients, self.covariates_)
        return PreparedData(np.asarray(ids, dtype=str), X, mask, V, y, groups, list(self.variables_), names)

    def fit_transform(self, cohort, train_ids) -> PreparedData:
        return self.fit(cohort, train_ids).transform(cohort)

    def _binned_chunks(self, cells, n_patients: int):
        """Yield (p0, p1, x, observed) for chunks of patients: x (n,T,F) float64 is the step mean of a
        numeric variable (NaN where unobserved) or the event count of a coded one; observed is bool."""
        rows, steps, features, values = cells
        T, F = self.config.n_steps, len(self.variables_)
        coded = np.array([k == CODED for k in self.kinds_], dtype=bool)
        logged = np.isin(self.variables_, self.logged_)
        chunk = max(1, CELLS_PER_CHUNK // (T * F))
        order = None if np.all(rows[1:] >= rows[:-1]) else np.argsort(rows, kind="stable")
        starts = np.arange(0, n_patients, chunk)
        bounds = np.searchsorted(rows if order is None else rows[order], np.append(starts, n_patients))
        for i, p0 in enumerate(starts):
            p1 = min(p0 + chunk, n_patients)
            take = slice(bounds[i], bounds[i + 1]) if order is None else order[bounds[i]:bounds[i + 1]]
            r, f, v = rows[take] - p0, features[take], values[take]
            if logged.any():
                v = np.where(logged[f], np.log1p(np.maximum(v, 0.0)), v)  # >= 0 in training; a new negative: 0
            cell = (r.astype(np.int64) * T + steps[take]) * F + f
            counted = coded[f] | ~np.isnan(v)  # a numeric variable's empty value is not a measurement
            size = (p1 - p0) * T * F
            counts = np.bincount(cell[counted], minlength=size).reshape(p1 - p0, T, F)
            sums = np.bincount(cell[counted], weights=np.nan_to_num(v[counted]), minlength=size)
            observed = counts > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                x = np.where(observed, sums.reshape(p1 - p0, T, F) / counts, np.nan)
            x[:, :, coded] = counts[:, :, coded]
            yield p0, p1, x, observed

    # ------------------------------------------------------------------------------ helpers

    def _in_window(self, time: np.ndarray) -> np.ndarray:
        return (time >= 0) & (time < self.config.window_hours)

    def _cells(self, events: pd.DataFrame, patient_ids, rows=None):
        """(row, step, feature, value) arrays of the events in the window, of known patients and variables.

        rows: each event's position in patient_ids, when the caller has it already."""
        time = events["time"].to_numpy(dtype=float)
        rows = _lookup(events["patient_id"], patient_ids) if rows is None else rows
        features = _lookup(events["variable"], self.variables_)
        keep = np.flatnonzero((rows >= 0) & (features >= 0) & self._in_window(time))
        steps = np.minimum(np.floor(time[keep] / self.config.bin_hours).astype(np.int32),
                           self.config.n_steps - 1)  # a window that is not a whole number of bins
        return rows[keep], steps, features[keep], events["value"].to_numpy(dtype=float)[keep]

    def _check_fitted(self):
        if not hasattr(self, "variables_"):
            raise ConfigError("this Preprocessor is not fitted yet; call fit(cohort, train_ids) first")

    # ------------------------------------------------------------------------------ reports

    def unknown_variables(self, cohort) -> list[str]:
        """Variables of `cohort` that the preprocessor was not fitted on (they are ignored)."""
        self._check_fitted()
        return sorted(set(cohort.events["variable"].unique()) - set(self.variables_))

    def out_of_range(self, cohort) -> pd.DataFrame:
        """Values in the window far outside the training values (beyond min/max by half the p1-p99 span)."""
        self._check_fitted()
        events = cohort.events
        names = list(self.ranges_)
        ranges = np.array([self.ranges_[n] for n in names]).reshape(-1, 4)
        p01, p99, low, high = (np.append(ranges[:, i], np.nan) for i in range(4))  # last: not a numeric variable
        which = _lookup(events["variable"], names)
        value = events["value"].to_numpy(dtype=float)
        margin = FAR_OUTSIDE * (p99 - p01)[which]
        with np.errstate(invalid="ignore"):
            far = (value < low[which] - margin) | (value > high[which] + margin)
        far &= self._in_window(events["time"].to_numpy(dtype=float))
        out = events.loc[far, ["patient_id", "time", "variable", "value"]].reset_index(drop=True)
        out["training_min"] = low[which][far]
        out["training_max"] = high[which][far]
        return out

    def unseen_levels(self, cohort) -> pd.DataFrame:
        """Covariate values the fitted encoding cannot represent: one row each (patient_id, covariate, value).

        A categorical value never seen in training is encoded as the reference level (the most frequent
        training level), and text in a numeric covariate reads as missing (the training mean); both
        would be scored silently, so show them. Empty values are not listed (they are plain missing).
        """
        self._check_fitted()
        patients = cohort.patients
        found = []
        for spec in self.covariates_:
            name = spec["name"]
            if name not in patients:
                continue  # transform raises for it
            column = patients[name]
            if spec["kind"] == "categorical":
                labels = as_text(column)
                unseen = labels.notna() & ~labels.isin([spec["reference"], *spec["levels"]])
                values = labels[unseen]
            else:
                text = column.astype(str).str.strip().mask(column.isna())
                unseen = text.notna() & (text != "") & pd.to_numeric(text, errors="coerce").isna()
                values = text[unseen]
            found += [(str(pid), name, value) for pid, value in values.items()]
        return pd.DataFrame(found, columns=["patient_id", "covariate", "value"])

    # -------------------------------------------------------------------------- persistence

    def to_dict(self) -> dict:
        """Everything fit learnt, as plain JSON types."""
        self._check_fitted()
        return {
            "format": FORMAT, "version": 1,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.config.to_dict().items()},
            "variables": list(self.variables_), "kinds": list(self.kinds_),
            "means": [float(m) for m in self.means_], "stds": [float(s) for s in self.stds_],
            "ranges": self.ranges_, "covariates": self.covariates_, "group": self.group_,
            "logged": list(self.logged_),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessor":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError("this is not a DICE Studio preprocessor description (format "
                              f"{data.get('format') if isinstance(data, dict) else type(data).__name__!r})")
        self = cls(PreprocessConfig.from_dict(data["config"]))
        self.variables_ = list(data["variables"])
        self.kinds_ = list(data["kinds"])
        self.means_ = np.asarray(data["means"], dtype=float)
        self.stds_ = np.asarray(data["stds"], dtype=float)
        self.ranges_ = {k: list(v) for k, v in data["ranges"].items()}
        self.covariates_ = [dict(c) for c in data["covariates"]]
        self.group_ = data["group"]
        self.logged_ = list(data.get("logged", []))  # files written before log_skewed existed have none
        return self


def _outcome_array(patients: pd.DataFrame) -> np.ndarray | None:
    """y as float32 (NaN where unknown); None when no patient has an outcome (patients to be scored)."""
    if "outcome" not in patients or (len(patients) and patients["outcome"].isna().all()):
        return None
    return pd.to_numeric(patients["outcome"], errors="coerce").astype(float).to_numpy(dtype=np.float32)


def _lookup(values: pd.Series, known) -> np.ndarray:
    """Position of each value in `known` (int32; -1 where unknown or missing), hashing each distinct value once."""
    codes, distinct = pd.factorize(values)
    positions = np.append(pd.Index(known).get_indexer(distinct.astype(str)), -1)
    return positions[codes].astype(np.int32)


# ---------------------------------------------------------------------------------- covariates


def _fit_covariates(patients: pd.DataFrame, names) -> list[dict]:
    """Encoding of each covariate learnt on the training patients (a constant one is left out)."""
    specs = []
    for name in names:
        column = patients[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.astype(float)
            if values.notna().sum() == 0:
                continue  # never observed in training: nothing to learn
            std = float(values.std(ddof=0))
            missing_indicator = bool(values.isna().any())
            if std < 1e-12:  # one value: only whether it is missing can inform (else collinear with the intercept)
                if missing_indicator:
                    specs.append({"name": str(name), "kind": MISSING_ONLY})
                continue
            specs.append({"name": str(name), "kind": NUMERIC, "mean": float(values.mean()), "std": std,
                          "missing_indicator": missing_indicator})
        else:
            counts = as_text(column).value_counts()
            if len(counts) < 2:
                continue
            reference = sorted(counts.index[counts == counts.max()])[0]  # most frequent, ties by name
            levels = sorted(lv for lv in counts.index if lv != reference)
            specs.append({"name": str(name), "kind": "categorical", "reference": reference, "levels": levels})
    return specs


def _encode_covariates(patients: pd.DataFrame, specs: list[dict]) -> tuple[np.ndarray, list[str]]:
    columns, names = [], []
    for spec in specs:
        name = spec["name"]
        if name not in patients:
            raise CohortError(f"covariate column '{name}' is missing from the patients table; the model was "
                              f"fitted with it")
        if spec["kind"] in (NUMERIC, MISSING_ONLY):
            values = pd.to_numeric(patients[name], errors="coerce").to_numpy(dtype=float)
            missing = np.isnan(values)
            if spec["kind"] == NUMERIC:
                columns.append(np.where(missing, 0.0, (values - spec["mean"]) / spec["std"]))
                names.append(name)
            if spec["kind"] == MISSING_ONLY or spec["missing_indicator"]:
                columns.append(missing.astype(float))
                names.append(f"{name}_missing")
        else:
            labels = as_text(patients[name]).to_numpy()
            for level in spec["levels"]:  # unseen or missing level -> all zeros (the reference)
                columns.append((labels == level).astype(float))
                names.append(f"{name}={level}")
    V = np.column_stack(columns).astype(np.float32) if columns else np.zeros((len(patients), 0), np.float32)
    return V, names
