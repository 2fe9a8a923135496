"""Read a user's events and patients tables (CSV, CSV.gz, Parquet or DataFrames) into a Cohort.

`load_cohort` is the input boundary: it reads both tables, runs every check of `validate.py`, and
either raises one `CohortError` listing all errors (strict) or returns the cohort with its report
so the dashboard can show every problem at once. `load_events_for_scoring` reads new patients, whose
outcome is not known yet, with or without a patients table.
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ColumnMap
from .cohort import Cohort, ValidationReport
from .validate import as_text, check_events, check_links, check_patients

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


def load_cohort(events, patients, columns: ColumnMap = ColumnMap(), *, strict: bool = True,
                require_outcome: bool = True, names: tuple[str, str] | None = None) -> Cohort:
    """Read, validate and convert the two tables into the canonical Cohort.

    events, patients: a path (.csv, .csv.gz, .parquet), a DataFrame, or an uploaded file object with
    a `.name`. Events are long format (patient id, time, variable, value); times are hours since the
    index time, or timestamps. Timestamps become hours since the patients table's index time column
    (`columns.index_time`, `--index-time-col`) where it is given and filled, else since each patient's
    first event (the report then says so). Patients: one row each, with the outcome, covariates and group.
    The outcome, the patient id and the index time cannot be covariates, nor the outcome the group.

    strict=True raises CohortError listing every error; strict=False returns the cohort with its
    `report` (rows that cannot be used are left out) and raises only when no cohort can be built.
    require_outcome=False reads patients to be scored: the outcome column may be absent (then
    `patients['outcome']` is NaN) or have empty cells; when present it is still checked.
    names: the file names that messages use for tables given as DataFrames (e.g. an upload read earlier).
    """
    report = ValidationReport()
    events_name, patients_name = names or ("events table", "patients table")
    events_raw, events_file = read_table(events, events_name, columns.patient_id, report)
    patients_raw, patients_file = read_table(patients, patients_name, columns.patient_id, report)
    return _build_cohort(events_raw, events_file, patients_raw, patients_file, columns, report,
                         strict=strict, require_outcome=require_outcome)


def load_events_for_scoring(events, patients=None, columns: ColumnMap = ColumnMap(), model_covariates=None, *,
                            strict: bool = True) -> Cohort:
    """Patients to be scored, whose outcome is not known yet, as a Cohort.

    events: as for load_cohort (e.g. one patient's events typed into a form, as a DataFrame).
    patients: a patients table (path, DataFrame, upload) without or with the outcome column; or a
    dict of covariate values ({'age': 71, 'sex': 'F'}) given to every patient of the events; or None:
    the patients are the events' patient ids with every covariate missing.
    model_covariates: the covariates the model was fitted with (`[c['name'] for c in
    model.preprocessor_.covariates_]`); they replace `columns.covariates`. A patients table must hold
    them; a dict or no table may leave some out: they are missing, which the model reads as the
    training mean (numeric) or the reference level (categorical), and the report warns about it.
    """
    if model_covariates is not None:
        columns = replace(columns, covariates=tuple(str(c) for c in model_covariates))
    report = ValidationReport()
    events_raw, events_file = read_table(events, "events table", columns.patient_id, report)
    if patients is not None and not isinstance(patients, Mapping):
        patients_raw, patients_file = read_table(patients, "patients table", columns.patient_id, report)
    else:
        values = dict(patients or {})
        patients_file = "covariate values" if values else "no patients table"
        columns = replace(columns, group=columns.group if columns.group in values else None, index_time=None)
        patients_raw = _patients_from_events(events_raw, columns, values)
        _warn_missing_covariates(columns, values, patients_file, report)
    return _build_cohort(events_raw, events_file, patients_raw, patients_file, columns, report,
                         strict=strict, require_outcome=False)


def _patients_from_events(events_raw, columns: ColumnMap, values: dict) -> pd.DataFrame | None:
    """One row per patient id of the events, holding `values`; None when the events have no id column
    (check_events then reports it)."""
    if events_raw is None or columns.patient_id not in events_raw.columns:
        return None
    ids = as_text(events_raw[columns.patient_id]).dropna().unique()
    table = pd.DataFrame({columns.patient_id: pd.Series(ids, dtype=object)})
    for name in columns.covariates or ():
        table[name] = np.nan
    for name, value in values.items():
        if name != columns.patient_id:
            table[name] = value
    return table


def _warn_missing_covariates(columns: ColumnMap, values: dict, file: str, report: ValidationReport):
    missing = [name for name in columns.covariates or () if _is_blank(values.get(name))]
    if missing:
        report.add("warning", file, None,
                   f"{len(missing)} of {len(columns.covariates)} covariates without a value "
                   f"({', '.join(repr(m) for m in missing)}): the model reads a missing number as the training "
                   f"mean and a missing category as the most frequent training category, so these scores do "
                   f"not use them; fill them in, or give a patients table that has them", count=len(missing), examples=missing)


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and np.isnan(value))


def _build_cohort(events_raw, events_file, patients_raw, patients_file, columns: ColumnMap,
                  report: ValidationReport, *, strict: bool, require_outcome: bool) -> Cohort:
    """Run every check on the two read tables and assemble the Cohort (see load_cohort)."""
    checked = None
    if patients_raw is not None:
        checked = check_patients(patients_raw, columns, patients_file, report, require_outcome=require_outcome)
    index_times = checked[3] if checked is not None else None
    events_table = None
    if events_raw is not None:
        events_table = check_events(events_raw, columns, events_file, report, index_times)
    if checked is None or events_table is None:
        report.raise_if_errors()
    patients_table, covariates, positive, _ = checked
    events_table = check_links(events_table, patients_table, events_file, patients_file, report,
                               id_column=columns.patient_id)
    cohort = Cohort(
        events=events_table.reset_index(drop=True),
        patients=patients_table,
        covariates=covariates,
        group=columns.group,
        outcome_name=columns.outcome,
        positive_label=positive,
        source=f"{events_file} + {patients_file}",
        report=report,
        columns=columns,
    )
    if strict:
        report.raise_if_errors()
    return cohort


def read_table(source, default_name: str, id_column: str, report: ValidationReport):
    """A DataFrame, path or file object -> (DataFrame or None when unreadable, name for messages)."""
    if isinstance(source, pd.DataFrame):
        if source.index.name == id_column and id_column not in source.columns:
            source = source.reset_index()  # a table indexed by patient id
        return source.reset_index(drop=True), default_name
    name = _display_name(source, default_name)
    suffix = _suffix(name)
    if suffix is None:
        report.add("error", name, None,
                   f"unknown file type; save the {default_name} as CSV ({', '.join(CSV_SUFFIXES)}) or Parquet "
                   f"({', '.join(PARQUET_SUFFIXES)}) and give the file that extension")
        return None, name
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        report.add("error", name, None, f"file not found at {os.fspath(source)}; check the path")
        return None, name
    try:
        if suffix in PARQUET_SUFFIXES:
            return pd.read_parquet(_rewound(source)), name
        return _read_csv(source, id_column), name
    except pd.errors.EmptyDataError:
        report.add("error", name, None, "the file is empty; export the table again with its header and rows")
    except Exception as exc:  # pandas/pyarrow raise many types for damaged files
        report.add("error", name, None,
                   f"the file cannot be read as {'Parquet' if suffix in PARQUET_SUFFIXES else 'CSV'} "
                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check that it is a "
                   f"{suffix} file and not damaged, or export it again")
    return None, name


def _display_name(source, default_name: str) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return Path(str(getattr(source, "name", "") or default_name)).name


def _suffix(name: str) -> str | None:
    lower = name.lower()
    for suffix in CSV_SUFFIXES[::-1] + PARQUET_SUFFIXES:  # ".csv.gz" before ".csv"
        if lower.endswith(suffix):
            return suffix
    return None


def _rewound(source):
    if hasattr(source, "seek"):
        source.seek(0)
    return source


def _read_csv(source, id_column: str) -> pd.DataFrame:
    """CSV with ids kept as text (leading zeros survive); tolerates a BOM, Latin-1 and ';' separators."""
    data = source if isinstance(source, (str, os.PathLike)) else _raw_bytes(source)

    def read(**options):
        if isinstance(data, bytes):
            gzip = data[:2] == b"\x1f\x8b"
            return pd.read_csv(io.BytesIO(data), dtype={id_column: str}, compression="gzip" if gzip else None,
                               **options)
        return pd.read_csv(data, dtype={id_column: str}, **options)

    try:
        encoding = "utf-8-sig"
        table = read(encoding=encoding)
    except UnicodeDecodeError:
        encoding = "latin-1"
        table = read(encoding=encoding)
    if table.shape[1] == 1 and ";" in str(table.columns[0]):  # spreadsheet export in a ';' locale
        table = read(encoding=encoding, sep=";")
    return table


def _raw_bytes(source) -> bytes:
    data = _rewound(source).read()
    return data.encode() if isinstance(data, str) else data
