"""Cohort page: choose the data (demo, uploaded tables, PhysioNet 2012, a server path), map the
columns, read the validation report and the cohort summary."""
import tempfile
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import columns as colguess
from dashboard import ui

SOURCES = ["Demo cohort (synthetic)", "Upload my tables (CSV or Parquet)", "PhysioNet 2012 archive",
           "Files on this server"]
TABLE_TYPES = ["csv", "gz", "parquet", "pq"]
PROBLEM_COLUMN = {"Problem": st.column_config.TextColumn(width="large")}


def label_strings(values: pd.Series) -> list[str]:
    """Outcome values as the core compares them (1.0 reads '1')."""
    out = []
    for v in values.dropna().unique():
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        out.append(str(v).strip())
    return sorted(set(out))


def read_preview(source, what: str, id_hint: str = "patient_id"):
    """The uploaded or server table as a DataFrame (for the column mapping), or None with an error."""
    from dice_core.data.cohort import ValidationReport
    from dice_core.data.io import read_table

    report = ValidationReport()
    frame, _ = read_table(source, what, id_hint, report)
    if frame is None:
        st.error(ui.plain("\n".join(p.describe() for p in report.errors)))
    return frame


def mapping_form(events: pd.DataFrame, patients: pd.DataFrame):
    """Column mapping with guessed defaults. Returns (ColumnMap, patients table with the id column
    named as in the events table) or None when the tables cannot be mapped."""
    from dice_core.config import ColumnMap

    ev_guess = colguess.guess_event_columns(events)
    pa_guess = colguess.guess_patient_columns(patients, ev_guess["patient_id"])
    ev_cols, pa_cols = list(events.columns), list(patients.columns)

    def pick(where, label, options, guess, key, **kw):
        return where.selectbox(label, options, index=options.index(guess) if guess in options else 0, key=key, **kw)

    st.subheader("2. Which column is which?")
    st.caption("DICE Studio guessed the columns from their names; check each one.")
    st.markdown("**Events table**")
    c = st.columns(4)
    e_id = pick(c[0], "Patient id", ev_cols, ev_guess["patient_id"], "map_e_id")
    e_time = pick(c[1], "Time", ev_cols, ev_guess["time"], "map_e_time",
                  help="Numbers are hours since each patient's index time (e.g. ICU admission); date-times "
                       "are converted to hours since the patient's first event.")
    e_var = pick(c[2], "Variable name", ev_cols, ev_guess["variable"], "map_e_var")
    e_val = pick(c[3], "Value", ev_cols, ev_guess["value"], "map_e_val",
                 help="Empty values are read as coded events (an order, a procedure): they are counted.")
    st.markdown("**Patients table**")
    c = st.columns(4)
    p_id = pick(c[0], "Patient id", pa_cols, pa_guess["patient_id"], "map_p_id")
    outcome_options = [col for col in pa_cols if col != p_id]
    if not outcome_options:
        st.error("The patients table needs at least a patient id column and an outcome column.")
        return None
    outcome = pick(c[1], "Outcome", outcome_options, pa_guess["outcome"], "map_outcome",
                   help="The binary outcome the clusters are related to, e.g. in-hospital death.")
    levels = label_strings(patients[outcome])
    if len(levels) > 20:
        st.error(f"The outcome column '{outcome}' has {len(levels)} different values; choose a column with "
                 "two values (e.g. 0/1 or yes/no).")
        return None
    guess_pos = colguess.guess_positive_label(levels)
    positive = c[2].selectbox("Value meaning 'had the outcome'", levels,
                              index=levels.index(guess_pos) if guess_pos in levels else 0, key="map_positive")
    rest = [col for col in pa_cols if col not in (p_id, outcome)]
    group = pick(c[3], "Group column (fairness)", ["(none)"] + rest, pa_guess["group"] or "(none)", "map_group",
                 help="The AUC is also reported within each group of this column, e.g. race.")
    group = None if group == "(none)" else group
    c = st.columns([3, 1])
    index_options = ["(none)"] + [col for col in rest if col != group]
    index_time = pick(c[1], "Admission time (optional)", index_options, pa_guess["index_time"] or "(none)",
                      "map_index_time", help="Only for date-time event times: hours are then counted from this "
                                             "date-time (e.g. ICU admission) instead of each patient's first event.")
    index_time = None if index_time == "(none)" else index_time
    cov_options = [col for col in rest if col not in (group, index_time)]
    covariates = c[0].multiselect("Covariates the outcome model adjusts for (e.g. age, sex)", cov_options,
                                  default=[col for col in pa_guess["covariates"] if col in cov_options], key="map_cov")
    if p_id != e_id:  # one name for the id in both tables
        patients = patients.drop(columns=[e_id], errors="ignore").rename(columns={p_id: e_id})
    cmap = ColumnMap(patient_id=e_id, time=e_time, variable=e_var, value=e_val, outcome=outcome,
                     positive_label=positive, covariates=tuple(covariates), group=group, index_time=index_time)
    return cmap, patients


def load_tables(events_df: pd.DataFrame, patients_df: pd.DataFrame, files: tuple[str, str]):
    """Column mapping, then the cohort from the two tables read earlier; `files` name them in messages."""
    from dice_core.data.io import load_cohort

    mapped = mapping_form(events_df, patients_df)
    if mapped is None:
        return
    cmap, patients_df = mapped
    name = " + ".join(files)
    if st.button("Load this cohort", type="primary", key="load_tables"):
        with st.spinner("Reading and checking the tables…"):
            cohort = read_or_report(lambda: load_cohort(events_df, patients_df, cmap, strict=False, names=files))
        if cohort is not None:
            cohort.source = name
            accept(cohort, name)


def read_or_report(load):
    """The cohort `load()` builds, or None when it cannot be built at all (its problems are then kept
    for the report table, like those of a cohort that loads with errors)."""
    from dice_core.errors import CohortError

    try:
        return load()
    except CohortError as exc:
        if exc.report is None:
            raise
        refuse(exc.report)
        return None


def refuse(report):
    st.session_state["last_report"] = report
    st.error(f"The cohort cannot be used yet: {len(report.errors)} problem(s) must be fixed in the files or in the "
             "choices above (see the report below). The previous cohort is still selected.")


def accept(cohort, name: str):
    """Use the cohort unless its report holds errors (then show them and keep the previous one)."""
    if cohort.report.errors:
        refuse(cohort.report)
        return
    st.session_state.pop("last_report", None)
    ui.set_cohort(cohort, name, choice=st.session_state.get("cohort_source"))
    st.session_state["cohort_flash"] = (f"Loaded {name}: {cohort.n_patients:,} patients. Go on to **Train** when "
                                        "the summary looks right.")
    st.rerun()  # redraw everything (the sidebar too) with the new cohort


def physionet_source():
    from dice_core.data.physionet import default_physionet_path, load_physionet2012

    st.caption("The PhysioNet/Computing in Cardiology Challenge 2012 set A (4,000 ICU stays, in-hospital "
               "death): upload set-a.tar.gz, or give its path on this server below. An uploaded archive is "
               "used when there is one; otherwise the path.")
    upload = st.file_uploader("PhysioNet 2012 archive (set-a.tar.gz)", type=["gz", "tgz", "tar"], key="physionet_upload")
    default = default_physionet_path()
    path = st.text_input("…or its path on this server", value=str(default) if default.exists() else "",
                         key="physionet_path")
    if st.button("Load PhysioNet 2012", type="primary", key="load_physionet"):
        with st.spinner("Reading 4,000 ICU stays (about half a minute)…"):
            if upload is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    archive = Path(tmp) / "set-a.tar.gz"
                    archive.write_bytes(upload.getvalue())
                    cohort = read_or_report(lambda: load_physionet2012(archive))
                source = f"uploaded file {upload.name}"
            elif path.strip():
                where = Path(path.strip()).expanduser()
                cohort = read_or_report(lambda: load_physionet2012(where))
                source = f"{where} on this server"
            else:
                st.error("Upload set-a.tar.gz or type the path of the archive or folder.")
                return
        if cohort is not None:
            cohort.source = source
            accept(cohort, "PhysioNet 2012 set A")


def upload_source():
    st.subheader("1. Upload the two tables")
    st.caption("**Events**: one row per measurement (patient id, time, variable, value). "
               "**Patients**: one row per patient (id, outcome, covariates such as age and sex, a group "
               "column such as race). CSV, CSV.gz or Parquet.")
    c1, c2 = st.columns(2)
    events_file = c1.file_uploader("Events table", type=TABLE_TYPES, key="events_upload")
    patients_file = c2.file_uploader("Patients table", type=TABLE_TYPES, key="patients_upload")
    if events_file is None or patients_file is None:
        st.info("Upload both tables to continue. Tip: the demo cohort's files in assets/demo/ show the layout.")
        return
    events_df = read_preview(events_file, "events table")
    patients_df = read_preview(patients_file, "patients table")
    if events_df is None or patients_df is None:
        return
    with st.expander("Preview of the first rows"):
        c1, c2 = st.columns(2)
        c1.dataframe(events_df.head(8), hide_index=True, placeholder="")
        c2.dataframe(patients_df.head(8), hide_index=True, placeholder="")
    load_tables(events_df, patients_df, (Path(events_file.name).name, Path(patients_file.name).name))


def server_source():
    st.caption("Paths are read by the server (this computer), e.g. a shared folder of your department.")
    c1, c2 = st.columns(2)
    events_path = c1.text_input("Events table path", key="server_events")
    patients_path = c2.text_input("Patients table path", key="server_patients")
    if not events_path.strip() or not patients_path.strip():
        st.info("Type both paths to continue.")
        return
    events_df = read_preview(Path(events_path.strip()).expanduser(), "events table")
    patients_df = read_preview(Path(patients_path.strip()).expanduser(), "patients table")
    if events_df is None or patients_df is None:
        return
    load_tables(events_df, patients_df, (Path(events_path.strip()).name, Path(patients_path.strip()).name))


def show_report(report, key: str = "csv-validation"):
    frame = report.to_frame()
    if frame.empty:
        st.success("Validation: no problem found.")
        return
    n_err, n_warn = len(report.errors), len(report.warnings)
    errors = "".join(f"\n- {ui.plain(p.describe())}" for p in report.errors)  # in full: each says the fix
    (st.error if n_err else st.warning)(
        f"Validation found {n_err} error(s) and {n_warn} warning(s). Errors must be fixed in the files or in "
        f"the choices above; warnings are worth a look (the rows they name were handled as described).{errors}")
    frame = frame.assign(problem=frame["problem"].map(ui.plain)).rename(columns={
        "severity": "Severity", "file": "File", "column": "Column", "problem": "Problem", "count": "Count",
        "examples": "Examples (rows or values)"})
    ui.show_table(frame, "validation-report", key=key, column_config=PROBLEM_COLUMN)


def show_window_report(cohort):
    """What the Train page's observation window leaves out: late events, patients left empty."""
    from dice_core.data import window_report

    hours = ui.window_hours(cohort)
    st.subheader(f"Time window: first {hours:g} h")
    st.caption(f"Training reads each patient's first {hours:g} hours after the index time (e.g. ICU admission); "
               "change it on the **Train** page under *Hours of data per patient*.")
    frame = window_report(cohort, hours).to_frame()
    if frame.empty:
        st.success(f"Every event falls within the first {hours:g} hours; no patient is left without data.")
        return
    st.warning(f"Some data fall outside the first {hours:g} hours and will not be used (see below). A longer "
               "window keeps them.")
    frame = frame.assign(problem=frame["problem"].map(ui.plain)).rename(columns={
        "severity": "Severity", "file": "File", "column": "Column", "problem": "Problem", "count": "Count",
        "examples": "Examples (patient ids)"})
    ui.show_table(frame, "window-report", key="csv-window", column_config=PROBLEM_COLUMN)


def show_summary(cohort, name: str):
    st.header("Cohort summary")
    s = cohort.summary()
    c = st.columns(5)
    c[0].metric("Patients", f"{s['patients']:,}")
    c[1].metric("Outcome rate", ui.pct(s["outcome_rate"], 1), help=f"'{cohort.outcome_name}' = "
                f"'{cohort.positive_label}' for {s['positives']:,} patients")
    c[2].metric("Events per patient (median)", f"{s['events_per_patient_median']:.0f}")
    c[3].metric("Variables", s["variables"])
    c[4].metric("Patients without events", s["patients_without_events"])
    st.caption(f"In use: **{name}** (source: {cohort.source or name}). Covariates: {', '.join(cohort.covariates) or 'none'}. "
               f"Group column: {cohort.group or 'none'}.")
    variables = cohort.variable_summary().reset_index().rename(columns={"index": "variable"})
    st.subheader("Variables and missingness")
    table_tab, chart_tab = st.tabs(["Table", "Chart"])
    with table_tab:
        show = variables.rename(columns={"variable": "Variable", "patients_observed": "Patients measured",
                                         "observations": "Observations", "mean": "Mean", "min": "Min",
                                         "max": "Max", "missing_share": "Never measured (share of patients)"})
        ui.show_table(show, "variables", key="csv-variables", height=min(460, 35 * (len(show) + 1) + 3),
                      column_config={"Mean": st.column_config.NumberColumn(format="%.4g"),
                                     "Never measured (share of patients)": st.column_config.ProgressColumn(
                                         format="percent", min_value=0.0, max_value=1.0)})
    with chart_tab:
        ordered = variables.sort_values("missing_share")
        fig = go.Figure(go.Bar(x=ordered["missing_share"], y=ordered["variable"], orientation="h",
                               marker_color="#7f8c8d"))
        fig.update_layout(template="plotly_white", height=max(260, 20 * len(ordered) + 80),
                          title="Share of patients never measured",
                          xaxis=dict(tickformat=".0%", range=[0, 1], title="share of patients"),
                          margin=dict(l=10, r=10, t=40, b=40))
        ui.show_figure(fig, "missingness")


def main():
    st.title("Cohort")
    st.write("Choose the patients to study. DICE Studio starts on a small **synthetic** demo cohort, so you can "
             "try everything at once; your own data never leaves this computer.")
    ui.current_cohort()  # after a refresh: restores the cohort and where it came from (the radio below)
    source = st.radio("Where is the cohort?", SOURCES, horizontal=True, key="cohort_source")
    if "cohort_flash" in st.session_state:
        st.success(st.session_state.pop("cohort_flash"))
    if source == SOURCES[0]:
        if st.session_state.get("cohort_name") != ui.DEMO_NAME and st.button("Use the demo cohort", key="use_demo"):
            ui.set_cohort(ui.demo_cohort(), ui.DEMO_NAME)
        st.caption("600 invented patients with hourly vital signs and labs over 24 hours, three planted "
                   "subgroups with different outcome rates, age, sex and race. Made by dice_core's generator "
                   "(assets/make_demo.py); no real patient.")
    elif source == SOURCES[1]:
        upload_source()
    elif source == SOURCES[2]:
        physionet_source()
    else:
        server_source()
    if "last_report" in st.session_state:
        st.subheader("Validation report of the files you tried to load")
        show_report(st.session_state["last_report"], key="csv-validation-refused")  # beside the cohort's own
        st.divider()
    cohort, name = ui.current_cohort()
    show_summary(cohort, name)
    st.subheader("Validation report")
    show_report(cohort.report)
    show_window_report(cohort)


ui.guard(main)
