"""Run one stage in a fresh process, so that its peak memory and its threads are its own.

    python -m bench.worker STAGE PARAMS.json RESULT.json

The parent (bench/run.py, or the scale stage) sets the thread variables in the environment before
the child imports numpy and torch; the child also calls torch.set_num_threads explicitly.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


class StageFailed(RuntimeError):
    pass


def run_worker(stage: str, params: dict, check: bool = True) -> dict:
    """Run `stage` in a child process; returns its result dict (figures, notes, peak_rss_mb, ...).
    A stage that raised has an "error" entry; with `check`, that raises StageFailed instead."""
    env = {**os.environ, **{name: str(params["threads"]) for name in THREAD_VARIABLES}}
    with tempfile.TemporaryDirectory(prefix="dice-bench-") as tmp:
        params_path, result_path = Path(tmp) / "params.json", Path(tmp) / "result.json"
        params_path.write_text(json.dumps(params))
        done = subprocess.run([sys.executable, "-m", "bench.worker", stage, str(params_path), str(result_path)],
                              cwd=REPO_ROOT, env=env)
        if not result_path.is_file():
            raise StageFailed(f"stage {stage} exited with code {done.returncode} before writing its result")
        result = json.loads(result_path.read_text())
    if check and result.get("error"):
        raise StageFailed(f"stage {stage} failed: {result['error']}")
    return result


def main(stage: str, params_path: str, result_path: str) -> int:
    from .measure import cpu_busy_seconds, load_average, own_cpu_seconds, peak_rss_mb  # light imports first

    params = json.loads(Path(params_path).read_text())
    load_before, start = load_average(), time.perf_counter()
    busy_before, own_before = cpu_busy_seconds(), own_cpu_seconds()
    result = {"stage": stage, "load_before": load_before}
    try:
        import torch

        torch.set_num_threads(params["threads"])
        from .figures import Figures
        from .stages import STAGES

        figs = Figures()
        STAGES[stage](params, figs)
        result.update(figs.to_dict())
        result["torch_threads"] = torch.get_num_threads()
    except Exception as exc:  # reported in the table; the other stages still run
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    # CPU that other processes used meanwhile, in cores: what made the timings noisy, if anything
    others = (cpu_busy_seconds() - busy_before) - (own_cpu_seconds() - own_before)
    result.update(seconds=seconds, peak_rss_mb=peak_rss_mb(), load_after=load_average(),
                  other_cpu_cores=max(others, 0.0) / seconds)
    Path(result_path).write_text(json.dumps(result))
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
