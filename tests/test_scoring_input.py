"""Patients to be scored: no outcome yet, maybe no patients table; and events after the window."""
import json

import numpy as np
import pandas as pd
import pytest

from dice_core.cli import main
from dice_core.config import ColumnMap, PreprocessConfig
from dice_core.data import load_cohort, load_events_for_scoring, window_report
from dice_core.data.synthetic import make_synthetic_cohort, write_cohort
from dice_core.errors import CohortError, ConfigError
from dice_core.modelfile import load_model
from dice_core.preprocess import Preprocessor
from dice_core.scoring import score_patients

TINY = ["--K", "2", "--d", "4", "--n-iter", "2", "--batch-size", "64", "--window-hours", "12", "--device", "cpu"]


def events():
    return pd.DataFrame({"patient_id": ["a", "a", "b", "c"], "time": [0.0, 1.0, 0.5, 2.0],
                         "variable": ["HR", "HR", "HR", "Na"], "value": [80.0, 90.0, 70.0, 140.0]})


def patients(**changes):
    table = pd.DataFrame({"patient_id": ["a", "b", "c"], "outcome": [1, 0, 0], "age": [70.0, 50.0, 60.0],
                          "sex": ["F", "M", "M"]})
    return table.assign(**changes)


def only(report, severity):
    found = [p for p in report.problems if p.severity == severity]
    assert len(found) == 1, [p.message for p in report.problems]
    return found[0]


# -------------------------------------------------------------------------- outcome optional


def test_outcome_column_may_be_absent_when_not_required():
    cohort = load_cohort(events(), patients().drop(columns="outcome"), require_outcome=False)
    assert cohort.patients.index.tolist() == ["a", "b", "c"]
    assert cohort.patients["outcome"].isna().all() and np.isnan(cohort.y).all()
    assert cohort.covariates == ["age", "sex"] and cohort.report.problems == []
    assert cohort.summary()["patients"] == 3
    with pytest.raises(CohortError, match="column 'outcome' .*not found"):
        load_cohort(events(), patients().drop(columns="outcome"))  # training still needs it


def test_outcome_present_is_still_checked_when_not_required():
    with pytest.raises(CohortError, match="outcome must be binary but has 3 different values"):
        load_cohort(events(), patients(outcome=[0, 1, 2]), require_outcome=False)
    with pytest.raises(CohortError, match="positive_label 'died' is not a value"):
        load_cohort(events(), patients(outcome=["yes", "no", "no"]), ColumnMap(positive_label="died"),
                    require_outcome=False)


def test_incomplete_outcome_is_a_warning_for_scoring_and_an_error_for_training():
    table = patients(outcome=[1.0, np.nan, 0.0])
    cohort = load_cohort(events(), table, require_outcome=False)
    problem = only(cohort.report, "warning")
    assert problem.column == "outcome" and problem.examples == [3]
    assert problem.message.startswith("1 patient without an outcome: scored")
    assert cohort.patients["outcome"].tolist()[::2] == [1.0, 0.0] and np.isnan(cohort.patients["outcome"].iloc[1])
    with pytest.raises(CohortError, match="1 patient without an outcome: fill in"):
        load_cohort(events(), table)


@pytest.mark.parametrize("labels, positive_label, expected", [
    (["yes"] * 3, None, [1, 1, 1]),  # a positive word: every patient had the event
    (["no"] * 3, None, [0, 0, 0]),
    ([0, 0, 0], None, [0, 0, 0]),
    (["alive"] * 3, "died", [0, 0, 0]),  # the positive label need not occur among new patients
])
def test_one_outcome_class_is_enough_for_scoring(labels, positive_label, expected):
    cohort = load_cohort(events(), patients(outcome=labels), ColumnMap(positive_label=positive_label),
                         require_outcome=False)
    assert cohort.patients["outcome"].tolist() == expected and cohort.report.errors == []


def test_one_unknown_outcome_label_needs_the_positive_label():
    with pytest.raises(CohortError, match=r"cannot tell whether the outcome value 'died' is the event; give the "
                                          r"value .* \(--positive-label / ColumnMap.positive_label\)"):
        load_cohort(events(), patients(outcome=["died"] * 3), require_outcome=False)


# ----------------------------------------------------------------------- scoring helper


def test_scoring_without_patients_table_takes_ids_from_events_and_warns():
    cohort = load_events_for_scoring(events(), None, ColumnMap(group="race"), model_covariates=["age", "sex"])
    assert cohort.patients.index.tolist() == ["a", "b", "c"]
    assert cohort.covariates == ["age", "sex"] and cohort.group is None
    assert cohort.patients[["age", "sex", "outcome"]].isna().all().all()
    problem = only(cohort.report, "warning")
    assert problem.file == "no patients table" and problem.examples == ["age", "sex"]
    assert problem.message.startswith("2 of 2 covariates without a value ('age', 'sex'): the model reads a "
                                      "missing number as the training mean")
    assert cohort.source == "events table + no patients table"


def test_scoring_one_patient_with_form_values():
    one = events()[events()["patient_id"] == "a"]
    cohort = load_events_for_scoring(one, {"age": "71", "sex": "", "unused": 3}, model_covariates=["age", "sex"])
    assert cohort.patients.index.tolist() == ["a"] and len(cohort.events) == 2
    assert cohort.patients.loc["a", "age"] == 71.0 and pd.isna(cohort.patients.loc["a", "sex"])
    problem = only(cohort.report, "warning")
    assert problem.file == "covariate values" and problem.message.startswith("1 of 2 covariates without a value ('sex')")


def test_scoring_with_patients_table_needs_the_model_covariates():
    cohort = load_events_for_scoring(events(), patients().drop(columns="outcome"), model_covariates=["age"])
    assert cohort.covariates == ["age"] and "sex" not in cohort.patients and cohort.report.problems == []
    with pytest.raises(CohortError, match="column 'weight' .*not found"):
        load_events_for_scoring(events(), patients(), model_covariates=["age", "weight"])


def test_scoring_events_without_id_column_is_a_clear_error():
    with pytest.raises(CohortError, match="column 'patient_id' .*not found"):
        load_events_for_scoring(events().rename(columns={"patient_id": "pid"}), None, model_covariates=["age"])


# --------------------------------------------------------------- preprocessing without y


@pytest.fixture(scope="module")
def small():
    cohort, _ = make_synthetic_cohort(n_patients=60, n_subgroups=2, n_steps=6, n_variables=3, seed=2)
    cohort.patients.loc[cohort.patients.index[0], "age"] = np.nan  # age gets a missing indicator
    pre = Preprocessor(PreprocessConfig(window_hours=6, bin_hours=1)).fit(cohort, cohort.patients.index)
    return cohort, pre


def test_transform_without_outcome_gives_y_none_and_training_mean_covariates(small):
    cohort, pre = small
    one = cohort.events[cohort.events["patient_id"] == cohort.patients.index[1]]
    new = load_events_for_scoring(one, None, model_covariates=[c["name"] for c in pre.covariates_])
    data = pre.transform(new)
    assert data.y is None and data.patient_ids.tolist() == [cohort.patients.index[1]]
    by_name = dict(zip(data.covariate_names, data.V[0]))
    # numeric: standardised 0 = the training mean, plus its missing indicator; categories: the reference level
    assert by_name == {"age": 0.0, "age_missing": 1.0, "sex=female": 0.0}
    known = pre.transform(cohort.subset(cohort.patients.index[1:2]))
    np.testing.assert_array_equal(data.X, known.X)  # the same events give the same sequence


def test_unseen_covariate_level_of_a_new_patient_is_listed(small):
    cohort, pre = small
    pid = cohort.patients.index[1]
    one = cohort.events[cohort.events["patient_id"] == pid]
    covariates = [c["name"] for c in pre.covariates_]
    new = load_events_for_scoring(one, {"age": 60, "sex": "X"}, model_covariates=covariates)
    found = pre.unseen_levels(new)
    assert found.to_dict("records") == [{"patient_id": pid, "covariate": "sex", "value": "X"}]
    known = load_events_for_scoring(one, {"age": 60, "sex": "male"}, model_covariates=covariates)
    assert pre.unseen_levels(known).empty


def test_transform_keeps_a_partial_outcome_with_nan(small):
    cohort, pre = small
    subset = cohort.subset(cohort.patients.index[:3])
    subset.patients = subset.patients.assign(outcome=[1.0, np.nan, 0.0])
    y = pre.transform(subset).y
    assert y.dtype == np.float32 and y[0] == 1.0 and np.isnan(y[1]) and y[2] == 0.0


# ----------------------------------------------------------------------- window report


def test_window_report_counts_late_events_and_emptied_patients():
    ev = events().assign(time=[0.0, 50.0, 48.0, 60.0])  # a: one late event; b and c: only late events
    cohort = load_cohort(ev, patients())
    report = window_report(cohort, 48)
    late, emptied = report.warnings
    assert late.count == 3 and late.file == "events table"
    assert late.message.startswith("3 events at or after 48 hours: outside the observation window")
    assert emptied.count == 2 and emptied.examples == ["b", "c"]
    assert emptied.message.startswith("2 patients with events but none within the first 48 hours")
    assert cohort.report.problems == []  # the cohort's own report is left alone
    assert window_report(cohort, 61).problems == []


@pytest.mark.parametrize("window", [0, -1, float("nan")])
def test_window_report_needs_a_positive_window(window):
    with pytest.raises(ConfigError, match="must be a positive number of hours"):
        window_report(load_cohort(events(), patients()), window)


# --------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on a synthetic file set, and that file set."""
    folder = tmp_path_factory.mktemp("scoring")
    cohort, _ = make_synthetic_cohort(n_patients=120, n_subgroups=2, n_steps=12, n_variables=3, seed=1)
    write_cohort(cohort, folder / "events.csv", folder / "patients.csv")
    assert main(["train", "--events", str(folder / "events.csv"), "--patients", str(folder / "patients.csv"),
                 *TINY, "--out", str(folder / "model")]) == 0
    return folder


def score(folder, out, *files):
    return main(["score", "--model", str(folder / "model"), *files, "--out", str(out)])


def test_cli_scores_new_patients_without_outcome_column(trained, tmp_path, capsys):
    new = tmp_path / "new_patients.csv"
    pd.read_csv(trained / "patients.csv").drop(columns="outcome").to_csv(new, index=False)
    events = ["--events", str(trained / "events.csv")]
    assert score(trained, tmp_path / "with.csv", *events, "--patients", str(trained / "patients.csv")) == 0
    assert score(trained, tmp_path / "without.csv", *events, "--patients", str(new)) == 0
    assert "scored 120 patients" in capsys.readouterr().out
    with_outcome, without = pd.read_csv(tmp_path / "with.csv"), pd.read_csv(tmp_path / "without.csv")
    assert len(without) == 120
    pd.testing.assert_frame_equal(with_outcome, without)  # the outcome plays no part in a score


def test_cli_scores_without_patients_table_as_blank_covariates(trained, tmp_path, capsys):
    blank = tmp_path / "blank.csv"
    pd.read_csv(trained / "patients.csv")[["patient_id"]].assign(age="", sex="", race="").to_csv(blank, index=False)
    events = ["--events", str(trained / "events.csv")]
    assert score(trained, tmp_path / "no_table.csv", *events) == 0
    err = capsys.readouterr().err
    assert "warning: no patients table: 3 of 3 covariates without a value ('age', 'sex', 'race')" in err
    assert score(trained, tmp_path / "blank_scores.csv", *events, "--patients", str(blank)) == 0
    no_table, blank_scores = pd.read_csv(tmp_path / "no_table.csv"), pd.read_csv(tmp_path / "blank_scores.csv")
    assert len(no_table) == 120
    pd.testing.assert_frame_equal(no_table, blank_scores)
    assert score(trained, tmp_path / "full.csv", *events, "--patients", str(trained / "patients.csv")) == 0
    full = pd.read_csv(tmp_path / "full.csv")
    assert not np.allclose(full["probability"], no_table["probability"])  # covariates do inform the head


def test_api_scores_one_patient_from_form_values(trained):
    model = load_model(trained / "model")
    events = pd.read_csv(trained / "events.csv", dtype={"patient_id": str})
    table = pd.read_csv(trained / "patients.csv", dtype={"patient_id": str}).set_index("patient_id")
    pid = table.index[0]
    covariates = [c["name"] for c in model.preprocessor_.covariates_]
    form = {name: table.loc[pid, name] for name in covariates}
    one = load_events_for_scoring(events[events["patient_id"] == pid], form, model_covariates=covariates)
    assert one.report.problems == [] and model.prepare(one).y is None
    scores = score_patients(model, one)
    full = score_patients(model, load_cohort(events, table.reset_index()))
    pd.testing.assert_frame_equal(scores, full[full["patient_id"] == pid].reset_index(drop=True))
    assert model.input_warnings(one).empty  # a training patient: known variables, values in range
    odd = one.events.assign(value=one.events["value"].where(one.events.index != 0, 1e6))
    one.events = pd.concat([odd, odd.iloc[:1].assign(variable="Lactate")], ignore_index=True)
    warnings = model.input_warnings(one)
    assert warnings["problem"].tolist() == ["variable not seen in training; ignored", "value outside the training range"]
    assert warnings["variable"].tolist() == ["Lactate", one.events.loc[0, "variable"]]


def test_cli_refuses_the_outcome_as_a_covariate_or_the_group(trained, capsys):
    files = ["--events", str(trained / "events.csv"), "--patients", str(trained / "patients.csv")]
    assert main(["validate", *files, "--covariates", "age,outcome"]) == 1
    captured = capsys.readouterr()
    assert ("column 'outcome' is the binary outcome (--outcome / ColumnMap.outcome) and cannot also be a "
            "covariate") in captured.err
    assert main(["train", *files, "--group", "outcome", *TINY, "--out", str(trained / "never")]) == 2
    assert "column 'outcome' is the binary outcome (--outcome / ColumnMap.outcome) and cannot also be the group" in (
        capsys.readouterr().err)
    assert not (trained / "never" / "model.json").exists()


def test_cli_score_needs_events(trained, capsys):
    assert main(["score", "--model", str(trained / "model"), "--patients", str(trained / "patients.csv")]) == 2
    assert "give the patients to score: --events FILE" in capsys.readouterr().err


def test_cli_validate_reports_events_after_the_window(trained, capsys):
    files = ["--events", str(trained / "events.csv"), "--patients", str(trained / "patients.csv")]
    late = int((pd.read_csv(trained / "events.csv")["time"] >= 6).sum())
    assert late > 0
    assert main(["validate", *files, "--window-hours", "6"]) == 0
    out = capsys.readouterr().out
    assert f"{late} events at or after 6 hours" in out
    assert json.loads(out.split("\n}")[0] + "\n}")["patients"] == 120
    assert main(["validate", *files]) == 0
    assert "at or after" not in capsys.readouterr().out
