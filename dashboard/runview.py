"""One trained model of one run, as the Results and Patient pages see it: cached readers of the
files the worker wrote, and the figures built from them (also used for the HTML report).

Nothing is trained or fitted here: the numbers come from dice_core (model, scores, evaluation)
and dice_core.viz (figures, profiles)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import jobs, store, ui
from dice_core.viz import figures as F
from dice_core.viz import profiles as P
from dice_core.viz.embedding import load_map

SELECTED = "model"
PREDICTOR_NAMES = {"DICE representation": "DICE (representation)",
                   "DICE representation + covariates": "DICE (representation + covariates)",
                   "DICE outcome head": "DICE (outcome model)"}


def _stamp(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=4, show_spinner="Reading the run's cohort…")
def _cohort(folder: str, stamp: float):
    return store.read_cohort(folder)


@st.cache_data(max_entries=32, show_spinner=False)
def _csv(path: str, stamp: float) -> pd.DataFrame | None:
    p = Path(path)
    if not p.is_file():
        return None
    return pd.read_csv(p, dtype={"patient_id": str, "split": str})


@st.cache_data(max_entries=16, show_spinner="Finding the most distinguishing variables…")
def _distinguishing(job_id: str, name: str, stamp: float, _events, _clusters, top: int):
    return P.distinguishing_variables(_events, _clusters, top=top)


@st.cache_data(max_entries=16, show_spinner="Averaging trajectories per risk level…")
def _trajectories(job_id: str, name: str, stamp: float, variables: tuple, bin_hours: float, window: float,
                  _events, _clusters):
    return P.cluster_trajectories(_events, _clusters, list(variables), bin_hours, window)


@st.cache_data(max_entries=16, show_spinner=False)
def _signatures(job_id: str, name: str, stamp: float, _events, _clusters):
    return P.cluster_signatures(_events, _clusters, top=3)


def architecture_name(record: dict) -> str:
    return f"K{record['K']}_d{record['d']}_it{record['n_iter']}"


class RunView:
    """The selected model (name "model") or another architecture of a finished search."""

    def __init__(self, job: jobs.Job, name: str = SELECTED):
        self.job, self.name = job, name
        self.folder = store.analysis_dir(job.folder, name)

    # -- files ---------------------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        return self.job.model_dir if self.name == SELECTED else self.job.search_dir / "architectures" / self.name

    @property
    def model(self):
        return ui.load_model_cached(self.model_path)

    @property
    def cohort(self):
        return _cohort(str(self.job.cohort_dir), _stamp(self.job.cohort_dir / "cohort.json"))

    @property
    def scores(self) -> pd.DataFrame | None:
        path = self.folder / "scores.csv"
        return _csv(str(path), _stamp(path))

    @property
    def prepared(self) -> bool:
        return self.scores is not None

    def map(self, name: str | None = None) -> pd.DataFrame | None:
        path = store.analysis_dir(self.job.folder, name or self.name) / "map.csv"
        return load_map(path) if path.is_file() else None

    def result_table(self, name: str) -> pd.DataFrame | None:
        path = self.job.results_dir / f"{name}.csv"
        return _csv(str(path), _stamp(path))

    @property
    def K(self) -> int:
        return int(self.model.config.n_clusters)

    @property
    def title(self) -> str:
        cfg = self.model.config
        return f"K={cfg.n_clusters}, d={cfg.hidden_size}" + (" (selected)" if self.name == SELECTED else "")

    # -- patients table for maps and profiles ---------------------------------------------------
    def patient_frame(self) -> pd.DataFrame:
        """Scores joined with the cohort's covariates and group, one row per patient."""
        scores = self.scores.copy()
        cohort = self.cohort
        extra = [c for c in [*cohort.covariates, cohort.group] if c]
        info = cohort.patients[list(dict.fromkeys(extra))].reindex(scores["patient_id"]).reset_index(drop=True)
        frame = pd.concat([scores.reset_index(drop=True), info], axis=1)
        frame["Outcome"] = np.where(frame["outcome"] == 1, "yes", "no")
        frame["Risk level"] = [F.risk_label(int(k), self.K) for k in frame["cluster"]]
        return frame

    def clusters_of(self, split: str | None = "train") -> pd.Series:
        scores = self.scores
        rows = scores if split is None else scores[scores["split"] == split]
        return pd.Series(rows["cluster"].to_numpy(), index=pd.Index(rows["patient_id"], name="patient_id"))

    # -- figures ---------------------------------------------------------------------------------
    def search_figure(self):
        records = pd.DataFrame(self.job.records())
        return F.search_figure(records, self.job.selected())

    def map_figure(self, frame_map: pd.DataFrame, color: str, split: str = "all", selected_ids=None,
                   title: str | None = None):
        """The UMAP of this model coloured by risk level, outcome, a covariate or the group."""
        frame = self.patient_frame().merge(frame_map[["patient_id", "x", "y"]], on="patient_id")
        if split != "all":
            frame = frame[frame["split"] == split]
        cohort = self.cohort
        hover = ["patient_id", "Outcome", "Risk level", *[c for c in [*cohort.covariates, cohort.group] if c]]
        hover = list(dict.fromkeys(hover))
        where = {"all": "all patients", "train": "training patients", "test": "test patients"}[split]
        if color == "Risk level":
            labels = F.cluster_legend_labels(frame["cluster"], frame["outcome"], self.K)
            frame["legend"] = frame["cluster"].map(labels)
            order = [labels[k] for k in range(self.K)]
            colors = dict(zip(order, F.risk_colors(self.K)))
            return F.map_figure(frame, "legend", title or f"Patients by risk level ({where})", hover,
                                categorical=True, color_order=order, colors=colors, selected_ids=selected_ids)
        if color == "Outcome":
            return F.map_figure(frame, "Outcome", title or f"Patients by outcome ({where})", hover, categorical=True,
                                color_order=["no", "yes"], colors=F.OUTCOME_COLORS, selected_ids=selected_ids)
        return F.map_figure(frame, color, title or f"Patients by {color} ({where})", hover,
                            selected_ids=selected_ids)

    def baseline_map_figure(self, name: str, split: str = "all"):
        """A baseline's map coloured by its own k-means clusters (ordered by outcome rate)."""
        folder = store.analysis_dir(self.job.folder, name)
        scores = store.read_scores(folder)
        frame_map = self.map(name)
        if scores is None or frame_map is None:
            return None
        frame = scores.merge(frame_map[["patient_id", "x", "y"]], on="patient_id")
        if split != "all":
            frame = frame[frame["split"] == split]
        K = int(frame["cluster"].max()) + 1
        labels = F.cluster_legend_labels(frame["cluster"], frame["outcome"], K)
        frame["legend"] = frame["cluster"].map(labels)
        frame["Outcome"] = np.where(frame["outcome"] == 1, "yes", "no")
        order = [labels[k] for k in range(K)]
        title = store.read_analysis_meta(folder).get("name", name)
        return F.map_figure(frame, "legend", title, ["patient_id", "Outcome"], categorical=True, color_order=order,
                            colors=dict(zip(order, F.risk_colors(K))), height=420)

    def baseline_names(self) -> list[str]:
        """The baselines' analyses in the paper's order: PCA, AE, AE + classification."""
        order = {"baseline-PCA": 0, "baseline-AE": 1, "baseline-AE-classification": 2}
        names = [n for n in store.list_analyses(self.job.folder) if n.startswith("baseline-")]
        return sorted(names, key=lambda n: (order.get(n, 9), n))

    def significance_figure(self, holm: bool = False):
        sig = self.model.significance_
        p = sig.holm() if holm else sig.p_values
        return F.pvalue_heatmap(p, sig.alpha, corrected=holm,
                                title="Do the risk levels differ in outcome? Pairwise likelihood-ratio tests")

    def risk_table(self) -> pd.DataFrame:
        """The clinician's table of risk levels (training patients, exact statistics)."""
        sig = self.model.significance_
        s = sig.summary()
        K = self.K
        return pd.DataFrame({
            "Risk level": [F.risk_label(int(k), K) for k in s["cluster"]],
            "Patients": s["size"], "With outcome": s["events"],
            "Outcome rate": s["outcome_rate"], "Rate 95% CI low": s["rate_ci_low"],
            "Rate 95% CI high": s["rate_ci_high"], "Odds ratio": s["odds_ratio"],
            "OR 95% CI low": s["or_ci_low"], "OR 95% CI high": s["or_ci_high"],
            "p vs reference": s["p_vs_reference"], "Note": s["note"],
        })

    @property
    def adjusted_for(self) -> str:
        """The covariates the exact test adjusted for, in words (from the test's own design columns)."""
        return F.covariates_text(self.model.significance_.covariate_names)

    def forest_figure(self):
        sig = self.model.significance_
        return F.forest_plot(sig.summary(), sig.reference, self.adjusted_for)

    def rate_figure(self):
        return F.rate_figure(self.model.significance_.summary())

    def top_variables(self, top: int = 6) -> pd.DataFrame:
        clusters = self.clusters_of("train")
        return _distinguishing(self.job.id, self.name, _stamp(self.folder / "scores.csv"),
                               self.cohort.events, clusters, top)

    def trajectories(self, variables) -> pd.DataFrame:
        pre = self.model.preprocess
        return _trajectories(self.job.id, self.name, _stamp(self.folder / "scores.csv"), tuple(variables),
                             float(pre.bin_hours), float(pre.window_hours), self.cohort.events,
                             self.clusters_of("train"))

    def signatures(self) -> pd.DataFrame:
        table = _signatures(self.job.id, self.name, _stamp(self.folder / "scores.csv"), self.cohort.events,
                            self.clusters_of("train"))
        if table.empty:
            return table
        return pd.DataFrame({
            "Risk level": [F.risk_label(int(k), self.K) for k in table["cluster"]],
            "Variable": table["variable"], "Compared with the other patients": table["direction"],
            "Mean in this level": table["cluster_mean"], "Mean in the others": table["others_mean"],
            "Standardised difference": table["smd"],
        })


def prediction_table(view: RunView, threshold: float | None) -> pd.DataFrame | None:
    """Table 2: the evaluation's metrics, recomputed on the test patients at one threshold when asked."""
    from dice_core.evaluation import outcome_metrics

    table = view.result_table("prediction")
    if table is None:
        return None
    if threshold is not None:
        preds = view.result_table("test_predictions")
        y = view.scores.set_index("patient_id")["outcome"].reindex(preds["patient_id"]).to_numpy()
        table = pd.DataFrame([{"predictor": name, **outcome_metrics(y, preds[name].to_numpy(), threshold)}
                              for name in preds.columns if name != "patient_id"])
    out = table[["predictor", "auc", "acc", "tpr", "tnr", "ppv", "npv", "fpr", "fnr", "threshold", "n"]].copy()
    out["predictor"] = out["predictor"].map(lambda p: PREDICTOR_NAMES.get(p, p))
    return out.rename(columns={"predictor": "Predictor", "auc": "AUC", "acc": "Accuracy",
                               "tpr": "Sensitivity (TPR)", "tnr": "Specificity (TNR)", "ppv": "PPV", "npv": "NPV",
                               "fpr": "FPR", "fnr": "FNR", "threshold": "Threshold", "n": "Test patients"})


def build_report(view: RunView) -> bytes:
    """The whole run as one self-contained HTML file (figures interactive, no internet needed)."""
    from dice_core.viz.report import ReportSection, build_html_report

    model, cohort, spec = view.model, view.cohort, view.job.spec
    sig = model.significance_
    summary = (f"Cohort: {spec.get('cohort_name')} ({cohort.n_patients:,} patients, outcome rate "
               f"{ui.pct(cohort.patients['outcome'].mean())}). Model: {view.title}; validation AUC "
               f"{model.val_auc_:.3f}; every pair of risk levels differs significantly: "
               f"{'yes' if sig.all_significant else 'no'} (α = {sig.alpha:g}; outcome model adjusted for "
               f"{view.adjusted_for}).")
    sections = [ReportSection("Summary", [summary]),
                ReportSection("Architecture search", [view.search_figure(), pd.DataFrame(view.job.records())
                               .drop(columns=["S", "cluster_sizes", "cluster_rates"], errors="ignore")])]
    frame_map = view.map()
    if frame_map is not None:
        sections.append(ReportSection("Patient map", [view.map_figure(frame_map, "Risk level", "all")]))
    sections.append(ReportSection("Significance", [view.significance_figure(False), view.significance_figure(True)]))
    sections.append(ReportSection("Risk levels", [view.risk_table(), view.rate_figure(), view.forest_figure()]))
    top = view.top_variables(top=6)
    profile_items = [view.signatures()]
    if not top.empty:
        profile_items.append(F.trajectory_figure(view.trajectories(top["variable"].tolist()), view.K))
    sections.append(ReportSection("Cluster profiles", profile_items))
    if view.name == SELECTED and view.result_table("clustering") is not None:
        sections.append(ReportSection("DICE against the baselines (test patients)", [
            "Clustering quality (paper Table 1):", view.result_table("clustering"),
            "Outcome prediction at thresholds chosen on the validation patients (paper Table 2):",
            prediction_table(view, None)]))
        groups = view.result_table("group_auc")
        if groups is not None and not groups.empty:
            keys = ["representation", "group", "n", "positives"]
            wide = None
            for predictor, part in groups.groupby("predictor", sort=False):
                part = part[keys + ["auc"]].rename(columns={"auc": f"AUC: {predictor} as predictor"})
                wide = part if wide is None else wide.merge(part, on=keys, how="outer", sort=False)
            sections.append(ReportSection(f"AUC within each {cohort.group or 'group'} (test patients)", [wide]))
    html = build_html_report(f"DICE Studio report: {spec.get('cohort_name', '')}", sections,
                             subtitle=f"Run {view.job.id}.")
    return html.encode("utf-8")
