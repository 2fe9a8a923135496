"""Patient page: the risk level of one patient (from the cohort, an uploaded file or typed values),
how clearly they belong to it, where they sit among the training patients, and their values
against their risk level's mean trajectories."""
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import jobs, modelstore, ui
from dashboard.runview import SELECTED, RunView
from dice_core.viz import figures as F

INPUTS = ["A patient of the cohort", "Upload one patient's events", "Type a few values"]
NEW_ID = "new-patient"


def choose_model():
    """(model, RunView or None, label): a run's model or a saved one."""
    saved = modelstore.list_models()
    runs = [j for j in jobs.list_jobs() if (j.model_dir / "model.json").is_file()]
    choice = st.session_state.get("patient_model")
    options = []
    if runs:
        options.append("The latest training run")
    if saved:
        options.append("A saved model")
    if not options:
        return None, None, ""
    if st.session_state.get("patient_model_kind") not in options:
        wants_saved = choice and choice.get("kind") == "saved" and len(options) > 1
        st.session_state["patient_model_kind"] = options[1 if wants_saved else 0]
    kind = st.radio("Model", options, horizontal=True, key="patient_model_kind")
    if kind == "A saved model":
        names = [m["name"] for m in saved]
        if st.session_state.get("patient_saved") not in names:
            preselect = choice.get("name") if choice and choice.get("kind") == "saved" else None
            st.session_state["patient_saved"] = preselect if preselect in names else names[0]
        name = st.selectbox("Saved model", names, key="patient_saved")
        info = modelstore.model_info(name)
        model = ui.load_model_cached(modelstore.model_path(name))
        job = jobs.find_job(info.get("job"))
        view = RunView(job, info.get("analysis", SELECTED)) if job is not None else None
        if view is not None and not view.prepared:
            view = None
        return model, view, f"saved model '{name}'"
    job = ui.job_picker("Training run", only=lambda j: (j.model_dir / "model.json").is_file(), key="patient_job")
    view = RunView(job, SELECTED)
    return view.model, (view if view.prepared else None), f"the selected model of run {job.id}"


def covariate_inputs(model, key: str) -> dict:
    """One input per covariate the model adjusts for; left empty, the model uses the training mean
    (numbers) or the most frequent training category, and the scoring report says so."""
    values = {}
    specs = model.preprocessor_.covariates_
    if not specs:
        return values
    st.markdown("**Covariates** (leave empty when not known)")
    cols = st.columns(min(4, len(specs)))
    for i, spec in enumerate(specs):
        where = cols[i % len(cols)]
        if spec["kind"] == "categorical":
            values[spec["name"]] = where.selectbox(spec["name"], [spec["reference"], *spec["levels"]], index=None,
                                                   placeholder="not known", key=f"{key}-{spec['name']}")
        else:
            hint = f"not known (training mean {spec['mean']:.3g})" if "mean" in spec else "not known"
            values[spec["name"]] = where.number_input(spec["name"], value=None, placeholder=hint, format="%g",
                                                      key=f"{key}-{spec['name']}")
    return values


def scoring_cohort(events: pd.DataFrame, covariates: dict, model, source: str):
    """The new patient(s) read and checked by dice_core like any uploaded table; the problems found
    (rows left out, covariates not given) are shown as warnings."""
    from dice_core.data import load_events_for_scoring
    from dice_core.errors import CohortError

    given = {name: value for name, value in covariates.items() if value is not None}
    names = [c["name"] for c in model.preprocessor_.covariates_]
    cohort = load_events_for_scoring(events, given, model_covariates=names, strict=False)
    cohort.source = source
    if cohort.events.empty:
        lines = "\n".join(f"- {ui.plain(p.describe())}" for p in cohort.report.problems)
        raise CohortError(f"No usable measurement: add at least one row with hours, variable and value.\n{lines}")
    return cohort


def input_notes(model, cohort, new_patient: bool) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """What a clinician should know about this patient's data, in sentences, and the two tables
    behind them: the reading report (rows left out, covariates not given; new patients only) and
    the model's input warnings (unknown variables, variables not given, values outside training)."""
    report = cohort.report.to_frame() if new_patient else pd.DataFrame()
    if len(report):
        report["severity"] = report["severity"].map({"error": "rows left out", "warning": "note"})
    notes = [("Left out: " if r["severity"] == "rows left out" else "") + ui.plain(r["problem"])
             for _, r in report.iterrows()]
    warnings = model.input_warnings(cohort)
    for problem, rows in (warnings.groupby("problem", sort=False) if len(warnings) else []):
        items = [_warning_item(r) for _, r in rows.iterrows()]
        notes.append(f"{problem[0].upper()}{problem[1:]}: {', '.join(dict.fromkeys(items))}.")
    return notes, report, warnings


def _warning_item(row) -> str:
    """'Troponin', or 'MAP = 900 at 5 h (training 44.3 to 111.7)' for a value outside the range."""
    value = row.get("value")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return str(row["variable"])
    text = f"{row['variable']} = {value:g}" if isinstance(value, (int, float)) else f"{row['variable']} = {value}"
    time, low, high = row.get("time"), row.get("training_min"), row.get("training_max")
    if isinstance(time, (int, float)) and np.isfinite(time):
        text += f" at {time:g} h"
    if isinstance(low, (int, float)) and np.isfinite(low) and isinstance(high, (int, float)) and np.isfinite(high):
        text += f" (training {low:.4g} to {high:.4g})"
    return text


def show_input_notes(model, cohort, new_patient: bool):
    notes, report, warnings = input_notes(model, cohort, new_patient)
    if not notes:
        return
    st.warning("**About this patient's data** (values far outside the training range or variables not given "
               "make the result less reliable):\n" + "\n".join(f"- {n}" for n in notes))
    with st.expander("The same notes as tables"):
        if len(report):
            st.caption("Reading the data (row numbers count the header as row 1, as in a spreadsheet)")
            ui.show_table(report.drop(columns=["file"]).rename(columns={
                "severity": "What happened", "column": "Column", "problem": "Problem", "count": "Count",
                "examples": "Examples (rows or values)"}), "patient-data-notes", key="csv-patient-notes")
        if len(warnings):
            st.caption("Against the model's training data")
            ui.show_table(warnings, "input-warnings", key="csv-input-warnings")


def uploaded_patient(model):
    from dice_core.data.cohort import ValidationReport
    from dice_core.data.io import read_table

    from dashboard import columns as colguess

    st.caption("A CSV or Parquet file with one row per measurement: hours since admission, variable name and "
               "value. With a patient id column, the file may hold several patients: choose one below.")
    upload = st.file_uploader("The patient's events", type=["csv", "gz", "parquet", "pq"], key="patient_upload")
    covariates = covariate_inputs(model, "upload")
    if upload is None:
        return None
    report = ValidationReport()
    frame, _ = read_table(upload, upload.name, "patient_id", report)
    if frame is None:
        st.error("\n".join(p.describe() for p in report.errors))
        return None
    guess = colguess.guess_event_columns(frame)
    if frame.shape[1] == 3 and guess["value"] is None:  # time, variable, value without an id
        guess = dict(zip(["time", "variable", "value"], frame.columns))
    missing = [role for role in ("time", "variable", "value") if not guess.get(role)]
    if missing:
        st.error(f"The file needs columns for {', '.join(missing)} (e.g. time, variable, value); it has "
                 f"{', '.join(map(str, frame.columns))}.")
        return None
    events = frame.rename(columns={guess["time"]: "time", guess["variable"]: "variable", guess["value"]: "value"})
    has_id = guess.get("patient_id") not in (None, *("time", "variable", "value")) and frame.shape[1] > 3
    events["patient_id"] = events[guess["patient_id"]].astype(str) if has_id else NEW_ID
    cohort = scoring_cohort(events[["patient_id", "time", "variable", "value"]], covariates, model,
                            f"uploaded file {upload.name}")
    ids = cohort.patients.index.tolist()
    if len(ids) > 1:
        chosen = st.selectbox(f"Patient ({len(ids)} in the file)", ids, key="upload_pick")
        cohort = cohort.subset([chosen])
    return cohort


def typed_patient(model):
    pre = model.preprocessor_
    numeric = [v for v, k in zip(pre.variables_, pre.kinds_) if k == "numeric"]
    st.caption("Type measurements (hours since admission, variable, value); add rows with the + below the table. "
               f"The model knows these variables: {', '.join(pre.variables_)}.")
    if "typed_rows" not in st.session_state:
        means = dict(zip(pre.variables_, pre.means_))
        st.session_state["typed_rows"] = pd.DataFrame({
            "hours": [0.0, 0.0, 6.0], "variable": (numeric * 3)[:3],
            "value": [round(float(means[v]), 2) for v in (numeric * 3)[:3]]})
    rows = st.data_editor(st.session_state["typed_rows"], num_rows="dynamic", key="typed_editor", width="stretch",
                          column_config={"hours": st.column_config.NumberColumn("hours since admission", min_value=0.0),
                                         "variable": st.column_config.SelectboxColumn("variable",
                                                                                      options=list(pre.variables_)),
                                         "value": st.column_config.NumberColumn("value")})
    covariates = covariate_inputs(model, "typed")
    if not st.button("Score this patient", type="primary", key="score_typed"):
        return st.session_state.get("typed_cohort")
    events = rows.dropna(subset=["variable"]).rename(columns={"hours": "time"}).assign(patient_id=NEW_ID)
    if events.empty:
        st.session_state.pop("typed_cohort", None)
        st.error("Type at least one measurement: hours since admission, variable and value.")
        return None
    cohort = scoring_cohort(events[["patient_id", "time", "variable", "value"]], covariates, model,
                            "values typed on the Patient page")
    st.session_state["typed_cohort"] = cohort
    return cohort


def cohort_patient(view: RunView | None):
    if view is not None:
        cohort = view.cohort
        scores = view.scores
        labels = dict(zip(scores["patient_id"], scores["split"]))
        order = sorted(labels, key=lambda p: ({"test": 0, "val": 1, "train": 2}.get(labels[p], 3), p))
        fmt = lambda p: f"{p} ({ {'test': 'test', 'val': 'validation', 'train': 'training'}.get(labels[p], '') } patient)"  # noqa: E731
    else:
        cohort, _ = ui.current_cohort()
        order = cohort.patients.index.tolist()
        fmt = str
    patient_id = st.selectbox("Patient", order, format_func=fmt, key="patient_pick",
                              help="Test patients first: the model did not see them in training.")
    return cohort.subset([patient_id])


def show_result(model, view: RunView | None, cohort, in_map: bool):
    from dice_core.scoring import score_patients
    from dice_core.viz import profiles as P
    from dice_core.viz.embedding import place_near

    K = model.config.n_clusters
    show_input_notes(model, cohort, new_patient=not in_map)
    row = score_patients(model, cohort).iloc[0]
    cluster = int(row["cluster"])
    memberships = np.array([row[f"membership_{k}"] for k in range(K)])
    distances = np.array([row[f"distance_{k}"] for k in range(K)])
    c = st.columns(3)
    c[0].metric("Risk level (1 = highest risk)", f"{cluster + 1} of {K}", help=F.risk_label(cluster, K))
    c[1].metric("Outcome rate of this risk level (training)", ui.pct(row["cluster_outcome_rate"]))
    c[2].metric("Predicted probability of the outcome", ui.pct(row["probability"]))
    st.markdown(ui.membership_sentence(memberships, cluster, K))
    left, right = st.columns([1, 1])
    with left:
        ui.show_figure(F.membership_figure(memberships, K), "membership", key="fig-membership")
        table = pd.DataFrame({"Risk level": [F.risk_label(k, K) for k in range(K)], "Membership": memberships,
                              "Distance to the level's centre": distances})
        ui.show_table(table.assign(Membership=[ui.share_text(m) for m in memberships]), "membership-and-distances",
                      key="csv-membership", csv=table,
                      column_config={"Distance to the level's centre": st.column_config.NumberColumn(format="%.3f")})
        st.caption("The risk level is the nearest centre (smallest distance); the membership is how strongly the "
                   "model's classifier places the patient in each level.")
    with right:
        if view is None or view.map() is None:
            st.info("The map of training patients is available for models trained in this DICE Studio whose "
                    "run folder is still here.")
        else:
            frame_map = view.map()
            pid = str(cohort.patients.index[0])
            if in_map and pid in set(frame_map["patient_id"]):
                marked = frame_map[frame_map["patient_id"] == pid][["x", "y"]].assign(label=pid)
            else:
                from dashboard import store

                scores = view.scores
                Z_ref = store.read_representation(view.folder)
                train = (scores["split"] == "train").to_numpy()
                xy = frame_map.set_index("patient_id").loc[scores["patient_id"][train], ["x", "y"]].to_numpy()
                point = place_near(model.transform(cohort), Z_ref[train], xy)
                marked = pd.DataFrame({"x": point[:, 0], "y": point[:, 1], "label": ["this patient"]})
            fig = view.map_figure(frame_map, "Risk level", "train", title="This patient among the training patients")
            fig.add_scatter(x=marked["x"], y=marked["y"], mode="markers", name="this patient",
                            marker=dict(size=20, symbol="star", color="black", line=dict(color="white", width=1.5)))
            fig.add_annotation(x=float(marked["x"].iloc[0]), y=float(marked["y"].iloc[0]),
                               text=str(marked["label"].iloc[0]), ax=40, ay=-36, arrowcolor="black",
                               bgcolor="white", bordercolor="black", borderpad=3)  # readable over the points
            fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.08, x=0), height=560)
            ui.show_figure(fig, "patient-on-map", key="fig-patient-map")
    st.subheader("The patient's values against their risk level's mean")
    if view is None:
        st.info("Risk-level trajectories need the training patients of a run in this DICE Studio.")
        return
    pre = model.preprocess
    measured = [v for v in cohort.events.dropna(subset=["value"])["variable"].unique() if v in model.preprocessor_.variables_]
    top = view.top_variables(top=12)["variable"].tolist()
    ranked = [v for v in top if v in measured] + [v for v in measured if v not in top]
    chosen = st.multiselect("Variables", ranked, default=ranked[:6], key="patient_vars")
    if chosen:
        trajectories = view.trajectories(chosen)
        all_levels = st.toggle("Show every risk level", key="patient_all_levels")
        if not all_levels:
            trajectories = trajectories[trajectories["cluster"] == cluster]
        patient = P.binned_values(cohort.events, chosen, pre.bin_hours, pre.window_hours)
        fig = F.trajectory_figure(trajectories, K, patient=patient,
                                  title=f"This patient (black) against {'each risk level' if all_levels else F.risk_label(cluster, K).lower()}")
        ui.show_figure(fig, "patient-trajectories", key="fig-patient-traj")


def main():
    st.title("Patient")
    st.write("See the risk level of one patient: one from the cohort, one from a file, or one you type in.")
    model, view, label = choose_model()
    if model is None:
        st.info("Train a model first (**Train** page), or upload a saved model on the **Models** page.")
        return
    st.caption(f"Using {label}: K={model.config.n_clusters}, d={model.config.hidden_size}.")
    source = st.radio("Patient", INPUTS, horizontal=True, key="patient_source")
    if source == INPUTS[0]:
        cohort, in_map = cohort_patient(view), True
    elif source == INPUTS[1]:
        cohort, in_map = uploaded_patient(model), False
    else:
        cohort, in_map = typed_patient(model), False
    if cohort is None:
        return
    st.divider()
    show_result(model, view, cohort, in_map)


ui.guard(main)
