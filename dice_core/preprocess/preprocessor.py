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
All work is vectorised over patients (chunks of patients bound the memory).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import PreprocessConfig
from ..errors import CohortError, ConfigError

NUMERIC, CODED = "numeric", "coded"
CELLS_PER_CHUNK = 1 << 22  # patients x steps x features handled at once (bounds temporary memory)
FAR_OUTSIDE = 0.5  # out_of_range: beyond min/max by more than this share of the 1st-99th percentile span
FORMAT = "dice-preprocessor"


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
        train_ids = pd.Index([str(p) for p in train_ids])
        unknown = train_ids.difference(cohort.patients.index)
        if len(unknown):
            raise CohortError(f"{len(unknown)} training patient ids are not in the cohort (e.g. "
                              f"{list(unknown[:5])}); split the same cohort that is being fitted")
        events = self._in_window(cohort.events)
        events = events[events["patient_id"].isin(train_ids)]
        if events.empty:
            raise CohortError(f"the training patients have no events within the first "
                              f"{self.config.window_hours:g} hours; check the times (hours since the index "
                              f"time) or set a longer window_hours")
        numeric = events["value"].notna().groupby(events["variable"]).any()
        self.variables_ = sorted(numeric.index.tolist())
        self.kinds_ = [NUMERIC if numeric[v] else CODED for v in self.variables_]
        self.means_, self.stds_ = self._feature_statistics(events, len(train_ids))
        self.ranges_ = self._value_ranges(events)
        self.covariates_ = _fit_covariates(cohort.patients.loc[train_ids], cohort.covariates)
        self.group_ = cohort.group
        return self

    def _feature_statistics(self, events: pd.DataFrame, n_patients: int):
        """Per feature: numeric -> mean/std of observed step means; coded -> of counts over all steps."""
        T, F = self.config.n_steps, len(self.variables_)
        patient = pd.factorize(events["patient_id"])[0].astype(np.int64)
        feature = self._feature_codes(events)
        cell = (patient * T + self._steps(events["time"].to_numpy(dtype=float))) * F + feature
        value = events["value"].to_numpy(dtype=float)
        observed = ~np.isnan(value)  # only numeric variables have values
        step_means = pd.Series(value[observed]).groupby(cell[observed]).mean()
        coded = np.array([k == CODED for k in self.kinds_])[feature]
        step_counts = pd.Series(cell[coded]).value_counts()
        # numeric: moments over observed steps; coded: over all n_patients * T steps (zeros included)
        n = np.bincount(step_means.index.to_numpy() % F, minlength=F).astype(float)
        n[np.array([k == CODED for k in self.kinds_])] = n_patients * T
        sums = np.zeros(F)
        squares = np.zeros(F)
        for per_cell in (step_means, step_counts.astype(float)):
            f = per_cell.index.to_numpy() % F
            sums += np.bincount(f, weights=per_cell.to_numpy(), minlength=F)
            squares += np.bincount(f, weights=per_cell.to_numpy() ** 2, minlength=F)
        means = sums / n
        variances = squares / n - means ** 2
        stds = np.where(variances > 1e-12, np.sqrt(np.maximum(variances, 0)), 1.0)  # constant: unscaled
        return means, stds

    def _value_ranges(self, events: pd.DataFrame) -> dict:
        """Training 1st/99th percentile, min and max of the raw values of each numeric variable."""
        values = events.dropna(subset=["value"]).groupby("variable")["value"]
        table = pd.DataFrame({"p01": values.quantile(0.01), "p99": values.quantile(0.99),
                              "min": values.min(), "max": values.max()})
        return {str(v): [float(x) for x in row] for v, row in table.iterrows()}

    # ----------------------------------------------------------------------------- transform

    def transform(self, cohort) -> PreparedData:
        """Arrays for every patient of `cohort` (in cohort.patients order)."""
        self._check_fitted()
        ids = cohort.patients.index.astype(str)
        P, T, F = len(ids), self.config.n_steps, len(self.variables_)
        rows, steps, features, values = self._cells(cohort.events, ids)
        X = np.zeros((P, T, 2 * F if self.config.mask_as_input else F), dtype=np.float32)
        mask = np.zeros((P, T, F), dtype=bool)
        order = None if np.all(rows[1:] >= rows[:-1]) else np.argsort(rows, kind="stable")
        sorted_rows = rows if order is None else rows[order]
        chunk = max(1, CELLS_PER_CHUNK // (T * F))
        starts = np.arange(0, P, chunk)
        bounds = np.searchsorted(sorted_rows, np.append(starts, P))
        for i, p0 in enumerate(starts):
            p1 = min(p0 + chunk, P)
            take = slice(bounds[i], bounds[i + 1]) if order is None else order[bounds[i]:bounds[i + 1]]
            x, observed = self._bin_chunk(rows[take] - p0, steps[take], features[take], values[take], p1 - p0)
            X[p0:p1, :, :F] = x
            mask[p0:p1] = observed
            if self.config.mask_as_input:
                X[p0:p1, :, F:] = observed
        patients = cohort.patients
        y = patients["outcome"].to_numpy(dtype=np.float32) if "outcome" in patients else None
        groups = None
        if self.group_ and self.group_ in patients:
            groups = patients[self.group_].astype(str).where(patients[self.group_].notna(), "").to_numpy(dtype=str)
        V, names = _encode_covariates(patients, self.covariates_)
        return PreparedData(np.asarray(ids, dtype=str), X, mask, V, y, groups, list(self.variables_), names)

    def fit_transform(self, cohort, train_ids) -> PreparedData:
        return self.fit(cohort, train_ids).transform(cohort)

    def _bin_chunk(self, rows, steps, features, values, n_patients):
        """Standardised (n,T,F) float32 values and the (n,T,F) observed mask for one chunk of patients."""
        T, F = self.config.n_steps, len(self.variables_)
        coded = np.array([k == CODED for k in self.kinds_])
        cell = (rows * T + steps) * F + features
        counted = coded[features] | ~np.isnan(values)  # a numeric variable's empty value is not a measurement
        size = n_patients * T * F
        counts = np.bincount(cell[counted], minlength=size).reshape(n_patients, T, F)
        sums = np.bincount(cell[counted], weights=np.nan_to_num(values[counted]), minlength=size)
        observed = counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(observed, sums.reshape(n_patients, T, F) / counts, np.nan)
        x[:, :, coded] = counts[:, :, coded]
        for t in range(1, T):  # carry forward, vectorised over patients and features
            np.copyto(x[:, t], x[:, t - 1], where=np.isnan(x[:, t]))
        x = (x - self.means_) / self.stds_
        return np.nan_to_num(x, nan=0.0).astype(np.float32), observed  # before any value: training mean

    # ------------------------------------------------------------------------------ helpers

    def _in_window(self, events: pd.DataFrame) -> pd.DataFrame:
        time = events["time"]
        return events[(time >= 0) & (time < self.config.window_hours)]

    def _steps(self, time: np.ndarray) -> np.ndarray:
        steps = np.floor(time / self.config.bin_hours).astype(np.int64)
        return np.minimum(steps, self.config.n_steps - 1)  # a window that is not a whole number of bins

    def _feature_codes(self, events: pd.DataFrame) -> np.ndarray:
        codes, names = pd.factorize(events["variable"])  # few distinct names: look each up once
        lookup = np.append(pd.Index(self.variables_).get_indexer(names), -1)  # -1: unknown (or missing)
        return lookup[codes].astype(np.int64)

    def _cells(self, events: pd.DataFrame, patient_ids: pd.Index):
        """(row, step, feature, value) arrays of the events that fall in the window, known on both axes."""
        events = self._in_window(events)
        rows = pd.Index(patient_ids).get_indexer(events["patient_id"].astype(str))
        features = self._feature_codes(events)
        keep = (rows >= 0) & (features >= 0)
        steps = self._steps(events["time"].to_numpy(dtype=float)[keep])
        return (rows[keep].astype(np.int64), steps, features[keep],
                events["value"].to_numpy(dtype=float)[keep])

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
        events = self._in_window(cohort.events)
        events = events[events["variable"].isin(list(self.ranges_))].dropna(subset=["value"])
        ranges = pd.DataFrame.from_dict(self.ranges_, orient="index", columns=["p01", "p99", "min", "max"])
        bounds = ranges.reindex(events["variable"].to_numpy())
        margin = FAR_OUTSIDE * (bounds["p99"] - bounds["p01"]).to_numpy()
        value = events["value"].to_numpy()
        far = (value < bounds["min"].to_numpy() - margin) | (value > bounds["max"].to_numpy() + margin)
        out = events.loc[far, ["patient_id", "time", "variable", "value"]].reset_index(drop=True)
        out["training_min"] = bounds["min"].to_numpy()[far]
        out["training_max"] = bounds["max"].to_numpy()[far]
        return out

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
        return self


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
            if std < 1e-12 and not missing_indicator:
                continue  # constant: collinear with the intercept
            specs.append({"name": str(name), "kind": NUMERIC, "mean": float(values.mean()),
                          "std": std if std > 1e-12 else 1.0, "missing_indicator": missing_indicator})
        else:
            counts = _category_strings(column).value_counts()
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
        if spec["kind"] == NUMERIC:
            values = pd.to_numeric(patients[name], errors="coerce").to_numpy(dtype=float)
            missing = np.isnan(values)
            columns.append(np.where(missing, 0.0, (values - spec["mean"]) / spec["std"]))
            names.append(name)
            if spec["missing_indicator"]:
                columns.append(missing.astype(float))
                names.append(f"{name}_missing")
        else:
            labels = _category_strings(patients[name]).to_numpy()
            for level in spec["levels"]:  # unseen or missing level -> all zeros (the reference)
                columns.append((labels == level).astype(float))
                names.append(f"{name}={level}")
    V = np.column_stack(columns).astype(np.float32) if columns else np.zeros((len(patients), 0), np.float32)
    return V, names


def _category_strings(column: pd.Series) -> pd.Series:
    """Category labels as strings; 1.0 reads '1' so numbers coded as floats match the training levels."""
    def as_text(v):
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()
    return column.dropna().map(as_text).reindex(column.index)
