"""The `dice` command line: help a new user can follow, the whole flow on files, clear errors."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from dice_core.cli import main
from dice_core.data.synthetic import make_synthetic_cohort, write_cohort

TINY = ["--n-iter", "2", "--batch-size", "64", "--window-hours", "12", "--device", "cpu"]


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    cohort, _ = make_synthetic_cohort(n_patients=240, n_subgroups=3, n_steps=12, n_variables=4, seed=3)
    write_cohort(cohort, folder / "events.csv", folder / "patients.csv")
    return folder


def cohort_args(folder):
    return ["--events", str(folder / "events.csv"), "--patients", str(folder / "patients.csv")]


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "dice_core", "--help"], capture_output=True, text=True, check=True)
    for command in ("validate", "train", "nas", "evaluate", "score"):
        assert command in out.stdout
    assert "examples:" in out.stdout


def test_validate_prints_summary(cohort_files, capsys):
    assert main(["validate", *cohort_args(cohort_files)]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n}")[0] + "\n}")
    assert summary["patients"] == 240


def test_train_then_score(cohort_files, tmp_path, capsys):
    assert main(["train", *cohort_args(cohort_files), "--K", "3", "--d", "6", *TINY, "--out", str(tmp_path / "m")]) == 0
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert summary["K"] == 3 and len(summary["cluster_sizes"]) == 3
    assert main(["score", "--model", str(tmp_path / "m"), *cohort_args(cohort_files), "--split", "test",
                 "--out", str(tmp_path / "scores.csv")]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == 40 and scores["risk_level"].between(1, 3).all()


def test_nas_writes_records_model_and_evaluation(cohort_files, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["nas", *cohort_args(cohort_files), "--K", "2", "3", "--d", "4", *TINY, "--out", str(out)]) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == 2
    assert (out / "model" / "weights.safetensors").is_file()
    prediction = pd.read_csv(out / "evaluation" / "prediction.csv")
    assert "DICE outcome head" in set(prediction["predictor"])
    assert "selected: K=" in capsys.readouterr().out


def test_missing_cohort_is_a_clear_error(capsys):
    assert main(["train", "--out", "x"]) == 2
    assert "give a cohort" in capsys.readouterr().err


def test_bad_k_is_a_clear_error(cohort_files, tmp_path, capsys):
    assert main(["train", *cohort_args(cohort_files), "--K", "1", *TINY, "--out", str(tmp_path / "m")]) == 2
    assert "n_clusters K=1" in capsys.readouterr().err


def test_threads_option_sets_torchs_threads(cohort_files, tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["train", *cohort_args(cohort_files), "--threads", "0", *TINY, "--out", str(tmp_path / "m")]) == 2
        assert "--threads 0: give at least 1" in capsys.readouterr().err
        assert main(["validate", *cohort_args(cohort_files)]) == 0  # no --threads: left as it was
        assert torch.get_num_threads() == before
        assert main(["train", *cohort_args(cohort_files), "--threads", "1", *TINY, "--out", str(tmp_path / "m")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
