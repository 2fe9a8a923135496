"""A synthetic cohort with planted subgroups, for tests, the demo and checking that DICE recovers them.

Each subgroup has its own temporal pattern: every variable has a subgroup-specific level and trend
over the window, plus a patient offset and measurement noise. Lab values that are positive by nature
(lactate, creatinine, white cells, glucose) are drawn on a log scale, as their real distributions are
right-skewed, so they never go below zero; SpO2 stops at 100%. Measurements are taken at irregular
times (jittered within each hour, with missing hours and some shorter stays), and a coded event
(an order, value empty) is more frequent in higher-risk subgroups. The outcome is drawn with a
clearly different rate per subgroup; subgroup 0 has the highest rate. Age, sex and race do not
depend on the subgroup (race is the group column for fairness metrics).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .cohort import Cohort, ValidationReport

# name, typical value, spread, scale: the pattern z (in standard units) is mapped to clinical-looking
# units, typical + spread * z ("linear") or typical * exp(z * spread / typical) ("log": always > 0, the
# same spread near the typical value, and monotone in z, so the subgroups stay as far apart)
VARIABLES = [("HR", 85.0, 12.0, "linear"), ("MAP", 78.0, 10.0, "linear"), ("Temp", 37.0, 0.6, "linear"),
             ("Lactate", 2.5, 1.2, "log"), ("Creatinine", 1.3, 0.5, "log"), ("WBC", 11.0, 4.0, "log"),
             ("RespRate", 19.0, 4.0, "linear"), ("SpO2", 95.0, 2.5, "linear"), ("Glucose", 140.0, 35.0, "log"),
             ("Na", 139.0, 4.0, "linear")]
UPPER_LIMITS = {"SpO2": 100.0}  # a saturation cannot exceed 100%
LOWER_IS_WORSE = {"MAP", "SpO2"}  # for the others a high value is the worrying one
CODED_EVENT = "antibiotic_order"
RACES = ["White", "Black", "Hispanic", "Asian"]
RACE_SHARES = [0.6, 0.2, 0.12, 0.08]


def default_outcome_rates(n_subgroups: int) -> list[float]:
    """0.7, 0.35, 0.05 for three subgroups; evenly spaced from 0.7 down to 0.05 otherwise."""
    if n_subgroups == 3:
        return [0.7, 0.35, 0.05]
    return [round(r, 3) for r in np.linspace(0.7, 0.05, n_subgroups)]


def make_synthetic_cohort(n_patients: int = 600, n_subgroups: int = 3, n_steps: int = 24, n_variables: int = 6,
                          outcome_rates=None, seed: int = 0, *, bin_hours: float = 1.0,
                          missing_rate: float = 0.3, noise: float = 0.3,
                          short_stay_share: float = 0.15) -> tuple[Cohort, np.ndarray]:
    """Cohort with `n_subgroups` planted subgroups, and the true subgroup of each patient.

    Times span n_steps * bin_hours hours (use that as window_hours). Returns (cohort, labels) with
    labels aligned with cohort.patients.index.
    """
    rates = list(outcome_rates) if outcome_rates is not None else default_outcome_rates(n_subgroups)
    _check_arguments(n_patients, n_subgroups, n_steps, n_variables, rates, missing_rate)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n_patients) % n_subgroups)
    ids = np.array([f"P{i + 1:05d}" for i in range(n_patients)])
    events = pd.concat([
        _measurements(rng, ids, labels, n_subgroups, n_steps, n_variables, bin_hours, missing_rate, noise,
                      short_stay_share),
        _coded_events(rng, ids, labels, n_subgroups, n_steps, bin_hours),
    ]).sort_values(["patient_id", "time", "variable"], kind="stable").reset_index(drop=True)
    patients = pd.DataFrame({
        "outcome": (rng.random(n_patients) < np.asarray(rates)[labels]).astype(int),
        "age": np.clip(rng.normal(65, 12, n_patients), 18, 95).round(),
        "sex": rng.choice(["female", "male"], n_patients),
        "race": rng.choice(RACES, n_patients, p=RACE_SHARES),
    }, index=pd.Index(ids, name="patient_id"))
    cohort = Cohort(events, patients, covariates=["age", "sex"], group="race", outcome_name="outcome",
                    positive_label="1", source=f"synthetic cohort (seed {seed})", report=ValidationReport())
    return cohort, labels


def _check_arguments(n_patients, n_subgroups, n_steps, n_variables, rates, missing_rate):
    if n_subgroups < 1 or n_patients < n_subgroups:
        raise ConfigError(f"n_patients={n_patients} must be >= n_subgroups={n_subgroups} >= 1")
    if n_steps < 2:
        raise ConfigError(f"n_steps={n_steps} must be >= 2")
    if not 1 <= n_variables <= len(VARIABLES):
        raise ConfigError(f"n_variables={n_variables} must be between 1 and {len(VARIABLES)}")
    if len(rates) != n_subgroups or not all(0 <= r <= 1 for r in rates):
        raise ConfigError(f"outcome_rates={rates} must be {n_subgroups} probabilities, one per subgroup")
    if not 0 <= missing_rate < 1:
        raise ConfigError(f"missing_rate={missing_rate} must be in [0, 1)")


def subgroup_patterns(n_subgroups: int, n_variables: int) -> tuple[np.ndarray, np.ndarray]:
    """Level and trend (standard units) of each variable in each subgroup, both (K, V).

    Levels have a part that follows the risk, so the highest-risk subgroup (0) is on the worrying
    side of the lowest-risk one for every variable (higher lactate, lower MAP..., by at least a
    quarter of a standard unit), as a clinician would expect; and a part from evenly spaced phases
    on a circle, which trends share, so any two subgroups differ in several variables and in how
    they change over the window (not only along one 'sicker' direction).
    """
    phase = 2 * np.pi * np.arange(n_subgroups)[:, None] / n_subgroups
    shift = np.pi * np.arange(n_variables)[None, :] / max(n_variables, 1)
    severity = np.linspace(1, -1, n_subgroups)[:, None] if n_subgroups > 1 else np.zeros((1, 1))
    worse = np.array([-1.0 if VARIABLES[v][0] in LOWER_IS_WORSE else 1.0 for v in range(n_variables)])
    level = (severity + np.cos(phase + shift)) * worse
    return level, 2.0 * np.sin(phase + shift)


def _measurements(rng, ids, labels, n_subgroups, n_steps, n_variables, bin_hours, missing_rate, noise,
                  short_stay_share) -> pd.DataFrame:
    P, V, T = len(ids), n_variables, n_steps
    level, trend = subgroup_patterns(n_subgroups, V)
    progress = np.linspace(-0.5, 0.5, T)  # position in the window
    offset = rng.normal(0, 0.3, (P, V, 1))  # patients differ a little within a subgroup
    z = level[labels][:, :, None] + trend[labels][:, :, None] * progress + offset + rng.normal(0, noise, (P, V, T))
    # irregular sampling: each variable has its own missing rate; some stays end early
    per_variable = np.clip(missing_rate * rng.uniform(0.5, 1.5, V), 0, 0.9)
    observed = rng.random((P, V, T)) >= per_variable[None, :, None]
    stay_steps = np.where(rng.random(P) < short_stay_share, rng.integers(T // 2, T + 1, P), T)
    observed &= np.arange(T)[None, None, :] < stay_steps[:, None, None]
    p, v, t = np.nonzero(observed)
    return pd.DataFrame({
        "patient_id": ids[p],
        "time": (t + rng.random(len(t))) * bin_hours,
        "variable": np.array([VARIABLES[i][0] for i in range(V)])[v],
        "value": clinical_units(z[p, v, t], v).round(3),
    })


def clinical_units(z: np.ndarray, variable_index: np.ndarray) -> np.ndarray:
    """Standard-unit values z of the variables VARIABLES[variable_index], in clinical units."""
    typical = np.array([row[1] for row in VARIABLES])[variable_index]
    spread = np.array([row[2] for row in VARIABLES])[variable_index]
    on_log_scale = np.array([row[3] == "log" for row in VARIABLES])[variable_index]
    upper = np.array([UPPER_LIMITS.get(row[0], np.inf) for row in VARIABLES])[variable_index]
    values = np.where(on_log_scale, typical * np.exp(z * spread / typical), typical + spread * z)
    return np.minimum(values, upper)


def _coded_events(rng, ids, labels, n_subgroups, n_steps, bin_hours) -> pd.DataFrame:
    """Orders: about 0.6 per step in the highest-risk subgroup down to 0.05 in the lowest."""
    rate = np.linspace(0.6, 0.05, n_subgroups) if n_subgroups > 1 else np.array([0.3])
    counts = rng.poisson(rate[labels][:, None], (len(ids), n_steps))
    p, t = np.nonzero(counts)
    p, t = np.repeat(p, counts[p, t]), np.repeat(t, counts[p, t])
    return pd.DataFrame({"patient_id": ids[p], "time": (t + rng.random(len(t))) * bin_hours,
                         "variable": CODED_EVENT, "value": np.nan})


def write_cohort(cohort: Cohort, events_path, patients_path, *, true_labels=None,
                 label_column: str = "true_subgroup", decimals: int | None = 4) -> None:
    """Write the cohort in the user-facing layout (CSV, CSV.gz or Parquet, from the extension).

    `decimals` rounds the values and truncates the times (None keeps them exact). The patients file
    holds patient_id, the outcome (as 0/1 under cohort.outcome_name), the
    covariates and the group. The true subgroup is written only when `true_labels` is given, in
    `label_column`; load such a file with ColumnMap(covariates=[...]) so it is not a covariate.
    """
    events = cohort.events[["patient_id", "time", "variable", "value"]].copy()
    if decimals is not None:  # times truncated, not rounded: an event never moves into the next hour
        events["time"] = np.floor(events["time"] * 10**decimals) / 10**decimals
        events["value"] = events["value"].round(decimals)
    columns = [c for c in [*cohort.covariates, cohort.group] if c and c != "outcome"]
    patients = cohort.patients[["outcome", *dict.fromkeys(columns)]].rename(columns={"outcome": cohort.outcome_name})
    patients = patients.rename_axis("patient_id").reset_index()
    if true_labels is not None:
        if len(true_labels) != len(patients):
            raise ConfigError(f"{len(true_labels)} true labels for {len(patients)} patients; give one per patient")
        patients[label_column] = np.asarray(true_labels)
    _write_table(events, events_path)
    _write_table(patients, patients_path)


def _write_table(table: pd.DataFrame, path) -> None:
    name = Path(path).name.lower()
    if name.endswith((".parquet", ".pq")):
        table.to_parquet(path, index=False)
    elif name.endswith((".csv", ".csv.gz")):
        table.to_csv(path, index=False)
    else:
        raise ConfigError(f"cannot write '{Path(path).name}': use a .csv, .csv.gz or .parquet file name")
