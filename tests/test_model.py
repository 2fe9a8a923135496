"""The DICE estimator on a synthetic cohort with planted subgroups: recovery, significance,
reproducibility, and model files that reload and score identically."""
import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from dice_core.config import DICEConfig, PreprocessConfig
from dice_core.data.synthetic import make_synthetic_cohort
from dice_core.errors import ConfigError, ModelFileError
from dice_core.model import DICE
from dice_core.modelfile import load_model, pack_model, save_model, unpack_model
from dice_core.scoring import score_patients

PRE = PreprocessConfig(window_hours=12, bin_hours=1)
CONFIG = DICEConfig(n_clusters=3, hidden_size=8, n_iter=6, batch_size=64, seed=0, device="cpu")


@pytest.fixture(scope="module")
def planted():
    return make_synthetic_cohort(n_patients=360, n_subgroups=3, n_steps=12, n_variables=5, seed=1)


@pytest.fixture(scope="module")
def fitted(planted):
    cohort, _ = planted
    return DICE(CONFIG, PRE).fit(cohort)


def test_planted_subgroups_are_recovered_and_significant(planted, fitted):
    cohort, truth = planted
    clusters = fitted.predict(cohort)
    assert adjusted_rand_score(truth, clusters) >= 0.8
    sig = fitted.significance_
    off_diagonal = sig.p_values[~np.eye(3, dtype=bool)]
    assert np.all(off_diagonal < 0.05)
    assert fitted.significant_


def test_clusters_are_numbered_by_outcome_rate(fitted):
    rates = fitted.cluster_rates_
    assert np.all(np.diff(rates) <= 0), rates  # cluster 0 = highest risk


def test_history_records_every_iteration_with_timings(fitted):
    assert [h["iteration"] for h in fitted.history_] == list(range(1, CONFIG.n_iter + 1))
    for key in ("val_auc", "all_significant", "seconds_epoch", "seconds_kmeans", "seconds_exact_test"):
        assert key in fitted.history_[0]
    assert 1 <= fitted.best_iteration_ <= CONFIG.n_iter
    assert fitted.val_auc_ == pytest.approx(fitted.history_[fitted.best_iteration_ - 1]["val_auc"])


def test_same_seed_same_model(planted, fitted):
    cohort, _ = planted
    again = DICE(CONFIG, PRE).fit(cohort)
    np.testing.assert_array_equal(again.predict(cohort), fitted.predict(cohort))
    np.testing.assert_allclose(again.predict_proba(cohort), fitted.predict_proba(cohort), rtol=0, atol=1e-7)
    assert [h["val_auc"] for h in again.history_] == [h["val_auc"] for h in fitted.history_]


def test_outputs_have_the_documented_shapes(planted, fitted):
    cohort, _ = planted
    n = cohort.n_patients
    assert fitted.transform(cohort).shape == (n, CONFIG.hidden_size)
    assert fitted.memberships(cohort).shape == (n, CONFIG.n_clusters)
    np.testing.assert_allclose(fitted.memberships(cohort).sum(1), 1.0, atol=1e-5)
    prob = fitted.predict_proba(cohort)
    assert prob.shape == (n,) and np.all((prob > 0) & (prob < 1))


def test_saved_model_reloads_and_scores_identically(tmp_path, planted, fitted):
    cohort, _ = planted
    save_model(fitted, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    new_patients = cohort.subset(fitted.split_.test)
    a, b = score_patients(fitted, new_patients), score_patients(loaded, new_patients)
    assert list(a.columns[:5]) == ["patient_id", "cluster", "risk_level", "cluster_outcome_rate", "probability"]
    assert a.equals(b)
    np.testing.assert_array_equal(loaded.split_.test, fitted.split_.test)
    assert loaded.significance_.p_values.shape == (3, 3)


def test_archive_round_trip_keeps_patient_ids_out(tmp_path, planted, fitted):
    cohort, _ = planted
    save_model(fitted, tmp_path / "m")
    archive = pack_model(tmp_path / "m")
    restored = load_model(unpack_model(archive, tmp_path / "restored"))
    assert restored.split_ is None  # the archive leaves the training patients' ids behind
    np.testing.assert_array_equal(restored.predict(cohort), fitted.predict(cohort))


def test_model_files_not_written_by_dice_are_refused(tmp_path, fitted):
    save_model(fitted, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["format"] = "something-else"
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="not written by DICE Studio"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelFileError, match="needs model.json"):
        load_model(tmp_path)


def test_tampered_weights_are_refused(tmp_path, fitted):
    save_model(fitted, tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(tmp_path / "m")


def test_archive_with_a_pickle_is_refused(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model.json", "{}")
        zf.writestr("weights.safetensors", b"")
        zf.writestr("evil.pkl", b"cos\nsystem\n")
    with pytest.raises(ModelFileError, match="model archive"):
        unpack_model(buf.getvalue(), tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ModelFileError, match="not a zip"):
        unpack_model(b"not a zip", tmp_path / "y")


def test_too_few_patients_for_k_is_a_clear_error():
    cohort, _ = make_synthetic_cohort(n_patients=40, n_subgroups=2, n_steps=6, n_variables=3, seed=0)
    with pytest.raises(ConfigError, match="K=8 clusters need"):
        DICE(CONFIG.replace(n_clusters=8), PreprocessConfig(window_hours=6)).fit(cohort)


@pytest.mark.parametrize("field,value,message", [
    ("n_clusters", 1, "n_clusters K=1"), ("hidden_size", 0, "hidden_size d=0"), ("alpha", 1.5, "alpha"),
])
def test_out_of_range_architecture_is_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        CONFIG.replace(**{field: value})


def test_early_stopping_stops_once_settled(planted):
    cohort, _ = planted
    config = CONFIG.replace(n_iter=40, early_stopping=True, patience=3, min_delta=0.5, settled_fraction=1.1)
    model = DICE(config, PRE).fit(cohort)
    # with min_delta 0.5 no gain counts and any membership change counts as settled: stop after patience+1
    assert len(model.history_) == 4
    assert model.significant_


def test_settled_rule():
    from dice_core.model.trainer import settled

    cfg = CONFIG.replace(patience=2, min_delta=0.01, settled_fraction=0.05)
    rising = [{"val_auc": a, "membership_change": 0.0} for a in (0.6, 0.7, 0.8, 0.9)]
    flat = [{"val_auc": a, "membership_change": 0.0} for a in (0.8, 0.805, 0.80, 0.801)]
    moving = [{"val_auc": a, "membership_change": 0.2} for a in (0.8, 0.805, 0.80, 0.801)]
    assert not settled(rising, cfg) and settled(flat, cfg) and not settled(moving, cfg)


def test_save_model_never_overwrites_a_folder_that_is_not_a_model(tmp_path, fitted):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ModelFileError, match="not a DICE Studio model"):
        save_model(fitted, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    save_model(fitted, tmp_path / "m")
    save_model(fitted, tmp_path / "m")  # replacing an earlier model is fine


def test_inconsistent_model_json_is_a_clear_error(tmp_path, fitted):
    save_model(fitted, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["centroids"] = meta["centroids"][:1]
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="do not match K=3"):
        load_model(tmp_path / "m")
    del meta["preprocessor"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="incomplete or inconsistent"):
        load_model(tmp_path / "m")


def test_scoring_events_without_any_model_variable_is_refused(planted, fitted):
    from dice_core.errors import CohortError

    cohort, _ = planted
    renamed = cohort.subset(fitted.split_.test)
    renamed.events = renamed.events.assign(variable="X_" + renamed.events["variable"])
    with pytest.raises(CohortError, match="none of the model's"):
        score_patients(fitted, renamed)


def test_missing_model_variable_is_a_warning(planted, fitted):
    cohort, _ = planted
    part = cohort.subset(fitted.split_.test)
    dropped = fitted.preprocessor_.variables_[0]
    part.events = part.events[part.events["variable"] != dropped]
    warnings = fitted.input_warnings(part)
    assert dropped in set(warnings["variable"])
    kind = dict(zip(fitted.preprocessor_.variables_, fitted.preprocessor_.kinds_))[dropped]
    expected = {"numeric": "not measured for these patients: read as the training mean",
                "coded": "no such event for these patients: counted as none"}[kind]
    assert warnings.loc[warnings["variable"] == dropped, "problem"].tolist() == [expected]


def test_cuda_without_a_gpu_is_a_clear_error(planted):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="no usable CUDA"):
        DICE(CONFIG.replace(device="cuda"), PRE).fit(planted[0])
    with pytest.raises(ConfigError, match="device='tpu'"):
        CONFIG.replace(device="tpu")
