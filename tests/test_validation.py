"""Every validation problem: where it is (file, column, spreadsheet rows) and what would fix it."""
import numpy as np
import pandas as pd
import pytest

from dice_core.config import ColumnMap
from dice_core.data import check_split_feasible, check_time_window, load_cohort
from dice_core.data.cohort import ValidationReport
from dice_core.errors import CohortError, ConfigError


def events(**changes):
    table = pd.DataFrame({"patient_id": ["a", "a", "b", "b", "c"], "time": [0.0, 1.0, 0.5, 2.0, 1.0],
                          "variable": ["HR", "HR", "HR", "Na", "HR"], "value": [80.0, 90.0, 70.0, 140.0, 60.0]})
    return table.assign(**changes)


def patients(**changes):
    table = pd.DataFrame({"patient_id": ["a", "b", "c"], "outcome": [1, 0, 0], "age": [70, 50, 60]})
    return table.assign(**changes)


def problems(ev=None, pt=None, columns=ColumnMap()):
    """The report of a non-strict load (or of the raised error when nothing can be built)."""
    try:
        return load_cohort(events() if ev is None else ev, patients() if pt is None else pt, columns,
                           strict=False).report
    except CohortError as error:
        return error.report


def only(report, severity="error"):
    found = [p for p in report.problems if p.severity == severity]
    assert len(found) == 1, report.to_frame().to_string()
    return found[0]


def test_clean_tables_have_no_problems():
    assert problems().problems == []


# ------------------------------------------------------------------------------------ columns


def test_misnamed_column_suggests_close_match_and_lists_columns():
    report = problems(pt=patients().rename(columns={"outcome": "Outcome "}))
    problem = only(report)
    assert problem.file == "patients table" and problem.column == "outcome"
    assert "column 'outcome' (the binary outcome) not found" in problem.message
    assert "Did you mean 'Outcome '?" in problem.message
    assert "Available columns: 'patient_id', 'Outcome ', 'age'" in problem.message
    assert "or give the column's name (--outcome / ColumnMap.outcome)." in problem.message


def test_missing_events_columns_are_all_reported():
    report = problems(ev=events().drop(columns=["time", "value"]))
    messages = [p.message for p in report.errors]
    assert len(messages) == 2
    assert messages[0].startswith("column 'time' (the event time) not found")
    assert messages[1].startswith("column 'value' (the measured value) not found")


def test_named_covariate_missing_suggests():
    problem = only(problems(columns=ColumnMap(covariates=("Age",))))
    assert "column 'Age' (a covariate) not found. Did you mean 'age'?" in problem.message
    assert "correct the list of covariates (--covariates / ColumnMap.covariates)" in problem.message


def test_missing_events_column_names_the_flag_and_the_python_field():
    problem = only(problems(ev=events().rename(columns={"variable": "item"})))
    assert "column 'variable' (the variable name) not found" in problem.message
    assert "(--variable-col / ColumnMap.variable)" in problem.message


def test_one_column_named_for_two_event_roles():
    ev = events().rename(columns={"patient_id": "foo"})
    problem = only(problems(ev=ev, pt=patients().rename(columns={"patient_id": "foo"}),
                            columns=ColumnMap(patient_id="foo", variable="foo", value="foo")))
    assert problem.file == "events table" and problem.column == "foo"
    assert problem.message == (
        "column 'foo' is named as the patient identifier and the variable name and the measured value; each "
        "needs a column of its own: choose the right column for each (--id-col / ColumnMap.patient_id, "
        "--variable-col / ColumnMap.variable, --value-col / ColumnMap.value)")


def test_tables_given_as_data_frames_are_named_in_messages():
    with pytest.raises(CohortError) as raised:
        load_cohort(events().drop(columns=["time"]), patients(), names=("bad.csv", "people.csv"))
    assert [p.file for p in raised.value.report.errors] == ["bad.csv"]
    assert "bad.csv, column 'time'" in str(raised.value)


def test_missing_group_column():
    problem = only(problems(columns=ColumnMap(group="race")))
    assert problem.column == "race" and "(the group column) not found" in problem.message


# ------------------------------------------------------------------------------------ files


def test_empty_file(tmp_path):
    (tmp_path / "events.csv").write_text("")
    problem = only(problems(ev=tmp_path / "events.csv"))
    assert problem.file == "events.csv" and "the file is empty" in problem.message


def test_header_without_rows(tmp_path):
    (tmp_path / "events.csv").write_text("patient_id,time,variable,value\n")
    problem = only(problems(ev=tmp_path / "events.csv"))
    assert "header but no data rows" in problem.message


def test_unknown_extension(tmp_path):
    (tmp_path / "events.xlsx").write_bytes(b"PK\x03\x04")
    problem = only(problems(ev=tmp_path / "events.xlsx"))
    assert problem.file == "events.xlsx"
    assert "unknown file type; save the events table as CSV (.csv, .csv.gz) or Parquet" in problem.message


def test_unreadable_file(tmp_path):
    (tmp_path / "events.parquet").write_bytes(b"this is not parquet")
    problem = only(problems(ev=tmp_path / "events.parquet"))
    assert "the file cannot be read as Parquet" in problem.message and "export it again" in problem.message


def test_missing_file(tmp_path):
    problem = only(problems(pt=tmp_path / "nowhere.csv"))
    assert problem.file == "nowhere.csv" and "file not found at" in problem.message


def test_strict_error_message_names_file_and_column(tmp_path):
    with pytest.raises(CohortError, match=r"- patients table, column 'outcome': column 'outcome'"):
        load_cohort(events(), patients().drop(columns="outcome"))


# ------------------------------------------------------------------------------------ outcome


def test_outcome_not_binary_gives_each_value_with_a_row():
    problem = only(problems(pt=patients(outcome=[0, 1, 2])))
    assert problem.column == "outcome"
    assert "the outcome must be binary but has 3 different values" in problem.message
    assert "recode it as 0/1" in problem.message and "(--outcome / ColumnMap.outcome)" in problem.message
    table = pd.DataFrame({"patient_id": list("abcdef"), "outcome": [0, 1, 0, 0, 2, 1]})
    ev = pd.DataFrame({"patient_id": list("abcdef"), "time": 0.0, "variable": "HR", "value": 1.0})
    problem = only(problems(ev=ev, pt=table))
    # rarest value first: the likely typo, with the spreadsheet row where it is
    assert ("has 3 different values: '2' (1 row, e.g. row 6), '1' (2 rows, e.g. row 3), "
            "'0' (3 rows, e.g. row 2)") in problem.message
    assert problem.examples == [6, 3, 2]


def test_outcome_single_class():
    problem = only(problems(pt=patients(outcome=[0, 0, 0])))
    assert "the outcome has the same value '0' for every patient" in problem.message
    assert "with and without the outcome" in problem.message


def test_outcome_single_class_with_a_positive_label_is_one_error():
    problem = only(problems(pt=patients(outcome=["no", "no", "no"]), columns=ColumnMap(positive_label="yes")))
    assert "the outcome has the same value 'no' for every patient" in problem.message


def test_outcome_labels_need_positive_label():
    problem = only(problems(pt=patients(outcome=["died", "home", "home"])))
    assert "cannot tell which outcome value is the event among 'died', 'home'" in problem.message
    assert "(--positive-label / ColumnMap.positive_label)" in problem.message


def test_positive_label_not_found():
    problem = only(problems(pt=patients(outcome=["died", "home", "home"]),
                            columns=ColumnMap(positive_label="dead")))
    assert "positive_label 'dead' is not a value of the outcome column" in problem.message
    assert "give one of them (--positive-label / ColumnMap.positive_label)" in problem.message


def test_missing_outcome_rows():
    problem = only(problems(pt=patients(outcome=[1, None, 0])))
    assert "1 patient without an outcome" in problem.message and problem.examples == [3]


# ------------------------------------------------------------------------------------ ids


def test_duplicate_patient_ids():
    table = pd.concat([patients(), patients().iloc[[1]]], ignore_index=True)
    problem = only(problems(pt=table))
    assert problem.column == "patient_id"
    assert "1 patient id appearing more than once (e.g. 'b')" in problem.message
    assert problem.examples == [3, 5]  # header is row 1


def test_events_for_unknown_patients():
    table = pd.concat([events(), pd.DataFrame({"patient_id": ["x", "y", "x"], "time": [0.0] * 3,
                                               "variable": ["HR"] * 3, "value": [1.0] * 3})], ignore_index=True)
    report = problems(ev=table)
    problem = only(report)
    assert problem.file == "events table"
    assert "3 events of 2 patients not in the patients table (e.g. 'x', 'y')" in problem.message
    assert problem.count == 3 and problem.examples == [7, 8, 9]


def test_unknown_patients_error_names_the_users_id_column():
    ev = events(patient_id=["a", "a", "b", "b", "zz"]).rename(columns={"patient_id": "mrn"})
    pt = patients().rename(columns={"patient_id": "mrn"})
    problem = only(problems(ev=ev, pt=pt, columns=ColumnMap(patient_id="mrn")))
    assert problem.column == "mrn"
    assert problem.describe().startswith("events table, column 'mrn': 1 event of 1 patient not in the patients "
                                         "table (e.g. 'zz')")


def test_patients_without_events_are_kept_with_a_warning():
    report = problems(pt=pd.concat([patients(), pd.DataFrame({"patient_id": ["d"], "outcome": [1], "age": [1]})]))
    problem = only(report, "warning")
    assert "1 patient without events (examples are patient ids): kept" in problem.message
    assert problem.examples == ["d"]
    assert report.errors == []


def test_empty_patient_id_in_events():
    problem = only(problems(ev=events(patient_id=["a", None, "b", "b", "c"])))
    assert "1 row with an empty patient id" in problem.message and problem.examples == [3]


# ------------------------------------------------------------------------------------ values


def test_text_in_a_numeric_variable_names_variable_and_rows():
    problem = only(problems(ev=events(value=["80", "n.d.", "70", "140", "high"])))
    assert problem.column == "value"
    assert "variable 'HR' mixes numbers (2 rows) and text (2 rows, e.g. 'n.d.', 'high')" in problem.message
    assert problem.examples == [3, 6]


def test_text_only_variable_suggests_recoding():
    problem = only(problems(ev=events(variable=["HR", "HR", "HR", "culture", "HR"],
                                      value=["80", "90", "70", "positive", "60"])))
    assert "variable 'culture' has text values (1 row, e.g. 'positive')" in problem.message
    assert "recode them as numbers" in problem.message and problem.examples == [5]


def test_coded_events_with_empty_values_are_fine():
    report = problems(ev=events(variable=["HR", "HR", "HR", "order", "HR"], value=["80", "90", "70", "", "60"]))
    assert report.problems == []


def test_empty_value_in_numeric_variable_warns():
    problem = only(problems(ev=events(value=[80.0, np.nan, 70.0, 140.0, 60.0])), "warning")
    assert "1 row with an empty value in variables that otherwise hold numbers (HR: 1)" in problem.message
    assert problem.examples == [3]


# ------------------------------------------------------------------------------------ times


def test_unparseable_numeric_times():
    problem = only(problems(ev=events(time=["0", "1", "one", "2", "3"])))
    assert problem.column == "time"
    assert "1 time empty or unreadable (e.g. 'one'): write every time as hours" in problem.message
    assert problem.examples == [4]


def test_unparseable_timestamps():
    stamps = ["2024-01-01 10:00", "2024-01-01 11:00", "yesterday", "2024-01-01 12:00", "2024-01-01 13:00"]
    problem = only(problems(ev=events(time=stamps)))
    assert "unreadable (e.g. 'yesterday')" in problem.message and "2024-03-01 14:30" in problem.message
    assert problem.examples == [4]


def test_unparseable_index_time():
    problem = only(problems(pt=patients(t0=["2024-01-01", "soon", "2024-01-02"]),
                            ev=events(time=["2024-01-01 10:00"] * 5), columns=ColumnMap(index_time="t0")))
    assert problem.column == "t0" and "1 index time not readable as dates (e.g. 'soon')" in problem.message


def test_negative_and_infinite_times_warn():
    problem = only(problems(ev=events(time=[-1.0, 1.0, np.inf, 2.0, 1.0])), "warning")
    assert "2 events with a negative or infinite time" in problem.message
    assert problem.examples == [2, 4]


def test_events_after_the_window_warn():
    report = ValidationReport()
    check_time_window(events(time=[0.0, 47.9, 48.0, 60.0, 1.0]), 48, report, "events.csv")
    problem = only(report, "warning")
    assert problem.count == 2 and "2 events at or after 48 hours" in problem.message
    assert "(a longer window, --window-hours / PreprocessConfig.window_hours, keeps them)" in problem.message


# ------------------------------------------------------------------------------------ covariates


def test_identifier_like_covariate_warns():
    n = 30
    table = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "outcome": [i % 2 for i in range(n)],
                          "mrn": [f"M{i}" for i in range(n)]})
    ev = pd.DataFrame({"patient_id": table["patient_id"], "time": 0.0, "variable": "HR", "value": 1.0})
    problem = only(problems(ev=ev, pt=table), "warning")
    assert "covariate 'mrn' has 30 different values for 30 patients" in problem.message
    assert "Leave it out of the covariates (--covariates / ColumnMap.covariates)" in problem.message


def test_text_in_a_numeric_covariate_names_rows_and_values():
    n = 10
    table = pd.DataFrame({"patient_id": [f"p{i}" for i in range(n)], "outcome": [i % 2 for i in range(n)],
                          "age": [str(50 + i) for i in range(n)]})
    table.loc[3, "age"], table.loc[7, "age"], table.loc[5, "age"] = "unknown", "n/a ", ""  # "" is missing: fine
    ev = pd.DataFrame({"patient_id": table["patient_id"], "time": 0.0, "variable": "HR", "value": 1.0})
    report = problems(ev=ev, pt=table)
    problem = only(report)
    assert problem.file == "patients table" and problem.column == "age"
    assert ("covariate 'age' mixes numbers (7 rows) and text (2 rows: row 5 'unknown', row 9 'n/a'); a numeric "
            "covariate's values must all be numbers") in problem.message
    assert problem.examples == [5, 9] and problem.count == 2
    cohort = load_cohort(ev, table, strict=False)
    assert cohort.patients["age"].dtype == np.float64  # not 8 categories: the text cells read as missing
    assert cohort.patients["age"].isna().sum() == 3
    with pytest.raises(CohortError, match="covariate 'age' mixes numbers"):
        load_cohort(ev, table)


def test_mostly_text_covariate_stays_categorical():
    report = problems(pt=patients(ward=["1", "ICU", "surgery"]))
    assert report.problems == []


def test_empty_cells_in_a_numeric_covariate_are_missing_not_text(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("patient_id,outcome,age\na,1,70\nb,0,\nc,0,NA\n")
    cohort = load_cohort(events(), path)
    assert cohort.report.problems == [] and cohort.patients["age"].isna().sum() == 2


@pytest.mark.parametrize("columns, column, role", [
    (ColumnMap(covariates=("age", "outcome")), "outcome", "the binary outcome (--outcome / ColumnMap.outcome)"),
    (ColumnMap(covariates=("age", "patient_id")), "patient_id",
     "the patient identifier (--id-col / ColumnMap.patient_id)"),
    (ColumnMap(covariates=("age", "t0"), index_time="t0"), "t0",
     "each patient's index time (--index-time-col / ColumnMap.index_time)"),
])
def test_outcome_id_and_index_time_cannot_be_covariates(columns, column, role):
    report = problems(pt=patients(t0=["2024-01-01"] * 3), columns=columns)
    problem = [p for p in report.errors if p.column == column][0]
    assert problem.message.startswith(f"column '{column}' is {role} and cannot also be a covariate")
    assert f"Remove '{column}' from the covariates (--covariates / ColumnMap.covariates)" in problem.message
    with pytest.raises(CohortError, match=f"column '{column}' is .* cannot also be a covariate"):
        load_cohort(events(), patients(t0=["2024-01-01"] * 3), columns)


def test_outcome_cannot_be_the_group():
    problem = only(problems(columns=ColumnMap(group="outcome")))
    assert problem.column == "outcome"
    assert problem.message.startswith("column 'outcome' is the binary outcome (--outcome / ColumnMap.outcome) and "
                                      "cannot also be the group")
    assert "Choose another group column (--group / ColumnMap.group)" in problem.message


# ------------------------------------------------------------------------------------ split


def test_split_feasible_accepts_a_normal_cohort():
    check_split_feasible(600, 100, 4, (4, 1, 1))


def test_split_needs_two_of_each_class_per_split():
    with pytest.raises(ConfigError, match="10 patients with the outcome: a stratified 4:1:1 split needs at least 12"):
        check_split_feasible(600, 10, 2)
    with pytest.raises(ConfigError, match="5 patients without the outcome"):
        check_split_feasible(100, 95, 2)


def test_split_needs_five_training_patients_per_cluster():
    with pytest.raises(ConfigError, match="training split would hold 40 of 60 patients, but K=10 clusters need"):
        check_split_feasible(60, 30, 10)


def test_split_ratios_must_be_positive():
    with pytest.raises(ConfigError, match="three positive numbers"):
        check_split_feasible(600, 100, 2, (4, 0, 1))
