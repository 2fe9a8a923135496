"""Architecture search over K x d (paper section 3.4.2).

The cohort is split and preprocessed once; the autoencoder is pre-trained once per d and shared by
every K (pre-training does not depend on K). Each finished architecture is appended at once to
`records.jsonl` and saved under `architectures/K{K}_d{d}/`, so an interrupted search keeps what it
did and resumes where it stopped. The selected architecture is the one with the best validation
AUC among those whose exact test finds every pair of clusters significant (if none does, the best
overall, flagged "not significant"); it is copied to `model/`.

Strategy "halving" (successive halving): every architecture is first trained with n_iter/9
iterations; the best third (significant ones first, then validation AUC) goes on to n_iter/3, and
the best third of those to the full schedule (`halving_rungs`). A survivor continues from its
previous rung's model (`DICE.continue_training`), which gives exactly the model that training it
from the start would; after a resume, when that model is no longer in memory, it is trained from
the start instead.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import DICEConfig, PreprocessConfig, SearchConfig
from ..data.validate import check_split_feasible
from ..errors import ConfigError
from ..model.dice import DICE, rows_of
from ..model.trainer import DICETrainer, Tensors
from ..modelfile import load_model, save_model
from ..preprocess.preprocessor import Preprocessor
from ..preprocess.split import stratified_split

RECORDS = "records.jsonl"


@dataclass
class SearchResult:
    records: pd.DataFrame
    selected: dict
    model: DICE
    out_dir: Path


def architecture_dir(out_dir: Path, k: int, d: int, n_iter: int | None = None) -> Path:
    suffix = f"_it{n_iter}" if n_iter is not None else ""
    return Path(out_dir) / "architectures" / f"K{k}_d{d}{suffix}"


def read_records(out_dir) -> list[dict]:
    """Finished architectures of a search folder (a half-written last line is ignored)."""
    path = Path(out_dir) / RECORDS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _append_record(out_dir: Path, record: dict):
    with open(out_dir / RECORDS, "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def selection_key(record: dict):
    """Significant architectures first, then validation AUC, then the simpler (smaller K, d)."""
    auc = record.get("val_auc")
    auc = -1.0 if auc is None or (isinstance(auc, float) and math.isnan(auc)) else auc
    return (bool(record.get("all_significant")), auc, -record["K"], -record["d"])


def make_record(model: DICE, n_iter: int) -> dict:
    sig = model.significance_
    p = np.asarray(sig.p_values, dtype=float)
    off = p[~np.eye(len(p), dtype=bool)]
    return {
        "K": model.config.n_clusters, "d": model.config.hidden_size, "n_iter": n_iter,
        "val_auc": None if np.isnan(model.val_auc_) else float(model.val_auc_),
        "all_significant": bool(model.significant_),
        "min_p": float(np.nanmin(off)) if np.isfinite(off).any() else None,
        "max_p": float(np.nanmax(off)) if np.isfinite(off).any() else None,
        "smallest_cluster": int(np.min(model.cluster_sizes_)),
        "cluster_sizes": [int(s) for s in model.cluster_sizes_],
        "cluster_rates": [None if np.isnan(r) else float(r) for r in model.cluster_rates_],
        "S": [[None if np.isnan(v) else float(v) for v in row] for row in p],
        "best_iteration": int(model.best_iteration_),
        "seconds": float(model.train_time_),
    }


def cohort_fingerprint(cohort) -> dict:
    """What identifies the data of a search, so that a resumed search never mixes two cohorts."""
    ids = "\n".join(f"{p}:{y}" for p, y in zip(cohort.patients.index, cohort.patients["outcome"]))
    return {"patients": int(cohort.n_patients), "events": int(len(cohort.events)),
            "ids_and_outcomes_sha256": hashlib.sha256(ids.encode()).hexdigest()}


def check_same_settings(previous: dict, settings: dict, out_dir: Path):
    differ = [f"{part}.{key}" for part in settings for key in settings[part]
              if (previous.get(part) or {}).get(key) != settings[part][key]]
    if differ:
        what = "the cohort differs" if any(d.startswith("cohort.") for d in differ) else f"settings differ: {', '.join(differ)}"
        raise ConfigError(f"{out_dir} holds a search of another run ({what}); resume it with the same cohort and "
                          "settings, or choose a new output folder (or --no-resume to start over)")


def check_search_destination(out_dir: Path):
    """Refuse to use (and with --no-resume, delete) a folder that is not a DICE search folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} is a file; give a folder for the search")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (
            (out_dir / "search.json").is_file() or (out_dir / RECORDS).is_file()):
        raise ConfigError(f"{out_dir} already holds files that are not a DICE Studio search; choose a new or empty "
                          "folder (nothing was changed)")


def halving_rungs(n_iter: int, n_candidates: int, eta: int = 3, max_halvings: int = 2) -> list[tuple[int, int]]:
    """(iterations, candidates) per rung, ending with the full schedule for the survivors."""
    n_halvings = min(max_halvings, int(math.floor(math.log(max(n_candidates, 1), eta))))
    return [(max(1, n_iter // eta ** r), max(1, n_candidates // eta ** (n_halvings - r)))
            for r in range(n_halvings, -1, -1)]


def halving_iterations(rungs: list[tuple[int, int]]) -> int:
    """Architecture-iterations that successive halving trains: each rung's survivors go on from the
    previous rung, so a rung costs only its new iterations (28 x 6 + 9 x 14 + 3 x 40 = 414 for the
    paper's grid and schedule, against the grid's 28 x 60 = 1,680)."""
    return sum((it - (rungs[r - 1][0] if r else 0)) * n for r, (it, n) in enumerate(rungs))


class _Search:
    def __init__(self, cohort, search, base, preprocess, out_dir, progress, should_stop):
        self.search, self.base, self.preprocess_cfg = search, base, preprocess
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress or (lambda e: None)
        self.should_stop = should_stop or (lambda: False)
        self.split = stratified_split(cohort.patients.index.to_numpy(), cohort.y, seed=base.seed,
                                      ratios=preprocess.split_ratios)
        self.progress({"stage": "preprocessing", "fraction": 0.0, "message": "binning and standardising"})
        self.preprocessor = Preprocessor(preprocess).fit(cohort, self.split.train)
        self.data = self.preprocessor.transform(cohort)
        self.train = self.data.subset(rows_of(self.data, self.split.train))
        self.pretrained: dict[int, dict] = {}
        self.live: dict[tuple[int, int], DICE] = {}  # halving: models that the next rung continues
        self.done_units, self.total_units, self.started = 0.0, 1.0, time.perf_counter()

    def autoencoder_for(self, d: int, config: DICEConfig):
        if d not in self.pretrained:
            trainer = DICETrainer(config, should_stop=self.should_stop)
            tensors = Tensors.from_prepared(self.train, trainer.device)
            self.pretrained[d] = trainer.pretrain_autoencoder(tensors, self.data.n_inputs, self.data.n_features)
        return self.pretrained[d]

    def report(self, event: dict, units: float):
        done = self.done_units + units * event.get("fraction", 0.0)
        elapsed = time.perf_counter() - self.started
        fraction = min(done / self.total_units, 1.0)
        self.progress({**event, "fraction": fraction,
                       "eta_s": elapsed / fraction * (1 - fraction) if fraction > 0.01 else None})

    def train_one(self, k: int, d: int, n_iter: int, records: dict, label: str, done_before: int = 0,
                  keep_live: bool = False) -> dict:
        """Train N(K, d) for n_iter iterations, write its model and record. Halving: `done_before`
        iterations were counted at the previous rung; the model trained there (if this process has it)
        is continued, which gives the same model as training from the start; `keep_live` keeps this one."""
        key = (k, d, n_iter)
        if key in records:
            self.done_units += n_iter - done_before
            return records[key]
        config = self.base.replace(n_clusters=k, hidden_size=d, n_iter=n_iter)
        previous = self.live.pop((k, d), None)
        units = n_iter - done_before
        self.report({"stage": "training", "architecture": f"K={k}, d={d}", "fraction": 0.0,
                     "message": f"{label}: K={k}, d={d}"}, units)
        forward = lambda e: self.report({**e, "architecture": f"K={k}, d={d}",
                                         "message": f"{label}: K={k}, d={d} — {e.get('message', e['stage'])}"}, units)
        if previous is not None:
            model = previous.continue_training(self.data, n_iter, forward, self.should_stop)
        else:  # after a resume the previous rung's model is not in memory: the same result, from the start
            init = self.autoencoder_for(d, config)
            model = DICE(config, self.preprocess_cfg).fit_prepared(
                self.data, self.split, self.preprocessor, forward, self.should_stop, init_autoencoder=init)
        if keep_live:
            self.live[(k, d)] = model
        save_model(model, architecture_dir(self.out_dir, k, d, n_iter), name=f"K{k}_d{d}")
        record = make_record(model, n_iter)
        _append_record(self.out_dir, record)
        records[key] = record
        self.done_units += units
        self.report({"stage": "architecture done", "fraction": 0.0, "record": record,
                     "message": f"K={k}, d={d} done: validation AUC {record['val_auc'] or float('nan'):.3f}"}, units)
        return record


def run_search(cohort, search: SearchConfig = SearchConfig(), base: DICEConfig = DICEConfig(),
               preprocess: PreprocessConfig = PreprocessConfig(), out_dir="runs/search", progress=None,
               should_stop=None, resume: bool = True) -> SearchResult:
    """Train every architecture of the grid (or successive halving) and select one; see module doc."""
    out_dir = Path(out_dir)
    check_search_destination(out_dir)
    if not resume and out_dir.exists():
        shutil.rmtree(out_dir)
    grid = [(k, d) for k in search.n_clusters for d in search.hidden_sizes]
    for k, _ in grid:
        base.replace(n_clusters=k)  # validates K
    check_split_feasible(cohort.n_patients, int(cohort.y.sum()), max(search.n_clusters), preprocess.split_ratios)
    settings = json.loads(json.dumps({"base": base.to_dict(), "preprocess": preprocess.to_dict(),
                                      "cohort": cohort_fingerprint(cohort)}))
    settings_file = out_dir / "search.json"
    if settings_file.is_file() and read_records(out_dir):
        check_same_settings(json.loads(settings_file.read_text()), settings, out_dir)
    run = _Search(cohort, search, base, preprocess, out_dir, progress, should_stop)
    settings_file.write_text(json.dumps({**settings, "search": search.to_dict()}, indent=1))
    records = {(r["K"], r["d"], r["n_iter"]): r for r in read_records(out_dir)}

    if search.strategy == "grid":
        run.total_units = len(grid) * base.n_iter
        finals = [run.train_one(k, d, base.n_iter, records, f"{i + 1}/{len(grid)}") for i, (k, d) in enumerate(grid)]
    else:
        rungs = halving_rungs(base.n_iter, len(grid))
        run.total_units = halving_iterations(rungs)
        candidates, done_before = grid, 0
        for r, (n_iter, _) in enumerate(rungs):
            last = r + 1 == len(rungs)
            results = [run.train_one(k, d, n_iter, records, f"rung {r + 1}/{len(rungs)}, {i + 1}/{len(candidates)}",
                                     done_before, keep_live=not last)
                       for i, (k, d) in enumerate(candidates)]
            if not last:
                keep = rungs[r + 1][1]
                ranked = sorted(results, key=selection_key, reverse=True)[:keep]
                candidates = [(x["K"], x["d"]) for x in ranked]
                survivors = set(candidates)
                run.live = {key: m for key, m in run.live.items() if key in survivors}  # free the others
            done_before = n_iter
        finals = results

    best = max(finals, key=selection_key)
    chosen_dir = architecture_dir(out_dir, best["K"], best["d"], best["n_iter"])
    model_dir = out_dir / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    shutil.copytree(chosen_dir, model_dir)
    selected = {**best, "significant": best["all_significant"], "path": str(model_dir)}
    (out_dir / "selected.json").write_text(json.dumps(selected, indent=1))
    run.progress({"stage": "done", "fraction": 1.0, "eta_s": 0.0,
                  "message": f"selected K={best['K']}, d={best['d']}"})
    in_grid = [r for r in read_records(out_dir) if (r["K"], r["d"]) in set(grid)]
    return SearchResult(pd.DataFrame(in_grid), selected, load_model(model_dir), out_dir)
