"""Stratified split and Preprocessor: binning, imputation, standardisation, covariates, persistence."""
import json

import numpy as np
import pandas as pd
import pytest

from dice_core.config import PreprocessConfig
from dice_core.data.cohort import Cohort
from dice_core.errors import CohortError, ConfigError
from dice_core.preprocess import Preprocessor, Split, stratified_split

# ----------------------------------------------------------------------------------------- split


def test_split_sizes_are_4_1_1_stratified_and_disjoint():
    ids = np.array([f"p{i}" for i in range(600)])
    y = (np.arange(600) % 5 == 0).astype(int)  # 20% positive
    split = stratified_split(ids, y, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (400, 100, 100)
    assert set(split.train) | set(split.val) | set(split.test) == set(ids)
    assert not set(split.train) & set(split.val) and not set(split.val) & set(split.test)
    rate = dict(zip(ids, y))
    for part in (split.train, split.val, split.test):
        assert np.mean([rate[p] for p in part]) == pytest.approx(0.2, abs=0.01)


def test_split_is_deterministic_per_seed():
    ids, y = np.arange(120), np.arange(120) % 2
    a, b, c = stratified_split(ids, y, seed=1), stratified_split(ids, y, seed=1), stratified_split(ids, y, seed=2)
    assert (a.train == b.train).all() and (a.test == b.test).all()
    assert set(a.test) != set(c.test)
    assert a.train.dtype.kind == "U"  # ids as strings, like cohort.patients.index
    assert Split.from_dict(json.loads(json.dumps(a.to_dict()))).val.tolist() == a.val.tolist()


def test_split_custom_ratios():
    split = stratified_split(np.arange(100), np.arange(100) % 2, ratios=(3, 1, 1))
    assert (len(split.train), len(split.val), len(split.test)) == (60, 20, 20)


def test_split_refuses_too_few_positives_and_mismatched_lengths():
    with pytest.raises(ConfigError, match="3 patients with the outcome: a stratified 4:1:1 split needs at least 12"):
        stratified_split(np.arange(100), np.r_[np.ones(3), np.zeros(97)])
    with pytest.raises(ConfigError, match="10 patient ids but 9 outcomes"):
        stratified_split(np.arange(10), np.zeros(9))


# ----------------------------------------------------------------------------------- preprocessor


def tiny_cohort():
    """Three patients, window 4 h in 1 h bins, one numeric (HR) and one coded (order) variable."""
    events = pd.DataFrame([
        ("a", 0.2, "HR", 80.0), ("a", 0.7, "HR", 90.0), ("a", 2.5, "HR", 100.0),  # steps 0 (mean 85) and 2
        ("a", 1.1, "order", np.nan), ("a", 1.9, "order", np.nan),  # two orders in step 1
        ("b", 1.0, "HR", 60.0), ("b", 3.0, "order", np.nan),
        ("b", 4.0, "HR", 500.0), ("b", -1.0, "HR", 500.0),  # outside the window: dropped
        ("c", 3.5, "HR", 70.0), ("c", 0.5, "Lactate", 2.0),  # c is not a training patient
    ], columns=["patient_id", "time", "variable", "value"])
    patients = pd.DataFrame({"outcome": [1, 0, 0], "age": [70.0, np.nan, 40.0], "sex": ["f", "m", "m"],
                             "race": ["A", "B", None]}, index=pd.Index(["a", "b", "c"], name="patient_id"))
    return Cohort(events, patients, covariates=["age", "sex"], group="race")


CONFIG = PreprocessConfig(window_hours=4, bin_hours=1)


@pytest.fixture
def fitted():
    return Preprocessor(CONFIG).fit(tiny_cohort(), ["a", "b"])


def test_fit_learns_variables_kinds_and_training_statistics(fitted):
    assert fitted.variables_ == ["HR", "order"]  # Lactate is only in c (not training)
    assert fitted.kinds_ == ["numeric", "coded"]
    step_means = [85.0, 100.0, 60.0]  # observed HR steps of a and b
    assert fitted.means_[0] == pytest.approx(np.mean(step_means))
    assert fitted.stds_[0] == pytest.approx(np.std(step_means))
    counts = np.zeros(8)
    counts[[0, 1]] = [2, 1]  # 2 orders in one step, 1 in another, over 2 patients x 4 steps
    assert fitted.means_[1] == pytest.approx(counts.mean()) and fitted.stds_[1] == pytest.approx(counts.std())
    assert fitted.ranges_["HR"][2:] == [60.0, 100.0]  # min, max of the training values in the window


def test_transform_bins_carries_forward_and_standardises(fitted):
    data = fitted.transform(tiny_cohort())
    assert data.X.shape == (3, 4, 4) and data.X.dtype == np.float32
    assert data.mask.shape == (3, 4, 2) and data.mask.dtype == bool
    mean, std = fitted.means_[0], fitted.stds_[0]
    hr = data.X[:, :, 0] * std + mean
    np.testing.assert_allclose(hr[0], [85, 85, 100, 100], rtol=1e-5)  # carried forward
    np.testing.assert_allclose(hr[1], [mean, 60, 60, 60], rtol=1e-5)  # before the first value: training mean
    np.testing.assert_allclose(hr[2], [mean, mean, mean, 70], rtol=1e-5)
    assert data.X[1, 0, 0] == 0.0  # the training mean is 0 after standardisation
    assert data.mask[:, :, 0].astype(int).tolist() == [[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
    orders = data.X[:, :, 1] * fitted.stds_[1] + fitted.means_[1]
    np.testing.assert_allclose(orders, [[0, 2, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], atol=1e-5)  # counts, no carrying
    assert data.mask[:, :, 1].astype(int).tolist() == [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    np.testing.assert_array_equal(data.X[:, :, 2:], data.mask.astype(np.float32))  # mask channels appended
    assert data.n_features == 2 and data.n_inputs == 4 and data.n_steps == 4
    assert data.feature_names == ["HR", "order"]
    assert data.patient_ids.tolist() == ["a", "b", "c"]
    assert data.y.tolist() == [1.0, 0.0, 0.0] and data.groups.tolist() == ["A", "B", ""]


def test_without_mask_channels():
    data = Preprocessor(PreprocessConfig(window_hours=4, mask_as_input=False)).fit_transform(tiny_cohort(), ["a", "b"])
    assert data.X.shape == (3, 4, 2) and data.n_inputs == data.n_features == 2


def test_wider_bins_and_uneven_window():
    cohort = tiny_cohort()
    data = Preprocessor(PreprocessConfig(window_hours=3.5, bin_hours=2)).fit_transform(cohort, ["a", "b"])
    assert data.n_steps == 2  # round(3.5 / 2)
    assert data.mask[0, :, 0].tolist() == [True, True]  # a: HR at 0.2/0.7 (step 0) and 2.5 (step 1)
    assert data.mask[2, :, 0].tolist() == [False, False]  # c's HR at 3.5 h is outside the window


def test_statistics_ignore_non_training_patients():
    cohort = tiny_cohort()
    changed = tiny_cohort()
    changed.events.loc[changed.events["patient_id"] == "c", "value"] = 1e6
    a, b = Preprocessor(CONFIG).fit(cohort, ["a", "b"]), Preprocessor(CONFIG).fit(changed, ["a", "b"])
    assert a.to_dict() == b.to_dict()


def test_covariate_encoding(fitted):
    data = fitted.transform(tiny_cohort())
    assert data.covariate_names == ["age_missing", "sex=m"]  # sex: f and m tie; reference f (by name)
    assert data.V.dtype == np.float32
    # training ages: 70 and missing -> one value, so only whether age is missing can inform
    assert data.V[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert data.V[:, 1].tolist() == [0.0, 1.0, 1.0]


def test_numeric_covariate_with_missing_values_gets_an_indicator():
    cohort = tiny_cohort()
    cohort.patients["age"] = [70.0, np.nan, 50.0]
    data = Preprocessor(CONFIG).fit_transform(cohort, ["a", "b", "c"])
    assert data.covariate_names == ["age", "age_missing", "sex=f"]  # m is the most frequent sex
    assert data.V[:, 0].tolist() == [1.0, 0.0, -1.0]  # mean 60, std 10; missing -> the mean
    assert data.V[:, 1].tolist() == [0.0, 1.0, 0.0]


def test_covariate_reference_is_the_most_frequent_level_and_unseen_is_zero():
    ids = ["p1", "p2", "p3", "p4", "p5", "p6"]
    patients = pd.DataFrame({"outcome": [1, 0, 1, 0, 0, 1], "age": [20.0, 40.0, 20.0, 40.0, 60.0, 30.0],
                             "sex": ["m", "m", "m", "f", "x", None]}, index=pd.Index(ids, name="patient_id"))
    events = pd.DataFrame({"patient_id": ids, "time": 0.5, "variable": "HR", "value": 80.0})
    cohort = Cohort(events, patients, covariates=["age", "sex"])
    pre = Preprocessor(CONFIG).fit(cohort, ids[:4])
    spec = {c["name"]: c for c in pre.covariates_}
    assert spec["age"] == {"name": "age", "kind": "numeric", "mean": 30.0, "std": 10.0, "missing_indicator": False}
    assert spec["sex"] == {"name": "sex", "kind": "categorical", "reference": "m", "levels": ["f"]}
    data = pre.transform(cohort)
    assert data.covariate_names == ["age", "sex=f"]
    assert data.V[:, 0].tolist() == [-1.0, 1.0, -1.0, 1.0, 3.0, 0.0]
    assert data.V[:, 1].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # unseen 'x' and missing: all zeros


def test_constant_covariates_are_left_out():
    cohort = tiny_cohort()
    cohort.patients["unit"] = ["icu", "icu", "ward"]
    cohort.patients["age"] = [50.0, 50.0, 1.0]
    cohort.covariates = ["age", "unit", "sex"]
    data = Preprocessor(CONFIG).fit_transform(cohort, ["a", "b"])
    assert data.covariate_names == ["sex=m"]  # constant in training: collinear with the intercept


def test_unknown_variables_and_out_of_range(fitted):
    cohort = tiny_cohort()
    assert fitted.unknown_variables(cohort) == ["Lactate"]
    cohort.events.loc[len(cohort.events)] = ["c", 1.5, "HR", 400.0]  # far above the training max 100
    cohort.events.loc[len(cohort.events)] = ["c", 2.5, "HR", 105.0]  # a little above: not reported
    out = fitted.out_of_range(cohort)
    assert out.to_dict("records") == [{"patient_id": "c", "time": 1.5, "variable": "HR", "value": 400.0,
                                       "training_min": 60.0, "training_max": 100.0}]


def skewed_cohort():
    """40 training patients, one hourly value each of a heavy-tailed (Urine) and a symmetric (HR) variable."""
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(40)]
    urine = np.r_[rng.exponential(50.0, 38), 2000.0, 3000.0]  # skewness far above 2
    hr = rng.normal(80.0, 10.0, 40)
    events = pd.DataFrame({"patient_id": ids * 2, "time": 0.5, "variable": ["Urine"] * 40 + ["HR"] * 40,
                           "value": np.r_[urine, hr]})
    patients = pd.DataFrame({"outcome": np.arange(40) % 2}, index=pd.Index(ids, name="patient_id"))
    return Cohort(events, patients, covariates=[]), urine, hr


def test_log_skewed_logs_only_non_negative_heavy_tailed_variables():
    cohort, urine, hr = skewed_cohort()
    config = PreprocessConfig(window_hours=1, log_skewed=True)
    fitted = Preprocessor(config).fit(cohort, cohort.patients.index)
    assert fitted.logged_ == ["Urine"]
    data = fitted.transform(cohort)
    u = data.feature_names.index("Urine")
    expected = (np.log1p(urine) - np.log1p(urine).mean()) / np.log1p(urine).std()
    np.testing.assert_allclose(data.X[:, 0, u], expected, rtol=1e-4, atol=1e-5)
    assert fitted.ranges_["Urine"][3] == 3000.0  # ranges (out-of-range warnings) stay in the raw unit
    restored = Preprocessor.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_array_equal(restored.transform(cohort).X, data.X)
    plain = Preprocessor(PreprocessConfig(window_hours=1)).fit(cohort, cohort.patients.index)
    assert plain.logged_ == []
    assert plain.transform(cohort).X[:, 0, u].max() > 5  # the two large values sit far out


def test_clip_sd_bounds_standardised_values():
    cohort, urine, _ = skewed_cohort()
    clipped = Preprocessor(PreprocessConfig(window_hours=1, clip_sd=3.0)).fit_transform(cohort, cohort.patients.index)
    plain = Preprocessor(PreprocessConfig(window_hours=1)).fit_transform(cohort, cohort.patients.index)
    values = clipped.X[..., :clipped.n_features]
    assert values.max() == pytest.approx(3.0) and values.min() >= -3.0
    inside = np.abs(plain.X) <= 3.0
    np.testing.assert_array_equal(clipped.X[inside], plain.X[inside])
    with pytest.raises(ConfigError, match="clip_sd=0 must be > 0"):
        PreprocessConfig(clip_sd=0)


def test_json_round_trip_transforms_identically(fitted):
    restored = Preprocessor.from_dict(json.loads(json.dumps(fitted.to_dict())))
    a, b = fitted.transform(tiny_cohort()), restored.transform(tiny_cohort())
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.V, b.V)
    assert restored.to_dict() == fitted.to_dict()
    with pytest.raises(ConfigError, match="not a DICE Studio preprocessor"):
        Preprocessor.from_dict({"format": "something else"})


def test_subset_by_ids_positions_and_mask(fitted):
    data = fitted.transform(tiny_cohort())
    by_ids = data.subset(["c", "a"])
    assert by_ids.patient_ids.tolist() == ["c", "a"] and by_ids.y.tolist() == [0.0, 1.0]
    np.testing.assert_array_equal(by_ids.X, data.X[[2, 0]])
    assert data.subset([1]).groups.tolist() == ["B"]
    assert len(data.subset(np.array([True, False, True]))) == 2
    with pytest.raises(CohortError, match=r"patient ids \['zz'\] are not in the prepared data"):
        data.subset(["zz"])


def test_errors_name_the_fix():
    with pytest.raises(ConfigError, match="not fitted yet; call fit"):
        Preprocessor(CONFIG).transform(tiny_cohort())
    with pytest.raises(CohortError, match="1 training patient ids are not in the cohort"):
        Preprocessor(CONFIG).fit(tiny_cohort(), ["a", "nobody"])
    late = tiny_cohort()
    late.events["time"] += 100
    with pytest.raises(CohortError, match=r"no events within the first 4 hours; .* set a longer window "
                                          r"\(--window-hours / PreprocessConfig.window_hours\)"):
        Preprocessor(CONFIG).fit(late, ["a", "b"])


def test_unseen_levels_lists_values_the_encoding_cannot_represent(fitted):
    new = tiny_cohort()
    new.patients["sex"] = ["f", "X", None]  # 'X' was never seen in training (f, m); None is plain missing
    new.patients["age"] = pd.Series([70.0, "unknown", np.nan], index=new.patients.index, dtype=object)
    found = fitted.unseen_levels(new)
    assert list(found.columns) == ["patient_id", "covariate", "value"]
    assert found.values.tolist() == [["b", "age", "unknown"], ["b", "sex", "X"]]
    by_name = dict(zip(fitted.transform(new).covariate_names, fitted.transform(new).V[1]))
    assert by_name["sex=m"] == 0.0  # what unseen_levels warns about: 'X' is encoded as the reference 'f'
    assert fitted.unseen_levels(tiny_cohort()).empty


def test_vectorised_transform_matches_a_simple_loop(synthetic_cohort):
    """The chunked, vectorised binning agrees with a plain per-patient computation."""
    cohort, _ = synthetic_cohort
    config = PreprocessConfig(window_hours=12, bin_hours=1)
    pre = Preprocessor(config).fit(cohort, cohort.patients.index[:200])
    import dice_core.preprocess.preprocessor as module
    small_chunks = Preprocessor.from_dict(pre.to_dict())
    original = module.CELLS_PER_CHUNK
    module.CELLS_PER_CHUNK = 12 * 6 * 7  # 7 patients per chunk: many chunks
    try:
        chunked = small_chunks.transform(cohort)
    finally:
        module.CELLS_PER_CHUNK = original
    data = pre.transform(cohort)
    np.testing.assert_array_equal(chunked.X, data.X)
    for p in (0, 150, 299):  # spot-check patients against pandas
        pid = data.patient_ids[p]
        ev = cohort.events[(cohort.events["patient_id"] == pid) & (cohort.events["variable"] == "HR")]
        expected = ev.groupby(np.floor(ev["time"]).astype(int))["value"].mean().reindex(range(12)).ffill()
        expected = ((expected - pre.means_[pre.variables_.index("HR")]) / pre.stds_[pre.variables_.index("HR")])
        np.testing.assert_allclose(data.X[p, :, pre.variables_.index("HR")], expected.fillna(0), rtol=1e-5, atol=1e-5)


@pytest.mark.physionet
def test_real_set_a_prepares(physionet_path):
    from dice_core.data import load_physionet2012
    cohort = load_physionet2012(physionet_path)
    split = stratified_split(cohort.patients.index, cohort.y, seed=0)
    pre = Preprocessor(PreprocessConfig()).fit(cohort, split.train)
    data = pre.transform(cohort)
    assert data.X.shape == (4000, 48, 74) and np.isfinite(data.X).all()
    assert data.covariate_names == ["Age", "Gender=female"]  # male is the most frequent: the reference
    train = data.subset(split.train)
    observed = train.X[..., :37][train.mask]
    assert abs(observed.mean()) < 0.2 and 0.5 < observed.std() < 1.5  # standardised on training
