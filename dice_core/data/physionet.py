"""Load the PhysioNet/CinC Challenge 2012 set A (4,000 ICU stays, first 48 hours) as a Cohort.

Accepts the `set-a` folder, its parent, or `set-a.tar.gz` (tar members are read in memory, never
extracted). All stays are parsed with one `pd.read_csv` over the concatenated files, so loading
takes seconds. The outcome is In-hospital_death only: SAPS-I, SOFA, Length_of_stay and Survival are
computed from the same stay or after it and would leak the outcome, so they are never loaded.

The descriptors recorded at 00:00 become patient covariates (Age, Gender, Height, ICUType, Weight;
-1 = not recorded). Every other row is an event; Weight is also time-varying, so Weight rows after
the admission descriptor stay events. Recording errors are cleaned with PLAUSIBLE_RANGES and
each cleaning is reported as a warning, per variable, with its count.
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CohortError
from .cohort import Cohort, ValidationReport
from .validate import check_links

OUTCOMES_FILE = "Outcomes-a.txt"
OUTCOME = "In-hospital_death"
DESCRIPTORS = ["RecordID", "Age", "Gender", "Height", "ICUType", "Weight"]
ICU_TYPES = {1: "coronary care", 2: "cardiac surgery recovery", 3: "medical", 4: "surgical"}
GENDERS = {0: "female", 1: "male"}
DEFAULT_COVARIATES = ("Age", "Gender")  # the paper adjusts for demographics
DEFAULT_GROUP = "ICUType"  # set A records no race
RECORD_MARKER = b"__record__"  # marks where each stay file starts in the concatenated text
PH_TIMES_100 = (65.0, 800.0)  # a pH in this interval was recorded x100 (735 for 7.35): divided by 100

# Physiological limits [low, high] (inclusive) in the units of the challenge (PhysioNet 2012 "Data"
# page): wide bounds compatible with life in an adult ICU, informed by the outlier table of the
# MIMIC-III benchmark (Harutyunyan et al., Sci Data 2019) and usual clinical reference ranges. A value
# outside is a recording error (a disconnected arterial line reads 0, temperature in the wrong unit,
# a weight of 0), not an extreme patient, so it is removed (not clipped). RespRate may be 0 on full
# ventilation, Urine may be 0 (anuria): both keep 0.
PLAUSIBLE_RANGES = {
    "Age": (15, 120),  # years; set A caps ages at 90
    "Height": (100, 250),  # cm: 1.8 or 431.8 are unit or typing errors
    "Weight": (20, 300),  # kg: 0 or 0.6 are not weights
    "ALP": (1, 5000),  # IU/L
    "ALT": (1, 30000),  # IU/L (ischaemic hepatitis reaches the 10,000s)
    "AST": (1, 40000),  # IU/L
    "Albumin": (0.5, 7),  # g/dL
    "BUN": (1, 300),  # mg/dL
    "Bilirubin": (0.05, 80),  # mg/dL
    "Cholesterol": (20, 1000),  # mg/dL
    "Creatinine": (0.1, 35),  # mg/dL
    "DiasABP": (10, 250),  # mmHg, invasive
    "FiO2": (0.21, 1.0),  # fraction of inspired oxygen
    "GCS": (3, 15),  # Glasgow coma score
    "Glucose": (10, 2000),  # mg/dL
    "HCO3": (2, 60),  # mmol/L
    "HCT": (5, 80),  # %
    "HR": (10, 300),  # beats/min
    "K": (1, 12),  # mEq/L (above: haemolysed sample)
    "Lactate": (0.1, 40),  # mmol/L
    "MAP": (15, 300),  # mmHg, invasive
    "MechVent": (0, 1),  # 0/1
    "Mg": (0.3, 10),  # mmol/L
    "NIDiasABP": (10, 250),  # mmHg, non-invasive
    "NIMAP": (15, 300),  # mmHg
    "NISysABP": (20, 300),  # mmHg
    "Na": (90, 200),  # mEq/L
    "PaCO2": (5, 200),  # mmHg
    "PaO2": (15, 800),  # mmHg
    "Platelets": (1, 2000),  # cells/nL
    "RespRate": (0, 100),  # breaths/min
    "SaO2": (10, 100),  # %
    "SysABP": (20, 300),  # mmHg, invasive
    "Temp": (25, 45),  # °C: below 25 is a probe off the patient or a unit error
    "TroponinI": (0.001, 200),  # µg/L
    "TroponinT": (0.001, 100),  # µg/L
    "Urine": (0, 10000),  # mL per charting
    "WBC": (0.01, 500),  # cells/nL
    "pH": (6.5, 8.0),  # after undoing the x100 recordings
}
UNITS = {"Age": "years", "Height": "cm", "Weight": "kg", "Temp": "°C", "HR": "/min", "RespRate": "/min",
         "DiasABP": "mmHg", "SysABP": "mmHg", "MAP": "mmHg", "NIDiasABP": "mmHg", "NISysABP": "mmHg",
         "NIMAP": "mmHg", "PaCO2": "mmHg", "PaO2": "mmHg", "SaO2": "%", "HCT": "%", "FiO2": "",
         "Urine": "mL"}


def default_physionet_path() -> Path:
    """DICE_PHYSIONET_PATH, else ../shared/data/physionet2012/set-a.tar.gz beside the repository."""
    if os.environ.get("DICE_PHYSIONET_PATH"):
        return Path(os.environ["DICE_PHYSIONET_PATH"]).expanduser()
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "physionet2012" / "set-a.tar.gz"


def load_physionet2012(path=None, *, covariates=DEFAULT_COVARIATES, group: str | None = DEFAULT_GROUP) -> Cohort:
    """Set A as a Cohort: events in hours since ICU admission, outcome In-hospital_death.

    path: the set-a folder, its parent folder, or set-a.tar.gz (default: default_physionet_path()).
    The patients table holds Age, Gender, Height, ICUType and Weight; `covariates` (default Age and
    Gender) are the ones the DICE outcome model adjusts for, `group` the per-group metrics column.
    """
    unknown = [c for c in [*covariates, group] if c and c not in DESCRIPTORS[1:]]
    if unknown:
        raise CohortError(f"{unknown} are not PhysioNet descriptors; choose covariates and group among "
                          f"{DESCRIPTORS[1:]}")
    path = Path(path) if path is not None else default_physionet_path()
    files, outcomes_text, source = _read_files(path)
    records = [record for record, _ in files]
    report = ValidationReport()
    descriptors, events = _split_descriptors(_parse_records(files, source, report))
    patients = _patients_table(descriptors, records, source, report)
    patients = _attach_outcomes(patients, outcomes_text, source, report)
    events = _clean_events(events, records, source, report)
    events = events[events["patient_id"].isin(patients.index)]  # stays without an outcome (warned above)
    events = check_links(events, patients, source, source, report)
    return Cohort(events.reset_index(drop=True), patients, covariates=list(covariates), group=group,
                  outcome_name=OUTCOME, positive_label="1", source=source, report=report)


# ------------------------------------------------------------------------------------ reading


def _read_files(path: Path) -> tuple[list[tuple[str, bytes]], bytes, str]:
    """[(record id, file bytes)], the outcomes file's bytes, and a name for messages."""
    hint = "pass the set-a folder, its parent, or set-a.tar.gz, or set DICE_PHYSIONET_PATH"
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _read_tar(path)
    if path.is_dir():
        folder = path if any(path.glob("*.txt")) and not (path / "set-a").is_dir() else path / "set-a"
        if folder.is_dir():
            return _read_folder(folder)
        if (path / "set-a.tar.gz").is_file():
            return _read_tar(path / "set-a.tar.gz")
    raise CohortError(f"PhysioNet set A not found at {path}; {hint}")


def _read_tar(path: Path):
    files, outcomes = [], None
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                name = Path(member.name).name
                if not member.isfile() or not name.endswith(".txt"):
                    continue
                data = archive.extractfile(member).read()
                if name == OUTCOMES_FILE:
                    outcomes = data
                elif name[:-4].isdigit():
                    files.append((name[:-4], data))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CohortError(f"{path.name} cannot be read as a tar.gz archive ({exc}); download it again") from exc
    if outcomes is None:  # not inside the archive: look beside it
        beside = path.parent / OUTCOMES_FILE
        outcomes = beside.read_bytes() if beside.is_file() else None
    return _checked(files, outcomes, path)


def _read_folder(folder: Path):
    files = [(f.stem, f.read_bytes()) for f in sorted(folder.glob("*.txt")) if f.stem.isdigit()]
    candidates = [folder / OUTCOMES_FILE, folder.parent / OUTCOMES_FILE]
    outcomes = next((c.read_bytes() for c in candidates if c.is_file()), None)
    return _checked(files, outcomes, folder)


def _checked(files, outcomes, path: Path):
    if not files:
        raise CohortError(f"no stay files (NNNNNN.txt) found in {path}; pass the set-a folder or set-a.tar.gz")
    if outcomes is None:
        raise CohortError(f"{OUTCOMES_FILE} not found in or beside {path}; put it beside the set-a folder "
                          f"or the archive")
    return files, outcomes, path.name


def _parse_records(files: list[tuple[str, bytes]], source: str, report: ValidationReport) -> pd.DataFrame:
    """One DataFrame (record: position in `files`, time in hours, parameter, value), parsed at once.

    Each file's header is dropped, a marker row carrying the file's position is put in its place,
    and 'HH:MM' becomes two numeric fields (':' -> ','), so one C-parsed read_csv reads the 1.7
    million rows; the record of each row is the last marker above it.
    """
    parts = []
    for position, (_, data) in enumerate(files):
        if data[:4].lower() == b"time":
            data = data.partition(b"\n")[2]
        if data and not data.endswith(b"\n"):
            data += b"\n"
        parts.append(b"-1,0,%s,%d\n" % (RECORD_MARKER, position))
        parts.append(data)
    # a spare column absorbs rows with one field too many (reported below); worse rows are skipped
    table = pd.read_csv(io.BytesIO(b"".join(parts).replace(b":", b",")), header=None,
                        names=["hours", "minutes", "parameter", "value", "extra"], dtype={"parameter": "category"},
                        on_bad_lines="skip")
    marker = table["parameter"] == RECORD_MARKER.decode()
    record = pd.to_numeric(table["value"].where(marker), errors="coerce").ffill().astype(np.int64)
    hours = pd.to_numeric(table["hours"], errors="coerce")
    minutes = pd.to_numeric(table["minutes"], errors="coerce")
    value = pd.to_numeric(table["value"], errors="coerce")
    unreadable = ~marker & (hours.isna() | minutes.isna() | value.isna() | table["parameter"].isna()
                            | table["extra"].notna())
    if unreadable.any():
        examples = [files[i][0] for i in record[unreadable].unique()[:10]]
        report.add("warning", source, None,
                   f"{int(unreadable.sum())} rows cannot be read as 'HH:MM,Parameter,Value' and are skipped "
                   f"(examples are record ids)", count=int(unreadable.sum()), examples=examples)
    keep = ~marker & ~unreadable
    return pd.DataFrame({"record": record[keep], "time": (hours + minutes / 60.0)[keep],
                         "parameter": table["parameter"][keep], "value": value[keep]}
                        ).reset_index(drop=True)


def _split_descriptors(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(descriptors: one row per record with a column per descriptor, events: everything else).

    The first Weight at 00:00 is the admission descriptor; later Weight rows are measurements.
    """
    parameter = rows["parameter"]
    static = parameter.isin(DESCRIPTORS) & (parameter != "Weight")
    at_admission = (parameter == "Weight") & (rows["time"] == 0)
    first_weight = at_admission & ~rows["record"].where(at_admission).duplicated()
    is_descriptor = static | first_weight
    descriptor_rows = rows[is_descriptor].drop_duplicates(["record", "parameter"])
    descriptors = descriptor_rows.pivot(index="record", columns="parameter", values="value")
    return descriptors, rows[~is_descriptor]


def _patients_table(descriptors: pd.DataFrame, records: list[str], source: str, report) -> pd.DataFrame:
    """Age, Gender, Height, ICUType, Weight per record; -1 (not recorded) and implausible -> missing."""
    table = descriptors.reindex(index=range(len(records)), columns=DESCRIPTORS[1:])
    not_recorded = (table == -1).sum()
    if not_recorded.any():
        listing = ", ".join(f"{name} {n}" for name, n in not_recorded[not_recorded > 0].items())
        report.add("warning", source, None, f"descriptors recorded as -1 (not recorded) are missing: {listing}",
                   count=int(not_recorded.sum()))
    table = table.mask(table == -1)
    for name in ("Age", "Height", "Weight"):
        table[name] = _drop_implausible(table[name], name, source, report, f"admission {name}")
    patients = pd.DataFrame({
        "Age": table["Age"],
        "Gender": table["Gender"].map(GENDERS),
        "Height": table["Height"],
        "ICUType": table["ICUType"].map(ICU_TYPES),
        "Weight": table["Weight"],
    })
    patients.index = pd.Index(records, dtype="str", name="patient_id")
    return patients.sort_index()


def _clean_events(events: pd.DataFrame, records: list[str], source: str, report) -> pd.DataFrame:
    """Undo x100 pH values, drop -1 weights and implausible values, reporting each per variable."""
    value = events["value"].copy()
    parameter = events["parameter"]
    weight_unknown = (parameter == "Weight") & (value == -1)
    if weight_unknown.any():
        report.add("warning", source, "Weight", f"Weight: {_count(weight_unknown.sum(), 'value')} of -1 "
                   f"(not recorded) removed", count=int(weight_unknown.sum()))
        value[weight_unknown] = np.nan
    times_100 = (parameter == "pH") & (value > PH_TIMES_100[0]) & (value < PH_TIMES_100[1])
    if times_100.any():
        report.add("warning", source, "pH", f"pH: {_count(times_100.sum(), 'value')} between {PH_TIMES_100[0]:g} "
                   f"and {PH_TIMES_100[1]:g} were recorded x100 and are divided by 100", count=int(times_100.sum()),
                   examples=sorted(value[times_100].unique().tolist()))
        value[times_100] /= 100.0
    for name, rows in events.groupby("parameter", observed=True).groups.items():
        if name in PLAUSIBLE_RANGES:
            value[rows] = _drop_implausible(value[rows], name, source, report)
    unknown = sorted(set(parameter.cat.remove_unused_categories().cat.categories) - set(PLAUSIBLE_RANGES))
    if unknown:
        report.add("warning", source, None, f"parameters without a plausible range are kept unchecked: "
                   f"{', '.join(unknown)}", count=len(unknown))
    keep = value.notna()
    ids = pd.Series(records, dtype="str")
    return pd.DataFrame({"patient_id": ids.take(events["record"][keep].to_numpy()).reset_index(drop=True),
                         "time": events["time"][keep].to_numpy(dtype=float),
                         "variable": _as_str(parameter[keep]),
                         "value": value[keep].to_numpy(dtype=float)})


def _as_str(categories: pd.Series) -> pd.Series:
    """A categorical column as str (taking from the categories is much faster than casting)."""
    names = pd.Series(categories.cat.categories.astype(str), dtype="str")
    return names.take(categories.cat.codes.to_numpy()).reset_index(drop=True)


def _count(n, noun: str) -> str:
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


def _drop_implausible(values: pd.Series, name: str, source: str, report, noun: str = "value") -> pd.Series:
    """Values outside PLAUSIBLE_RANGES[name] -> NaN, with one warning giving the counts.

    e.g. "Temp: 125 values below 25 °C removed as implausible".
    """
    low, high = PLAUSIBLE_RANGES[name]
    unit = f" {UNITS[name]}" if UNITS.get(name) else ""
    below, above = values < low, values > high
    n_below, n_above = int(below.sum()), int(above.sum())
    parts = []
    if n_below:
        parts.append(f"{_count(n_below, noun)} below {low:g}{unit}")
    if n_above:
        parts.append(f"{n_above} above {high:g}{unit}" if parts else f"{_count(n_above, noun)} above {high:g}{unit}")
    if parts:
        report.add("warning", source, name, f"{name}: {' and '.join(parts)} removed as implausible",
                   count=n_below + n_above)
    return values.mask(below | above)


def _attach_outcomes(patients: pd.DataFrame, outcomes_text: bytes, source: str, report) -> pd.DataFrame:
    """Add 'outcome' from In-hospital_death only (the other columns would leak the outcome)."""
    try:
        outcomes = pd.read_csv(io.BytesIO(outcomes_text), usecols=["RecordID", OUTCOME])
    except ValueError as exc:
        raise CohortError(f"{OUTCOMES_FILE} has no columns RecordID and {OUTCOME} ({exc}); use the challenge's "
                          f"outcomes file") from exc
    outcomes = outcomes.dropna().astype({"RecordID": int})
    outcome = pd.Series(outcomes[OUTCOME].to_numpy(), index=outcomes["RecordID"].astype(str).to_numpy())
    outcome = outcome[~outcome.index.duplicated()].reindex(patients.index)
    unusable = outcome.isna() | ~outcome.isin([0, 1])
    if unusable.any():
        report.add("warning", OUTCOMES_FILE, OUTCOME,
                   f"{int(unusable.sum())} stays have no 0/1 {OUTCOME} and are left out",
                   count=int(unusable.sum()), examples=patients.index[unusable.to_numpy()][:10].tolist())
    patients = patients[~unusable.to_numpy()].copy()
    patients.insert(0, "outcome", outcome[~unusable].astype(int).to_numpy())
    return patients
