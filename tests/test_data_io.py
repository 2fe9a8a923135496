"""load_cohort: file formats, time conventions and the canonical Cohort it produces."""
import io

import numpy as np
import pandas as pd
import pytest

from dice_core.config import ColumnMap
from dice_core.data import load_cohort
from dice_core.errors import CohortError

EVENTS = "patient_id,time,variable,value\n007,0.5,HR,80\n007,1.5,HR,90\n007,2,antibiotic,\n012,1,HR,70\n"
PATIENTS = "patient_id,outcome,age,sex\n007,1,70,female\n012,0,55,male\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_gives_canonical_cohort(tmp_path):
    cohort = load_cohort(write(tmp_path, "events.csv", EVENTS), write(tmp_path, "patients.csv", PATIENTS))
    assert list(cohort.events.columns) == ["patient_id", "time", "variable", "value"]
    assert cohort.events["time"].dtype == np.float64 and cohort.events["value"].dtype == np.float64
    assert cohort.events["patient_id"].tolist() == ["007", "007", "007", "012"]  # leading zeros kept
    assert np.isnan(cohort.events["value"].iloc[2])  # coded event: present, no value
    assert cohort.patients.index.tolist() == ["007", "012"]
    assert cohort.patients.index.name == "patient_id"
    assert cohort.patients["outcome"].tolist() == [1, 0]
    assert cohort.patients["outcome"].dtype.kind == "i"
    assert cohort.covariates == ["age", "sex"]  # default: every other column
    assert cohort.patients["age"].dtype == np.float64
    assert cohort.patients["sex"].tolist() == ["female", "male"]
    assert cohort.source == "events.csv + patients.csv"
    assert cohort.report.problems == []


def test_parquet_gzip_dataframe_and_upload_agree(tmp_path):
    events = pd.read_csv(io.StringIO(EVENTS), dtype={"patient_id": str})
    patients = pd.read_csv(io.StringIO(PATIENTS), dtype={"patient_id": str})
    events.to_parquet(tmp_path / "e.parquet")
    patients.to_csv(tmp_path / "p.csv.gz", index=False)
    upload = io.BytesIO(PATIENTS.encode())
    upload.name = "uploaded_patients.csv"
    from_files = load_cohort(tmp_path / "e.parquet", tmp_path / "p.csv.gz")
    from_frames = load_cohort(events, patients)
    from_upload = load_cohort(str(tmp_path / "e.parquet"), upload)
    for cohort in (from_frames, from_upload):
        pd.testing.assert_frame_equal(cohort.events, from_files.events)
        pd.testing.assert_frame_equal(cohort.patients, from_files.patients)
    assert from_frames.source == "events table + patients table"
    assert from_upload.source == "e.parquet + uploaded_patients.csv"


def test_dataframe_indexed_by_patient_id_is_accepted():
    events = pd.read_csv(io.StringIO(EVENTS), dtype={"patient_id": str})
    patients = pd.read_csv(io.StringIO(PATIENTS), dtype={"patient_id": str}).set_index("patient_id")
    assert load_cohort(events, patients).patients.index.tolist() == ["007", "012"]


def test_semicolon_csv_with_bom(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_bytes("\ufeff".encode() + PATIENTS.replace(",", ";").encode())
    cohort = load_cohort(write(tmp_path, "events.csv", EVENTS), path)
    assert cohort.patients["age"].tolist() == [70.0, 55.0]


def test_column_map_renames_and_chooses_covariates_and_group():
    events = pd.DataFrame({"pid": [1, 1, 2], "hours": [0.0, 1.0, 2.0], "lab": ["Na", "Na", "K"],
                           "result": [140, 141, 4.1]})
    patients = pd.DataFrame({"pid": [1, 2], "died": ["yes", "no"], "age": [60, 70], "race": ["A", "B"],
                             "note": ["x", "y"]})
    columns = ColumnMap(patient_id="pid", time="hours", variable="lab", value="result", outcome="died",
                        covariates=("age",), group="race")
    cohort = load_cohort(events, patients, columns)
    assert cohort.patients.index.tolist() == ["1", "2"]
    assert cohort.patients["outcome"].tolist() == [1, 0]
    assert cohort.positive_label == "yes" and cohort.outcome_name == "died"
    assert cohort.covariates == ["age"] and cohort.group == "race"
    assert list(cohort.patients.columns) == ["outcome", "age", "race"]


@pytest.mark.parametrize("labels, positive, expected", [
    ([0, 1, 1], None, [0, 1, 1]),
    ([True, False, True], None, [1, 0, 1]),
    (["No", "Yes", "No"], None, [0, 1, 0]),
    ([0.0, 1.0, 0.0], None, [0, 1, 0]),
    (["home", "died", "home"], "died", [0, 1, 0]),
    ([2, 1, 2], 2, [1, 0, 1]),
])
def test_outcome_encodings(labels, positive, expected):
    events = pd.DataFrame({"patient_id": ["a", "b", "c"], "time": [0.0] * 3, "variable": ["HR"] * 3,
                           "value": [1.0] * 3})
    patients = pd.DataFrame({"patient_id": ["a", "b", "c"], "outcome": labels})
    cohort = load_cohort(events, patients, ColumnMap(positive_label=positive))
    assert cohort.patients["outcome"].tolist() == expected


def test_timestamps_count_from_the_index_time():
    events = pd.DataFrame({"patient_id": ["a", "a", "b"],
                           "time": ["2024-03-01 10:00", "2024-03-01 12:30", "2024-03-02 08:00"],
                           "variable": ["HR"] * 3, "value": [80, 85, 90]})
    patients = pd.DataFrame({"patient_id": ["a", "b"], "outcome": [0, 1],
                             "admitted": ["2024-03-01 09:00", "2024-03-02 09:00"]})
    cohort = load_cohort(events, patients, ColumnMap(index_time="admitted"))
    assert cohort.events["time"].tolist() == [1.0, 3.5, -1.0]  # b's event is before admission
    assert "admitted" not in cohort.covariates
    assert "event with a negative or infinite time" in cohort.report.warnings[0].message


def test_timestamps_without_index_time_count_from_the_first_event():
    events = pd.DataFrame({"patient_id": ["a", "a", "b"],
                           "time": pd.to_datetime(["2024-03-01 10:00", "2024-03-01 12:30", "2024-03-02 08:00"]),
                           "variable": ["HR"] * 3, "value": [80, 85, 90]})
    patients = pd.DataFrame({"patient_id": ["a", "b"], "outcome": [0, 1]})
    cohort = load_cohort(events, patients)
    assert cohort.events["time"].tolist() == [0.0, 2.5, 0.0]
    note = cohort.report.warnings[0]  # how hour 0 was chosen is said, not silent
    assert note.column == "time" and len(cohort.report.problems) == 1
    assert note.message == ("times are timestamps: hours are counted from each patient's first event; give the "
                            "admission time with --index-time-col (ColumnMap.index_time) to count from it")


def test_cli_index_time_col_counts_from_the_admission(tmp_path, capsys):
    from dice_core.cli import main

    events = pd.DataFrame({"mrn": ["a", "a", "b"], "charttime": ["2024-03-01 10:00", "2024-03-01 12:30",
                                                                 "2024-03-02 08:00"],
                           "variable": ["HR"] * 3, "value": [80, 85, 90]})
    patients = pd.DataFrame({"mrn": ["a", "b"], "outcome": [0, 1],
                             "admitted": ["2024-03-01 09:00", "2024-03-02 07:00"]})
    events.to_csv(tmp_path / "events.csv", index=False)
    patients.to_csv(tmp_path / "patients.csv", index=False)
    files = ["--events", str(tmp_path / "events.csv"), "--patients", str(tmp_path / "patients.csv"),
             "--id-col", "mrn", "--time-col", "charttime"]
    assert main(["validate", *files, "--index-time-col", "admitted", "--out", str(tmp_path / "out"),
                 "--format", "csv"]) == 0
    assert "no problems found" in capsys.readouterr().out
    written = pd.read_csv(tmp_path / "out" / "events.csv")
    assert written["time"].tolist() == [1.0, 3.5, 1.0]
    assert main(["validate", *files, "--window-hours", "2"]) == 0  # without it: from the first event, and said
    out = capsys.readouterr().out
    assert "times are timestamps: hours are counted from each patient's first event" in out
    assert "1 event at or after 2 hours" in out
    late = [line for line in out.splitlines() if "at or after 2 hours" in line][0]
    assert " charttime " in late  # the user's time column, not 'time'


def test_numeric_times_ignore_index_time_with_a_warning():
    events = pd.DataFrame({"patient_id": ["a", "b"], "time": [1.0, 2.0], "variable": ["HR"] * 2, "value": [1, 2]})
    patients = pd.DataFrame({"patient_id": ["a", "b"], "outcome": [0, 1], "t0": ["2024-01-01", "2024-01-02"]})
    cohort = load_cohort(events, patients, ColumnMap(index_time="t0"))
    assert cohort.events["time"].tolist() == [1.0, 2.0]
    assert "index time column 't0' is not used" in cohort.report.warnings[0].message


def test_strict_false_returns_cohort_and_report():
    events = pd.DataFrame({"patient_id": ["a", "a", "b", "zz"], "time": [0.0, 1, 2, 3],
                           "variable": ["HR"] * 4, "value": ["80", "high", "70", "60"]})
    patients = pd.DataFrame({"patient_id": ["a", "b"], "outcome": [0, 1]})
    with pytest.raises(CohortError) as raised:
        load_cohort(events, patients)
    assert len(raised.value.report.errors) == 2  # all problems, not just the first
    cohort = load_cohort(events, patients, strict=False)
    assert len(cohort.report.errors) == 2
    assert cohort.events["value"].tolist() == [80.0, 70.0]  # the text value and the unknown patient are left out


def test_strict_false_still_raises_when_no_cohort_can_be_built():
    events = pd.DataFrame({"patient_id": ["a"], "time": [0.0], "variable": ["HR"], "value": [1.0]})
    patients = pd.DataFrame({"id": ["a"], "outcome": [0]})
    with pytest.raises(CohortError, match="column 'patient_id'"):
        load_cohort(events, patients, strict=False)
