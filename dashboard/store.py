"""What the dashboard keeps on disk besides the core's own files: a job's cohort and, per model,
the numbers the Results and Patient pages draw (so pages read small files and never train).

  <job>/cohort/            events.parquet, patients.parquet (dice_core.data.write_cohort), cohort.json
                           (names, covariates, source and the validation report of the user's files)
  <runs>/_cohorts/<id>/    the same for a cohort loaded on the Cohort page (the URL's ?cohort=<id>
                           finds it again after a browser refresh)
  <job>/analysis/<name>/   scores.csv        one row per patient: split, outcome, risk level, probability...
                           representation.npy  z of every patient (rows as scores.csv; numpy, no pickle)
                           map.csv           UMAP coordinates (dice_core.viz.save_map)
  <job>/results/           evaluation.json, the tables as CSV, test_predictions.csv

<name> is "model" for the selected model, the architecture folder name (K3_d16_it10) for another
architecture, and "baseline-PCA", "baseline-AE", ... for the baselines' representations.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dice_core.config import ColumnMap
from dice_core.data.cohort import Problem, ValidationReport


def save_cohort(cohort, folder) -> Path:
    """Write a validated cohort so another process can read it back identically."""
    from dice_core.data.synthetic import write_cohort

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_cohort(cohort, folder / "events.parquet", folder / "patients.parquet", decimals=None)
    meta = {"outcome_name": cohort.outcome_name, "positive_label": cohort.positive_label,
            "covariates": list(cohort.covariates), "group": cohort.group, "source": cohort.source,
            "report": [dataclasses.asdict(p) for p in cohort.report.problems]}
    (folder / "cohort.json").write_text(json.dumps(meta, indent=1, default=str))
    return folder


def read_cohort(folder):
    """The cohort written by save_cohort (checked again by dice_core.data.load_cohort)."""
    from dice_core.data.io import load_cohort

    folder = Path(folder)
    meta = json.loads((folder / "cohort.json").read_text())
    columns = ColumnMap(outcome=meta["outcome_name"], covariates=tuple(meta["covariates"]), group=meta["group"])
    cohort = load_cohort(folder / "events.parquet", folder / "patients.parquet", columns, strict=True)
    cohort.positive_label = meta.get("positive_label", cohort.positive_label)
    cohort.source = meta.get("source", cohort.source)
    if "report" in meta:  # the report of the user's own files, not of this copy
        cohort.report = ValidationReport([Problem(**p) for p in meta["report"]])
    return cohort


def analysis_dir(job_folder, name: str) -> Path:
    return Path(job_folder) / "analysis" / name


def write_analysis(folder, scores: pd.DataFrame, Z: np.ndarray, meta: dict):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "representation.npy", np.asarray(Z, dtype=np.float32), allow_pickle=False)
    tmp = folder / "scores.csv.tmp"
    scores.to_csv(tmp, index=False)
    tmp.replace(folder / "scores.csv")
    (folder / "analysis.json").write_text(json.dumps(meta, indent=1, default=str))


def read_scores(folder) -> pd.DataFrame | None:
    path = Path(folder) / "scores.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"patient_id": str, "split": str})


def read_representation(folder) -> np.ndarray | None:
    path = Path(folder) / "representation.npy"
    return np.load(path, allow_pickle=False) if path.is_file() else None


def read_analysis_meta(folder) -> dict:
    try:
        return json.loads((Path(folder) / "analysis.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def list_analyses(job_folder) -> list[str]:
    root = Path(job_folder) / "analysis"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "scores.csv").is_file())
