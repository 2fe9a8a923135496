"""Synthetic cohort: planted subgroups, outcome rates, realistic irregularity, and writing it out."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from dice_core.config import ColumnMap, PreprocessConfig
from dice_core.data import load_cohort, make_synthetic_cohort, write_cohort
from dice_core.data.synthetic import CODED_EVENT, RACES
from dice_core.errors import ConfigError
from dice_core.model.network import LSTMAutoencoder
from dice_core.preprocess import Preprocessor


def test_shapes_and_canonical_types(synthetic_cohort):
    cohort, labels = synthetic_cohort
    assert cohort.n_patients == 300 and labels.shape == (300,)
    assert sorted(np.bincount(labels)) == [100, 100, 100]
    assert list(cohort.events.columns) == ["patient_id", "time", "variable", "value"]
    assert cohort.events["time"].dtype == np.float64 and cohort.events["value"].dtype == np.float64
    assert cohort.variables == sorted(["HR", "MAP", "Temp", "Lactate", "Creatinine", CODED_EVENT])
    assert cohort.covariates == ["age", "sex"] and cohort.group == "race"
    assert set(cohort.patients["race"]) == set(RACES) and set(cohort.patients["sex"]) == {"female", "male"}
    assert cohort.patients["age"].between(18, 95).all()
    assert "true_subgroup" not in cohort.patients  # the answer is returned, never a covariate


def test_sampling_is_irregular_and_incomplete(synthetic_cohort):
    cohort, _ = synthetic_cohort
    events = cohort.events
    assert events["time"].between(0, 12).all()
    assert (events["time"] % 1 != 0).mean() > 0.99  # jittered within the hour
    coded = events["variable"] == CODED_EVENT
    assert events.loc[coded, "value"].isna().all() and events.loc[~coded, "value"].notna().all()
    measured = events[~coded].assign(step=np.floor(events["time"]))
    per_cell = measured.groupby(["patient_id", "variable", "step"]).size()
    share = len(per_cell) / (300 * 5 * 12)
    assert 0.5 < share < 0.9  # some steps are missing


def test_values_are_clinically_plausible():
    """Lab values are positive (drawn on a log scale) and SpO2 stops at 100%."""
    cohort, _ = make_synthetic_cohort(n_patients=2000, n_steps=24, n_variables=10, seed=1)
    values = cohort.events.dropna(subset=["value"])
    assert (values["value"] > 0).all()
    by_variable = values.groupby("variable")["value"]
    assert by_variable.max()["SpO2"] == 100.0
    assert by_variable.min()[["Lactate", "Creatinine", "WBC", "Glucose"]].gt(
        [0.3, 0.2, 2.0, 40.0]).all()  # not just above zero: plausible for an ICU
    medians = by_variable.median()
    assert 1 < medians["Lactate"] < 4 and 0.6 < medians["Creatinine"] < 2 and 5 < medians["WBC"] < 15


def test_the_highest_risk_subgroup_looks_sicker_than_the_lowest():
    """Higher lactate, creatinine, white cells, heart rate and temperature, lower blood pressure."""
    cohort, labels = make_synthetic_cohort(n_patients=300, n_steps=6, n_variables=6, seed=2)
    events = cohort.events.dropna(subset=["value"])
    subgroup = pd.Series(labels, index=cohort.patients.index).reindex(events["patient_id"]).to_numpy()
    means = events.groupby([events["variable"], subgroup])["value"].mean().unstack()
    for variable in ("Lactate", "Creatinine", "WBC", "HR", "Temp"):
        assert means.loc[variable, 0] > means.loc[variable, 2], variable
    assert means.loc["MAP", 0] < means.loc["MAP", 2]


def test_outcome_rates_differ_by_subgroup():
    cohort, labels = make_synthetic_cohort(n_patients=3000, n_steps=4, n_variables=2, seed=3)
    rates = cohort.patients["outcome"].groupby(labels).mean().to_numpy()
    assert rates == pytest.approx([0.7, 0.35, 0.05], abs=0.04)
    cohort, labels = make_synthetic_cohort(n_patients=2000, n_subgroups=2, n_steps=4, n_variables=2,
                                           outcome_rates=[0.9, 0.1], seed=1)
    assert cohort.patients["outcome"].groupby(labels).mean().to_numpy() == pytest.approx([0.9, 0.1], abs=0.04)


def test_seed_reproduces_and_changes():
    a, labels_a = make_synthetic_cohort(n_patients=50, n_steps=6, n_variables=3, seed=7)
    b, labels_b = make_synthetic_cohort(n_patients=50, n_steps=6, n_variables=3, seed=7)
    c, _ = make_synthetic_cohort(n_patients=50, n_steps=6, n_variables=3, seed=8)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.patients, b.patients)
    assert (labels_a == labels_b).all()
    assert not a.events["value"].equals(c.events["value"])


def test_invalid_arguments():
    with pytest.raises(ConfigError, match="outcome_rates=\\[0.5\\] must be 3 probabilities"):
        make_synthetic_cohort(outcome_rates=[0.5])
    with pytest.raises(ConfigError, match="n_variables=20 must be between 1 and 10"):
        make_synthetic_cohort(n_variables=20)


def prepared(cohort):
    config = PreprocessConfig(window_hours=12, bin_hours=1)
    return Preprocessor(config).fit_transform(cohort, cohort.patients.index)


def test_subgroups_are_separable_in_the_binned_data(synthetic_cohort):
    cohort, labels = synthetic_cohort
    data = prepared(cohort)
    flat = data.X.reshape(len(data), -1)
    clusters = KMeans(3, n_init=10, random_state=0).fit_predict(flat)
    assert adjusted_rand_score(labels, clusters) > 0.95


def test_lstm_autoencoder_and_kmeans_recover_the_subgroups_in_a_few_epochs(synthetic_cohort):
    cohort, labels = synthetic_cohort
    data = prepared(cohort)
    x = torch.as_tensor(data.X)
    net = LSTMAutoencoder(data.n_inputs, data.n_features, hidden_size=8)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):  # epochs
        for batch in torch.randperm(len(x)).split(32):
            loss = ((net.decode(net.encode(x[batch]), x.shape[1]) - x[batch][..., :data.n_features]) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        z = net.encode(x).numpy()
    clusters = KMeans(3, n_init=10, random_state=0).fit_predict(z)
    assert adjusted_rand_score(labels, clusters) > 0.9


@pytest.mark.parametrize("extension", ["csv", "csv.gz", "parquet"])
def test_write_then_load_round_trip(tmp_path, synthetic_cohort, extension):
    cohort, labels = synthetic_cohort
    events_path, patients_path = tmp_path / f"events.{extension}", tmp_path / f"patients.{extension}"
    write_cohort(cohort, events_path, patients_path)
    loaded = load_cohort(events_path, patients_path, ColumnMap(group="race"))
    assert loaded.covariates == ["age", "sex"]
    pd.testing.assert_frame_equal(loaded.patients, cohort.patients)
    expected = cohort.events.assign(time=np.floor(cohort.events["time"] * 1e4) / 1e4,
                                    value=cohort.events["value"].round(4))
    pd.testing.assert_frame_equal(loaded.events, expected, check_exact=False, atol=1e-9)


def test_written_times_stay_inside_the_window(tmp_path):
    """Times are truncated, not rounded: 23.996 h is written 23.99, not 24.0 (outside a 24 h window)."""
    cohort, _ = make_synthetic_cohort(n_patients=300, n_steps=24, n_variables=2, seed=0)
    assert cohort.events["time"].max() > 23.995  # would round to 24.00
    write_cohort(cohort, tmp_path / "e.csv", tmp_path / "p.csv", decimals=2)
    times = pd.read_csv(tmp_path / "e.csv")["time"]
    assert times.max() < 24 and times.max() == pytest.approx(23.99)


def test_true_labels_are_written_only_when_asked(tmp_path, synthetic_cohort):
    cohort, labels = synthetic_cohort
    write_cohort(cohort, tmp_path / "e.csv", tmp_path / "p.csv")
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == ["patient_id", "outcome", "age", "sex", "race"]
    write_cohort(cohort, tmp_path / "e.csv", tmp_path / "p.csv", true_labels=labels)
    written = pd.read_csv(tmp_path / "p.csv")
    assert (written["true_subgroup"].to_numpy() == labels).all()
    loaded = load_cohort(tmp_path / "e.csv", tmp_path / "p.csv", ColumnMap(covariates=("age", "sex"), group="race"))
    assert "true_subgroup" not in loaded.patients


def test_write_refuses_unknown_extension(tmp_path, synthetic_cohort):
    with pytest.raises(ConfigError, match="use a .csv, .csv.gz or .parquet file name"):
        write_cohort(synthetic_cohort[0], tmp_path / "e.xlsx", tmp_path / "p.csv")
