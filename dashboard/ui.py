"""Streamlit helpers shared by the pages: error handling, figures and tables with downloads,
and the session's current cohort, job and model."""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import jobs

log = logging.getLogger("dice_studio.dashboard")
REPO_ROOT = jobs.REPO_ROOT
DEMO_DIR = REPO_ROOT / "assets" / "demo"
DEMO_NAME = "Demo cohort (synthetic)"
GENERIC_ERROR = ("Something went wrong on this page. Your data and saved models are not affected. "
                 "Try again; if it happens again, the details are in the server log.")


def setup_logging():
    if not logging.getLogger("dice_studio").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger("dice_studio").addHandler(handler)
        logging.getLogger("dice_studio").setLevel(logging.INFO)


# The core's messages name the command-line flag and the Python setting that fix a problem
# ("--outcome / ColumnMap.outcome"); on these pages the fix is a choice on the page.
PAGE_SETTINGS = {
    "patient_id": "the 'Patient id' choice", "time": "the 'Time' choice", "variable": "the 'Variable name' choice",
    "value": "the 'Value' choice", "outcome": "the 'Outcome' choice",
    "positive_label": "the 'Value meaning had the outcome' choice", "covariates": "the covariates choice",
    "group": "the 'Group column' choice", "index_time": "the 'Admission time' choice",
    "window_hours": "'Hours of data per patient' on the Train page",
}
_SETTINGS = [re.compile(r"--[a-z-]+ / (?:ColumnMap|PreprocessConfig)\.(\w+)"),  # "--outcome / ColumnMap.outcome"
             re.compile(r"--[a-z-]+ \((?:ColumnMap|PreprocessConfig)\.(\w+)\)")]  # "--id-col (ColumnMap.patient_id)"


def plain(message: str) -> str:
    """A core message with the page's own words for the setting that fixes it."""
    message = str(message)
    for pattern in _SETTINGS:
        message = pattern.sub(lambda m: PAGE_SETTINGS.get(m.group(1), m.group(0)), message)
    return message


def guard(body):
    """Run a page body: a DiceError shows its message, anything else a plain sentence (details to
    the log). Streamlit's own control flow (st.rerun, st.stop) passes through untouched."""
    from dice_core.errors import DiceError

    try:
        body()
    except DiceError as exc:
        st.error(plain(exc))
    except Exception:
        log.exception("page error")
        st.error(GENERIC_ERROR)


# -- figures and tables ---------------------------------------------------------------------
def figure_config(filename: str) -> dict:
    """Plotly modebar: the camera button saves PNG or SVG (chosen in the sidebar); no plotly logo."""
    fmt = st.session_state.get("figure_format", "png")
    return {"displaylogo": False,
            "toImageButtonOptions": {"format": fmt, "filename": slug(filename), "scale": 2 if fmt == "png" else 1}}


def show_figure(fig, name: str, key: str | None = None, **kwargs):
    """A plotly figure with its download (camera icon, top right)."""
    return st.plotly_chart(fig, config=figure_config(name), key=key or f"fig-{slug(name)}", **kwargs)


MISSING = "–"  # what a table shows for a value that does not exist (e.g. the reference's interval)


def show_table(frame: pd.DataFrame, name: str, key: str | None = None, height: int | str = "auto",
               column_config: dict | None = None, hide_index: bool = True, csv: pd.DataFrame | None = None):
    """A table with a 'Download CSV' button under it. `csv`: the numbers behind a table whose
    display is formatted as text (p-values, intervals); the download then holds them unrounded."""
    st.dataframe(frame, hide_index=hide_index, height=height, column_config=column_config, width="stretch",
                 placeholder=MISSING)
    download = frame if csv is None else csv
    st.download_button("Download CSV", download.to_csv(index=not hide_index).encode(), file_name=f"{slug(name)}.csv",
                       mime="text/csv", key=key or f"csv-{slug(name)}", icon=":material/download:")


def p_text(p) -> str:
    """A p-value as clinicians read it: '< 0.001', '0.012', '0.39'."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(p):
        return MISSING
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def interval_text(low, high, fmt: str = "{:.2f}") -> str:
    """'(1.2 to 3.4)', or the missing mark when the interval does not exist."""
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        return MISSING
    if not (math.isfinite(low) and math.isfinite(high)):
        return MISSING
    return f"{fmt.format(low)} to {fmt.format(high)}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-").lower() or "download"


def pct(x, digits: int = 0) -> str:
    try:
        return f"{float(x):.{digits}%}"
    except (TypeError, ValueError):
        return "n/a"


def share_text(share: float) -> str:
    """A membership as a clinician reads it: '92%', '< 1%', '> 99%'."""
    return "< 1%" if share < 0.005 else "> 99%" if share > 0.995 else f"{share:.0%}"


def membership_sentence(memberships, cluster: int, K: int) -> str:
    """How clearly a patient belongs to their risk level (the nearest centre), in words. The
    classifier's memberships can lean elsewhere for a patient between two levels: say so."""
    import numpy as np

    from dice_core.viz.figures import risk_label

    memberships = np.asarray(memberships, dtype=float)
    level = risk_label(cluster, K).lower()
    top = int(np.argmax(memberships))
    others = [int(k) for k in np.argsort(memberships)[::-1] if k != cluster]
    if top != cluster:
        return (f"**Borderline:** nearest to the centre of **{level}**, but the model's classifier leans to "
                f"**{risk_label(top, K).lower()}** ({share_text(memberships[top])}). Interpret with care.")
    if memberships[cluster] >= 0.8 or not others:
        return f"Clearly belongs to **{level}** ({share_text(memberships[cluster])} membership)."
    second = others[0]
    return (f"Most likely **{level}** ({share_text(memberships[cluster])}), but also close to "
            f"**{risk_label(second, K).lower()}** ({share_text(memberships[second])}): interpret with care.")


# -- the session's cohort ---------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading the demo cohort…")
def demo_cohort():
    """The bundled synthetic cohort (assets/demo), read once per server."""
    from dice_core.config import ColumnMap
    from dice_core.data.io import load_cohort

    return load_cohort(DEMO_DIR / "events.csv.gz", DEMO_DIR / "patients.csv",
                       ColumnMap(covariates=("age", "sex"), group="race"))


def set_cohort(cohort, name: str, saved_id: str | None = None, choice: str | None = None):
    """Make `cohort` this tab's cohort. A cohort other than the demo is kept on disk (runs folder,
    `_cohorts/`) with `choice` (where the Cohort page found it) and named in the URL (?cohort=), so a
    browser refresh finds it again."""
    st.session_state["cohort"] = cohort
    st.session_state["cohort_name"] = name
    st.session_state.pop("window_hours", None)  # the next cohort gets its own default window
    if name == DEMO_NAME:
        st.query_params.pop("cohort", None)
        return
    if saved_id is None:
        from dashboard.store import save_cohort

        saved_id = jobs.new_job_id(name)
        save_cohort(cohort, saved_cohorts_dir() / saved_id)
        jobs.write_json(saved_cohorts_dir() / saved_id / "name.json", {"name": name, "choice": choice})
    st.query_params["cohort"] = saved_id


def saved_cohorts_dir() -> Path:
    return jobs.runs_dir() / "_cohorts"


@st.cache_resource(max_entries=4, show_spinner="Reading the cohort again…")
def _saved_cohort(saved_id: str):
    from dashboard.store import read_cohort

    folder = saved_cohorts_dir() / saved_id
    return read_cohort(folder), jobs.read_json(folder / "name.json", {})


def current_cohort():
    """(cohort, name): this tab's cohort; after a refresh the one the URL names; else the demo."""
    if "cohort" not in st.session_state:
        saved_id = st.query_params.get("cohort")
        if jobs.is_folder_name(saved_id) and (saved_cohorts_dir() / saved_id / "cohort.json").is_file():
            cohort, meta = _saved_cohort(saved_id)
            set_cohort(cohort, meta.get("name", saved_id), saved_id)
            if meta.get("choice"):  # the Cohort page opens on where the cohort came from
                st.session_state.setdefault("cohort_source", meta["choice"])
        else:
            set_cohort(demo_cohort(), DEMO_NAME)
    return st.session_state["cohort"], st.session_state["cohort_name"]


def default_window(cohort) -> float:
    """Hours of data per patient: the whole hours that hold every event time, at most 48 (the
    PhysioNet 2012 window: its times run to 48:00); 24 for the demo cohort. The window is [0, W),
    so data ending at 47.0 h need W = 48."""
    last = float(cohort.events["time"].max()) if len(cohort.events) else 48.0
    return float(min(48, max(1, math.floor(last) + 1)))


def window_hours(cohort) -> float:
    """The window the Train page will use: the last one started in this session, else the default."""
    return float(st.session_state.get("window_hours") or default_window(cohort))


# -- the session's job and model ----------------------------------------------------------------
def current_job() -> jobs.Job | None:
    """The job this tab follows: the URL's ?job=, else this session's, else the newest on disk.

    The URL keeps it across a browser refresh; the runs folder lets a second tab find it."""
    job_id = st.query_params.get("job") or st.session_state.get("job_id")
    job = jobs.find_job(job_id)
    if job is None:
        all_jobs = jobs.list_jobs()
        active = [j for j in all_jobs if j.active]
        job = (active or all_jobs or [None])[0]
    if job is not None:
        follow_job(job)
    return job


def follow_job(job: jobs.Job):
    st.session_state["job_id"] = job.id
    if st.query_params.get("job") != job.id:
        st.query_params["job"] = job.id


def job_picker(label: str = "Training run", only=None, key: str = "job_picker") -> jobs.Job | None:
    """Select box over the runs on disk (newest first), showing the job this tab follows."""
    all_jobs = [j for j in jobs.list_jobs() if only is None or only(j)]
    if not all_jobs:
        return None
    current = current_job()
    ids = [j.id for j in all_jobs]
    st.session_state[key] = current.id if current is not None and current.id in ids else ids[0]
    labels = {j.id: j.label() for j in all_jobs}

    def changed():
        follow_job(jobs.Job(jobs.runs_dir() / st.session_state[key]))

    chosen = st.selectbox(label, ids, format_func=lambda i: labels.get(i, i), key=key, on_change=changed)
    return jobs.Job(jobs.runs_dir() / chosen)


def models_dir() -> Path:
    """Where named models are saved: $DICE_MODELS_DIR, else models/ in the project folder."""
    path = Path(os.environ.get("DICE_MODELS_DIR", REPO_ROOT / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _load_model(path: str, stamp: float):
    from dice_core.modelfile import load_model

    return load_model(path)


def load_model_cached(path) -> object:
    """A model directory loaded once per change of its files."""
    path = Path(path)
    stamp = max((p.stat().st_mtime for p in path.iterdir()), default=0.0) if path.is_dir() else 0.0
    return _load_model(str(path), stamp)


def sidebar():
    """What this tab is working on, and the figure download format."""
    with st.sidebar:
        st.caption("WORKING ON")
        cohort, name = current_cohort()
        st.markdown(f"**Cohort:** {name}  \n{cohort.n_patients:,} patients, outcome rate "
                    f"{pct(cohort.patients['outcome'].mean(), 1)}")
        job = jobs.find_job(st.session_state.get("job_id") or st.query_params.get("job"))
        if job is not None:
            st.markdown(f"**Training run:** {job.status().get('state', '?')}  \n`{job.id}`")
        st.divider()
        st.radio("Figure downloads (camera icon on each figure)", ["png", "svg"], key="figure_format",
                 horizontal=True, format_func=str.upper)
        st.caption("Everything stays on this computer: no data is sent anywhere.")
