"""Plotly figures shared by the dashboard, the HTML report and the CLI.

Every builder takes plain arrays or DataFrames and returns a `go.Figure`; none reads files or
trains anything. Clusters are risk levels: cluster 0 is "risk level 1 (highest)" and always has
the same (red) colour, the lowest-risk cluster is blue-green.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TEMPLATE = "plotly_white"
# Highest risk first: red, orange, gold, then cool colours for the lower-risk clusters.
RISK_COLORS = ["#c0392b", "#e67e22", "#d4ac0d", "#7f8c8d", "#16a085", "#2980b9", "#8e44ad", "#2c3e50",
               "#27ae60", "#1abc9c"]
OUTCOME_COLORS = {"no": "#5d9cec", "yes": "#d9534f"}
SIGNIFICANT_COLOR, NOT_SIGNIFICANT_COLOR = "#2e86c1", "#e74c3c"


def risk_label(k: int, K: int) -> str:
    """Clinician wording of cluster k of K: 'Risk level 1 (highest)' ... 'Risk level K (lowest)'."""
    if k == 0:
        return "Risk level 1 (highest)"
    if k == K - 1:
        return f"Risk level {K} (lowest)"
    return f"Risk level {k + 1}"


def risk_colors(K: int) -> list[str]:
    """K colours from highest to lowest risk; the lowest-risk cluster is always blue-green."""
    if K <= 1:
        return RISK_COLORS[:1]
    warm = RISK_COLORS[:max(K - 1, 1)]
    return (warm[:K - 1] + ["#16a085"]) if K <= 4 else RISK_COLORS[:K]


def cluster_legend_labels(clusters, y, K: int) -> dict[int, str]:
    """Legend text per cluster: risk level, its outcome rate and size in the given patients."""
    clusters, y = np.asarray(clusters), np.asarray(y, dtype=float)
    labels = {}
    for k in range(K):
        members = clusters == k
        n = int(members.sum())
        rate = f"{np.nanmean(y[members]):.0%} outcome" if n and np.isfinite(y[members]).any() else "no patients"
        labels[k] = f"{risk_label(k, K)}: {rate}, n={n}"
    return labels


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# -- search picture (paper Figure 2) ---------------------------------------------------------
def search_figure(records: pd.DataFrame, selected: dict | None = None) -> go.Figure:
    """Validation AUC against d, one line per K; filled markers = every pair of clusters
    significant, crosses = not; the selected architecture is ringed."""
    fig = go.Figure()
    if records is None or len(records) == 0:
        return _empty("No finished architecture yet")
    records = records.copy()
    if "n_iter" in records:  # successive halving: keep each architecture's longest training
        records = records.sort_values("n_iter").groupby(["K", "d"], as_index=False).last()
    sizes = np.sort(records["d"].unique())
    n_k = records["K"].nunique()
    # each K a little to the side of the tried d, so that equal AUCs at one d do not hide each other
    dodge = (np.diff(sizes).min() if len(sizes) > 1 else 1.0) * 0.12
    offset = {k: (i - (n_k - 1) / 2) * dodge for i, k in enumerate(sorted(records["K"].unique()))}
    for i, (k, rows) in enumerate(records.sort_values("d").groupby("K")):
        color = RISK_COLORS[i % len(RISK_COLORS)]
        sig = rows["all_significant"].astype(bool).to_numpy()
        fig.add_trace(go.Scatter(
            x=rows["d"] + offset[k], y=rows["val_auc"], mode="lines+markers", name=f"K = {k}",
            line=dict(color=color), legendgroup=str(k),
            marker=dict(size=11, color=[color if s else "white" for s in sig],
                        symbol=["circle" if s else "x" for s in sig], line=dict(color=color, width=2)),
            customdata=np.column_stack([np.where(sig, "yes", "no"), rows["d"]]),
            hovertemplate="%{fullData.name}<br>d=%{customdata[1]}<br>validation AUC=%{y:.3f}"
                          "<br>all clusters differ: %{customdata[0]}<extra></extra>"))
    if selected:
        fig.add_trace(go.Scatter(x=[selected["d"] + offset.get(selected.get("K"), 0.0)],
                                 y=[selected.get("val_auc")], mode="markers", hoverinfo="skip",
                                 name="selected", marker=dict(size=22, color="rgba(0,0,0,0)",
                                                              line=dict(color="black", width=2))))
    fig.update_layout(template=TEMPLATE, title="Architecture search: validation AUC by size of representation",
                      xaxis=dict(title="d (size of the representation)", tickvals=list(sizes)),
                      yaxis_title="validation AUC", legend_title="clusters (K)", height=440,
                      margin=dict(b=110))
    fig.add_annotation(text="● all clusters differ significantly   ✕ at least one pair does not",
                       xref="paper", yref="paper", x=0, y=-0.36, xanchor="left", showarrow=False,
                       font=dict(size=12))
    return fig


# -- maps (paper Figure 3) ---------------------------------------------------------------
def map_figure(frame: pd.DataFrame, color: str, title: str = "", hover: list[str] | None = None,
               categorical: bool | None = None, color_order: list | None = None,
               colors: dict | None = None, selected_ids=None, marked: pd.DataFrame | None = None,
               height: int = 520) -> go.Figure:
    """Scatter of map coordinates `x`, `y` coloured by column `color`.

    hover: columns shown on hover (patient id first). categorical: colour by category (one legend
    entry each, in `color_order`, with `colors`) or by a continuous scale (default: guessed).
    selected_ids: patients drawn opaque, the rest faded (a lasso selection). marked: extra points
    (a new patient) drawn as large black stars with their `label` column.
    """
    hover = hover or ["patient_id"]
    if categorical is None:
        categorical = not pd.api.types.is_numeric_dtype(frame[color]) or frame[color].nunique() <= 10
    custom = frame[hover].astype(str).to_numpy() if hover else None
    hovertemplate = "<br>".join(f"{h}: %{{customdata[{i}]}}" for i, h in enumerate(hover)) + "<extra></extra>"
    selected = None if selected_ids is None else set(map(str, selected_ids))
    fig = go.Figure()
    if categorical:
        order = color_order if color_order is not None else sorted(frame[color].dropna().unique(), key=str)
        palette = colors or {c: RISK_COLORS[i % len(RISK_COLORS)] for i, c in enumerate(order)}
        for value in order:
            rows = np.flatnonzero((frame[color] == value).to_numpy())
            if len(rows) == 0:
                continue
            sub = frame.iloc[rows]
            opacity = _opacity(sub, selected)
            fig.add_trace(go.Scattergl(
                x=sub["x"], y=sub["y"], mode="markers", name=str(value),
                marker=dict(size=6, color=palette.get(value, "#999"), opacity=opacity),
                customdata=custom[rows] if custom is not None else None, hovertemplate=hovertemplate))
    else:
        fig.add_trace(go.Scattergl(
            x=frame["x"], y=frame["y"], mode="markers", name=color,
            marker=dict(size=6, color=frame[color], colorscale="Viridis", showscale=True,
                        colorbar=dict(title=color), opacity=_opacity(frame, selected)),
            customdata=custom, hovertemplate=hovertemplate))
    if marked is not None and len(marked):
        fig.add_trace(go.Scatter(
            x=marked["x"], y=marked["y"], mode="markers+text", name="this patient",
            text=marked.get("label", ["this patient"] * len(marked)), textposition="top center",
            marker=dict(size=20, symbol="star", color="black", line=dict(color="white", width=1.5))))
    fig.update_layout(template=TEMPLATE, title=title, height=height, dragmode="lasso",
                      xaxis=dict(showticklabels=False, title="UMAP 1", zeroline=False),
                      yaxis=dict(showticklabels=False, title="UMAP 2", zeroline=False),
                      legend=dict(itemsizing="constant"))
    return fig


def _opacity(sub: pd.DataFrame, selected) -> float | list[float]:
    if selected is None:
        return 0.75
    return [0.9 if p in selected else 0.12 for p in sub["patient_id"].astype(str)]


# -- significance (pairwise p-values) ----------------------------------------------------
def pvalue_heatmap(p_values, alpha: float = 0.05, title: str = "Pairwise likelihood-ratio tests",
                   corrected: bool = False) -> go.Figure:
    """K x K matrix of p-values with the values written in the cells; significant pairs blue,
    non-significant pairs red and marked 'not significant'."""
    p = np.asarray(p_values, dtype=float)
    K = p.shape[0]
    labels = [risk_label(k, K).replace(" (highest)", "<br>(highest)").replace(" (lowest)", "<br>(lowest)")
              for k in range(K)]
    state = np.full((K, K), np.nan)  # 0 = diagonal, 1 = significant, 2 = not significant, nan = untestable
    text = np.empty((K, K), dtype=object)
    for i in range(K):
        for j in range(K):
            if i == j:
                state[i, j], text[i, j] = 0, "—"
            elif not np.isfinite(p[i, j]):
                text[i, j] = "untestable"
            else:
                sig = p[i, j] < alpha
                state[i, j] = 1 if sig else 2
                value = _fmt_p(p[i, j])
                text[i, j] = (f"p < {value[1:]}" if value.startswith("<") else f"p = {value}") + \
                    ("" if sig else "<br><b>not significant</b>")
    scale = [[0, "#eeeeee"], [0.33, "#eeeeee"], [0.34, "#aed6f1"], [0.66, "#aed6f1"], [0.67, "#f5b7b1"],
             [1, "#f5b7b1"]]
    fig = go.Figure(go.Heatmap(z=state, x=labels, y=labels, text=text, texttemplate="%{text}",
                               colorscale=scale, zmin=0, zmax=2, showscale=False, xgap=2, ygap=2,
                               hovertemplate="%{y} vs %{x}: %{text}<extra></extra>"))
    what = "Holm-corrected p-values" if corrected else "p-values"
    fig.update_layout(template=TEMPLATE, height=140 + 90 * K,
                      title=f"{title} ({what}; significant if p < {alpha:g})",
                      yaxis=dict(autorange="reversed"), xaxis=dict(side="bottom"))
    return fig


# -- risk levels -------------------------------------------------------------------------
def covariates_text(design_names) -> str:
    """The covariates an outcome model adjusted for, in plain words, from its design columns
    (SignificanceResult.covariate_names): 'age', 'age_missing', 'sex=male' read 'age, sex'."""
    names = [str(n) for n in design_names]
    bases = []
    for name in names:
        base = name.split("=", 1)[0] if "=" in name else name
        if base.endswith("_missing") and base[:-len("_missing")] in names:
            base = base[:-len("_missing")]
        bases.append(base)
    return ", ".join(dict.fromkeys(bases)) or "no covariate"


def forest_plot(summary: pd.DataFrame, reference: int | None = None, adjusted_for: str | None = None) -> go.Figure:
    """Odds ratio of each risk level against the reference (log scale) with 95% intervals.

    summary: SignificanceResult.summary() (cluster, odds_ratio, or_ci_low, or_ci_high, size...).
    adjusted_for: the covariates in words (covariates_text), named in the axis title.
    """
    K = len(summary)
    rows = summary.reset_index(drop=True)
    labels = [risk_label(int(k), K) for k in rows["cluster"]]
    finite = np.isfinite(rows["odds_ratio"].to_numpy(dtype=float)) & (rows["odds_ratio"] > 0)
    fig = go.Figure()
    ors = rows["odds_ratio"].to_numpy(dtype=float)
    low, high = rows["or_ci_low"].to_numpy(dtype=float), rows["or_ci_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(low) & np.isfinite(high)
    fig.add_trace(go.Scatter(
        x=np.where(finite, ors, np.nan), y=labels, mode="markers",
        marker=dict(size=12, color=risk_colors(K), symbol="square"),
        error_x=dict(type="data", symmetric=False, array=np.where(has_ci, high - ors, 0),
                     arrayminus=np.where(has_ci, ors - low, 0), thickness=2, color="#555"),
        customdata=np.column_stack([np.where(has_ci, low, np.nan), np.where(has_ci, high, np.nan)]),
        hovertemplate="%{y}<br>odds ratio %{x:.2f}<br>95% CI %{customdata[0]:.2f} to %{customdata[1]:.2f}"
                      "<extra></extra>", showlegend=False))
    fig.add_vline(x=1, line_dash="dash", line_color="#888")
    ref = f" (reference: {risk_label(reference, K)})" if reference is not None else ""
    ticks = _log_ticks(np.concatenate([ors[finite], low[has_ci], high[has_ci], [1.0]]))
    fig.update_layout(template=TEMPLATE, height=140 + 60 * K, title=f"Odds ratio of the outcome{ref}",
                      xaxis=dict(type="log", title="odds ratio (log scale), adjusted for "
                                                         f"{adjusted_for or 'the covariates'}",
                                 tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]),
                      yaxis=dict(autorange="reversed"))
    return fig


def _log_ticks(values) -> list[float]:
    """1-2-5 ticks covering the values (a log axis's own ticks crowd on a short range)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    low, high = (values.min(), values.max()) if values.size else (1.0, 1.0)
    ticks = [m * 10.0**e for e in range(-4, 5) for m in (1, 2, 5)]
    inside = [t for t in ticks if low / 1.5 <= t <= high * 1.5]
    return inside or [1.0]


def rate_figure(summary: pd.DataFrame) -> go.Figure:
    """Outcome rate per risk level with its 95% (Wilson) interval."""
    K = len(summary)
    labels = [risk_label(int(k), K) for k in summary["cluster"]]
    rate = summary["outcome_rate"].to_numpy(dtype=float)
    fig = go.Figure(go.Bar(
        x=labels, y=rate, marker_color=risk_colors(K), hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        error_y=dict(type="data", symmetric=False, array=summary["rate_ci_high"] - rate,
                     arrayminus=rate - summary["rate_ci_low"])))
    high = summary["rate_ci_high"].to_numpy(dtype=float)
    for label, r, top in zip(labels, rate, high):  # the rate above its interval, never on the whisker
        if np.isfinite(r):
            fig.add_annotation(x=label, y=top if np.isfinite(top) else r, text=f"<b>{r:.0%}</b>", showarrow=False,
                               yanchor="bottom", yshift=4, font=dict(size=13))
    fig.update_layout(template=TEMPLATE, height=380, title="Outcome rate per risk level (95% CI)",
                      yaxis=dict(title="outcome rate", tickformat=".0%",
                                 range=[0, min(1.0, float(np.nanmax(np.append(high, rate)) + 0.12))]))
    return fig


# -- cluster profiles ----------------------------------------------------------------------
def covariate_figure(values: pd.Series, clusters, K: int, name: str | None = None) -> go.Figure:
    """Distribution of one covariate per risk level: box plots for numbers, shares for categories."""
    name = name or str(values.name)
    clusters = np.asarray(clusters)
    colors = risk_colors(K)
    fig = go.Figure()
    numeric = pd.api.types.is_numeric_dtype(values) and values.nunique() > 5
    if numeric:
        for k in range(K):
            fig.add_trace(go.Box(y=values[clusters == k], name=risk_label(k, K), marker_color=colors[k],
                                 boxmean=True))
        fig.update_layout(yaxis_title=name, showlegend=False)
    else:
        table = pd.crosstab(clusters, values.astype(str).fillna("missing"), normalize="index")
        for i, category in enumerate(table.columns):
            fig.add_trace(go.Bar(x=[risk_label(int(k), K) for k in table.index], y=table[category],
                                 name=str(category), marker_color=RISK_COLORS[(i + 5) % len(RISK_COLORS)]))
        fig.update_layout(barmode="stack", yaxis=dict(title=f"share of patients", tickformat=".0%"),
                          legend_title=name)
    fig.update_layout(template=TEMPLATE, height=380, title=f"{name} by risk level")
    return fig


def trajectory_figure(trajectories: pd.DataFrame, K: int, patient: pd.DataFrame | None = None,
                      columns: int = 3, title: str = "Mean trajectory per risk level") -> go.Figure:
    """Small multiples, one per variable: each risk level's mean over time (band = ±1 standard
    error) and, when given, one patient's own values (black).

    trajectories: variable, cluster, time, mean, sem (see profiles.cluster_trajectories).
    patient: variable, time, value.
    """
    variables = list(dict.fromkeys(trajectories["variable"]))
    if not variables:
        return _empty("No variable to show")
    rows = math.ceil(len(variables) / columns)
    fig = make_subplots(rows=rows, cols=min(columns, len(variables)), subplot_titles=variables,
                        vertical_spacing=0.12 if rows > 1 else 0.1)
    colors = risk_colors(K)
    patient_in_legend = False
    for i, variable in enumerate(variables):
        r, c = i // columns + 1, i % columns + 1
        for k in range(K):
            t = trajectories[(trajectories["variable"] == variable) & (trajectories["cluster"] == k)]
            if t.empty:
                continue
            fill = _rgba(colors[k], 0.15)
            fig.add_trace(go.Scatter(x=np.r_[t["time"], t["time"][::-1]],
                                     y=np.r_[t["mean"] + t["sem"], (t["mean"] - t["sem"])[::-1]],
                                     fill="toself", fillcolor=fill, line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup=str(k)), row=r, col=c)
            fig.add_trace(go.Scatter(x=t["time"], y=t["mean"], mode="lines", name=risk_label(k, K),
                                     line=dict(color=colors[k], width=2), legendgroup=str(k),
                                     showlegend=i == 0,
                                     hovertemplate=f"{risk_label(k, K)}<br>hour %{{x}}<br>mean %{{y:.3g}}"
                                                   "<extra></extra>"), row=r, col=c)
        if patient is not None:
            pv = patient[patient["variable"] == variable].sort_values("time")
            if len(pv):
                fig.add_trace(go.Scatter(x=pv["time"], y=pv["value"], mode="lines+markers", name="this patient",
                                         line=dict(color="black", width=2, dash="dot"), marker=dict(size=6),
                                         legendgroup="patient", showlegend=not patient_in_legend),
                              row=r, col=c)
                patient_in_legend = True
    fig.update_xaxes(title_text="hours", row=rows)
    height, top, bottom = 260 * rows + 160, 70, 130
    # the legend under the plots, 60 px below their bottom (under the 'hours' titles): it may take
    # two lines with every risk level shown, and above the plots it would meet the titles
    legend_y = -60 / (height - top - bottom)
    fig.update_layout(template=TEMPLATE, height=height, title=title, margin=dict(t=top, b=bottom),
                      legend=dict(orientation="h", yanchor="top", y=legend_y, x=0))
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# -- outcome prediction ----------------------------------------------------------------------
def calibration_figure(y, probabilities: dict[str, np.ndarray], n_bins: int = 10) -> go.Figure:
    """Observed outcome rate against mean predicted probability in bins of equal size (quantiles)."""
    y = np.asarray(y, dtype=float)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line=dict(color="#999", dash="dash")))
    for i, (name, p) in enumerate(probabilities.items()):
        p = np.asarray(p, dtype=float)
        bins = calibration_bins(y, p, n_bins)
        fig.add_trace(go.Scatter(x=bins["mean_predicted"], y=bins["observed_rate"], mode="lines+markers",
                                 name=name, marker=dict(size=8), line=dict(color=RISK_COLORS[(i * 5) % 10]),
                                 customdata=bins["patients"],
                                 hovertemplate="predicted %{x:.2f}<br>observed %{y:.2f}<br>"
                                               "%{customdata} patients<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=420, title="Calibration on the test patients",
                      xaxis=dict(title="mean predicted probability", range=[0, 1]),
                      yaxis=dict(title="observed outcome rate", range=[0, 1]))
    return fig


def calibration_bins(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Patients sorted by prediction and cut into bins of (nearly) equal size. Patients with the
    same prediction share a bin (a model with few distinct probabilities gives fewer, larger bins),
    so the mean predictions increase from bin to bin."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if p.size == 0:
        return pd.DataFrame({"mean_predicted": [], "observed_rate": [], "patients": []})
    rank = pd.Series(p).rank(method="min").to_numpy() - 1  # ties take their first position
    bins = np.floor(rank * min(n_bins, p.size) / p.size).astype(int)
    grouped = pd.DataFrame({"bin": bins, "p": p, "y": y}).groupby("bin")
    return pd.DataFrame({"mean_predicted": grouped["p"].mean().to_numpy(),
                         "observed_rate": grouped["y"].mean().to_numpy(),
                         "patients": grouped.size().to_numpy()})


def group_auc_figure(table: pd.DataFrame, group_name: str = "group") -> go.Figure:
    """AUC per group, one bar per predictor. table: group, size, and one column per predictor AUC
    (columns whose name starts with 'auc')."""
    fig = go.Figure()
    auc_columns = [c for c in table.columns if str(c).lower().startswith("auc")]
    for i, col in enumerate(auc_columns):
        fig.add_trace(go.Bar(x=table["group"].astype(str), y=table[col], name=str(col),
                             marker_color=RISK_COLORS[(i * 5) % 10],
                             text=[f"{v:.2f}" if np.isfinite(v) else "n/a" for v in table[col].astype(float)]))
    fig.update_layout(template=TEMPLATE, barmode="group", height=380, title=f"AUC per {group_name}",
                      yaxis=dict(title="AUC", range=[0, 1]), xaxis_title=group_name)
    return fig


def membership_figure(values, K: int, title: str = "How clearly the patient belongs to each risk level",
                      as_percent: bool = True) -> go.Figure:
    """Horizontal bars of one patient's soft membership (or closeness) per risk level."""
    values = np.asarray(values, dtype=float)
    labels = [risk_label(k, K) for k in range(K)]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker_color=risk_colors(K),
                           text=[f"{v:.0%}" if as_percent else f"{v:.2f}" for v in values]))
    fig.update_layout(template=TEMPLATE, height=90 + 45 * K, title=title,
                      xaxis=dict(range=[0, 1] if as_percent else None, tickformat=".0%" if as_percent else None),
                      yaxis=dict(autorange="reversed"), margin=dict(l=10, r=10, t=50, b=30))
    return fig


def _empty(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=16, color="#777"))
    fig.update_layout(template=TEMPLATE, height=300, xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig
