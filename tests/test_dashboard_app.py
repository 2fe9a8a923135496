"""Every page of the dashboard through streamlit's AppTest: the demo cohort, uploads (good and
bad), training a tiny model in the background process, the results, scoring a patient, saving
and reloading a model. The real UMAP step of the worker is covered by test_browser_e2e.py; here
the map file is written from a cheap projection so the page logic is tested in seconds."""
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import jobs, store
from dice_core.viz.embedding import save_map

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "dashboard" / "app.py")
DEMO = ROOT / "assets" / "demo"
TRAIN_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """Runs and models folders of this module (the worker process inherits the environment)."""
    root = tmp_path_factory.mktemp("studio")
    saved = {k: os.environ.get(k) for k in ("DICE_RUNS_DIR", "DICE_MODELS_DIR")}
    os.environ["DICE_RUNS_DIR"], os.environ["DICE_MODELS_DIR"] = str(root / "runs"), str(root / "models")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def upload_tables(events: pd.DataFrame, patients: pd.DataFrame, names=("ev.csv", "pa.csv")) -> AppTest:
    """The Cohort page with both tables uploaded as CSV files called `names` (not loaded yet)."""
    at = open_page()
    at.radio(key="cohort_source").set_value("Upload my tables (CSV or Parquet)").run()
    at.file_uploader(key="events_upload").upload(names[0], events.to_csv(index=False).encode(), "text/csv")
    at.file_uploader(key="patients_upload").upload(names[1], patients.to_csv(index=False).encode(), "text/csv")
    at.run()
    return at


def problems(at: AppTest) -> list:
    """Tracebacks and error boxes on the page (a page that works shows neither)."""
    return [e.value for e in at.exception] + [e.value for e in at.error]


def by_label(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def figure_specs(at: AppTest) -> list[str]:
    return [chart.proto.spec for chart in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def trained(studio):
    """Train a tiny model from the Train page (K=2, d=4, 2 iterations, baselines, no UMAP)."""
    at = open_page("train")
    at.multiselect(key="t_K0").set_value([2])
    at.text_input(key="t_d0").set_value("4")
    at.number_input(key="t_iter0").set_value(2)
    by_label(at.checkbox, "Prepare the patient maps afterwards (UMAP)").uncheck()
    by_label(at.button, "Start training").click()
    at.run()
    assert not problems(at)
    job = jobs.list_jobs()[0]
    deadline = time.time() + TRAIN_TIMEOUT_S
    while job.active and time.time() < deadline:
        time.sleep(1)
    assert job.state == "finished", (job.status(), job.log_file.read_text()[-2000:])
    at.run()
    # stand-in for the worker's UMAP step (two principal axes of the representation)
    folder = store.analysis_dir(job.folder, "model")
    Z = store.read_representation(folder)
    scores = store.read_scores(folder)
    centred = Z - Z.mean(0)
    xy = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    save_map(pd.DataFrame({"patient_id": scores["patient_id"], "x": xy[:, 0], "y": xy[:, 1],
                           "split": scores["split"]}), folder / "map.csv")
    return at, job


# -- cohort ----------------------------------------------------------------------------------------
def test_app_opens_on_the_synthetic_demo_cohort(studio):
    at = open_page()
    assert not problems(at)
    assert at.title[0].value == "Cohort"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Patients"] == "600" and metrics["Variables"] == "7"
    assert "synthetic" in at.sidebar.markdown[0].value.lower()
    assert any("no problem found" in s.value for s in at.success)
    assert any("Every event falls within the first 24 hours" in s.value for s in at.success)  # demo: 24 h


def test_uploaded_tables_are_mapped_from_their_column_names(studio):
    events = pd.read_csv(DEMO / "events.csv.gz").rename(
        columns={"patient_id": "subject_id", "time": "hours", "variable": "item", "value": "result"})
    patients = pd.read_csv(DEMO / "patients.csv").rename(columns={"patient_id": "subject_id", "outcome": "died"})
    patients["died"] = patients["died"].map({1: "yes", 0: "no"})
    at = upload_tables(events, patients, ("events.csv", "patients.csv"))
    assert at.selectbox(key="map_e_time").value == "hours"
    assert at.selectbox(key="map_e_var").value == "item"
    assert at.selectbox(key="map_outcome").value == "died"
    assert at.selectbox(key="map_positive").value == "yes"
    assert at.selectbox(key="map_group").value == "race"
    assert at.multiselect(key="map_cov").value == ["age", "sex"]
    at.button(key="load_tables").click().run()
    assert not problems(at)
    assert any("Loaded events.csv + patients.csv" in s.value for s in at.success)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Patients"] == "600" and metrics["Outcome rate"] == "35.8%"


def test_a_bad_upload_shows_what_to_fix_and_keeps_the_previous_cohort(studio):
    events = pd.DataFrame({"patient_id": ["a", "a", "b"], "time": [0, "soon", 1], "variable": ["HR"] * 3,
                           "value": [80, 90, 85]})
    patients = pd.DataFrame({"patient_id": ["a", "b"], "outcome": [0, 0]})
    at = upload_tables(events, patients)
    at.button(key="load_tables").click().run()
    assert not at.exception
    assert any("cannot be used yet" in e.value for e in at.error)
    report = table_with(at, "Problem")
    assert report["Severity"].eq("error").any()
    assert report["Problem"].str.contains("same value").any()
    assert set(report["File"]) <= {"ev.csv", "pa.csv"}  # the uploaded files' own names
    # each error in full, with its fix, above the table (a table cell cuts long text)
    errors = next(e.value for e in at.error if e.value.startswith("Validation found"))
    for problem in report[report["Severity"] == "error"]["Problem"]:
        assert problem in errors
    assert {m.label: m.value for m in at.metric}["Patients"] == "600"  # still the demo cohort


def test_a_refused_load_beside_a_cohort_with_warnings_shows_both_reports(studio):
    """The cohort in use has warnings (a patient without events) and the next load is refused: both
    report tables are drawn, each with its own download."""
    events = pd.DataFrame({"patient_id": ["a", "a", "b"], "time": [0, 1, 0], "variable": "HR", "value": [80, 82, 90]})
    patients = pd.DataFrame({"patient_id": ["a", "b", "c"], "outcome": [1, 0, 0]})
    at = upload_tables(events, patients)
    at.button(key="load_tables").click().run()
    assert {m.label: m.value for m in at.metric}["Patients"] == "3"
    bad = events.assign(time=["soon", 1, 0])
    at.file_uploader(key="events_upload").upload("bad.csv", bad.to_csv(index=False).encode(), "text/csv")
    at.run()
    at.button(key="load_tables").click().run()
    assert not at.exception
    reports = [d.value for d in at.dataframe if "Problem" in d.value.columns]
    refused = reports[0]
    assert len(reports) == 2 and set(refused.loc[refused["Severity"] == "error", "File"]) == {"bad.csv"}
    assert reports[1]["Severity"].eq("warning").all()
    assert {m.label: m.value for m in at.metric}["Patients"] == "3"  # the cohort in use is kept


def test_one_column_chosen_for_two_roles_is_an_error(studio):
    events = pd.DataFrame({"foo": ["a", "b", "c"], "bar": [0, 1, 2]})
    patients = pd.DataFrame({"patient_id": ["a", "b", "c"], "outcome": [1, 0, 0]})
    at = upload_tables(events, patients, ("bad2.csv", "pa.csv"))
    at.selectbox(key="map_e_id").set_value("foo")
    at.selectbox(key="map_e_var").set_value("foo")
    at.selectbox(key="map_e_time").set_value("bar")
    at.selectbox(key="map_e_val").set_value("bar")
    at.run()
    at.button(key="load_tables").click().run()
    assert not at.exception
    report = table_with(at, "Problem")
    assert report["File"].tolist() == ["bad2.csv", "bad2.csv"]
    assert report["Problem"].str.startswith("column 'foo' is named as the patient identifier and the variable "
                                            "name; each needs a column of its own").any()
    assert report["Problem"].str.startswith("column 'bar' is named as the event time and the measured value").any()


def test_a_loaded_cohort_is_found_again_after_a_browser_refresh(studio):
    events = pd.DataFrame({"patient_id": list("aabbcd"), "time": [0, 1, 0, 2, 1, 3], "variable": "HR",
                           "value": [80, 82, 90, 95, 70, 75]})
    patients = pd.DataFrame({"patient_id": list("abcd"), "outcome": [1, 0, 0, 1]})
    at = upload_tables(events, patients, ("ev4.csv", "pa4.csv"))
    at.button(key="load_tables").click().run()
    assert {m.label: m.value for m in at.metric}["Patients"] == "4"
    saved_id = at.query_params["cohort"]
    saved_id = saved_id[0] if isinstance(saved_id, list) else saved_id
    refreshed = AppTest.from_file(APP, default_timeout=120)  # a new browser session with the same URL
    refreshed.query_params["cohort"] = saved_id
    refreshed.run()
    assert not problems(refreshed)
    assert {m.label: m.value for m in refreshed.metric}["Patients"] == "4"
    assert "ev4.csv + pa4.csv" in refreshed.sidebar.markdown[0].value
    assert refreshed.radio(key="cohort_source").value == "Upload my tables (CSV or Parquet)"  # where it came from
    fresh = open_page()  # without it: the demo
    assert {m.label: m.value for m in fresh.metric}["Patients"] == "600"


def test_events_after_the_training_window_are_reported_on_the_cohort_page(studio):
    """Times up to 100 h: the Train page's default window is 48 h; what falls after it is listed."""
    times = {"a": [1, 5, 60], "b": [2, 30, 100], "c": [0.5, 47], "d": [70, 80]}
    events = pd.DataFrame([{"patient_id": p, "time": t, "variable": "HR", "value": 80 + t}
                           for p, ts in times.items() for t in ts])
    patients = pd.DataFrame({"patient_id": list(times), "outcome": [1, 0, 0, 1]})
    at = upload_tables(events, patients)
    at.button(key="load_tables").click().run()
    assert not problems(at)
    assert any(h.value == "Time window: first 48 h" for h in at.subheader)
    window = table_with(at, "Examples (patient ids)")
    assert window["Problem"].str.startswith("4 events at or after 48 hours").any()
    empty = window[window["Problem"].str.contains("none within the first 48 hours")]
    assert empty["Count"].tolist() == [1] and empty["Examples (patient ids)"].tolist() == ["d"]


def test_an_outcome_that_cannot_be_read_is_reported_in_the_pages_words(studio):
    """No cohort can be built (three outcome values): the report table explains it with the page's
    own choice names, and the page goes on showing the previous cohort."""
    events = pd.DataFrame({"patient_id": ["a", "b", "c"], "time": [0, 1, 2], "variable": "HR", "value": 80})
    patients = pd.DataFrame({"patient_id": ["a", "b", "c"], "died": ["yes", "maybe", "no"]})
    at = upload_tables(events, patients)
    at.button(key="load_tables").click().run()
    assert not at.exception
    assert any("previous cohort is still selected" in e.value for e in at.error)
    problem = table_with(at, "Problem")["Problem"].str.cat(sep=" ")
    assert "choose another column (the 'Outcome' choice)" in problem and "ColumnMap" not in problem
    assert {m.label: m.value for m in at.metric}["Patients"] == "600"


def test_an_unreadable_file_is_reported_not_raised(studio):
    at = open_page()
    at.radio(key="cohort_source").set_value("Upload my tables (CSV or Parquet)").run()
    at.file_uploader(key="events_upload").upload("ev.parquet", b"this is not parquet", "application/octet-stream")
    at.file_uploader(key="patients_upload").upload("pa.csv", b"patient_id,outcome\na,1\nb,0\n", "text/csv")
    at.run()
    assert not at.exception
    assert any("cannot be read as Parquet" in e.value for e in at.error)


# -- training ---------------------------------------------------------------------------------------
def test_training_runs_in_the_background_and_fills_the_leaderboard(trained):
    at, job = trained
    assert not problems(at)
    board = table_with(at, "validation AUC")
    assert board[["K", "d"]].values.tolist() == [[2, 4]]
    assert board["all clusters differ"].iloc[0] in ("yes", "no") and board["selected"].iloc[0] == "✔"
    assert any("Training finished" in s.value for s in at.success)
    assert (job.folder / "status.json").is_file() and (job.search_dir / "records.jsonl").is_file()


def test_a_new_session_or_a_refresh_finds_the_run_again(trained):
    _, job = trained
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["job"] = job.id
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert at.selectbox(key="train_job").value == job.id
    assert table_with(at, "validation AUC")["d"].tolist() == [4]


def test_bad_settings_show_a_message_not_a_traceback(studio):
    at = open_page("train")
    at.text_input(key="t_d0").set_value("eight")
    by_label(at.button, "Start training").click()
    at.run()
    assert not at.exception
    assert any("must be whole numbers" in e.value for e in at.error)


# -- results ----------------------------------------------------------------------------------------
def test_results_show_every_figure_and_table(trained):
    _, job = trained
    at = open_page("results")
    assert not problems(at)
    assert [t.label for t in at.tabs] == ["Search", "Patient map", "Significance", "Risk levels",
                                          "Cluster profiles", "DICE vs baselines", "Fairness & calibration"]
    specs = figure_specs(at)
    for title in ("Architecture search", "Patients by risk level", "Pairwise likelihood-ratio tests",
                  "Outcome rate per risk level", "Odds ratio of the outcome", "Mean over the training patients",
                  "by risk level", "AUC per race", "Calibration on the test patients"):
        assert any(title in spec for spec in specs), title
    risk = table_with(at, "Odds ratio (95% CI)")
    assert risk["Risk level"].tolist() == ["Risk level 1 (highest)", "Risk level 2 (lowest)"]
    rates = risk["Outcome rate (95% CI)"].str.extract(r"^([\d.]+)% \(([\d.]+)% to ([\d.]+)%\)$").astype(float)
    assert rates[0].iloc[0] >= rates[0].iloc[1] and (rates[1] <= rates[0]).all() and (rates[0] <= rates[2]).all()
    assert risk["Odds ratio (95% CI)"].iloc[1] == "1 (reference)"
    assert risk["p vs the lowest-risk level"].iloc[0] == "< 0.001" or float(risk["p vs the lowest-risk level"].iloc[0]) > 0
    assert table_with(at, "Silhouette")["Representation"].tolist() == ["DICE", "PCA", "AE", "AE + classification"]
    fairness = table_with(at, "AUC: Risk level (cluster membership)")
    assert set(fairness["race"]) <= {"White", "Black", "Hispanic", "Asian"}
    assert any("fewer than 30 test patients" in w.value for w in at.warning)  # small groups are flagged
    assert len(at.get("download_button")) >= 8  # CSV of every table + the HTML report
    assert any("adjusted for age, sex" in c.value for c in at.caption)  # the exact test's own covariates


def test_results_controls_holm_threshold_and_baseline_maps(trained):
    _, job = trained
    at = open_page("results")
    at.toggle(key="holm").set_value(True).run()
    assert any("Holm-corrected p-values" in spec for spec in figure_specs(at))
    at.radio(key="threshold_mode").set_value("the same threshold for all").run()
    at.slider(key="threshold").set_value(0.0).run()
    table2 = table_with(at, "Sensitivity (TPR)")
    assert (table2["Threshold"] == 0.0).all() and (table2["Sensitivity (TPR)"] == 1.0).all()
    at.checkbox(key="map_baselines").check().run()
    assert not problems(at)


def test_the_html_report_is_one_offline_file(trained):
    from dashboard.runview import RunView, build_report

    _, job = trained
    html = build_report(RunView(job)).decode()
    for heading in ("Architecture search", "Patient map", "Significance", "Risk levels", "Cluster profiles",
                    "DICE against the baselines"):
        assert f"<h2>{heading}" in html
    assert "<script src=" not in html


# -- patient ----------------------------------------------------------------------------------------
def test_patient_page_scores_a_cohort_patient(trained):
    at = open_page("patient")
    assert not problems(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Risk level (1 = highest risk)"] in ("1 of 2", "2 of 2")
    assert metrics["Predicted probability of the outcome"].endswith("%")
    assert any("belongs to **risk level" in m.value or "Most likely **risk level" in m.value
               or "Borderline" in m.value for m in at.markdown)
    assert any("This patient among the training patients" in s for s in figure_specs(at))
    assert any("This patient (black)" in s for s in figure_specs(at))


def test_patient_page_warns_about_inputs_the_model_did_not_see(trained):
    events = "time,variable,value\n0.5,HR,85\n1.5,HR,900\n2,Unknown_lab,3\n"
    at = open_page("patient")
    at.radio(key="patient_source").set_value("Upload one patient's events").run()
    at.file_uploader(key="patient_upload").upload("one.csv", events.encode(), "text/csv")
    at.run()
    assert not problems(at)
    notes = next(w.value for w in at.warning if "About this patient's data" in w.value)
    assert "Variable not seen in training; ignored: Unknown_lab." in notes
    assert "Value outside the training range: HR = 900 at 1.5 h (training " in notes
    warnings = table_with(at, "problem")
    assert "Unknown_lab" in warnings["variable"].tolist()
    assert (warnings["value"] == 900).any()
    assert "Risk level (1 = highest risk)" in [m.label for m in at.metric]


def test_patient_page_scores_typed_values(trained):
    at = open_page("patient")
    at.radio(key="patient_source").set_value("Type a few values").run()
    at.button(key="score_typed").click().run()
    assert not problems(at)
    assert "Predicted probability of the outcome" in [m.label for m in at.metric]
    # covariates left empty: scored, with a note saying what the model used instead
    assert any("2 of 2 covariates without a value" in w.value for w in at.warning)
    notes = table_with(at, "What happened")
    assert notes["Problem"].str.startswith("2 of 2 covariates without a value ('age', 'sex')").any()


def test_patient_page_leaves_out_unusable_typed_rows_and_uses_the_covariates(trained):
    at = open_page("patient")
    at.radio(key="patient_source").set_value("Type a few values").run()
    at.number_input(key="typed-age").set_value(80).run()
    at.selectbox(key="typed-sex").set_value("male").run()
    at.session_state["typed_rows"] = pd.DataFrame({"hours": [1.0, None], "variable": ["HR", "HR"],
                                                   "value": [95.0, 100.0]})
    at.button(key="score_typed").click().run()
    assert not problems(at)
    notes = table_with(at, "What happened")
    assert notes["What happened"].tolist() == ["rows left out"]  # the row without hours; covariates given
    assert notes["Column"].tolist() == ["time"]
    assert "Predicted probability of the outcome" in [m.label for m in at.metric]


def test_patient_page_picks_one_patient_of_an_uploaded_file(trained):
    events = "patient_id,time,variable,value\nX1,0.5,HR,85\nX1,2,MAP,70\nX2,1,HR,120\n"
    at = open_page("patient")
    at.radio(key="patient_source").set_value("Upload one patient's events").run()
    at.file_uploader(key="patient_upload").upload("two.csv", events.encode(), "text/csv")
    at.run()
    assert not problems(at)
    assert at.selectbox(key="upload_pick").options == ["X1", "X2"]
    at.selectbox(key="upload_pick").set_value("X2").run()
    assert "Risk level (1 = highest risk)" in [m.label for m in at.metric]


# -- models -----------------------------------------------------------------------------------------
def test_models_save_reload_download_and_upload(trained):
    from dice_core.modelfile import pack_model

    at = open_page("models")
    at.text_input(key="save_name").set_value("tiny demo").run()
    at.button(key="save_model").click().run()
    assert any("Saved as 'tiny demo'" in s.value for s in at.success)
    at.button(key="save_model").click().run()  # the same name again: refused, nothing lost
    assert any("already exists" in e.value for e in at.error)
    assert table_with(at, "validation AUC")["name"].tolist() == ["tiny demo"]

    archive = pack_model(Path(os.environ["DICE_MODELS_DIR"]) / "tiny demo")
    assert set(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == {"model.json", "weights.safetensors"}
    at.file_uploader(key="model_upload").upload("colleague.zip", archive, "application/zip")
    at.text_input(key="upload_name").set_value("from colleague").run()
    at.button(key="add_upload").click().run()
    assert any("Added 'from colleague'" in s.value for s in at.success)

    at.file_uploader(key="model_upload").clear()
    at.file_uploader(key="model_upload").upload("evil.zip", _zip({"model.pkl": b"pickle"}), "application/zip")
    at.text_input(key="upload_name").set_value("evil").run()
    at.button(key="add_upload").click().run()
    assert any("not a DICE Studio model archive" in e.value for e in at.error)
    assert not (Path(os.environ["DICE_MODELS_DIR"]) / "evil").exists()

    at.selectbox(key="saved_pick").set_value("from colleague").run()
    at.button(key="use_model").click().run()
    assert not problems(at)
    assert at.title[0].value == "Patient"
    assert "saved model 'from colleague'" in " ".join(c.value for c in at.caption)
    assert "Predicted probability of the outcome" in [m.label for m in at.metric]


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
