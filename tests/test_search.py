"""Architecture search: records written as each architecture finishes, resume, selection rule,
successive halving; and the evaluation of DICE against the baselines."""
import json

import numpy as np
import pytest
import torch

from dice_core.config import DICEConfig, PreprocessConfig, SearchConfig
from dice_core.data.synthetic import make_synthetic_cohort
from dice_core.errors import CancelledError, ConfigError
from dice_core.evaluation import evaluate
from dice_core.search import read_records, run_search
from dice_core.search.nas import halving_rungs, selection_key

PRE = PreprocessConfig(window_hours=12, bin_hours=1)
BASE = DICEConfig(n_iter=3, batch_size=64, device="cpu")
GRID = SearchConfig(n_clusters=(2, 3), hidden_sizes=(4, 8))


@pytest.fixture(scope="module")
def cohort():
    return make_synthetic_cohort(n_patients=300, n_subgroups=3, n_steps=12, n_variables=5, seed=2)[0]


@pytest.fixture(scope="module")
def search(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    return run_search(cohort, GRID, BASE, PRE, out)


def test_every_architecture_has_a_record_and_a_model(search):
    records = read_records(search.out_dir)
    assert sorted((r["K"], r["d"]) for r in records) == [(2, 4), (2, 8), (3, 4), (3, 8)]
    for r in records:
        assert set(r) >= {"val_auc", "all_significant", "S", "min_p", "smallest_cluster", "seconds"}
        assert len(r["S"]) == r["K"]
        assert (search.out_dir / "architectures" / f"K{r['K']}_d{r['d']}_it3" / "model.json").is_file()
    assert (search.out_dir / "model" / "model.json").is_file()


def test_selection_is_best_validation_auc_among_significant(search):
    records = read_records(search.out_dir)
    significant = [r for r in records if r["all_significant"]]
    pool = significant or records
    best = max(pool, key=lambda r: r["val_auc"])
    assert (search.selected["K"], search.selected["d"]) == (best["K"], best["d"])
    assert search.model.config.n_clusters == best["K"]


def test_selection_key_puts_significance_first():
    sig = {"K": 3, "d": 8, "val_auc": 0.70, "all_significant": True}
    not_sig = {"K": 2, "d": 8, "val_auc": 0.90, "all_significant": False}
    assert max([not_sig, sig], key=selection_key) is sig


def test_interrupted_search_keeps_records_and_resumes(cohort, tmp_path):
    calls = {"n": 0}

    def stop_after_first_architecture(event=None):
        return len(read_records(tmp_path)) >= 1

    with pytest.raises(CancelledError):
        run_search(cohort, GRID, BASE, PRE, tmp_path, should_stop=stop_after_first_architecture)
    first = read_records(tmp_path)
    assert len(first) == 1
    trained = []
    result = run_search(cohort, GRID, BASE, PRE, tmp_path,
                        progress=lambda e: trained.append(e["record"]) if "record" in e and e["stage"] == "architecture done" else None)
    records = read_records(tmp_path)
    assert len(records) == 4 and records[0] == first[0]  # the first one was not trained again
    assert len(trained) == 3


def test_resuming_with_other_settings_is_refused(cohort, search):
    with pytest.raises(ConfigError, match="settings differ: base.learning_rate"):
        run_search(cohort, GRID, BASE.replace(learning_rate=0.01), PRE, search.out_dir)


def test_halving_rungs_end_with_the_full_schedule():
    rungs = halving_rungs(60, 28)
    assert rungs == [(6, 28), (20, 9), (60, 3)]
    assert sum(i * n for i, n in rungs) <= 60 * 28 / 3  # a third of the grid's iterations
    assert halving_rungs(60, 2) == [(60, 2)]


def test_halving_search_selects_among_survivors(cohort, tmp_path):
    result = run_search(cohort, SearchConfig((2, 3), (4, 8, 12), "halving"), BASE.replace(n_iter=3), PRE, tmp_path)
    iters = sorted({r["n_iter"] for r in read_records(tmp_path)})
    assert iters == [1, 3]
    assert result.selected["n_iter"] == 3


def test_evaluation_tables(search, cohort):
    result = evaluate(search.model, cohort)
    names = list(result.clustering["representation"])
    assert names == ["DICE", "PCA", "AE", "AE + classification"]
    assert {"silhouette", "calinski_harabasz", "davies_bouldin"} <= set(result.clustering.columns)
    predictors = list(result.prediction["predictor"])
    assert "DICE outcome head" in predictors and any("reference" in p for p in predictors)
    # each representation alone and with the covariates (the reference has them too)
    assert [p for p in predictors if p.startswith("DICE representation")] == [
        "DICE representation", "DICE representation + covariates"]
    assert sum(p.endswith("representation + covariates") for p in predictors) == 4
    for col in ("auc", "acc", "fpr", "tpr", "fnr", "tnr", "ppv", "npv", "threshold"):
        assert col in result.prediction.columns
    assert result.prediction["auc"].between(0, 1).all()
    g = result.groups
    assert set(g["predictor"]) == {"cluster membership", "representation"}
    assert (g.groupby(["representation", "predictor"])["n"].sum() == len(search.model.split_.test)).all()
    json.dumps(result.to_dict(), default=float)


def test_fixed_threshold_is_used(search, cohort):
    result = evaluate(search.model, cohort, threshold=0.3, baselines=False)
    assert (result.prediction["threshold"] == 0.3).all()


def test_a_folder_that_is_not_a_search_is_never_used_or_deleted(cohort, tmp_path):
    (tmp_path / "data.csv").write_text("precious")
    for resume in (True, False):
        with pytest.raises(ConfigError, match="not a DICE Studio search"):
            run_search(cohort, GRID, BASE, PRE, tmp_path, resume=resume)
    assert (tmp_path / "data.csv").read_text() == "precious"


def test_resuming_on_another_cohort_is_refused(search):
    other = make_synthetic_cohort(n_patients=320, n_subgroups=3, n_steps=12, n_variables=5, seed=2)[0]
    with pytest.raises(ConfigError, match="the cohort differs"):
        run_search(other, GRID, BASE, PRE, search.out_dir)


def test_halving_continues_survivors_into_the_grids_models(cohort, tmp_path, monkeypatch):
    """A survivor goes on from its previous rung's model: its final record is the grid's record of the
    same architecture at the same schedule (same validation AUC, exact test and kept iteration)."""
    from dice_core.model import DICE

    continued = []
    original = DICE.continue_training
    monkeypatch.setattr(DICE, "continue_training",
                        lambda self, *a, **kw: continued.append(self.config.hidden_size) or original(self, *a, **kw))
    search = SearchConfig((2, 3), (4, 8, 12), "halving")
    halving = run_search(cohort, search, BASE.replace(n_iter=3), PRE, tmp_path / "halving")
    assert len(continued) == 2  # rungs (1 iteration, 6 candidates), (3 iterations, 2): both survivors continued
    finals = [r for r in read_records(tmp_path / "halving") if r["n_iter"] == 3]
    for record in finals:
        grid = run_search(cohort, SearchConfig((record["K"],), (record["d"],)), BASE.replace(n_iter=3), PRE,
                          tmp_path / f"grid_K{record['K']}_d{record['d']}")
        straight = grid.records.iloc[0]
        assert record["val_auc"] == straight["val_auc"]
        assert record["S"] == straight["S"] and record["best_iteration"] == straight["best_iteration"]
    assert halving.selected["n_iter"] == 3


def test_continue_training_equals_training_longer(cohort):
    from dice_core.model import DICE

    short = DICE(BASE.replace(n_clusters=2, hidden_size=4, n_iter=1), PRE).fit(cohort)
    longer = DICE(BASE.replace(n_clusters=2, hidden_size=4, n_iter=3), PRE).fit(cohort)
    short.continue_training(short.prepare(cohort), 3)
    assert [h["val_auc"] for h in short.history_] == [h["val_auc"] for h in longer.history_]
    for name, weights in longer.network_.state_dict().items():
        assert torch.equal(short.network_.state_dict()[name], weights), name
    assert np.array_equal(short.centroids_, longer.centroids_) and short.config.n_iter == 3
    with pytest.raises(ConfigError, match="cannot go back"):
        short.continue_training(short.prepare(cohort), 2)
