"""Cohorts the benchmark needs beyond set A itself: set A resampled to any size, and a large
synthetic cohort written to Parquet chunk by chunk (so generating it never holds it twice)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dice_core.data import make_synthetic_cohort
from dice_core.data.cohort import Cohort, ValidationReport
from dice_core.errors import ConfigError

SYNTHETIC_COVARIATES = ["age", "sex"]
SYNTHETIC_GROUP = "race"


def resample_cohort(cohort: Cohort, n_patients: int, seed: int = 0, prefix: str = "R") -> Cohort:
    """`n_patients` stays drawn with replacement from `cohort`, each renamed (R0000001, ...) so
    that a stay drawn twice becomes two patients with the same events."""
    ids = cohort.patients.index
    codes = pd.Categorical(cohort.events["patient_id"], categories=ids).codes
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick = np.random.default_rng(seed).integers(0, len(ids), n_patients)
    lengths = counts[pick]
    # row r of the new events table is event (r - first row of its patient) of the drawn stay
    first_new_row = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    within = np.arange(lengths.sum()) - np.repeat(first_new_row, lengths)
    rows = order[np.repeat(starts[pick], lengths) + within]
    new_ids = np.array([f"{prefix}{i + 1:07d}" for i in range(n_patients)])
    events = cohort.events.iloc[rows].reset_index(drop=True)
    events["patient_id"] = np.repeat(new_ids, lengths)
    patients = cohort.patients.iloc[pick].copy()
    patients.index = pd.Index(new_ids, name=cohort.patients.index.name)
    return Cohort(events, patients, list(cohort.covariates), cohort.group, cohort.outcome_name,
                  cohort.positive_label, f"{cohort.source} resampled to {n_patients} stays (seed {seed})",
                  ValidationReport())


def synthetic_chunk(n_patients: int, n_steps: int, n_variables: int, seed: int) -> tuple[Cohort, str]:
    """make_synthetic_cohort with `n_variables` measured variables, and a note on how it was made.

    The core generator names at most 10 variables; above that (until it accepts more) each of its
    variables is repeated under new names (HR, HR_2, ...) with fresh noise. Only the data volume
    matters for the scale figures, not what the extra variables mean.
    """
    try:
        cohort, _ = make_synthetic_cohort(n_patients, n_steps=n_steps, n_variables=n_variables, seed=seed)
        return cohort, ""
    except ConfigError:
        pass
    base_vars = 10
    cohort, _ = make_synthetic_cohort(n_patients, n_steps=n_steps, n_variables=base_vars, seed=seed)
    events = cohort.events
    measured = events[events["value"].notna()]
    rng = np.random.default_rng(seed + 1)
    copies = [events]
    for copy_no in range(2, int(np.ceil(n_variables / base_vars)) + 1):
        names = sorted(measured["variable"].unique())[: n_variables - (copy_no - 1) * base_vars]
        extra = measured[measured["variable"].isin(names)].copy()
        extra["variable"] = extra["variable"] + f"_{copy_no}"
        extra["value"] = (extra["value"] * rng.normal(1.0, 0.05, len(extra))).round(3)
        copies.append(extra)
    cohort.events = pd.concat(copies, ignore_index=True)
    note = (f"make_synthetic_cohort accepts at most {base_vars} variables: its variables were repeated "
            f"under new names with fresh noise to reach {n_variables}")
    return cohort, note


def write_synthetic_parquet(folder: Path, n_patients: int, n_steps: int, n_variables: int,
                            chunk: int = 5000) -> dict:
    """Generate the cohort chunk by chunk into folder/events.parquet and folder/patients.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("patient_id", pa.string()), ("time", pa.float64()), ("variable", pa.string()),
                        ("value", pa.float64())])
    patients, n_events, note = [], 0, ""
    tmp = folder / "events.parquet.tmp"
    with pq.ParquetWriter(tmp, schema) as writer:
        for seed, start in enumerate(range(0, n_patients, chunk)):
            size = min(chunk, n_patients - start)
            cohort, note = synthetic_chunk(size, n_steps, n_variables, seed)
            new_ids = {old: f"S{start + i + 1:07d}" for i, old in enumerate(cohort.patients.index)}
            events = cohort.events[["patient_id", "time", "variable", "value"]].copy()
            events["patient_id"] = events["patient_id"].map(new_ids)
            writer.write_table(pa.Table.from_pandas(events, schema=schema, preserve_index=False))
            n_events += len(events)
            table = cohort.patients.rename(index=new_ids)
            table.index.name = "patient_id"
            patients.append(table)
    tmp.replace(folder / "events.parquet")
    pd.concat(patients).reset_index().to_parquet(folder / "patients.parquet", index=False)
    return {"patients": n_patients, "events": n_events, "note": note}


def read_synthetic_parquet(folder: Path) -> Cohort:
    events = pd.read_parquet(folder / "events.parquet")
    patients = pd.read_parquet(folder / "patients.parquet").set_index("patient_id")
    return Cohort(events, patients, covariates=list(SYNTHETIC_COVARIATES), group=SYNTHETIC_GROUP,
                  outcome_name="outcome", positive_label="1", source=str(folder), report=ValidationReport())
