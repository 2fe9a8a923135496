"""DICE Studio benchmark: one command, a table of figures, each with the command that reproduces it.

    python bench/run.py                  # every default stage (under 30 min on 2 idle cores)
    python bench/run.py --quick          # small sizes, a couple of minutes: for trying the script
    python bench/run.py --only scoring   # one stage (comma-separated for several)
    python bench/run.py --only search-full   # the full 28-architecture search at 60 iterations (opt-in)

Each stage runs in its own process (bench/worker.py), so its peak memory is its own. The table goes
to stdout and to bench/results/latest.md, all figures to bench/results/latest.json. See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(REPO_ROOT))

from bench.figures import format_value, status  # noqa: E402
from bench.measure import machine_info, usable_cores  # noqa: E402
from bench.worker import StageFailed, run_worker  # noqa: E402

DEFAULT_STAGES = ["preprocess", "train", "flops", "search", "scoring", "scale", "early-stopping"]
OPT_IN_STAGES = ["search-full"]

FULL_GRID = {"search_K": [2, 3, 4, 5], "search_d": [10, 15, 20, 25, 30, 35, 40]}
MODES = {
    "default": {
        "train_iter": 60, "flops_repeats": 3, "search_iter": 9, **FULL_GRID, "score_model_iter": 2,
        "single_reps": 200, "batch_patients": 10_000, "umap_patients": None, "scale_sizes": [10_000, 30_000, 100_000],
        "scale_variables": 40, "scale_steps": 48, "early_iter": 60, "memory_guard": 0.5,
    },
    "quick": {
        "train_iter": 3, "flops_repeats": 1, "search_iter": 3, "search_K": [2, 3], "search_d": [10, 20],
        "score_model_iter": 1, "single_reps": 30, "batch_patients": 1_000, "umap_patients": 500,
        "scale_sizes": [1_000, 2_000], "scale_variables": 40, "scale_steps": 48, "early_iter": 12,
        "memory_guard": 0.5,
    },
}


def parse_args(argv=None):
    from dice_core.data.physionet import default_physionet_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[],
                        help=f"stages to run, comma-separated: {', '.join(DEFAULT_STAGES + OPT_IN_STAGES)}")
    parser.add_argument("--skip", action="append", default=[], help="stages to leave out, comma-separated")
    parser.add_argument("--quick", action="store_true", help="small sizes and few iterations (minutes)")
    parser.add_argument("--physionet", default=None,
                        help=f"set A folder or set-a.tar.gz (default {default_physionet_path()})")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch (and OpenMP/BLAS) threads per stage (default: usable cores, {usable_cores()})")
    parser.add_argument("--search-iter", type=int, default=None, help="iterations per architecture in 'search'")
    parser.add_argument("--scale-sizes", default=None, help="comma-separated cohort sizes for 'scale'")
    parser.add_argument("--memory-guard", type=float, default=None,
                        help="'scale' skips a size predicted to need more than this share of the available "
                             "memory (default 0.5)")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"), help="results folder")
    parser.add_argument("--write-benchmarks", action="store_true",
                        help="also write the table to BENCHMARKS.md at the repository root (the current figures)")
    args = parser.parse_args(argv)
    args.physionet_given = args.physionet is not None
    args.physionet = str(args.physionet or default_physionet_path())
    args.threads = args.threads or usable_cores()
    return args


def chosen_stages(args) -> list[str]:
    split = lambda values: [s.strip() for v in values for s in v.split(",") if s.strip()]  # noqa: E731
    only, skip = split(args.only), set(split(args.skip))
    known = DEFAULT_STAGES + OPT_IN_STAGES
    unknown = [s for s in [*only, *skip] if s not in known]
    if unknown:
        sys.exit(f"unknown stage(s) {unknown}; choose among {known}")
    return [s for s in (only or DEFAULT_STAGES) if s not in skip]


def stage_params(stage: str, args) -> dict:
    params = dict(MODES["quick" if args.quick else "default"])
    params.update(physionet=args.physionet, threads=args.threads, out_dir=args.out)
    if args.search_iter:
        params["search_iter"] = args.search_iter
    if args.scale_sizes:
        params["scale_sizes"] = [int(s) for s in args.scale_sizes.split(",")]
    if args.memory_guard:
        params["memory_guard"] = args.memory_guard
    if stage == "search-full":
        params.update(search_iter=60, **FULL_GRID)
    return params


def reproduce_command(stage: str, args) -> str:
    parts = ["python bench/run.py", f"--only {stage}"]
    if args.quick:
        parts.append("--quick")
    if args.physionet_given:
        parts.append(f"--physionet {args.physionet}")
    if args.threads != usable_cores():
        parts.append(f"--threads {args.threads}")
    if args.search_iter and stage == "search":
        parts.append(f"--search-iter {args.search_iter}")
    if args.scale_sizes and stage == "scale":
        parts.append(f"--scale-sizes {args.scale_sizes}")
    if args.memory_guard and stage == "scale":
        parts.append(f"--memory-guard {args.memory_guard}")
    return " ".join(parts)


# ------------------------------------------------------------------------------------ report

def markdown(report: dict) -> str:
    m = report["machine"]
    mode = ("QUICK mode: small sizes and few iterations, for trying the script; not the issue's figures"
            if report["quick"] else "default mode")
    lines = [
        f"# DICE Studio benchmark, {m['date']}", "",
        f"{mode}. Machine: {m['cpu_model']}, {m['cores_usable']} usable cores, {m['memory_gb']} GB; "
        f"torch {m['torch']} with {m['torch_threads']} thread(s) per stage; Python {m['python']}; "
        f"load average at start {m['load_average_at_start']}.", "",
        *busy_warning(report),
        "| stage | figure | value | target | status | reproduce |", "|---|---|---|---|---|---|",
    ]
    for name, stage in report["stages"].items():
        for row in stage.get("figures", []):
            target = row["target"][2] if row.get("target") else ""
            lines.append(f"| {name} | {row['label']} | {format_value(row)} | {target} | {status(row)} | "
                         f"`{stage['command']}` |")
        if stage.get("error"):
            lines.append(f"| {name} | FAILED: {stage['error']} |  |  |  | `{stage['command']}` |")
    lines += ["", "| stage | wall | peak memory | torch threads | other processes' CPU use | load (1 min) before -> after |",
              "|---|---|---|---|---|---|"]
    for name, stage in report["stages"].items():
        if "seconds" in stage:
            lines.append(f"| {name} | {stage['seconds']:.0f} s | {stage['peak_rss_mb']:.0f} MB | "
                         f"{stage.get('torch_threads', '')} | {stage['other_cpu_cores']:.2f} cores | "
                         f"{stage['load_before'][0]} -> {stage['load_after'][0]} |")
    notes = [f"- {name}: {note}" for name, stage in report["stages"].items() for note in stage.get("notes", [])]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


BUSY_SHARE = 0.15  # other processes using more than this share of the cores make timings noisy


def busy_warning(report: dict) -> list[str]:
    """A warning when other processes used the CPUs during a stage: timings are then not
    representative (with more runnable threads than cores, torch's thread pool stalls badly)."""
    cores = report["machine"]["cores_usable"]
    busy = {name: stage["other_cpu_cores"] for name, stage in report["stages"].items()
            if stage.get("other_cpu_cores", 0) > BUSY_SHARE * cores}
    if not busy:
        return []
    listed = ", ".join(f"{name} {cores_used:.1f}" for name, cores_used in busy.items())
    return [f"**WARNING: other processes kept CPU cores busy during some stages ({listed} of {cores} cores on "
            "average): those timings are not representative.**", ""]


BENCHMARKS_HEADER = """# Benchmarks

Current figures of `python bench/run.py` (see bench/README.md for what each stage measures and
why). Regenerate this file with `python bench/run.py --write-benchmarks` on an idle machine; each
row's last column is the command that reproduces it.

"""


def write_report(report: dict, out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    (out / "latest.md").write_text(text)
    (out / "latest.json").write_text(json.dumps(report, indent=1))
    return text


def main(argv=None) -> int:
    args = parse_args(argv)
    stages = chosen_stages(args)
    report = {"quick": args.quick, "machine": machine_info(args.threads), "stages": {},
              "params": stage_params("search", args)}
    failed = False
    for stage in stages:
        print(f"[{time.strftime('%H:%M:%S')}] stage {stage} ...", file=sys.stderr, flush=True)
        command = reproduce_command(stage, args)
        try:
            result = run_worker(stage, stage_params(stage, args), check=False)
        except StageFailed as exc:  # the process died without a result (e.g. killed for memory)
            result = {"error": str(exc), "figures": [], "notes": []}
        failed = failed or bool(result.get("error"))
        report["stages"][stage] = {**result, "command": command}
        print(f"[{time.strftime('%H:%M:%S')}] stage {stage} done"
              + (f" in {result['seconds']:.0f} s" if "seconds" in result else " (failed)"), file=sys.stderr, flush=True)
        write_report(report, Path(args.out))  # a long run keeps what it measured so far
    text = write_report(report, Path(args.out))
    if args.write_benchmarks:
        run_section = text.replace("# DICE Studio benchmark, ", "## Run of ", 1)
        (REPO_ROOT / "BENCHMARKS.md").write_text(BENCHMARKS_HEADER + run_section)
    print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
