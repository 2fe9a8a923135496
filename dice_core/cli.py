"""The `dice` command line (also `python -m dice_core`). Run `dice --help`, or `dice COMMAND --help`."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EPILOG = """examples:
  dice validate --physionet ../shared/data/physionet2012/set-a.tar.gz
  dice validate --events events.csv --patients patients.csv --outcome died --positive-label yes
  dice train --physionet set-a.tar.gz --K 4 --d 32 --out models/k4d32
  dice nas --physionet set-a.tar.gz --K 2 3 4 --d 16 32 --out runs/physionet
  dice evaluate --model runs/physionet/model --physionet set-a.tar.gz --out runs/physionet/evaluation
  dice score --model runs/physionet/model --physionet set-a.tar.gz --split test --out scores.csv
"""


# -- cohort options shared by every command ---------------------------------------------------
def add_cohort_options(p: argparse.ArgumentParser, outcome_required=True):
    g = p.add_argument_group("cohort (either --physionet, --synthetic, or --events with --patients)")
    g.add_argument("--physionet", metavar="PATH", help="PhysioNet 2012 set (folder or .tar.gz)")
    g.add_argument("--synthetic", type=int, metavar="N", help="a synthetic cohort of N patients with 3 planted subgroups")
    g.add_argument("--events", metavar="FILE", help="events table, long format (CSV or Parquet)")
    if outcome_required:
        g.add_argument("--patients", metavar="FILE", help="patients table, one row per patient (CSV or Parquet)")
    else:
        g.add_argument("--patients", metavar="FILE",
                       help="patients table with the covariates; the outcome column may be left out. Without "
                            "this table the patients are the events' ids with every covariate missing")
    g.add_argument("--id-col", default="patient_id", help="patient id column (default: patient_id)")
    g.add_argument("--time-col", default="time", help="time column: hours or timestamps (default: time)")
    g.add_argument("--variable-col", default="variable", help="variable column (default: variable)")
    g.add_argument("--value-col", default="value", help="value column (default: value)")
    g.add_argument("--outcome", default="outcome", help="binary outcome column in the patients table"
                   + ("" if outcome_required else " (optional for scoring)"))
    g.add_argument("--positive-label", help="label of the outcome that counts as positive (default: 1/true/yes)")
    g.add_argument("--covariates", help="comma-separated covariates to adjust for (default: all other columns)")
    g.add_argument("--group", help="group column for per-group (fairness) metrics, e.g. race")
    g.add_argument("--index-time-col", metavar="COLUMN",
                   help="patients column with each patient's index time (e.g. admission), used when event times "
                        "are timestamps: hours count from it (default: each patient's first event)")
    g.add_argument("--seed", type=int, default=0, help="seed of the split and of training (default: 0)")


def load_cohort_from_args(args, strict=True):
    from .data import load_cohort, load_physionet2012, make_synthetic_cohort
    from .errors import ConfigError

    if args.physionet:
        return load_physionet2012(args.physionet)
    if args.synthetic is not None:
        return make_synthetic_cohort(n_patients=args.synthetic, seed=args.seed)[0]
    if not (args.events and args.patients):
        raise ConfigError("give a cohort: --physionet PATH, --synthetic N, or both --events FILE and --patients FILE")
    return load_cohort(args.events, args.patients, column_map_from_args(args), strict=strict)


def column_map_from_args(args):
    from .config import ColumnMap

    covariates = tuple(c.strip() for c in args.covariates.split(",") if c.strip()) if args.covariates else None
    return ColumnMap(args.id_col, args.time_col, args.variable_col, args.value_col, args.outcome,
                     args.positive_label, covariates, args.group, index_time=getattr(args, "index_time_col", None))


def load_scoring_cohort_from_args(args, model):
    """Patients to score: their outcome may be unknown, and --patients may be left out."""
    from .data import load_events_for_scoring
    from .errors import ConfigError

    if args.physionet or args.synthetic:
        return load_cohort_from_args(args)
    if not args.events:
        raise ConfigError("give the patients to score: --events FILE (with --patients FILE for their covariates), "
                          "--physionet PATH or --synthetic N")
    model_covariates = [spec["name"] for spec in model.preprocessor_.covariates_]
    return load_events_for_scoring(args.events, args.patients, column_map_from_args(args), model_covariates)


def add_training_options(p: argparse.ArgumentParser, search=False):
    from .config import DICEConfig, PreprocessConfig

    d, pp = DICEConfig(), PreprocessConfig()
    g = p.add_argument_group("architecture and training (defaults: the paper's)")
    if search:
        g.add_argument("--K", type=int, nargs="+", default=[2, 3, 4, 5], help="numbers of clusters to try (default: 2 3 4 5)")
        g.add_argument("--d", type=int, nargs="+", default=[10, 15, 20, 25, 30, 35, 40],
                       help="representation sizes to try (default: 10 15 ... 40)")
        g.add_argument("--strategy", choices=["grid", "halving"], default="grid",
                       help="full grid, or successive halving (about a quarter of the grid's time for 9+ architectures; "
                            "it keeps the best third of the architectures at each rung)")
        g.add_argument("--no-resume", action="store_true", help="start over instead of resuming the output folder")
        g.add_argument("--no-evaluate", action="store_true", help="skip the test-split evaluation with baselines")
    else:
        g.add_argument("--K", type=int, default=d.n_clusters, help=f"number of clusters (default: {d.n_clusters})")
        g.add_argument("--d", type=int, default=d.hidden_size, help=f"representation size (default: {d.hidden_size})")
    g.add_argument("--n-iter", type=int, default=d.n_iter, help=f"outer iterations (default: {d.n_iter})")
    g.add_argument("--n-epoch", type=int, default=d.n_epoch, help=f"epochs per iteration (default: {d.n_epoch})")
    g.add_argument("--pretrain-epochs", type=int, default=d.n_pretrain_epochs, help=f"autoencoder pre-training epochs (default: {d.n_pretrain_epochs})")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"mini-batch size (default: {d.batch_size})")
    g.add_argument("--lr", type=float, default=d.learning_rate, help=f"learning rate (default: {d.learning_rate})")
    g.add_argument("--lambdas", type=float, nargs=4, metavar=("L1", "L2", "L3", "L4"),
                   default=[d.lambda_cluster, d.lambda_classifier, d.lambda_outcome, d.lambda_significance],
                   help="weights of the cluster, classifier, outcome and significance terms (default: 0.1 10 1 1)")
    g.add_argument("--alpha", type=float, default=d.alpha, help="significance level of the pairwise tests (default: 0.05)")
    g.add_argument("--masked-reconstruction", action="store_true", help="score only observed entries in the reconstruction")
    g.add_argument("--early-stopping", action="store_true",
                   help="stop an architecture once validation AUC and memberships have settled")
    g.add_argument("--patience", type=int, default=d.patience, help=f"early-stopping patience (default: {d.patience})")
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    g.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: every core). On a machine that other work shares, "
                        "use fewer: threads that wait for a busy core slow each step down several times")
    g.add_argument("--window-hours", type=float, default=pp.window_hours, help=f"window (default: {pp.window_hours:g} h)")
    g.add_argument("--bin-hours", type=float, default=pp.bin_hours, help=f"bin width (default: {pp.bin_hours:g} h)")
    g.add_argument("--log-skewed", action=argparse.BooleanOptionalAction, default=pp.log_skewed,
                   help="take log(1 + x) of non-negative variables with training skewness above 2 "
                        f"(default: {'on' if pp.log_skewed else 'off'})")
    g.add_argument("--clip-sd", type=_clip_value, default=pp.clip_sd, metavar="SD",
                   help="clip standardised values to +-SD, or 'none' (default: "
                        f"{'no clipping' if pp.clip_sd is None else pp.clip_sd})")


def configs_from_args(args, k=None, d=None):
    from .config import DICEConfig, PreprocessConfig

    l1, l2, l3, l4 = args.lambdas
    config = DICEConfig(
        n_clusters=k if k is not None else args.K, hidden_size=d if d is not None else args.d,
        lambda_cluster=l1, lambda_classifier=l2, lambda_outcome=l3, lambda_significance=l4, alpha=args.alpha,
        n_pretrain_epochs=args.pretrain_epochs, n_iter=args.n_iter, n_epoch=args.n_epoch,
        batch_size=args.batch_size, learning_rate=args.lr, masked_reconstruction=args.masked_reconstruction,
        seed=args.seed, device=args.device, early_stopping=args.early_stopping, patience=args.patience)
    return config, PreprocessConfig(window_hours=args.window_hours, bin_hours=args.bin_hours,
                                    log_skewed=args.log_skewed, clip_sd=args.clip_sd)


def _clip_value(text: str) -> float | None:
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--clip-sd {text!r}: give a number of standard deviations, or none")


# -- progress ---------------------------------------------------------------------------------
class ProgressBar:
    """A tqdm bar on stderr fed by the core's progress events."""

    def __init__(self, label: str):
        from tqdm import tqdm

        self.bar = tqdm(total=1000, desc=label, unit="‰", dynamic_ncols=True, file=sys.stderr,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def __call__(self, event: dict):
        target = int(1000 * min(max(event.get("fraction", 0.0), 0.0), 1.0))
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        self.bar.set_postfix_str(str(event.get("message") or event.get("stage", ""))[:90], refresh=True)
        if "record" in event:
            r = event["record"]
            self.bar.write(f"  K={r['K']} d={r['d']}: validation AUC {r['val_auc']:.3f}, "
                           f"{'all pairs significant' if r['all_significant'] else 'NOT all pairs significant'}"
                           f" ({r['seconds']:.0f} s)")

    def close(self):
        self.bar.close()


def write_json(path: Path, obj):
    from .modelfile import json_safe

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(obj), indent=1))


# -- commands ---------------------------------------------------------------------------------
def cmd_validate(args):
    from .errors import CohortError

    try:
        cohort = load_cohort_from_args(args, strict=False)
    except CohortError as exc:
        print(exc, file=sys.stderr)
        if exc.report is not None:
            print(exc.report.to_frame().to_string(index=False))
        return 1
    print(json.dumps(cohort.summary(), indent=1))
    if args.window_hours is not None:
        from .data import window_report

        cohort.report.problems.extend(window_report(cohort, args.window_hours).problems)
    report = cohort.report.to_frame()
    print("no problems found" if report.empty else report.to_string(index=False))
    if args.out:
        from .data import write_cohort

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        ext = "parquet" if args.format == "parquet" else "csv"
        write_cohort(cohort, out / f"events.{ext}", out / f"patients.{ext}")
        print(f"wrote the cohort to {out}/events.{ext} and {out}/patients.{ext}")
    return 1 if cohort.report.errors else 0


def cmd_train(args):
    from .model import DICE
    from .modelfile import save_model

    from .modelfile import check_model_destination

    config, pre = configs_from_args(args)
    check_model_destination(Path(args.out))  # before the work, not after it
    cohort = load_cohort_from_args(args)
    bar = ProgressBar(f"training K={config.n_clusters}, d={config.hidden_size}")
    try:
        model = DICE(config, pre).fit(cohort, progress=bar)
    finally:
        bar.close()
    save_model(model, args.out)
    summary = {"model": str(args.out), "K": config.n_clusters, "d": config.hidden_size,
               "val_auc": model.val_auc_, "all_significant": model.significant_,
               "best_iteration": model.best_iteration_, "train_time_s": model.train_time_,
               "cluster_sizes": model.cluster_sizes_, "cluster_rates": model.cluster_rates_}
    write_json(Path(args.out) / "summary.json", summary)
    print(json.dumps(json.loads((Path(args.out) / "summary.json").read_text()), indent=1))
    if not model.significant_:
        print(f"warning: no iteration had every pair of the {config.n_clusters} clusters significantly different "
              f"(p < {config.alpha}); the model kept is the best by validation AUC. Try a smaller K.", file=sys.stderr)
    return 0


def run_evaluation(model, cohort, out: Path, threshold=None):
    from .evaluation import evaluate

    bar = ProgressBar("evaluating DICE and baselines")
    try:
        result = evaluate(model, cohort, threshold=threshold, progress=bar)
    finally:
        bar.close()
    out.mkdir(parents=True, exist_ok=True)
    for name, table in result.tables().items():
        table.to_csv(out / f"{name}.csv", index=False)
    write_json(out / "evaluation.json", result.to_dict())
    return result


def cmd_nas(args):
    from .config import SearchConfig
    from .search import run_search

    cohort = load_cohort_from_args(args)
    base, pre = configs_from_args(args, k=args.K[0], d=args.d[0])
    search = SearchConfig(tuple(args.K), tuple(args.d), args.strategy)
    out = Path(args.out)
    bar = ProgressBar(f"search over {len(args.K) * len(args.d)} architectures")
    start = time.perf_counter()
    try:
        result = run_search(cohort, search, base, pre, out, progress=bar, resume=not args.no_resume)
    finally:
        bar.close()
    result.records.to_csv(out / "records.csv", index=False)
    print(result.records[["K", "d", "val_auc", "all_significant", "min_p", "max_p", "smallest_cluster", "seconds"]]
          .to_string(index=False))
    print(f"selected: K={result.selected['K']}, d={result.selected['d']}, validation AUC "
          f"{result.selected['val_auc']:.3f}, all pairs significant: {result.selected['all_significant']}")
    if not args.no_evaluate:
        ev = run_evaluation(result.model, cohort, out / "evaluation")
        print(ev.tables()["prediction"].to_string(index=False))
    write_json(out / "timing.json", {"wall_time_s": time.perf_counter() - start})
    print(f"search folder: {out} (model in {out / 'model'}); wall time {time.perf_counter() - start:.0f} s")
    return 0


def cmd_evaluate(args):
    from .modelfile import load_model

    model = load_model(args.model)
    cohort = load_cohort_from_args(args)
    result = run_evaluation(model, cohort, Path(args.out), threshold=args.threshold)
    for name, table in result.tables().items():
        print(f"\n== {name}\n{table.to_string(index=False)}")
    return 0


def cmd_score(args):
    import pandas as pd

    from .errors import ConfigError
    from .modelfile import load_model
    from .scoring import score_patients

    model = load_model(args.model)
    cohort = load_scoring_cohort_from_args(args, model)
    for problem in cohort.report.warnings:
        print(f"warning: {problem.describe()}", file=sys.stderr)
    if args.split:
        if model.split_ is None:
            raise ConfigError(f"{args.model} holds no split (it was imported from an archive); drop --split")
        wanted = [str(p) for p in getattr(model.split_, args.split)]
        found = [p for p in wanted if p in cohort.patients.index]
        if not found:
            raise ConfigError(f"none of the {len(wanted)} {args.split} patients of {args.model} is in this cohort: "
                              "--split needs the cohort the model was trained on")
        if len(found) < len(wanted):
            print(f"warning: {len(wanted) - len(found)} of the {len(wanted)} {args.split} patients are not in this "
                  f"cohort; scoring the {len(found)} found", file=sys.stderr)
        cohort = cohort.subset(found)
    if args.out and not args.out.endswith((".csv", ".json")):
        raise ConfigError(f"--out {args.out}: give a .csv or .json file name")
    scores = score_patients(model, cohort)
    warnings = model.input_warnings(cohort)
    if len(warnings):
        print(f"warning: {len(warnings)} inputs outside what the model saw in training:", file=sys.stderr)
        for row in warnings.head(10).itertuples():
            who = f"patient {row.patient_id}: " if row.patient_id else ""
            value = "" if pd.isna(row.value) else f" = {row.value}"
            print(f"  {who}{row.variable}{value}: {row.problem}", file=sys.stderr)
        if len(warnings) > 10:
            print(f"  ... and {len(warnings) - 10} more", file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        (scores.to_json(args.out, orient="records", indent=1) if args.out.endswith(".json")
         else scores.to_csv(args.out, index=False))
        print(f"scored {len(scores)} patients -> {args.out}")
    else:
        print(scores.to_csv(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dice", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="DICE Studio: find outcome-driven patient subgroups (deep significance clustering).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a cohort and print its summary and problems (alias: import)",
                       aliases=["import"])
    add_cohort_options(p)
    p.add_argument("--window-hours", type=float, metavar="H",
                   help="also report the events after the first H hours, which training drops (e.g. 48)")
    p.add_argument("--out", help="also write the cleaned cohort (events + patients tables) to this folder")
    p.add_argument("--format", choices=["csv", "parquet"], default="parquet", help="format of --out tables")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("train", help="train one architecture N(K, d) and save the model")
    add_cohort_options(p)
    add_training_options(p)
    p.add_argument("--out", required=True, help="model folder to write")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("nas", help="architecture search over K x d, select, evaluate against baselines")
    add_cohort_options(p)
    add_training_options(p, search=True)
    p.add_argument("--out", required=True, help="search folder (records, every architecture, selected model)")
    p.set_defaults(func=cmd_nas)

    p = sub.add_parser("evaluate", help="test-split metrics of a model and the baselines")
    p.add_argument("--model", required=True, help="model folder")
    add_cohort_options(p)
    p.add_argument("--threshold", type=float, help="decision threshold (default: chosen on validation data)")
    p.add_argument("--out", required=True, help="folder for evaluation.json and the CSV tables")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("score", help="assign patients to risk levels with a saved model")
    p.add_argument("--model", required=True, help="model folder")
    add_cohort_options(p, outcome_required=False)
    p.add_argument("--split", choices=["train", "val", "test"], help="score only this split of the model's cohort")
    p.add_argument("--out", help="CSV or .json file (default: print CSV)")
    p.set_defaults(func=cmd_score)
    return parser


def set_threads(n: int | None):
    """torch's CPU threads for this process (None: torch's default, one per core)."""
    from .errors import ConfigError

    if n is None:
        return
    if n < 1:
        raise ConfigError(f"--threads {n}: give at least 1")
    import torch

    torch.set_num_threads(n)


def main(argv=None) -> int:
    from .errors import CancelledError, DiceError

    args = build_parser().parse_args(argv)
    try:
        set_threads(getattr(args, "threads", None))
        return args.func(args)
    except DiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, CancelledError):
        if args.command == "nas":
            print("\ninterrupted: finished architectures are kept; run the same command again to resume",
                  file=sys.stderr)
        else:
            print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
