"""Training jobs on disk, one folder each, run by a separate process (dashboard/worker.py).

A job folder `runs/<job_id>/` holds:
  job.json      what to run (cohort name, search grid, training and preprocessing settings)
  status.json   what the worker is doing (state, stage, fraction, message, time left, pid)
  cohort/       the cohort, written once when the job is created (the worker reads it)
  search/       the search's out_dir: records.jsonl, architectures/, model/ (dice_core.search)
  results/      evaluation tables and predictions written after the search
  maps/         UMAP coordinates, built once per model and kept
  worker.log    the worker's log (tracebacks go here, never to the user's screen)
  STOP          present = cancel requested (the worker checks it between batches)

Nothing here imports streamlit: the folder is the only link between the server and a worker,
so a browser refresh, another page or a second tab finds the job again, and two users' jobs never
share anything. Finished records are never deleted: cancelling stops the worker, resuming
continues the same search folder.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("finished", "failed", "cancelled", "interrupted")
_processes: dict[str, subprocess.Popen] = {}  # jobs started by this server process (to reap them)


def runs_dir() -> Path:
    """Where jobs live: $DICE_RUNS_DIR, else runs/ in the project folder."""
    path = Path(os.environ.get("DICE_RUNS_DIR", REPO_ROOT / "runs"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, data: dict):
    """Write atomically: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return default


def new_job_id(label: str = "") -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    clean = "".join(c if c.isalnum() else "-" for c in label.lower())[:24].strip("-")
    return f"{stamp}-{clean + '-' if clean else ''}{secrets.token_hex(2)}"


class Job:
    """A view on one job folder; every property reads the disk, so it is always current."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.id = self.folder.name

    @property
    def spec(self) -> dict:
        return read_json(self.folder / "job.json", {})

    @property
    def search_dir(self) -> Path:
        return self.folder / "search"

    @property
    def results_dir(self) -> Path:
        return self.folder / "results"

    @property
    def maps_dir(self) -> Path:
        return self.folder / "maps"

    @property
    def cohort_dir(self) -> Path:
        return self.folder / "cohort"

    @property
    def model_dir(self) -> Path:
        return self.search_dir / "model"

    @property
    def log_file(self) -> Path:
        return self.folder / "worker.log"

    def status(self) -> dict:
        """The worker's last status; a job whose worker died without saying so reads 'interrupted'."""
        status = read_json(self.folder / "status.json", {"state": "queued", "fraction": 0.0, "message": ""})
        if status.get("state") in ACTIVE_STATES and not self._worker_alive(status):
            status = {**status, "state": "interrupted",
                      "message": "the training process stopped unexpectedly; finished architectures are kept "
                                 "and you can resume"}
        return status

    @property
    def state(self) -> str:
        return self.status().get("state", "queued")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def _worker_alive(self, status: dict) -> bool:
        process = _processes.get(self.id)
        if process is not None:
            return process.poll() is None
        pid = status.get("pid")
        if not pid:  # just created: give the worker a moment to write its pid
            return time.time() - (self.folder / "job.json").stat().st_mtime < 60
        return pid_alive(int(pid))

    def cancel(self):
        """Ask the worker to stop at the next batch; finished architectures stay on disk."""
        (self.folder / "STOP").touch()

    def kill(self):
        """Stop a worker that does not react to cancel (it is sent SIGTERM)."""
        pid = read_json(self.folder / "status.json", {}).get("pid")
        if pid and pid_alive(int(pid)):
            os.kill(int(pid), signal.SIGTERM)

    def records(self) -> list[dict]:
        from dice_core.search.nas import read_records  # light import (no training)

        return read_records(self.search_dir)

    def selected(self) -> dict | None:
        return read_json(self.search_dir / "selected.json")

    def label(self) -> str:
        spec = self.spec
        grid = spec.get("search", {})
        when = spec.get("created", "")[:16].replace("T", " ")
        sizes = lambda v: ", ".join(map(str, v)) if isinstance(v, list) else "?"  # noqa: E731
        return (f"{when} · {spec.get('cohort_name', '?')} · K {sizes(grid.get('n_clusters'))} · "
                f"d {sizes(grid.get('hidden_sizes'))}")


def pid_alive(pid: int) -> bool:
    """True when the process runs (a zombie, finished but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill(0)


def create_job(cohort, cohort_name: str, settings: dict) -> Job:
    """Make the job folder (settings + cohort on disk); `start` it to run it.

    settings: {"search": SearchConfig dict, "base": DICEConfig dict, "preprocess": PreprocessConfig
    dict, "build_maps": bool, "evaluate": bool}.
    """
    from dashboard.store import save_cohort

    folder = runs_dir() / new_job_id(cohort_name)
    folder.mkdir(parents=True)
    save_cohort(cohort, folder / "cohort")
    spec = {"job_id": folder.name, "created": datetime.now().isoformat(timespec="seconds"),
            "cohort_name": cohort_name, "n_patients": int(cohort.n_patients), **settings}
    write_json(folder / "job.json", spec)
    write_json(folder / "status.json", {"state": "queued", "fraction": 0.0, "message": "waiting to start"})
    return Job(folder)


def running_duplicate(cohort_name: str, n_patients: int, settings: dict) -> Job | None:
    """A queued or running job of the same cohort with the same settings (a double click, or a second
    tab pressing Start again), so that it is followed instead of started twice."""
    wanted = json.loads(json.dumps(settings))  # as job.json holds it (tuples become lists)
    for job in list_jobs():
        spec = job.spec
        if (job.active and spec.get("cohort_name") == cohort_name and spec.get("n_patients") == int(n_patients)
                and all(spec.get(key) == value for key, value in wanted.items())):
            return job
    return None


def start(job: Job, task: str = "train", *args: str) -> subprocess.Popen:
    """Run the worker for `job` in its own process (its own session: a server reload does not stop it)."""
    (job.folder / "STOP").unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(job.log_file if task == "train" else job.folder / f"{task}.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "dashboard.worker", task, str(job.folder), *args],
                               cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    if task == "train":
        _processes[job.id] = process
    return process


def resume(job: Job) -> Job:
    """Start a cancelled or interrupted job again; the search continues where it stopped."""
    write_json(job.folder / "status.json", {"state": "queued", "fraction": job.status().get("fraction", 0.0),
                                            "message": "resuming"})
    start(job)
    return job


def list_jobs() -> list[Job]:
    """Every job folder, newest first."""
    folders = [p for p in runs_dir().iterdir() if (p / "job.json").is_file()]
    return [Job(p) for p in sorted(folders, key=lambda p: p.name, reverse=True)]


def is_folder_name(name: str | None) -> bool:
    """A plain folder name from a URL (?job=, ?cohort=), never a path that leaves the runs folder."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def find_job(job_id: str | None) -> Job | None:
    if not is_folder_name(job_id):
        return None
    folder = runs_dir() / job_id
    return Job(folder) if (folder / "job.json").is_file() else None
