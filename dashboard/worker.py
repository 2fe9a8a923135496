"""The training process behind the Train page: `python -m dashboard.worker train <job folder>`.

It never touches streamlit. It reads job.json and the job's cohort, runs dice_core's architecture
search, then evaluates the selected model against the baselines and prepares what the Results
page draws (scores, representation, UMAP maps), writing status.json as it goes. Cancelling = a
STOP file in the job folder, checked between batches (dice_core raises CancelledError).

`python -m dashboard.worker prepare <job folder> <architecture>` prepares another finished
architecture of the same search on request (scores and map).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard.jobs import Job, read_json, write_json
from dashboard.store import analysis_dir, read_cohort, write_analysis
from dice_core.modelfile import json_safe

log = logging.getLogger("dice_studio.worker")
SEARCH_SHARE = 0.8  # of the progress bar; evaluation and maps fill the rest
# the stages after the search; their time left is not estimated (the Train page says so)
SCORING, COMPARING, MAPS = "scoring the patients", "comparing with the baselines", "preparing the maps"
AFTER_SEARCH = (SCORING, COMPARING, MAPS)


class StatusWriter:
    """Writes status.json at most twice a second (always on a change of stage or state)."""

    def __init__(self, job: Job):
        self.job = job
        self.status = read_json(job.folder / "status.json", {}) or {}
        self.last_write = 0.0

    def update(self, force: bool = False, **fields):
        stage_changed = fields.get("stage") not in (None, self.status.get("stage"))
        self.status.update({k: v for k, v in fields.items() if v is not None or k == "eta_s"})
        self.status["updated"] = time.time()
        if force or stage_changed or time.time() - self.last_write > 0.5:
            write_json(self.job.folder / "status.json", self.status)
            self.last_write = time.time()


def run_training(job: Job):
    from dice_core.config import DICEConfig, PreprocessConfig, SearchConfig
    from dice_core.errors import CancelledError, DiceError
    from dice_core.search import run_search

    spec = job.spec
    status = StatusWriter(job)
    status.update(force=True, state="running", pid=os.getpid(), started=time.time(), stage="loading cohort",
                  message="reading the cohort", fraction=status.status.get("fraction", 0.0), error=None)
    should_stop = lambda: (job.folder / "STOP").exists()  # noqa: E731
    post = spec.get("evaluate", True) or spec.get("build_maps", True)
    share = SEARCH_SHARE if post else 0.95
    try:
        cohort = read_cohort(job.cohort_dir)
        search = SearchConfig.from_dict(spec["search"])
        base = DICEConfig.from_dict(spec["base"])
        preprocess = PreprocessConfig.from_dict(spec["preprocess"])

        def progress(event: dict):
            status.update(stage=event.get("stage"), message=event.get("message", ""),
                          fraction=share * float(event.get("fraction") or 0.0),
                          eta_s=event.get("eta_s"), architecture=event.get("architecture"))

        result = run_search(cohort, search, base, preprocess, job.search_dir, progress=progress,
                            should_stop=should_stop, resume=True)
        # scores first (seconds): the Results page opens while baselines and maps are still being made
        status.update(force=True, stage=SCORING, fraction=share, eta_s=None, architecture="",
                      message="risk level and probability of every patient")
        prepare_model(job, "model", result.model, cohort, build_map=False)
        evaluation = None
        if spec.get("evaluate", True):
            status.update(force=True, stage=COMPARING, fraction=share,
                          message="training PCA, AE and AE + classification on the same split")
            evaluation = evaluate_selected(job, result.model, cohort, should_stop, status, share)
        if spec.get("build_maps", True):
            status.update(force=True, stage=MAPS, fraction=0.95 if post else 1.0,
                          message="placing patients on 2-D maps (UMAP): DICE's first, then the baselines' if "
                                  "compared; about half a minute each")
            build_model_map(job, "model", result.model)
            if evaluation is not None:
                prepare_baselines(job, evaluation, result.model)
        status.update(force=True, state="finished", stage="done", fraction=1.0, eta_s=0.0, finished=time.time(),
                      message=f"selected K={result.selected['K']}, d={result.selected['d']}")
    except CancelledError:
        status.update(force=True, state="cancelled", stage="cancelled", eta_s=None, finished=time.time(),
                      message="cancelled; finished architectures are kept and you can resume")
    except DiceError as exc:
        log.error("job %s failed: %s", job.id, exc)
        status.update(force=True, state="failed", stage="failed", eta_s=None, finished=time.time(), error=str(exc),
                      message=str(exc))
    except Exception as exc:  # the log keeps the traceback; the page shows a plain message
        log.error("job %s crashed:\n%s", job.id, traceback.format_exc())
        status.update(force=True, state="failed", stage="failed", eta_s=None, finished=time.time(),
                      error=f"{type(exc).__name__}: {exc}",
                      message="training stopped because of an internal error; the details are in worker.log "
                              "in the job folder")


def evaluate_selected(job: Job, model, cohort, should_stop, status: StatusWriter, start: float):
    """DICE against the baselines on the test split; tables to results/ (CSV + JSON)."""
    from dice_core.evaluation.report import evaluate

    def progress(event):
        status.update(stage=COMPARING, message=event.get("stage", ""),
                      fraction=start + (0.95 - start) * float(event.get("fraction") or 0.0))

    result = evaluate(model, cohort, progress=progress, should_stop=should_stop)
    out = job.results_dir
    out.mkdir(parents=True, exist_ok=True)
    for name, table in result.tables().items():
        table.to_csv(out / f"{name}.csv", index=False)
    (out / "evaluation.json").write_text(json.dumps(json_safe(result.to_dict()), indent=1))
    test_ids = [str(p) for p in model.split_.test]
    predictions = pd.DataFrame({"patient_id": test_ids})
    for name, prob in result.test_probabilities.items():
        predictions[name] = np.asarray(prob, dtype=float)
    predictions.to_csv(out / "test_predictions.csv", index=False)
    _write_validation_predictions(out, model, cohort)
    return result


def _write_validation_predictions(out: Path, model, cohort):
    """The outcome head's validation probabilities: the Results page picks its threshold from them."""
    val = cohort.subset(model.split_.val)
    pd.DataFrame({"patient_id": val.patients.index.astype(str), "outcome": val.y,
                  "probability": model.predict_proba(val)}).to_csv(out / "val_predictions.csv", index=False)


def split_labels(model, patient_ids) -> np.ndarray:
    labels = pd.Series("new", index=pd.Index([str(p) for p in patient_ids]))
    if getattr(model, "split_", None) is not None:
        for part in ("train", "val", "test"):
            labels[labels.index.isin([str(p) for p in getattr(model.split_, part)])] = part
    return labels.to_numpy()


def prepare_model(job: Job, name: str, model, cohort, build_map: bool = True):
    """Scores and representation (and optionally the UMAP map) of every patient of the job's cohort."""
    from dice_core.scoring import score_patients

    data = model.prepare(cohort)
    scores = score_patients(model, data)
    scores.insert(1, "split", split_labels(model, scores["patient_id"]))
    scores.insert(2, "outcome", cohort.patients["outcome"].reindex(scores["patient_id"]).to_numpy())
    Z = model.transform(data)
    write_analysis(analysis_dir(job.folder, name), scores, Z,
                   {"name": name, "K": model.config.n_clusters, "d": model.config.hidden_size, "kind": "DICE"})
    if build_map:
        build_model_map(job, name, model)


def build_model_map(job: Job, name: str, model):
    """UMAP of the saved representation: fitted on the training patients, the others placed on it."""
    from dice_core.viz.embedding import build_map, save_map

    from dashboard.store import read_representation, read_scores

    folder = analysis_dir(job.folder, name)
    scores = read_scores(folder)
    started = time.time()
    frame = build_map(read_representation(folder), scores["patient_id"], scores["split"], seed=model.config.seed)
    save_map(frame, folder / "map.csv", {"seconds": time.time() - started})


def prepare_baselines(job: Job, evaluation, model):
    """Maps of the baselines' representations (the paper's Figure 3), same split, same seed."""
    from dice_core.viz.embedding import build_map, save_map

    # evaluate() and prepare_model() both prepare the same cohort: rows are in the same patient order
    scores_model = pd.read_csv(analysis_dir(job.folder, "model") / "scores.csv", dtype={"patient_id": str})
    for rep_name, rep in evaluation.representations.items():
        if rep_name == "DICE":
            continue
        folder = analysis_dir(job.folder, f"baseline-{rep_name.replace(' ', '').replace('+', '-')}")
        scores = scores_model[["patient_id", "split", "outcome"]].copy()
        scores["cluster"] = np.asarray(rep.clusters)
        scores["risk_level"] = scores["cluster"] + 1
        write_analysis(folder, scores, rep.z, {"name": rep_name, "K": model.config.n_clusters,
                                               "d": int(rep.z.shape[1]), "kind": "baseline"})
        frame = build_map(rep.z, scores["patient_id"], scores["split"], seed=model.config.seed)
        save_map(frame, folder / "map.csv")


def run_prepare(job: Job, name: str):
    """Scores and map of another finished architecture (asked for on the Results page)."""
    from dice_core.modelfile import load_model

    marker = analysis_dir(job.folder, name) / "preparing.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_json(marker, {"pid": os.getpid(), "started": time.time(), "state": "running"})
    try:
        model = load_model(job.search_dir / "architectures" / name)
        prepare_model(job, name, model, read_cohort(job.cohort_dir))
        marker.unlink(missing_ok=True)
    except Exception as exc:
        log.error("preparing %s of job %s failed:\n%s", name, job.id, traceback.format_exc())
        write_json(marker, {"state": "failed", "error": str(exc)})


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if len(argv) < 2 or argv[0] not in ("train", "prepare"):
        print("usage: python -m dashboard.worker train <job folder> | prepare <job folder> <architecture>")
        return 2
    try:
        os.nice(5)  # the web server stays responsive while training runs
    except OSError:
        pass
    threads = max(1, (os.cpu_count() or 2) - 1)
    import torch

    torch.set_num_threads(threads)
    job = Job(Path(argv[1]))
    if argv[0] == "train":
        run_training(job)
    else:
        run_prepare(job, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
