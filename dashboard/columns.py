"""Guess which column of an uploaded table is which (patient id, time, variable, value, outcome,
group). Only a suggestion for the mapping form: the user confirms or changes every choice."""
from __future__ import annotations

import re

import pandas as pd

CANDIDATES = {
    "patient_id": ["patient_id", "patientid", "patient", "subject_id", "subjectid", "record_id", "recordid",
                   "stay_id", "hadm_id", "encounter_id", "mrn", "pid", "id"],
    "time": ["time", "hours", "hour", "hours_since_admission", "charttime", "chart_time", "timestamp",
             "datetime", "offset", "t"],
    "variable": ["variable", "parameter", "param", "item", "itemid", "label", "name", "code", "test",
                 "measurement", "feature"],
    "value": ["value", "valuenum", "value_num", "result", "val", "measurement_value"],
    "outcome": ["outcome", "in_hospital_death", "death", "died", "mortality", "dead", "expired", "label",
                "target", "event", "y"],
    "group": ["race", "ethnicity", "race_ethnicity", "group"],
    "index_time": ["admission_time", "admittime", "intime", "index_time", "admit_time"],
}


def _norm(name) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def guess(columns, role: str, exclude=()) -> str | None:
    """The first column whose normalised name matches a candidate for `role` (exact, then prefix)."""
    columns = [c for c in columns if c not in exclude]
    normalised = {_norm(c): c for c in columns}
    for candidate in CANDIDATES[role]:
        if candidate in normalised:
            return normalised[candidate]
    for candidate in CANDIDATES[role]:
        for norm, original in normalised.items():
            if len(candidate) > 2 and (norm.startswith(candidate) or norm.endswith(candidate)):
                return original
    return None


def guess_event_columns(frame: pd.DataFrame) -> dict:
    columns = list(frame.columns)
    out = {"patient_id": guess(columns, "patient_id")}
    out["time"] = guess(columns, "time", exclude=[out["patient_id"]])
    out["variable"] = guess(columns, "variable", exclude=[out["patient_id"], out["time"]])
    out["value"] = guess(columns, "value", exclude=[out["patient_id"], out["time"], out["variable"]])
    # fall back to position for the classic long layout: id, time, variable, value
    for role, position in (("patient_id", 0), ("time", 1), ("variable", 2), ("value", 3)):
        if out[role] is None and len(columns) > position and columns[position] not in out.values():
            out[role] = columns[position]
    return out


def guess_patient_columns(frame: pd.DataFrame, event_id: str | None = None) -> dict:
    columns = list(frame.columns)
    pid = event_id if event_id in columns else guess(columns, "patient_id")
    if pid is None and columns:
        pid = columns[0]
    outcome = guess(columns, "outcome", exclude=[pid])
    if outcome is None:  # a 0/1 column is the likeliest outcome
        binary = [c for c in columns if c != pid and frame[c].dropna().nunique() == 2]
        outcome = binary[0] if binary else None
    group = guess(columns, "group", exclude=[pid, outcome])
    index_time = guess(columns, "index_time", exclude=[pid, outcome, group])
    covariates = [c for c in columns if c not in (pid, outcome, group, index_time)]
    return {"patient_id": pid, "outcome": outcome, "group": group, "index_time": index_time,
            "covariates": covariates}


def guess_positive_label(values) -> str | None:
    """The value that means 'had the outcome' among a column's values (1, yes, true, died...)."""
    levels = [str(v) for v in pd.Series(values).dropna().unique()]
    for word in ("1", "1.0", "true", "yes", "y", "died", "dead", "death", "deceased", "positive", "event"):
        for level in levels:
            if level.strip().lower() == word:
                return level
    return None
