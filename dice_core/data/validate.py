"""Checks that turn a user's raw events and patients tables into the canonical ones.

Each check records what it finds in a `ValidationReport` (file, column, row numbers and what would
fix it) instead of stopping at the first problem, so the dashboard can show every problem at once.
Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
Rows that cannot be used are left out of the result; `load_cohort` decides whether to raise.
"""
from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .cohort import ValidationReport

# What each ColumnMap field is, for messages.
COLUMN_ROLES = {
    "patient_id": "the patient identifier",
    "time": "the event time",
    "variable": "the variable name",
    "value": "the measured value",
    "outcome": "the binary outcome",
    "group": "the group column",
    "index_time": "each patient's index time",
    "covariates": "a covariate",
}
POSITIVE_WORDS = {"1", "1.0", "true", "yes", "y", "t", "positive", "pos"}
NEGATIVE_WORDS = {"0", "0.0", "false", "no", "n", "f", "negative", "neg"}
# Where a user names each column: the `dice` command's flag and the ColumnMap field (messages show both).
CLI_FLAGS = {
    "patient_id": "--id-col",
    "time": "--time-col",
    "variable": "--variable-col",
    "value": "--value-col",
    "outcome": "--outcome",
    "positive_label": "--positive-label",
    "covariates": "--covariates",
    "group": "--group",
    "index_time": "--index-time-col",
}
WINDOW_SETTING = "--window-hours / PreprocessConfig.window_hours"
MAX_PROBLEMS_PER_CHECK = 20  # per-variable problems beyond this are summed up in one line
MANY_LEVELS = 20  # a categorical covariate with more levels than this looks like an identifier


def spreadsheet_rows(positions) -> list[int]:
    """0-based data positions -> row numbers as a spreadsheet shows them (header = row 1)."""
    return [int(p) + 2 for p in positions]


def count_of(n, noun: str) -> str:
    """'1 row', '3 rows'."""
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


def _quoted(values, limit=5) -> str:
    values = list(values)
    text = ", ".join(repr(str(v)) for v in values[:limit])
    return text + (", ..." if len(values) > limit else "")


def setting(field: str) -> str:
    """'--variable-col / ColumnMap.variable': how a command-line user and a Python user set `field`."""
    return f"{CLI_FLAGS[field]} / ColumnMap.{field}"


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def as_text(series: pd.Series) -> pd.Series:
    """Ids, variable names, group labels as stripped strings; 17.0 (a float column) reads '17'; empty -> NaN."""
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if len(whole) and (whole == np.floor(whole)).all():
            series = series.astype("Int64")
    missing = series.isna()
    out = series.astype(str).str.strip()
    return out.mask(missing | (out == ""))


def check_columns(df: pd.DataFrame, wanted: dict[str, str], file: str, report: ValidationReport) -> bool:
    """Record every missing column, with close matches and the available columns; True if none missing."""
    available = [str(c) for c in df.columns]
    all_found = True
    for field, name in wanted.items():
        if name in df.columns:
            continue
        all_found = False
        by_case = [c for c in available if c.lower() == str(name).lower()]
        close = by_case or difflib.get_close_matches(str(name), available, n=3, cutoff=0.6)
        hint = f" Did you mean {_quoted(close)}?" if close else ""
        fix = ("correct the list of covariates" if field == "covariates" else "give the column's name")
        report.add("error", file, name,
                   f"column '{name}' ({COLUMN_ROLES[field]}) not found.{hint} Available columns: "
                   f"{_quoted(available, limit=30)}. Rename the column in the file, or {fix} "
                   f"({setting(field)}).")
    return all_found


def check_distinct_columns(wanted: dict[str, str], file: str, report: ValidationReport) -> bool:
    """Record an error for each column named for two or more roles; True if every role has its own."""
    roles: dict[str, list[str]] = {}
    for field, name in wanted.items():
        roles.setdefault(str(name), []).append(field)
    for name, fields in roles.items():
        if len(fields) > 1:
            listed = " and ".join(COLUMN_ROLES[f] for f in fields)
            report.add("error", file, name,
                       f"column '{name}' is named as {listed}; each needs a column of its own: choose the right "
                       f"column for each ({', '.join(setting(f) for f in fields)})")
    return all(len(fields) == 1 for fields in roles.values())


def check_not_empty(df: pd.DataFrame, file: str, report: ValidationReport) -> bool:
    if len(df) == 0:
        report.add("error", file, None, "the table has a header but no data rows; export the table again "
                   "with its rows")
        return False
    return True


def _drop_and_report_missing(values: pd.Series, file: str, column: str, what: str, report) -> pd.Series:
    """Error for empty cells in a required column; returns the mask of rows to keep."""
    missing = values.isna()
    if missing.any():
        report.add("error", file, column,
                   f"{count_of(missing.sum(), 'row')} with an empty {what}: fill them in or delete these rows",
                   count=int(missing.sum()), examples=spreadsheet_rows(np.flatnonzero(missing)))
    return ~missing


# ---------------------------------------------------------------------------------------------
# patients table


def encode_outcome(raw: pd.Series, positive_label, file: str, column: str, report,
                   complete: bool = True) -> tuple[pd.Series | None, str]:
    """Map the outcome column to int 0/1; returns (outcome or None if impossible, positive label).

    complete=False (patients to be scored): empty outcomes are allowed (NaN, float column) and one
    class is enough; a value that is not binary or a positive label that cannot be told stays an error.
    """
    present = raw.notna() & (raw.astype(str).str.strip() != "")
    if (~present).any():
        if complete:
            report.add("error", file, column,
                       f"{count_of((~present).sum(), 'patient')} without an outcome: fill in the outcome or remove "
                       f"these patients",
                       count=int((~present).sum()), examples=spreadsheet_rows(np.flatnonzero(~present)))
        else:
            report.add("warning", file, column,
                       f"{count_of((~present).sum(), 'patient')} without an outcome: scored, but left out of "
                       f"anything that needs the outcome",
                       count=int((~present).sum()), examples=spreadsheet_rows(np.flatnonzero(~present)))
    labels = _label_strings(raw)
    levels = sorted(labels[present].unique().tolist())
    if not complete:
        return _encode_partial_outcome(labels, present, levels, positive_label, file, column, report)
    if len(levels) > 2:
        _report_not_binary(labels, present, file, column, report,
                           f"recode it as 0/1 (1 = the event) or choose another column ({setting('outcome')})")
        return None, ""
    if len(levels) < 2:
        report.add("error", file, column,
                   f"the outcome has the same value {_quoted(levels)} for every patient; DICE needs patients "
                   f"with and without the outcome: check the column and the file")
    if positive_label is not None:
        positive = _label_strings(pd.Series([positive_label])).iloc[0]
        if positive not in levels and len(levels) == 2:  # one class: the error above says it all
            _report_unknown_positive(positive_label, levels, file, column, report)
            return None, ""
    else:
        positive = _guess_positive(levels)
        if positive is None and len(levels) == 2:
            _report_ambiguous_positive(levels, file, column, report)
            return None, ""
    outcome = (labels == positive).astype(int)  # missing outcomes (an error above) read 0
    return outcome, positive


def _encode_partial_outcome(labels, present, levels, positive_label, file, column, report):
    """encode_outcome for patients to be scored: one class or none is fine; missing stays NaN."""
    if len(levels) > 2:
        _report_not_binary(labels, present, file, column, report,
                           "recode it as 0/1 (1 = the event), or leave the outcome column out to score without it")
        return None, ""
    if positive_label is not None:
        positive = _label_strings(pd.Series([positive_label])).iloc[0]
        if len(levels) == 2 and positive not in levels:
            _report_unknown_positive(positive_label, levels, file, column, report)
            return None, ""
    elif len(levels) == 1 and levels[0].lower() in POSITIVE_WORDS:
        positive = levels[0]  # every patient has the outcome ('yes', 'true', '1')
    elif len(levels) == 1 and levels[0].lower() not in NEGATIVE_WORDS:
        report.add("error", file, column,
                   f"cannot tell whether the outcome value {_quoted(levels)} is the event; give the value that "
                   f"counts as the outcome ({setting('positive_label')})")
        return None, ""
    else:
        positive = _guess_positive(levels)
        if positive is None:
            _report_ambiguous_positive(levels, file, column, report)
            return None, ""
    outcome = (labels == positive).astype(int)
    if not present.all():
        outcome = outcome.astype(float).where(present)  # unknown outcome: NaN
    return outcome, positive


def _report_not_binary(labels, present, file, column, report, fix: str):
    """The outcome has more than two values: each value with its count and a row, rarest (the likely typo) first."""
    counts = labels[present].value_counts(ascending=True, sort=True)
    first_row = {v: spreadsheet_rows(np.flatnonzero(present & (labels == v))[:1])[0] for v in counts.index}
    listing = ", ".join(f"{str(value)!r} ({count_of(n, 'row')}, e.g. row {first_row[value]})"
                        for value, n in list(counts.items())[:5])
    more = ", ..." if len(counts) > 5 else ""
    report.add("error", file, column,
               f"the outcome must be binary but has {len(counts)} different values: {listing}{more}; {fix}",
               count=len(counts), examples=[first_row[value] for value in counts.index])


def _report_unknown_positive(positive_label, levels, file, column, report):
    report.add("error", file, column,
               f"positive_label {positive_label!r} is not a value of the outcome column, whose values are "
               f"{_quoted(levels)}; give one of them ({setting('positive_label')})")


def _report_ambiguous_positive(levels, file, column, report):
    report.add("error", file, column,
               f"cannot tell which outcome value is the event among {_quoted(levels)}; give the value that counts "
               f"as the outcome ({setting('positive_label')})")


def _label_strings(raw: pd.Series) -> pd.Series:
    """Outcome labels as comparable strings: 1, 1.0 and True all read '1'/'true' consistently."""
    if pd.api.types.is_bool_dtype(raw):
        return raw.map({True: "1", False: "0"})
    if _is_numeric(raw):
        return raw.map(lambda v: str(int(v)) if pd.notna(v) and float(v).is_integer() else str(v))
    return raw.astype(str).str.strip()


def _guess_positive(levels: list[str]) -> str | None:
    """The positive label of a 0/1-like pair of labels (1/0, true/false, yes/no), else None."""
    lower = {lv.lower() for lv in levels}
    positives = [lv for lv in levels if lv.lower() in POSITIVE_WORDS]
    if len(positives) == 1 and lower <= POSITIVE_WORDS | NEGATIVE_WORDS:
        return positives[0]
    return "1" if len(levels) < 2 else None  # a single class is an error reported by the caller


def default_covariates(columns, cmap) -> list[str]:
    """Every patients column but id, outcome, group and index time."""
    skip = {cmap.patient_id, cmap.outcome, cmap.group, cmap.index_time}
    return [str(c) for c in columns if c not in skip]


def encode_covariate(raw: pd.Series) -> pd.Series:
    """Numeric columns (or text that all reads as numbers) -> float; anything else -> str categories."""
    if _is_numeric(raw):
        return raw.astype(float)
    missing = raw.isna() | (raw.astype(str).str.strip() == "")
    as_number = pd.to_numeric(raw.where(~missing), errors="coerce")
    if as_number[~missing].notna().all() and not pd.api.types.is_bool_dtype(raw):
        return as_number.astype(float)
    return raw.astype(str).str.strip().mask(missing)


def check_patients(raw: pd.DataFrame, cmap, file: str, report: ValidationReport, require_outcome: bool = True):
    """Validate the patients table. Returns (patients, covariates, positive_label, index_times) or None.

    `patients` is indexed by patient_id (str) with 'outcome' (0/1), covariates and group. Duplicate
    ids keep their first row. require_outcome=False (patients to be scored): the outcome column may
    be absent ('outcome' is then NaN) or incomplete; when present it is still checked.
    """
    has_outcome = require_outcome or cmap.outcome in raw.columns
    wanted = {"patient_id": cmap.patient_id}
    if has_outcome:
        wanted["outcome"] = cmap.outcome
    if cmap.group:
        wanted["group"] = cmap.group
    if cmap.index_time:
        wanted["index_time"] = cmap.index_time
    ok = check_columns(raw, wanted, file, report)
    if cmap.covariates is not None:
        for name in cmap.covariates:
            ok = check_columns(raw, {"covariates": name}, file, report) and ok
    covariates = list(cmap.covariates) if cmap.covariates is not None else default_covariates(raw.columns, cmap)
    ok = _check_roles(cmap, covariates, file, report) and ok
    if not ok or not check_not_empty(raw, file, report):
        return None
    raw = raw.reset_index(drop=True)
    ids = as_text(raw[cmap.patient_id])
    keep = _drop_and_report_missing(ids, file, cmap.patient_id, "patient id", report)
    keep &= _check_duplicate_ids(ids, file, cmap.patient_id, report)

    if has_outcome:
        outcome, positive = encode_outcome(raw[cmap.outcome], cmap.positive_label, file, cmap.outcome, report,
                                           complete=require_outcome)
        if outcome is None:
            return None
    else:
        outcome = pd.Series(np.nan, index=raw.index)
        positive = "1" if cmap.positive_label is None else str(cmap.positive_label)
    table = pd.DataFrame({"outcome": outcome})
    for name in covariates:
        table[name] = _checked_covariate(raw[name], file, name, report)
        _warn_identifier_like(table[name], file, name, report)
    if cmap.group:
        table[cmap.group] = as_text(raw[cmap.group])
        _warn_missing_group(table[cmap.group], file, cmap.group, report)
    index_times = None
    if cmap.index_time:
        index_times = _parse_index_times(raw[cmap.index_time], file, cmap.index_time, report)
        index_times.index = ids
        index_times = index_times[keep.to_numpy()]
    table.index = pd.Index(ids, name="patient_id")
    return table[keep.to_numpy()], covariates, positive, index_times


def _check_roles(cmap, covariates: list[str], file: str, report) -> bool:
    """The outcome, the patient id and the index time cannot also be covariates, nor the outcome the group."""
    ok = True
    for field, why in (("outcome", "the model would be given the answer it is trained to predict"),
                       ("patient_id", "an identifier says nothing about the patient"),
                       ("index_time", "it is a date that sets hour 0, not a patient characteristic")):
        name = getattr(cmap, field)
        if name is not None and name in covariates:
            ok = False
            report.add("error", file, name,
                       f"column '{name}' is {COLUMN_ROLES[field]} ({setting(field)}) and cannot also be a covariate: "
                       f"{why}. Remove '{name}' from the covariates ({setting('covariates')})")
    if cmap.group is not None and cmap.group == cmap.outcome:
        ok = False
        report.add("error", file, cmap.group,
                   f"column '{cmap.group}' is the binary outcome ({setting('outcome')}) and cannot also be the group: "
                   f"per-group metrics compare the outcome within groups. Choose another group column "
                   f"({setting('group')}) or none")
    return ok


def _checked_covariate(raw: pd.Series, file: str, column: str, report) -> pd.Series:
    """encode_covariate, except that a mostly numeric column with some text cells is an error naming them.

    (One 'unknown' among ages would otherwise turn age into one category per value.) The text cells read
    as missing in the returned column; empty cells are missing anyway.
    """
    if _is_numeric(raw) or pd.api.types.is_bool_dtype(raw):
        return encode_covariate(raw)
    text = raw.astype(str).str.strip().mask(raw.isna())
    filled = text.notna() & (text != "")
    as_number = pd.to_numeric(text.where(filled), errors="coerce")
    is_text = filled & as_number.isna()
    n_numbers, n_text = int((filled & as_number.notna()).sum()), int(is_text.sum())
    if n_text == 0 or n_numbers <= n_text:  # all numbers, or a categorical column
        return encode_covariate(raw)
    rows = spreadsheet_rows(np.flatnonzero(is_text))
    shown = ", ".join(f"row {row} {value!r}" for row, value in zip(rows[:5], text[is_text].iloc[:5]))
    report.add("error", file, column,
               f"covariate '{column}' mixes numbers ({count_of(n_numbers, 'row')}) and text "
               f"({count_of(n_text, 'row')}: {shown}{', ...' if n_text > 5 else ''}); a numeric covariate's "
               f"values must all be numbers: correct these cells, or empty them if the value is not known",
               count=n_text, examples=rows)
    return as_number.astype(float)


def _check_duplicate_ids(ids: pd.Series, file: str, column: str, report) -> pd.Series:
    repeated = ids.notna() & ids.duplicated(keep=False)
    if repeated.any():
        dup_ids = ids[repeated].unique()
        report.add("error", file, column,
                   f"{count_of(len(dup_ids), 'patient id')} appearing more than once (e.g. {_quoted(dup_ids)}); "
                   f"each patient needs exactly one row: remove or merge the duplicate rows",
                   count=len(dup_ids), examples=spreadsheet_rows(np.flatnonzero(repeated)))
    return ~(ids.notna() & ids.duplicated(keep="first"))


def _warn_identifier_like(values: pd.Series, file: str, column: str, report):
    if _is_numeric(values):
        return
    n_levels = values.nunique()
    if n_levels > MANY_LEVELS and n_levels > 0.5 * values.notna().sum():
        report.add("warning", file, column,
                   f"covariate '{column}' has {n_levels} different values for {values.notna().sum()} patients; "
                   f"it looks like an identifier or free text. Leave it out of the covariates "
                   f"({setting('covariates')})",
                   count=n_levels)


def _warn_missing_group(values: pd.Series, file: str, column: str, report):
    missing = values.isna()
    if missing.any():
        report.add("warning", file, column,
                   f"{count_of(missing.sum(), 'patient')} without a group: left out of per-group metrics",
                   count=int(missing.sum()), examples=spreadsheet_rows(np.flatnonzero(missing)))


def _parse_index_times(raw: pd.Series, file: str, column: str, report) -> pd.Series:
    times = _to_naive(pd.to_datetime(raw, errors="coerce"))
    bad = times.isna() & raw.notna()
    if bad.any():
        report.add("error", file, column,
                   f"{count_of(bad.sum(), 'index time')} not readable as dates (e.g. {_quoted(raw[bad])}); write them "
                   f"as 'YYYY-MM-DD HH:MM'", count=int(bad.sum()), examples=spreadsheet_rows(np.flatnonzero(bad)))
    if raw.isna().any():
        report.add("warning", file, column,
                   f"{count_of(raw.isna().sum(), 'patient')} without an index time: their times count from their "
                   f"first event",
                   count=int(raw.isna().sum()), examples=spreadsheet_rows(np.flatnonzero(raw.isna())))
    return times


def _to_naive(times: pd.Series) -> pd.Series:
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        return times.dt.tz_convert(None)
    return times


# ---------------------------------------------------------------------------------------------
# events table


def check_events(raw: pd.DataFrame, cmap, file: str, report: ValidationReport, index_times=None):
    """Validate the events table. Returns the canonical events (index = 0-based data position) or None.

    Times are hours since each patient's index time, or timestamps. Timestamps become hours since the
    patient's index time from the patients table (`index_times`, from ColumnMap.index_time /
    --index-time-col) where there is one, else since the patient's first event (the report says so).
    """
    wanted = {k: getattr(cmap, k) for k in ("patient_id", "time", "variable", "value")}
    if not (check_distinct_columns(wanted, file, report) and check_columns(raw, wanted, file, report)
            and check_not_empty(raw, file, report)):
        return None
    raw = raw.reset_index(drop=True)
    ids = as_text(raw[cmap.patient_id])
    keep = _drop_and_report_missing(ids, file, cmap.patient_id, "patient id", report)
    variables = as_text(raw[cmap.variable])
    keep &= _drop_and_report_missing(variables, file, cmap.variable, "variable name", report)

    times, is_timestamp = parse_times(raw[cmap.time], file, cmap.time, report)
    keep &= times.notna()
    values, readable = parse_values(raw[cmap.value], variables, file, cmap.value, report)
    keep &= readable

    events = pd.DataFrame({"patient_id": ids, "time": times, "variable": variables, "value": values})[keep]
    if is_timestamp:
        events["time"] = hours_since_index(events["patient_id"], events["time"], index_times)
        if index_times is None:
            report.add("warning", file, cmap.time,
                       f"times are timestamps: hours are counted from each patient's first event; give the "
                       f"admission time with {CLI_FLAGS['index_time']} (ColumnMap.index_time) to count from it")
    elif index_times is not None:
        report.add("warning", file, cmap.time,
                   f"times are numbers, so they are read as hours since the index time and the patients "
                   f"table's index time column '{cmap.index_time}' is not used")
    events["time"] = events["time"].astype(float)
    warn_times_outside(events["time"], file, cmap.time, report)
    return events


def parse_times(raw: pd.Series, file: str, column: str, report) -> tuple[pd.Series, bool]:
    """Numbers (hours) or timestamps; returns (times with NaN/NaT where unreadable, is_timestamp).

    Text that mostly reads as numbers is hours; otherwise it is read as dates and times (see
    hours_since_index for how timestamps become hours).
    """
    if _is_numeric(raw):
        times, is_timestamp = raw.astype(float), False
    elif pd.api.types.is_datetime64_any_dtype(raw):
        times, is_timestamp = _to_naive(raw), True
    else:
        text = raw.astype(str).str.strip().mask(raw.isna())
        as_number = pd.to_numeric(text, errors="coerce")
        filled = text.notna() & (text != "")
        is_timestamp = bool(as_number[filled].notna().mean() < 0.5) if filled.any() else False
        times = _to_naive(pd.to_datetime(text, errors="coerce")) if is_timestamp else as_number
    bad = times.isna()
    if bad.any():
        shown = raw[bad & raw.notna()]
        example = f" (e.g. {_quoted(shown.unique())})" if len(shown) else ""
        how = "dates and times such as '2024-03-01 14:30'" if is_timestamp else "hours as numbers such as 12.5"
        report.add("error", file, column,
                   f"{count_of(bad.sum(), 'time')} empty or unreadable{example}: write every time as {how}",
                   count=int(bad.sum()), examples=spreadsheet_rows(np.flatnonzero(bad)))
    return times, is_timestamp


def hours_since_index(patient_ids: pd.Series, stamps: pd.Series, index_times: pd.Series | None) -> pd.Series:
    """Hours from each patient's index time, or from the patient's first event where there is none.

    index_times: the patients table's index time column (ColumnMap.index_time, --index-time-col) by
    patient id, or None: then every patient's hour 0 is their first event.
    """
    reference = stamps.groupby(patient_ids).transform("min")
    if index_times is not None:
        from_table = patient_ids.map(index_times.dropna()).astype(stamps.dtype)
        reference = from_table.where(from_table.notna(), reference)
    return (stamps - reference).dt.total_seconds() / 3600.0


def parse_values(raw: pd.Series, variables: pd.Series, file: str, column: str, report):
    """Values as floats (empty -> NaN: a coded event). Returns (values, rows that are usable)."""
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype(float)
    if _is_numeric(raw):
        values = raw.astype(float)
        text = pd.Series(False, index=raw.index)
    else:
        stripped = raw.astype(str).str.strip().mask(raw.isna())
        empty = stripped.isna() | (stripped == "")
        values = pd.to_numeric(stripped.mask(empty), errors="coerce").astype(float)
        text = ~empty & values.isna()
        _report_text_values(stripped, text, values, variables, file, column, report)
    _warn_empty_in_numeric(values, text, variables, file, column, report)
    return values, ~text


def _report_text_values(stripped, text, values, variables, file, column, report):
    if not text.any():
        return
    numbers_per_variable = values.notna().groupby(variables).sum()
    bad_variables = variables[text].value_counts()
    for i, (variable, n_text) in enumerate(bad_variables.items()):
        if i == MAX_PROBLEMS_PER_CHECK:
            rest = bad_variables.iloc[i:]
            report.add("error", file, column,
                       f"{int(rest.sum())} more text values in {len(rest)} more variables "
                       f"({_quoted(rest.index)}); every value must be a number or empty", count=int(rest.sum()))
            break
        rows = text & (variables == variable)
        examples = _quoted(stripped[rows].unique(), limit=3)
        n_numbers = int(numbers_per_variable.get(variable, 0))
        if n_numbers:
            message = (f"variable '{variable}' mixes numbers ({count_of(n_numbers, 'row')}) and text "
                       f"({count_of(n_text, 'row')}, e.g. "
                       f"{examples}); a variable's values must all be numbers: correct these cells, or empty "
                       f"them if the value was not measured")
        else:
            message = (f"variable '{variable}' has text values ({count_of(n_text, 'row')}, e.g. {examples}); DICE "
                       f"needs numbers: "
                       f"recode them as numbers (e.g. 0/1), or leave the value empty if '{variable}' is a coded "
                       f"event such as an order")
        report.add("error", file, column, message, count=n_text,
                   examples=spreadsheet_rows(np.flatnonzero(rows)))


def _warn_empty_in_numeric(values, text, variables, file, column, report):
    """Empty values of a variable that otherwise holds numbers read as 'not measured': say so."""
    empty = values.isna() & ~text & variables.notna()
    if empty.any():
        has_numbers = values.notna().groupby(variables).any()
        empty &= variables.isin(has_numbers.index[has_numbers])  # coded variables are empty by design
    if empty.any():
        per_variable = variables[empty].value_counts()
        listing = ", ".join(f"{v}: {n}" for v, n in per_variable.head(10).items())
        report.add("warning", file, column,
                   f"{count_of(empty.sum(), 'row')} with an empty value in variables that otherwise hold numbers "
                   f"({listing}): treated as not measured", count=int(empty.sum()),
                   examples=spreadsheet_rows(np.flatnonzero(empty)))


def warn_times_outside(times: pd.Series, file: str, column: str, report):
    """Negative or infinite times are valid numbers but fall outside every window: say how many."""
    outside = (times < 0) | ~np.isfinite(times)
    if outside.any():
        report.add("warning", file, column,
                   f"{count_of(outside.sum(), 'event')} with a negative or infinite time (before the index time): "
                   f"they fall outside the observation window and are dropped when sequences are built",
                   count=int(outside.sum()), examples=spreadsheet_rows(times.index[outside]))


def check_time_window(events: pd.DataFrame, window_hours: float, report: ValidationReport, file: str = "events",
                      column: str = "time"):
    """Warn with the number of events at or after the end of the window (they are dropped at binning).

    events: canonical events; file, column: the user's events file and time column, for the message."""
    late = events["time"] >= window_hours
    if late.any():
        report.add("warning", file, column,
                   f"{count_of(late.sum(), 'event')} at or after {window_hours:g} hours: outside the observation "
                   f"window, so dropped (a longer window, {WINDOW_SETTING}, keeps them)", count=int(late.sum()))


def window_report(cohort, window_hours: float) -> ValidationReport:
    """Warnings about a cohort read through a `window_hours` observation window (as preprocessing does).

    Events at or after the window's end are dropped when sequences are built, and patients whose every
    event falls outside it get an empty sequence. Returns a new report (the cohort's is left as it is).
    """
    if not np.isfinite(window_hours) or window_hours <= 0:
        raise ConfigError(f"window_hours={window_hours!r} must be a positive number of hours, e.g. 48")
    report = ValidationReport()
    file = events_file_of(cohort)
    time_column = cohort.columns.time
    events = cohort.events
    check_time_window(events, window_hours, report, file, time_column)
    in_window = events["time"].between(0, window_hours, inclusive="left")
    had_events = cohort.patients.index.isin(events["patient_id"].unique())
    empty = had_events & ~cohort.patients.index.isin(events.loc[in_window, "patient_id"].unique())
    if empty.any():
        ids = cohort.patients.index[empty]
        report.add("warning", file, time_column,
                   f"{count_of(empty.sum(), 'patient')} with events but none within the first {window_hours:g} "
                   f"hours (examples are patient ids): their sequences are empty, so only their covariates "
                   f"inform them; check their times or use a longer window ({WINDOW_SETTING})",
                   count=int(empty.sum()), examples=list(ids[:10]))
    return report


def events_file_of(cohort) -> str:
    """The events file's name for messages: the first part of 'events.csv + patients.csv'."""
    return (cohort.source or "events").split(" + ")[0]


def check_links(events: pd.DataFrame, patients: pd.DataFrame, events_file: str, patients_file: str,
                report: ValidationReport, id_column: str = "patient_id") -> pd.DataFrame:
    """Events must belong to known patients (error); patients without events are kept (warning).

    id_column: the user's patient id column, for the message."""
    known = events["patient_id"].isin(patients.index)
    if not known.all():
        unknown_ids = events.loc[~known, "patient_id"].unique()
        report.add("error", events_file, id_column,
                   f"{count_of((~known).sum(), 'event')} of {count_of(len(unknown_ids), 'patient')} not in the "
                   f"{patients_file} (e.g. {_quoted(unknown_ids)}): add these patients to the {patients_file} or "
                   f"remove their events", count=int((~known).sum()),
                   examples=spreadsheet_rows(events.index[~known]))
    silent = ~patients.index.isin(events.loc[known, "patient_id"].unique())
    if silent.any():
        report.add("warning", patients_file, None,
                   f"{count_of(silent.sum(), 'patient')} without events (examples are patient ids): kept with an "
                   f"empty sequence", count=int(silent.sum()),
                   examples=list(patients.index[silent][:10]))
    return events[known]


# ---------------------------------------------------------------------------------------------
# split feasibility


def check_split_feasible(n_patients: int, n_positive: int, n_clusters: int = 2,
                         ratios=(4.0, 1.0, 1.0)) -> None:
    """Raise ConfigError when a stratified split with these ratios cannot support K clusters.

    Each of train/validation/test needs at least 2 patients of each class (an AUC needs both), and
    the training split needs at least 5 patients per cluster.
    """
    ratios = [float(r) for r in ratios]
    if len(ratios) != 3 or min(ratios) <= 0:
        raise ConfigError(f"split ratios {tuple(ratios)} must be three positive numbers (train, val, test)")
    total = sum(ratios)
    shown = ":".join(f"{r:g}" for r in ratios)
    n_negative = n_patients - n_positive
    smallest = min(ratios) / total
    for name, n_class in (("with the outcome", n_positive), ("without the outcome", n_negative)):
        if int(n_class * smallest) < 2:
            need = int(np.ceil(2 / smallest))
            raise ConfigError(
                f"{n_class} patients {name}: a stratified {shown} split needs at least {need} patients {name} "
                f"(2 in the smallest split); add patients or give the validation and test splits larger ratios")
    n_train = int(n_patients * ratios[0] / total)
    if n_train < 5 * n_clusters:
        raise ConfigError(
            f"the training split would hold {n_train} of {n_patients} patients, but K={n_clusters} clusters need at "
            f"least {5 * n_clusters} (5 per cluster); lower K or add patients")
