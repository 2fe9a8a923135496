"""Results page: the search, the patient map, significance, risk levels, cluster profiles,
DICE against the baselines, fairness and calibration, and the HTML report."""
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import jobs, store, ui
from dashboard.runview import SELECTED, RunView, architecture_name, build_report, prediction_table
from dice_core.viz import figures as F

TABS = ["Search", "Patient map", "Significance", "Risk levels", "Cluster profiles", "DICE vs baselines",
        "Fairness & calibration"]


def has_model(job: jobs.Job) -> bool:
    return (job.model_dir / "model.json").is_file()


def choose_model(job: jobs.Job) -> str:
    """The selected model, or another finished architecture of the same search."""
    records = job.records()
    selected = job.selected() or {}
    names = [SELECTED] + [architecture_name(r) for r in sorted(records, key=lambda r: (r["K"], r["d"]))
                          if not (selected and architecture_name(r) == architecture_name(selected))]
    by_name = {architecture_name(r): r for r in records}

    def label(name):
        r = selected if name == SELECTED else by_name.get(name, {})
        sig = "all levels differ" if r.get("all_significant") else "not all levels differ"
        auc = r.get("val_auc")
        auc = f"{auc:.3f}" if isinstance(auc, (int, float)) else "n/a"
        return f"{'Selected model: ' if name == SELECTED else ''}K={r.get('K')}, d={r.get('d')} · validation AUC {auc} · {sig}"

    return st.selectbox("Model", names, format_func=label, key="results_model",
                        help="The search selects the best architecture; any other finished one can be explored too.")


def preparing_panel(view: RunView):
    """Scores and map of a non-selected architecture are made on request, in the background."""
    marker = view.folder / "preparing.json"
    state = jobs.read_json(marker, {}) if marker.is_file() else {}
    if state.get("state") == "running" and jobs.pid_alive(int(state.get("pid", 0) or 0)):
        st.info("Preparing this architecture (scores and map, about half a minute)…")
        st.fragment(lambda: st.rerun() if view.prepared else st.caption("still working…"), run_every=2)()
        return
    if state.get("state") == "failed":
        st.error(f"Preparing this architecture failed: {state.get('error')}")
    st.info("This architecture's scores and patient map are not ready yet.")
    if st.button("Prepare this architecture (about half a minute)", type="primary", key="prepare_arch"):
        jobs.start(view.job, "prepare", view.name)
        store.analysis_dir(view.job.folder, view.name).mkdir(parents=True, exist_ok=True)
        jobs.write_json(marker, {"state": "running", "pid": 0})
        st.rerun()


# -- tabs ---------------------------------------------------------------------------------------
def tab_search(view: RunView):
    st.caption("Each point is one architecture: K clusters and a representation of size d. Filled circles: every "
               "pair of risk levels differs significantly in outcome; crosses: at least one pair does not. The "
               "selected model is ringed.")
    ui.show_figure(view.search_figure(), "search-auc-by-d", key="fig-search")
    records = pd.DataFrame(view.job.records())
    if not records.empty:
        table = records[["K", "d", "n_iter", "val_auc", "all_significant", "min_p", "max_p", "smallest_cluster",
                         "seconds"]].rename(columns={"n_iter": "iterations", "val_auc": "validation AUC",
                                                     "all_significant": "all levels differ",
                                                     "min_p": "smallest pairwise p", "max_p": "largest pairwise p",
                                                     "smallest_cluster": "smallest risk level (patients)"})
        shown = table.assign(**{c: table[c].map(ui.p_text) for c in ("smallest pairwise p", "largest pairwise p")},
                             **{"all levels differ": table["all levels differ"].map({True: "yes", False: "no"})})
        ui.show_table(shown, "search-records", key="csv-search", csv=table,
                      column_config={"validation AUC": st.column_config.NumberColumn(format="%.3f"),
                                     "seconds": st.column_config.NumberColumn(format="%.1f")})


def selected_ids_from(event, frame: pd.DataFrame) -> list[str]:
    """Patient ids of a lasso/box selection (from hover data, else from the coordinates)."""
    try:
        points = event.selection.points if event is not None else []
    except AttributeError:
        points = []
    ids = []
    for point in points or []:
        custom = point.get("customdata") if isinstance(point, dict) else None
        if custom:
            ids.append(str(custom[0]))
            continue
        x, y = point.get("x"), point.get("y")
        match = frame[(np.isclose(frame["x"], x)) & (np.isclose(frame["y"], y))]
        ids.extend(match["patient_id"].astype(str).tolist())
    return list(dict.fromkeys(ids))


def selection_summary(frame: pd.DataFrame, ids: list[str], covariates: list[str]) -> pd.DataFrame:
    """The selected patients against the rest: size, outcome rate, risk levels and covariates."""
    chosen = frame["patient_id"].isin(ids)
    rows = {}
    for label, part in (("Selected", frame[chosen]), ("The rest", frame[~chosen])):
        share = lambda mask: ui.pct(mask.mean(), 1) if len(part) else "n/a"  # noqa: E731
        col = {"Patients": f"{len(part):,}", "Outcome rate": share(part["outcome"] == 1)}
        for level in sorted(frame["Risk level"].unique()):
            col[f"In {level}"] = share(part["Risk level"] == level)
        for c in covariates:
            if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 5:
                col[f"{c}: mean"] = f"{part[c].mean():.1f}" if len(part) else "n/a"
            else:
                for v in sorted(frame[c].dropna().unique(), key=str)[:8]:
                    col[f"{c} = {v}"] = share(part[c] == v)
        rows[label] = col
    return pd.DataFrame(rows).rename_axis("").reset_index()


def tab_map(view: RunView):
    frame_map = view.map()
    if frame_map is None:
        state = view.job.state
        if state in jobs.ACTIVE_STATES:
            st.info("The map is being prepared by the training process; it appears here when ready.")
            st.fragment(lambda: st.rerun() if view.map() is not None else None, run_every=3)()
        else:
            st.info("No map was made for this model.")
            if st.button("Make the map (about half a minute)", key="make_map"):
                jobs.start(view.job, "prepare", view.name)
                st.rerun()
        return
    cohort = view.cohort
    extra = list(dict.fromkeys(c for c in [*cohort.covariates, cohort.group] if c))
    c1, c2 = st.columns([2, 1])
    color = c1.radio("Colour by", ["Risk level", "Outcome", *extra], horizontal=True, key="map_color")
    split = c2.radio("Patients", ["all", "train", "test"], horizontal=True, key="map_split",
                     format_func={"all": "all", "train": "training", "test": "test"}.get)
    st.caption("The map (UMAP) is fitted on the training patients; the others are placed on it. Nearby patients "
               "have similar representations. Hover for details; draw a lasso or a box to compare the selected "
               "patients with the rest.")
    fig = view.map_figure(frame_map, color, split)
    event = st.plotly_chart(fig, config=ui.figure_config("patient-map"), key="fig-map", on_select="rerun",
                            selection_mode=("box", "lasso"))
    frame = view.patient_frame().merge(frame_map[["patient_id", "x", "y"]], on="patient_id")
    ids = selected_ids_from(event, frame)
    if ids:
        st.markdown(f"**{len(ids)} selected patients against the rest**")
        ui.show_table(selection_summary(frame, ids, extra), "selection-vs-rest", key="csv-selection")
    if st.checkbox("Show the baselines' maps beside DICE's (the paper's Figure 3)", key="map_baselines"):
        names = view.baseline_names()
        if not names:
            st.info("Baseline maps are made when the run compares with the baselines (a Train page option).")
            return
        figs = [view.map_figure(frame_map, "Risk level", split, title="DICE")]
        figs += [view.baseline_map_figure(n, split) for n in names]
        cols = st.columns(2)
        for i, f in enumerate(f for f in figs if f is not None):
            f.update_layout(height=440, showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.04),
                            dragmode="pan", xaxis_title=None, yaxis_title=None)
            with cols[i % 2]:
                ui.show_figure(f, f"map-{f.layout.title.text}", key=f"fig-baseline-{i}")


def tab_significance(view: RunView):
    sig = view.model.significance_
    holm = st.toggle("Holm correction for multiple comparisons", key="holm",
                     help="Adjusts the K(K-1)/2 pairwise p-values so the chance of any false 'differs' stays ≤ α.")
    st.caption(f"Likelihood-ratio test of the outcome model (adjusted for {view.adjusted_for}) "
               f"on the {sig.n_obs:,} training patients: does merging two risk levels lose information about the "
               "outcome? Blue: the two levels differ significantly; red: they do not.")
    ui.show_figure(view.significance_figure(holm), "pairwise-p-values", key="fig-pvalues")
    pairs = sig.pairs()
    K = view.K
    table = pd.DataFrame({"Level A": [F.risk_label(int(k), K) for k in pairs["k1"]],
                          "Level B": [F.risk_label(int(k), K) for k in pairs["k2"]],
                          "G statistic": pairs["G"], "p": pairs["p"], "p (Holm)": pairs["p_holm"],
                          "Differ (p < α)": pairs["significant"].map({True: "yes", False: "no"}),
                          "Differ after Holm": pairs["significant_holm"].map({True: "yes", False: "no"}),
                          "Note": pairs["note"]})
    shown = table.assign(p=table["p"].map(ui.p_text), **{"p (Holm)": table["p (Holm)"].map(ui.p_text)})
    ui.show_table(shown, "pairwise-tests", key="csv-pairs", csv=table,
                  column_config={"G statistic": st.column_config.NumberColumn(format="%.2f")})
    for note in sig.notes:
        st.warning(note)


def risk_display(table: pd.DataFrame) -> pd.DataFrame:
    """The risk-level table as read aloud: rate and odds ratio with their intervals in one cell each."""
    reference = table["Note"].astype(str).str.startswith("reference level").to_numpy()
    rates, odds, p = [], [], []
    for is_ref, (_, row) in zip(reference, table.iterrows()):
        rate_ci = ui.interval_text(row["Rate 95% CI low"], row["Rate 95% CI high"], "{:.1%}")
        rates.append(f"{ui.pct(row['Outcome rate'], 1)} ({rate_ci})")
        or_ci = ui.interval_text(row["OR 95% CI low"], row["OR 95% CI high"])
        odds.append("1 (reference)" if is_ref else f"{row['Odds ratio']:.2f} ({or_ci})")
        p.append(ui.MISSING if is_ref else ui.p_text(row["p vs reference"]))
    return pd.DataFrame({"Risk level": table["Risk level"], "Patients": table["Patients"],
                         "With outcome": table["With outcome"], "Outcome rate (95% CI)": rates,
                         "Odds ratio (95% CI)": odds, "p vs the lowest-risk level": p,
                         "Note": table["Note"].str.replace("reference level", "reference", regex=False)})


def tab_risk(view: RunView):
    st.caption("Each risk level's patients in the training split, the share who had the outcome (95% Wilson "
               f"interval), and the odds ratio against the lowest-risk level, adjusted for {view.adjusted_for}.")
    table = view.risk_table()
    ui.show_table(risk_display(table), "risk-levels", key="csv-risk", csv=table)
    c1, c2 = st.columns(2)
    with c1:
        ui.show_figure(view.rate_figure(), "outcome-rate-by-risk-level", key="fig-rates")
    with c2:
        ui.show_figure(view.forest_figure(), "odds-ratios-forest-plot", key="fig-forest")


def tab_profiles(view: RunView):
    cohort = view.cohort
    frame = view.patient_frame()
    train = frame[frame["split"] == "train"]
    extra = list(dict.fromkeys(c for c in [*cohort.covariates, cohort.group] if c))
    st.subheader("What marks each risk level")
    signatures = view.signatures()
    if signatures.empty:
        st.caption("Not enough measurements to compare the risk levels.")
    else:
        st.caption("Per risk level, the variables whose patient means differ most from the other training "
                   "patients' (standardised difference: 0.2 small, 0.5 medium, 0.8 large).")
        ui.show_table(signatures, "risk-level-signatures", key="csv-signatures",
                      column_config={"Mean in this level": st.column_config.NumberColumn(format="%.3g"),
                                     "Mean in the others": st.column_config.NumberColumn(format="%.3g"),
                                     "Standardised difference": st.column_config.NumberColumn(format="%.2f")})
    st.subheader("Mean trajectories of the most distinguishing variables")
    top = view.top_variables(top=12)
    if top.empty:
        st.caption("No variable is measured often enough in every risk level.")
    else:
        default = top["variable"].head(6).tolist()
        chosen = st.multiselect("Variables", top["variable"].tolist() + [v for v in cohort.variables
                                                                          if v not in top["variable"].tolist()],
                                default=default, key="profile_vars",
                                help="Ranked by how much they differ between risk levels (Kruskal-Wallis).")
        if chosen:
            fig = F.trajectory_figure(view.trajectories(chosen), view.K,
                                      title="Mean over the training patients of each risk level (band: ±1 standard error)")
            ui.show_figure(fig, "trajectories-by-risk-level", key="fig-trajectories")
    if extra:
        st.subheader("Covariates by risk level")
        covariate = st.selectbox("Covariate", extra, key="profile_cov")
        ui.show_figure(F.covariate_figure(train[covariate], train["cluster"], view.K, covariate),
                       f"{covariate}-by-risk-level", key="fig-covariate")


def tab_baselines(view: RunView):
    if view.name != SELECTED:
        st.info("The comparison with the baselines is computed for the selected model.")
        return
    clustering = view.result_table("clustering")
    if clustering is None:
        st.info("This run did not compare with the baselines (a Train page option), or it is still running.")
        return
    st.subheader("Clustering quality on the test patients (paper Table 1)")
    st.caption("Silhouette: higher is better (−1 to 1). Calinski-Harabasz: higher is better. "
               "Davies-Bouldin: lower is better. Each method's clusters on its own representation.")
    table1 = clustering[["representation", "silhouette", "calinski_harabasz", "davies_bouldin", "n"]].rename(
        columns={"representation": "Representation", "silhouette": "Silhouette",
                 "calinski_harabasz": "Calinski-Harabasz", "davies_bouldin": "Davies-Bouldin", "n": "Test patients"})
    ui.show_table(table1, "clustering-metrics", key="csv-table1",
                  column_config={"Silhouette": st.column_config.NumberColumn(format="%.3f"),
                                 "Calinski-Harabasz": st.column_config.NumberColumn(format="%.1f"),
                                 "Davies-Bouldin": st.column_config.NumberColumn(format="%.3f")})
    st.subheader("Outcome prediction on the test patients (paper Table 2)")
    mode = st.radio("Decision threshold", ["chosen on the validation patients", "the same threshold for all"],
                    horizontal=True, key="threshold_mode",
                    help="By default each predictor's threshold maximises sensitivity + specificity − 1 (Youden) on "
                         "the validation patients, never on the test patients.")
    threshold = None
    if mode != "chosen on the validation patients":
        default = view.result_table("prediction")
        head = default[default["predictor"] == "DICE outcome head"]["threshold"]
        threshold = st.slider("Threshold (predict 'outcome' when the probability is at least this)", 0.0, 1.0,
                              float(head.iloc[0]) if len(head) else 0.5, 0.01, key="threshold")
    table2 = prediction_table(view, threshold)
    sizes = table2["Test patients"].unique()
    shown = table2.drop(columns="Test patients") if len(sizes) == 1 else table2  # one size: said below instead
    ui.show_table(shown, "prediction-metrics", key="csv-table2", csv=table2,
                  column_config={c: st.column_config.NumberColumn(format="%.3f")
                                 for c in shown.columns if c not in ("Predictor", "Test patients")})
    on = f"the same {int(sizes[0]):,} test patients" if len(sizes) == 1 else "the test patients"
    st.caption(f"Every predictor is evaluated on {on}. The DICE rows use the learned representation (logistic "
               "regression, as in the paper) and DICE's own outcome model. The reference is a logistic regression "
               "on each variable's mean, min, max and last value plus the covariates. Sensitivity: share of the "
               "patients with the outcome who are flagged; specificity: share of the others who are not; PPV/NPV: "
               "share of flagged/unflagged patients whose prediction is right.")


def tab_fairness(view: RunView):
    from dice_core.evaluation import group_auc

    cohort = view.cohort
    preds = view.result_table("test_predictions")
    frame = view.patient_frame()
    test = frame[frame["split"] == "test"].set_index("patient_id")
    candidates = [c for c in [cohort.group, *cohort.covariates]
                  if c and not (pd.api.types.is_numeric_dtype(test[c]) and test[c].nunique() > 10)]
    st.subheader("AUC within each group")
    if not candidates:
        st.info("The cohort has no group column (e.g. race); choose one on the Cohort page.")
    elif preds is None and view.name == SELECTED:
        st.info("Per-group AUC needs the comparison with the baselines (a Train page option).")
    else:
        column = st.selectbox("Group column", list(dict.fromkeys(candidates)), key="fair_group")
        min_size = st.number_input("Warn below this many test patients per group", 5, 1000, 30, key="fair_min")
        groups = test[column].astype(str).fillna("missing")
        parts = [("Risk level (cluster membership)", test["cluster_outcome_rate"])]
        if preds is not None and view.name == SELECTED:
            rep = preds.set_index("patient_id")["DICE representation"].reindex(test.index)
            parts.append(("DICE representation", rep))
        merged = None
        for label, score in parts:
            g = group_auc(test["outcome"].to_numpy(), score.to_numpy(dtype=float), groups.to_numpy(), int(min_size))
            g = g.rename(columns={"auc": f"AUC: {label}"})
            merged = g if merged is None else merged.merge(g[["group", f"AUC: {label}"]], on="group")
        merged["Small group"] = merged["small_group"].map({True: "⚠ small: AUC unreliable", False: ""})
        aucs = [c for c in merged.columns if c.startswith("AUC: ")]
        table = merged[["group", "n", "positives", *aucs, "Small group", "note"]].rename(
            columns={"group": column, "n": "Test patients", "positives": "With outcome", "note": "Note"})
        small = table[table["Small group"] != ""][column].tolist()
        if small:
            st.warning(f"Groups with fewer than {min_size} test patients ({', '.join(map(str, small))}): their AUC "
                       "has a wide margin of error; do not compare it with the others.")
        ui.show_table(table, f"auc-by-{column}", key="csv-fairness",
                      column_config={c: st.column_config.NumberColumn(format="%.3f") for c in aucs})
        fig_table = table.rename(columns={column: "group", **{c: c.replace("AUC: ", "AUC ") for c in aucs}})
        ui.show_figure(F.group_auc_figure(fig_table, column), f"auc-by-{column}", key="fig-fairness")
    st.subheader("Calibration")
    if preds is None or view.name != SELECTED:
        st.info("Calibration is shown for the selected model of a run that compared with the baselines.")
        return
    y = view.scores.set_index("patient_id")["outcome"].reindex(preds["patient_id"]).to_numpy()
    probabilities = {"DICE outcome model": preds["DICE outcome head"].to_numpy()}
    reference = [c for c in preds.columns if c.startswith("summary statistics")]
    if reference:
        probabilities["Reference (summary statistics)"] = preds[reference[0]].to_numpy()
    n_bins = int(np.clip(len(y) // 20, 3, 10))  # at least about 20 patients behind each point
    st.caption(f"The {len(y):,} test patients sorted by predicted probability, in {n_bins} groups of equal size: "
               "a well calibrated model's points lie on the diagonal. Patients with the same prediction stay in "
               "one group.")
    ui.show_figure(F.calibration_figure(y, probabilities, n_bins), "calibration", key="fig-calibration")


def main():
    st.title("Results")
    job = ui.job_picker("Training run", only=has_model, key="results_job")
    if job is None:
        active = [j for j in jobs.list_jobs() if j.active]
        if active:
            st.info("A training run is in progress; its results appear here when it finishes.")
            st.page_link("app_pages/train.py", label="Follow the training", icon=":material/model_training:")
        else:
            st.info("No trained model yet. Train one on the **Train** page (the demo takes about a minute).")
            st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    name = choose_model(job)
    view = RunView(job, name)
    if job.active and name == SELECTED:
        st.info("This run is still finishing (baselines and maps); some tabs fill in when it is done.")
    if not view.prepared:
        preparing_panel(view)
        return
    model = view.model
    c = st.columns(5)
    c[0].metric("Risk levels (K)", view.K)
    c[1].metric("Representation size (d)", model.config.hidden_size)
    c[2].metric("Validation AUC", f"{model.val_auc_:.3f}")
    c[3].metric("All levels differ", "yes" if model.significance_.all_significant else "no")
    c[4].download_button("HTML report", lambda: build_report(view), f"dice-report-{job.id}.html",
                         "text/html", key="report", icon=":material/description:", type="primary")
    tabs = st.tabs(TABS)
    for tab, body in zip(tabs, [tab_search, tab_map, tab_significance, tab_risk, tab_profiles, tab_baselines,
                                tab_fairness]):
        with tab:
            ui.guard(lambda body=body: body(view))


ui.guard(main)
