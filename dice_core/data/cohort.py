"""The cohort object every part of DICE Studio works on, and its validation report."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..config import ColumnMap
from ..errors import CohortError

EVENT_COLUMNS = ["patient_id", "time", "variable", "value"]


@dataclass
class Problem:
    """One finding of validation: where it is, what it is, and how to fix it."""

    severity: str  # "error" (the cohort cannot be used) or "warning" (used, but look at it)
    file: str
    column: str | None
    message: str  # says what is wrong and what would fix it
    count: int = 1
    examples: list = field(default_factory=list)  # row numbers (1-based, header = row 1) or values

    def describe(self) -> str:
        where = self.file + (f", column '{self.column}'" if self.column else "")
        ex = f" (e.g. {', '.join(map(str, self.examples[:5]))})" if self.examples else ""
        return f"{where}: {self.message}{ex}"


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)

    def add(self, severity, file, column, message, count=1, examples=()):
        self.problems.append(Problem(severity, file, column, message, int(count), list(examples)[:10]))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {"severity": p.severity, "file": p.file, "column": p.column or "", "problem": p.message,
             "count": p.count, "examples": ", ".join(map(str, p.examples[:5]))}
            for p in self.problems
        ]
        return pd.DataFrame(rows, columns=["severity", "file", "column", "problem", "count", "examples"])

    def raise_if_errors(self):
        if self.errors:
            lines = "\n".join("- " + p.describe() for p in self.errors)
            raise CohortError(f"The cohort cannot be used as it is:\n{lines}", report=self)


@dataclass
class Cohort:
    """Events in long format plus one row per patient; see docs/architecture.md."""

    events: pd.DataFrame  # patient_id (str), time (float hours), variable (str), value (float/NaN)
    patients: pd.DataFrame  # index patient_id (str); 'outcome' (0/1 int), covariates, group
    covariates: list[str] = field(default_factory=list)
    group: str | None = None
    outcome_name: str = "outcome"
    positive_label: str = "1"
    source: str = ""
    report: ValidationReport = field(default_factory=ValidationReport)
    columns: ColumnMap = field(default_factory=ColumnMap)  # the user's column names, for messages

    @property
    def n_patients(self) -> int:
        return len(self.patients)

    @property
    def y(self):
        return self.patients["outcome"].to_numpy()

    @property
    def variables(self) -> list[str]:
        return sorted(self.events["variable"].unique().tolist())

    def subset(self, patient_ids) -> "Cohort":
        """The same cohort restricted to some patients (order of `patient_ids` kept)."""
        ids = pd.Index([str(p) for p in patient_ids])
        events = self.events[self.events["patient_id"].isin(ids)].reset_index(drop=True)
        return Cohort(events, self.patients.loc[ids], list(self.covariates), self.group,
                      self.outcome_name, self.positive_label, self.source, self.report, self.columns)

    def summary(self) -> dict:
        """Figures a clinician checks first: size, outcome rate, events per patient."""
        per_patient = self.events.groupby("patient_id").size().reindex(self.patients.index, fill_value=0)
        return {
            "patients": int(self.n_patients),
            "outcome_rate": float(self.patients["outcome"].mean()) if self.n_patients else float("nan"),
            "positives": int(self.patients["outcome"].sum()),
            "events": int(len(self.events)),
            "variables": int(self.events["variable"].nunique()),
            "events_per_patient_median": float(per_patient.median()) if len(per_patient) else 0.0,
            "patients_without_events": int((per_patient == 0).sum()),
        }

    def variable_summary(self) -> pd.DataFrame:
        """Per variable: patients with at least one value (share), observations, mean/min/max."""
        ev = self.events
        g = ev.groupby("variable")
        out = pd.DataFrame({
            "patients_observed": g["patient_id"].nunique(),
            "observations": g.size(),
            "mean": g["value"].mean(),
            "min": g["value"].min(),
            "max": g["value"].max(),
        })
        out["missing_share"] = 1.0 - out["patients_observed"] / max(self.n_patients, 1)
        return out.sort_values("missing_share")
