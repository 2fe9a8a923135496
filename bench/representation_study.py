"""Which training settings give DICE a more predictive representation? Decided on validation only.

For each split seed, the PhysioNet cohort is split 4:1:1 and prepared once; every variant trains
the same architectures on the training split, and we record, on the validation split only:
- the outcome head's AUC (the figure the search selects by) and the kept iteration;
- the AUC of a logistic regression fitted on the training representation (the test-split probe
  of the evaluation, here on validation).
The test split is never touched, so a variant chosen here can then be checked once on test.

    python bench/representation_study.py --seeds 0 1 2 3 4 --out bench/results/representation_study.csv
"""
from __future__ import annotations

import argparse
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from dice_core.config import DICEConfig, PreprocessConfig
from dice_core.data.physionet import load_physionet2012
from dice_core.evaluation.metrics import representation_auc
from dice_core.model.dice import DICE, rows_of
from dice_core.preprocess.preprocessor import Preprocessor
from dice_core.preprocess.split import stratified_split

VARIANTS = {
    "paper": {},
    "pretrain10": {"n_pretrain_epochs": 10},
    "masked": {"masked_reconstruction": True},
    "outcome10": {"lambda_outcome": 10.0},
    "pretrain10+outcome10": {"n_pretrain_epochs": 10, "lambda_outcome": 10.0},
    "batch64": {"batch_size": 64},
    "lr3e-3": {"learning_rate": 3e-3},
    "pretrain10+outcome10+lr3e-3": {"n_pretrain_epochs": 10, "lambda_outcome": 10.0, "learning_rate": 3e-3},
    "outcome10+lr3e-3": {"lambda_outcome": 10.0, "learning_rate": 3e-3},
    # the public implementation's loss weights (method note): classifier 1, outcome 10
    "public-lambdas": {"lambda_classifier": 1.0, "lambda_outcome": 10.0},
    # preprocessing variants (keys of PreprocessConfig)
    "clip5": {"clip_sd": 5.0},
    "log": {"log_skewed": True},
    "log+clip5": {"log_skewed": True, "clip_sd": 5.0},
}
PREPROCESS_KEYS = {f.name for f in fields(PreprocessConfig)}  # the other keys are DICEConfig's


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--physionet", default=None, help="set-a.tar.gz (default: the configured path)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--arch", nargs="+", default=["4,32", "3,16"], help="K,d pairs")
    parser.add_argument("--variants", nargs="+", default=["paper", "pretrain10", "masked", "outcome10", "pretrain10+outcome10"], choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/representation_study.csv"))
    args = parser.parse_args(argv)

    cohort = load_physionet2012(args.physionet)
    rows = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        split = stratified_split(cohort.patients.index.to_numpy(), cohort.y, seed=seed)
        prepared = {}
        for arch in args.arch:
            k, d = (int(a) for a in arch.split(","))
            for name in args.variants:
                changes = VARIANTS[name]
                preprocess = PreprocessConfig(**{key: v for key, v in changes.items() if key in PREPROCESS_KEYS})
                if preprocess not in prepared:
                    preprocessor = Preprocessor(preprocess).fit(cohort, split.train)
                    prepared[preprocess] = (preprocessor, preprocessor.transform(cohort))
                preprocessor, data = prepared[preprocess]
                train, val = rows_of(data, split.train), rows_of(data, split.val)
                y = data.y.astype(int)
                config = DICEConfig(n_clusters=k, hidden_size=d, seed=seed,
                                    **{key: v for key, v in changes.items() if key not in PREPROCESS_KEYS})
                started = time.perf_counter()
                model = DICE(config, preprocess).fit_prepared(data, split, preprocessor)
                z = model.transform(data)
                row = {"seed": seed, "K": k, "d": d, "variant": name, "head_val_auc": model.val_auc_,
                       "rep_val_auc": representation_auc(z[train], y[train], z[val], y[val], seed=seed),
                       "significant": model.significant_, "best_iteration": model.best_iteration_,
                       "seconds": time.perf_counter() - started}
                rows.append(row)
                print(" ".join(f"{key}={v:.4f}" if isinstance(v, float) else f"{key}={v}" for key, v in row.items()),
                      flush=True)
                pd.DataFrame(rows).to_csv(args.out, index=False)
    table = pd.DataFrame(rows)
    print(table.groupby(["K", "d", "variant"])[["head_val_auc", "rep_val_auc", "best_iteration"]].mean().round(4))
    print(table.groupby("variant")[["head_val_auc", "rep_val_auc"]].mean().round(4))


if __name__ == "__main__":
    main()
