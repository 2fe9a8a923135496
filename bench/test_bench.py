"""Tests of the benchmark's own arithmetic and helpers (fast; no set A, no training).

    python -m pytest bench/test_bench.py
"""
import numpy as np
import pandas as pd
import pytest

from bench.cohorts import resample_cohort, synthetic_chunk
from bench.figures import Figures, format_value, status
from bench.measure import autoencoder_epoch_flops, lstm_flops
from bench.run import chosen_stages, parse_args, reproduce_command
from bench.stages import predicted_peak_mb
from dice_core.data import make_synthetic_cohort


def test_lstm_and_epoch_flops_by_hand():
    assert lstm_flops(4, 5) == 2 * 4 * 5 * 9  # 4 gates x (I + H) x H multiply-adds
    # encoder 360 + decoder 400 + read-out 60 = 820 per patient-step, x 3 (forward + 2x backward)
    assert autoencoder_epoch_flops(n_patients=2, n_steps=3, n_inputs=4, n_features=6, hidden=5) == 820 * 3 * 2 * 3


def test_status_against_targets_and_basis():
    figs = Figures()
    figs.add("a", "a", 0.9, "s", ("<=", 1.0, "<= 1 s"))
    figs.add("b", "b", 1.1, "s", ("<=", 1.0, "<= 1 s"))
    figs.add("c", "c", 5000.0, "MB", ("<", 4096, "< 4 GB"), basis="extrapolated")
    figs.add("d", "d", True, "", ("==", True, "same"))
    figs.add("e", "e", float("nan"), "s", (">=", 1, ">= 1"))
    figs.add("f", "f", 3.0)
    assert [status(r) for r in figs.rows] == ["met", "missed", "missed (extrapolated)", "met", "n/a", ""]


def test_format_value():
    row = lambda value, unit="": {"value": value, "unit": unit}  # noqa: E731
    assert format_value(row(12345.6, "patients/s")) == "12,346 patients/s"
    assert format_value(row(0.01234, "s")) == "0.012 s"
    assert format_value(row(False)) == "no"
    assert format_value(row(None, "s")) == "n/a"
    assert format_value(row("K=4, d=35")) == "K=4, d=35"


def test_resample_cohort_copies_each_drawn_stay_under_a_new_id():
    cohort, _ = make_synthetic_cohort(n_patients=30, n_steps=6, n_variables=2, seed=3)
    big = resample_cohort(cohort, 100, seed=1)
    assert big.n_patients == 100 and big.patients.index.is_unique
    assert set(big.events["patient_id"]) <= set(big.patients.index)
    source_counts = cohort.events.groupby("patient_id").size()
    pick = np.random.default_rng(1).integers(0, 30, 100)  # the draw resample_cohort makes
    expected = source_counts.reindex(cohort.patients.index[pick], fill_value=0).to_numpy()
    got = big.events.groupby("patient_id").size().reindex(big.patients.index, fill_value=0).to_numpy()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(big.patients["outcome"].to_numpy(), cohort.patients["outcome"].to_numpy()[pick])
    # the events of new patient 0 are those of its source stay, in order
    first = big.events[big.events["patient_id"] == big.patients.index[0]]
    source = cohort.events[cohort.events["patient_id"] == cohort.patients.index[pick[0]]]
    np.testing.assert_array_equal(first["time"].to_numpy(), source["time"].to_numpy())


def test_synthetic_chunk_reaches_the_requested_number_of_variables():
    cohort, _ = synthetic_chunk(20, n_steps=6, n_variables=25, seed=0)
    measured = cohort.events.loc[cohort.events["value"].notna(), "variable"].nunique()
    assert measured == 25
    assert isinstance(cohort.events, pd.DataFrame) and cohort.n_patients == 20


def test_predicted_peak_is_linear_in_events():
    assert predicted_peak_mb([], 10) is None
    assert predicted_peak_mb([(100, 500.0, 300.0)], 1000) == pytest.approx(300 + 200 * 10)
    assert predicted_peak_mb([(100, 500.0, 300.0), (300, 900.0, 300.0)], 1300) == pytest.approx(900 + 2 * 1000)


def test_stage_choice_and_reproduce_command():
    args = parse_args(["--quick", "--only", "scoring,train", "--threads", "97"])
    assert chosen_stages(args) == ["scoring", "train"]
    assert reproduce_command("train", args) == "python bench/run.py --only train --quick --threads 97"
    assert "search-full" not in chosen_stages(parse_args([]))
    assert chosen_stages(parse_args(["--skip", "scale,search"]))[:2] == ["preprocess", "train"]
    with pytest.raises(SystemExit, match="unknown stage"):
        chosen_stages(parse_args(["--only", "nope"]))
