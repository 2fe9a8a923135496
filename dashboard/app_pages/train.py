"""Train page: the search grid and training settings, then a live view of the training run
(progress, time left, leaderboard, cancel), which runs in its own process."""
import math
import time

import pandas as pd
import streamlit as st

from dashboard import jobs, ui
from dashboard.worker import AFTER_SEARCH

# Quick demo: trains on the demo cohort in about a minute on a laptop CPU. Paper: section 4.1.
PRESETS = {
    "Quick (about a minute on the demo)": dict(K=[2, 3, 4], d="8, 16", n_iter=8, pretrain=1, batch=64),
    "Paper defaults (slow: hours on a CPU)": dict(K=[2, 3, 4, 5], d="10, 15, 20, 25, 30, 35, 40", n_iter=60,
                                                    pretrain=1, batch=128),
}
POLL_SECONDS = 1.5


def parse_sizes(text: str) -> tuple[int, ...]:
    from dice_core.errors import ConfigError

    try:
        sizes = sorted({int(v) for v in text.replace(";", ",").split(",") if v.strip()})
    except ValueError:
        raise ConfigError(f"d values '{text}' must be whole numbers separated by commas, e.g. 8, 16, 32") from None
    if not sizes:
        raise ConfigError("give at least one size of representation d, e.g. 16")
    return tuple(sizes)


def settings_form(cohort):
    """The training settings; returns the job settings dict when 'Start training' is pressed."""
    from dice_core.config import DICEConfig, PreprocessConfig, SearchConfig

    preset_name = st.radio("Start from", list(PRESETS), key="preset", horizontal=True)
    preset = PRESETS[preset_name]
    # one set of widgets per preset: switching presets shows that preset's values (no shared state)
    tag = list(PRESETS).index(preset_name)
    paper = DICEConfig()
    with st.form("train_settings", enter_to_submit=False):  # only the button starts a run
        st.markdown("**Architectures to try** (the search keeps the best on validation patients whose clusters "
                    "all differ significantly in outcome)")
        c1, c2, c3 = st.columns(3)
        K = c1.multiselect("Number of clusters K (risk levels)", list(range(2, 11)), default=preset["K"],
                           key=f"t_K{tag}",
                           help="Paper: K in 2..5. Each K is tried with every d.")
        d_text = c2.text_input("Sizes of the representation d", value=preset["d"], key=f"t_d{tag}",
                               help="Comma-separated whole numbers; paper: 10 to 40 for ~1,000 patients.")
        strategy = c3.selectbox("Search strategy", ["grid", "halving"],
                                format_func=lambda s: {"grid": "every combination (grid)",
                                                       "halving": "successive halving (faster)"}[s],
                                help="Halving trains all briefly, then only the best third longer.")
        c1, c2, c3, c4 = st.columns(4)
        n_iter = c1.number_input("Training iterations", 1, 500, preset["n_iter"], key=f"t_iter{tag}",
                                 help="Outer iterations of Algorithm 1 (k-means, then one epoch); paper: 60.")
        pretrain = c2.number_input("Autoencoder warm-up epochs", 0, 50, preset["pretrain"], key=f"t_pre{tag}",
                                   help="Paper: 1.")
        batch = c3.number_input("Batch size", 8, 4096, preset["batch"], step=8, key=f"t_batch{tag}")
        seed = c4.number_input("Random seed", 0, 2**31 - 1, value=0, key=f"t_seed{tag}",
                               help="The same seed and settings give the same result on a CPU.")
        with st.expander("Loss weights, significance level, time window (paper defaults)"):
            c1, c2, c3, c4 = st.columns(4)
            l1 = c1.number_input("λ1 clustering", 0.0, 1e3, paper.lambda_cluster, format="%.3f",
                                 help="Pulls each representation towards its cluster centre. Paper: 0.1.")
            l2 = c2.number_input("λ2 cluster classifier", 0.0, 1e3, paper.lambda_classifier, format="%.3f",
                                 help="Paper: 10.")
            l3 = c3.number_input("λ3 outcome", 0.0, 1e3, paper.lambda_outcome, format="%.3f", help="Paper: 1.")
            l4 = c4.number_input("λ4 significance", 0.0, 1e3, paper.lambda_significance, format="%.3f",
                                 help="Penalises pairs of clusters whose outcome does not differ significantly.")
            c1, c2, c3, c4 = st.columns(4)
            alpha = c1.number_input("Significance level α", 0.001, 0.5, paper.alpha, format="%.3f")
            lr = c2.number_input("Learning rate", 1e-5, 1.0, paper.learning_rate, format="%.4f")
            window = c3.number_input("Hours of data per patient", 1.0, 24 * 365.0, ui.window_hours(cohort),
                                     help="Events after this many hours since the index time are not used.")
            bin_hours = c4.number_input("Hours per time step", 0.1, 24 * 30.0, 1.0,
                                        help="Events are averaged (values) or counted (orders) per step.")
        c1, c2 = st.columns(2)
        evaluate = c1.checkbox("Compare with the baselines afterwards (PCA, AE, AE + classification)", value=True)
        maps = c2.checkbox("Prepare the patient maps afterwards (UMAP)", value=True)
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return None
    base = DICEConfig(n_clusters=min(K) if K else 2, hidden_size=parse_sizes(d_text)[0], n_iter=int(n_iter),
                      n_pretrain_epochs=int(pretrain), batch_size=int(batch), seed=int(seed),
                      lambda_cluster=l1, lambda_classifier=l2, lambda_outcome=l3, lambda_significance=l4,
                      alpha=alpha, learning_rate=lr)
    search = SearchConfig(tuple(sorted(K)), parse_sizes(d_text), strategy)
    preprocess = PreprocessConfig(window_hours=float(window), bin_hours=float(bin_hours))
    st.session_state["window_hours"] = float(window)  # the Cohort page checks the data against it
    return {"search": search.to_dict(), "base": base.to_dict(), "preprocess": preprocess.to_dict(),
            "evaluate": evaluate, "build_maps": maps}


def leaderboard(job: jobs.Job) -> pd.DataFrame:
    records = pd.DataFrame(job.records())
    if records.empty:
        return records
    selected = job.selected() or {}
    table = pd.DataFrame({
        "selected": "",
        "K": records["K"], "d": records["d"],
        "validation AUC": records["val_auc"],
        "smallest pairwise p": records["min_p"],
        "largest pairwise p": records["max_p"],
        "smallest risk level (patients)": records["smallest_cluster"],
        "all clusters differ": records["all_significant"].map({True: "yes", False: "no"}),
        "iterations": records.get("n_iter"),
        "seconds": records["seconds"].round(1),
    })
    table["selected"] = [("✔" if selected and r.K == selected.get("K") and r.d == selected.get("d")
                          and r.iterations == selected.get("n_iter") else "") for r in table.itertuples()]
    return table.sort_values("validation AUC", ascending=False, na_position="last")


def eta_text(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "estimating time left…"
    seconds = int(seconds)
    return f"about {seconds // 60} min {seconds % 60:02d} s left" if seconds >= 60 else f"about {seconds} s left"


def job_panel(job_id: str, was_active: bool):
    ui.guard(lambda: _job_panel(job_id, was_active))


def _job_panel(job_id: str, was_active: bool):
    job = jobs.find_job(job_id)
    if job is None:
        st.warning("This training run is no longer on disk.")
        return
    status = job.status()
    state = status.get("state", "queued")
    fraction = float(status.get("fraction") or 0.0)
    if state in jobs.ACTIVE_STATES:
        stage = status.get("stage", "starting")
        # after the search no time left is estimated: the caption says how long these steps take
        eta = None if stage in AFTER_SEARCH and status.get("eta_s") is None else eta_text(status.get("eta_s"))
        parts = [stage, status.get("architecture"), eta]
        st.progress(min(max(fraction, 0.0), 1.0), text=" · ".join(p for p in parts if p))
        st.caption(status.get("message", ""))
        if (job.search_dir / "selected.json").is_file():
            st.page_link("app_pages/results.py", label="The selected model can already be explored on Results",
                         icon=":material/insights:")
        cancelling = (job.folder / "STOP").exists()
        c1, c2 = st.columns([1, 4])
        if c1.button("Cancel training", key=f"cancel-{job.id}", disabled=cancelling, icon=":material/stop:"):
            job.cancel()
            st.toast("Stopping at the next batch; finished architectures are kept.")
        if cancelling:
            c2.info("Stopping… finished architectures are kept.")
            stop_age = time.time() - (job.folder / "STOP").stat().st_mtime
            if stop_age > 30 and c2.button("Force stop", key=f"kill-{job.id}"):
                job.kill()
    elif state == "finished":
        st.progress(1.0, text="Finished")
        st.success(f"Training finished: {status.get('message', '')}. Open **Results** to explore the model.")
        st.page_link("app_pages/results.py", label="Open the results", icon=":material/insights:")
    elif state == "cancelled":
        st.warning("Training was cancelled. Finished architectures are kept; **Resume** continues the search.")
    elif state == "interrupted":
        st.warning(status.get("message", "The training process stopped unexpectedly."))
    elif state == "failed":
        st.error(f"Training failed: {status.get('message') or status.get('error')}")
    if state in ("cancelled", "interrupted", "failed") and st.button("Resume", key=f"resume-{job.id}",
                                                                        icon=":material/replay:"):
        jobs.resume(job)
        st.rerun()

    st.markdown("**Leaderboard** — every finished architecture, best validation AUC first")
    board = leaderboard(job)
    if board.empty:
        st.caption("The first architecture appears here as soon as it is trained.")
    else:
        shown = board.assign(**{c: board[c].map(ui.p_text) for c in ("smallest pairwise p", "largest pairwise p")})
        st.dataframe(shown, hide_index=True, width="stretch", placeholder=ui.MISSING,
                     column_config={"validation AUC": st.column_config.NumberColumn(format="%.3f"),
                                    "seconds": st.column_config.NumberColumn(format="%.1f")})
        st.download_button("Download CSV", board.to_csv(index=False).encode(), f"leaderboard-{job.id}.csv",
                           "text/csv", key=f"csv-board-{job.id}", icon=":material/download:")
    if was_active and state not in jobs.ACTIVE_STATES:
        st.rerun()  # the run ended: redraw the whole page (stop polling, show the results link)


def main():
    st.title("Train")
    cohort, name = ui.current_cohort()
    st.write(f"Training on **{name}**: {cohort.n_patients:,} patients, outcome rate "
             f"{ui.pct(cohort.patients['outcome'].mean(), 1)}. DICE learns a representation of each patient's "
             "sequence and groups patients into K risk levels whose outcome rates differ significantly.")
    settings = settings_form(cohort)
    if settings is not None:
        running = jobs.running_duplicate(name, cohort.n_patients, settings)
        if running is not None:
            ui.follow_job(running)
            st.info("The same training (this cohort, these settings) is already running; it is shown below.")
        else:
            with st.spinner("Starting the training process…"):
                job = jobs.create_job(cohort, name, settings)
                jobs.start(job)
            ui.follow_job(job)
            st.toast("Training started. You can change page or close the tab; it keeps running.")

    st.header("Training runs")
    job = ui.job_picker("Show run", key="train_job")
    if job is None:
        st.info("No training run yet: press **Start training** above.")
        return
    active = job.active
    panel = st.fragment(job_panel, run_every=POLL_SECONDS if active else None)
    panel(job.id, active)


ui.guard(main)
