"""dice_core.viz: figures carry the right numbers and words, maps place patients, the report is
self-contained; and the dashboard's column guessing."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import columns as colguess
from dashboard import ui
from dice_core.errors import ConfigError
from dice_core.stats.significance import pairwise_lr_test
from dice_core.viz import figures as F
from dice_core.viz import profiles as P
from dice_core.viz.embedding import build_map, load_map, place_near, save_map
from dice_core.viz.report import ReportSection, build_html_report


def test_risk_labels_read_as_clinicians_say_them():
    assert [F.risk_label(k, 3) for k in range(3)] == ["Risk level 1 (highest)", "Risk level 2",
                                                      "Risk level 3 (lowest)"]
    colors = F.risk_colors(4)
    assert len(colors) == 4 and colors[0] == F.RISK_COLORS[0] and len(set(colors)) == 4


def test_legend_labels_carry_each_clusters_outcome_rate_and_size():
    labels = F.cluster_legend_labels([0, 0, 0, 1, 1, 2], [1, 1, 0, 0, 1, 0], 3)
    assert labels[0] == "Risk level 1 (highest): 67% outcome, n=3"
    assert labels[1] == "Risk level 2: 50% outcome, n=2"
    assert labels[2] == "Risk level 3 (lowest): 0% outcome, n=1"


def test_pvalue_heatmap_writes_values_and_marks_non_significant_pairs():
    p = np.array([[0.0, 0.0004, 0.2], [0.0004, 0.0, 0.03], [0.2, 0.03, 0.0]])
    fig = F.pvalue_heatmap(p, alpha=0.05)
    text = np.array(fig.data[0].text)
    assert text[0, 1] == "p < 0.001"
    assert text[1, 2] == "p = 0.030"
    assert "not significant" in text[0, 2] and "not significant" in text[2, 0]
    state = np.array(fig.data[0].z)
    assert state[0, 0] == 0 and state[0, 1] == 1 and state[0, 2] == 2


def test_forest_plot_draws_each_odds_ratio_with_its_interval():
    rng = np.random.default_rng(0)
    clusters = np.repeat([0, 1, 2], 100)
    y = (rng.random(300) < np.repeat([0.7, 0.4, 0.1], 100)).astype(int)
    summary = pairwise_lr_test(clusters, y, n_clusters=3).summary()
    fig = F.forest_plot(summary, reference=2)
    trace = fig.data[0]
    np.testing.assert_allclose(trace.x, summary["odds_ratio"])
    np.testing.assert_allclose(np.array(trace.x) + np.array(trace.error_x.array)[:], np.where(
        np.isfinite(summary["or_ci_high"]), summary["or_ci_high"], summary["odds_ratio"]))
    assert list(trace.y) == ["Risk level 1 (highest)", "Risk level 2", "Risk level 3 (lowest)"]
    assert "reference: Risk level 3 (lowest)" in fig.layout.title.text
    ticks = list(fig.layout.xaxis.tickvals)  # 1-2-5 ticks around the intervals, labelled plainly
    assert 1.0 in ticks and all(t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200) for t in ticks)
    assert list(fig.layout.xaxis.ticktext) == [f"{t:g}" for t in ticks]


def test_covariates_are_named_in_words_from_the_tests_design_columns():
    assert F.covariates_text(["age", "age_missing", "sex=male", "race=Black", "race=White"]) == "age, sex, race"
    assert F.covariates_text(["smoker_missing"]) == "smoker_missing"  # a missing-only covariate keeps its name
    assert F.covariates_text([]) == "no covariate"
    rng = np.random.default_rng(1)
    covariates = pd.DataFrame({"age": rng.normal(size=200), "sex=male": rng.integers(0, 2, 200)})
    sig = pairwise_lr_test(np.repeat([0, 1], 100), rng.integers(0, 2, 200), covariates, n_clusters=2)
    fig = F.forest_plot(sig.summary(), sig.reference, F.covariates_text(sig.covariate_names))
    assert fig.layout.xaxis.title.text == "odds ratio (log scale), adjusted for age, sex"


def test_rate_figure_writes_each_rate_above_its_interval():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < np.repeat([0.7, 0.4, 0.1], 100)).astype(int)
    summary = pairwise_lr_test(np.repeat([0, 1, 2], 100), y, n_clusters=3).summary()
    fig = F.rate_figure(summary)
    np.testing.assert_allclose(fig.data[0].y, summary["outcome_rate"])
    labels = [(a.text, a.y) for a in fig.layout.annotations]
    assert labels == [(f"<b>{r:.0%}</b>", high) for r, high in zip(summary["outcome_rate"], summary["rate_ci_high"])]


def test_search_figure_marks_significant_architectures_and_the_selected_one():
    records = pd.DataFrame({"K": [2, 2, 3], "d": [8, 16, 8], "n_iter": [5, 5, 5], "val_auc": [0.7, 0.8, 0.75],
                            "all_significant": [True, False, True], "min_p": [0.01, 0.2, 0.001]})
    fig = F.search_figure(records, {"K": 2, "d": 16, "val_auc": 0.8})
    k2, k3 = (next(t for t in fig.data if t.name == name) for name in ("K = 2", "K = 3"))
    # each K drawn 12% of the d spacing (8) to either side of the tried d, which hover still names
    assert list(k2.x) == pytest.approx([8 - 0.48, 16 - 0.48]) and list(k3.x) == pytest.approx([8 + 0.48])
    assert [int(d) for d in k2.customdata[:, 1]] == [8, 16] and list(k2.y) == [0.7, 0.8]
    assert list(k2.marker.symbol) == ["circle", "x"]
    assert fig.data[-1].name == "selected" and list(fig.data[-1].x) == pytest.approx([16 - 0.48])
    assert list(fig.layout.xaxis.tickvals) == [8, 16]


def test_map_figure_fades_patients_outside_a_selection():
    frame = pd.DataFrame({"patient_id": ["a", "b", "c"], "x": [0.0, 1, 2], "y": [0.0, 1, 2],
                          "group": ["g1", "g1", "g2"]})
    fig = F.map_figure(frame, "group", selected_ids=["a"])
    g1 = next(t for t in fig.data if t.name == "g1")
    assert list(g1.marker.opacity) == [0.9, 0.12]
    assert list(g1.customdata[:, 0]) == ["a", "b"]


def test_calibration_bins_have_equal_sizes_and_true_rates():
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    bins = F.calibration_bins(y, p, n_bins=4)
    assert bins["patients"].tolist() == [2, 2, 2, 2]
    np.testing.assert_allclose(bins["observed_rate"], [0, 0.5, 0.5, 1])
    np.testing.assert_allclose(bins["mean_predicted"], [0.15, 0.35, 0.55, 0.75])
    assert isinstance(F.calibration_figure(y, {"model": p}), go.Figure)


def test_calibration_bins_keep_patients_with_the_same_prediction_together():
    """A model with few distinct probabilities (hard memberships) gives one point per probability,
    never two points at the same prediction (which would draw a vertical zigzag)."""
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5])
    bins = F.calibration_bins(y, p, n_bins=4)
    assert bins["patients"].tolist() == [5, 3]
    np.testing.assert_allclose(bins["mean_predicted"], [0.1, 0.5])
    np.testing.assert_allclose(bins["observed_rate"], [0.2, 1.0])


def test_place_near_puts_a_copy_of_a_patient_on_that_patient():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(50, 4))
    xy = rng.normal(size=(50, 2))
    np.testing.assert_allclose(place_near(Z[[7]], Z, xy, k=5), xy[[7]], atol=1e-4)
    with pytest.raises(ConfigError, match="no reference patients"):
        place_near(Z[:1], Z[:0], xy[:0])


@pytest.mark.slow  # UMAP compiles for ~20-50 s the first time in a process
def test_build_map_fits_on_training_patients_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    Z = np.r_[rng.normal(0, 0.3, (30, 3)), rng.normal(4, 0.3, (30, 3))]
    splits = np.where(np.arange(60) % 3 == 0, "test", "train")
    frame = build_map(Z, [f"p{i}" for i in range(60)], splits, seed=0)
    assert frame.shape == (60, 4) and frame["split"].tolist() == splits.tolist()
    # the two groups stay apart on the map, test patients included
    first, second = frame.iloc[:30], frame.iloc[30:]
    gap = np.hypot(first["x"].mean() - second["x"].mean(), first["y"].mean() - second["y"].mean())
    spread = max(first[["x", "y"]].std().max(), second[["x", "y"]].std().max())
    assert gap > 3 * spread
    path = save_map(frame, tmp_path / "map.csv")
    pd.testing.assert_frame_equal(load_map(path), frame)
    assert load_map(tmp_path / "absent.csv") is None


def test_profiles_rank_the_variable_that_separates_clusters_first():
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(40)]
    clusters = pd.Series(np.repeat([0, 1], 20), index=pd.Index(ids, name="patient_id"))
    rows = []
    for i, pid in enumerate(ids):
        for t in range(4):
            rows.append((pid, t + 0.5, "HR", (120 if i < 20 else 70) + rng.normal(0, 3)))
            rows.append((pid, t + 0.5, "Temp", 37 + rng.normal(0, 0.3)))
    events = pd.DataFrame(rows, columns=["patient_id", "time", "variable", "value"])
    ranking = P.distinguishing_variables(events, clusters)
    assert ranking["variable"].iloc[0] == "HR" and ranking["p"].iloc[0] < 1e-6
    signatures = P.cluster_signatures(events, clusters, top=1)
    assert signatures.set_index("cluster").loc[0, "variable"] == "HR"
    assert signatures.set_index("cluster").loc[0, "direction"] == "higher"
    traj = P.cluster_trajectories(events, clusters, ["HR"], bin_hours=1.0)
    assert sorted(traj["time"].unique()) == [0.0, 1.0, 2.0, 3.0]
    hr0 = traj[(traj["cluster"] == 0)]["mean"]
    assert hr0.between(115, 125).all() and (traj["patients"] == 20).all()


def test_html_report_is_self_contained():
    fig = go.Figure(go.Bar(x=["a"], y=[1]))
    html = build_html_report("Report <test>", [ReportSection("Numbers", ["a paragraph", pd.DataFrame({"x": [0.5]}),
                                                                         fig, fig])])
    assert html.startswith("<!DOCTYPE html>") and "Report &lt;test&gt;" in html
    assert html.count("plotly.js v") == 1  # plotly.js written once, inline
    assert "<script src=" not in html and "<link" not in html  # nothing fetched from the network
    assert "<td>0.5</td>" in html


def test_column_guesses_follow_common_names():
    events = pd.DataFrame(columns=["RecordID", "Time", "Parameter", "Value"])
    assert colguess.guess_event_columns(events) == {"patient_id": "RecordID", "time": "Time",
                                                    "variable": "Parameter", "value": "Value"}
    patients = pd.DataFrame({"RecordID": ["1", "2"], "Age": [50, 60], "In-hospital_death": [0, 1],
                             "Race": ["a", "b"]})
    guessed = colguess.guess_patient_columns(patients, "RecordID")
    assert guessed["outcome"] == "In-hospital_death" and guessed["group"] == "Race"
    assert guessed["covariates"] == ["Age"]
    assert colguess.guess_positive_label(["no", "yes"]) == "yes"
    assert colguess.guess_positive_label(["alive", "x"]) is None


def test_membership_sentence_follows_the_assigned_level():
    assert ui.membership_sentence([0.9, 0.08, 0.02], 0, 3) == ("Clearly belongs to **risk level 1 (highest)** "
                                                               "(90% membership).")
    assert ui.membership_sentence([0.3, 0.6, 0.1], 1, 3) == ("Most likely **risk level 2** (60%), but also close to "
                                                             "**risk level 1 (highest)** (30%): interpret with care.")
    # nearest centre and classifier disagree: the sentence names both, never a level the page does not show
    assert ui.membership_sentence([0.002, 0.7, 0.298], 2, 3).startswith(
        "**Borderline:** nearest to the centre of **risk level 3 (lowest)**, but the model's classifier leans to "
        "**risk level 2** (70%)")
    assert [ui.share_text(s) for s in (0.001, 0.5, 0.9989)] == ["< 1%", "50%", "> 99%"]
    assert [ui.p_text(p) for p in (1e-17, 0.0123, 0.39, float("nan"))] == ["< 0.001", "0.012", "0.39", ui.MISSING]


def test_core_messages_name_the_pages_choices_not_the_cli_flags():
    assert ui.plain("or choose another column (--outcome / ColumnMap.outcome)") == (
        "or choose another column (the 'Outcome' choice)")
    assert ui.plain("a longer window (--window-hours / PreprocessConfig.window_hours)") == (
        "a longer window ('Hours of data per patient' on the Train page)")
    assert ui.plain("give the admission time with --index-time-col (ColumnMap.index_time) to count") == (
        "give the admission time with the 'Admission time' choice to count")
    assert ui.plain("nothing to translate") == "nothing to translate"


def test_default_window_holds_every_event_time_up_to_48_hours():
    from types import SimpleNamespace

    def window(times):
        return ui.default_window(SimpleNamespace(events=pd.DataFrame({"time": times})))

    physionet_like = np.r_[np.linspace(0, 46.5, 990), np.linspace(46.6, 48.0, 10)]  # 99th percentile < 47
    assert window(physionet_like) == 48.0
    assert window([0.0, 5.0, 23.72]) == 24.0 and window([0.0, 47.0]) == 48.0  # the window is [0, W)
    assert window([0.0, 10.0, 1000.0]) == 48.0 and window([0.0, 0.2]) == 1.0


def test_trajectory_legend_sits_under_the_plots():
    trajectories = pd.DataFrame({"variable": ["HR"] * 4, "cluster": [0, 0, 1, 1], "time": [0, 1, 0, 1],
                                 "mean": [80.0, 82, 70, 71], "sem": [1.0, 1, 1, 1]})
    fig = F.trajectory_figure(trajectories, 2, title="t")
    assert fig.layout.legend.yanchor == "top" and fig.layout.legend.y < 0
    assert [t.name for t in fig.data if t.showlegend] == ["Risk level 1 (highest)", "Risk level 2 (lowest)"]
