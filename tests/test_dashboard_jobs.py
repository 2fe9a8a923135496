"""Training jobs on disk: cancel keeps finished records and resume completes the search; a worker
that died is seen as interrupted; two jobs do not share anything."""
import dataclasses
import json
import os
import time

import pytest

from dashboard import jobs, store
from dice_core.config import DICEConfig, PreprocessConfig, SearchConfig
from dice_core.data.cohort import ValidationReport


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DICE_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def settings(n_iter=2, K=(2,), d=(4,)):
    return {"search": SearchConfig(K, d).to_dict(), "base": DICEConfig(n_iter=n_iter, batch_size=64).to_dict(),
            "preprocess": PreprocessConfig(window_hours=12).to_dict(), "evaluate": False, "build_maps": False}


def wait(job, until, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if until(job):
            return True
        time.sleep(0.3)
    raise AssertionError(f"timed out; status {job.status()}; log:\n{job.log_file.read_text()[-2000:]}")


def test_the_job_folder_holds_the_cohort_and_settings(runs, synthetic_cohort):
    cohort, _ = synthetic_cohort
    job = jobs.create_job(cohort, "synthetic test", settings())
    assert job.folder.parent == runs and "synthetic-test" in job.id
    assert job.spec["search"]["n_clusters"] == [2] and job.spec["n_patients"] == 300
    back = store.read_cohort(job.cohort_dir)
    assert back.patients.equals(cohort.patients) and len(back.events) == len(cohort.events)
    assert back.covariates == cohort.covariates and back.group == cohort.group
    assert job.state == "queued" and jobs.find_job(job.id).folder == job.folder
    assert jobs.find_job("../etc") is None


def test_the_same_training_is_followed_not_started_twice(runs, synthetic_cohort):
    cohort, _ = synthetic_cohort
    job = jobs.create_job(cohort, "twice", settings())  # queued: active until its worker would have started
    assert jobs.running_duplicate("twice", cohort.n_patients, settings()).id == job.id
    assert jobs.running_duplicate("twice", cohort.n_patients, settings(n_iter=3)) is None
    assert jobs.running_duplicate("other cohort", cohort.n_patients, settings()) is None
    jobs.write_json(job.folder / "status.json", {"state": "finished", "fraction": 1.0})
    assert jobs.running_duplicate("twice", cohort.n_patients, settings()) is None  # a finished run may be repeated


def test_the_report_of_the_users_files_is_kept_with_the_cohort(runs, synthetic_cohort, tmp_path):
    cohort = dataclasses.replace(synthetic_cohort[0], report=ValidationReport())  # the fixture is shared
    cohort.report.add("warning", "labs.csv", "value", "3 values out of range were left out", 3, [4, 9, 12])
    back = store.read_cohort(store.save_cohort(cohort, tmp_path / "saved"))
    assert back.report.to_frame().equals(cohort.report.to_frame())


def test_cancel_keeps_finished_architectures_and_resume_completes(runs, synthetic_cohort):
    cohort, _ = synthetic_cohort
    job = jobs.create_job(cohort, "cancel", settings(n_iter=40, K=(2, 3)))
    jobs.start(job)
    wait(job, lambda j: len(j.records()) >= 1 or j.state in jobs.FINAL_STATES)
    job.cancel()
    wait(job, lambda j: j.state in jobs.FINAL_STATES)
    assert job.state == "cancelled", job.status()
    kept = job.records()
    assert len(kept) >= 1 and "resume" in job.status()["message"]
    jobs.resume(job)
    wait(job, lambda j: j.state in jobs.FINAL_STATES, timeout=300)
    assert job.state == "finished", job.status()
    records = job.records()
    assert {(r["K"], r["d"]) for r in records} == {(2, 4), (3, 4)}
    assert records[0] == kept[0]  # the finished architecture was not trained again
    assert (job.model_dir / "model.json").is_file()
    assert store.read_scores(store.analysis_dir(job.folder, "model")) is not None


def test_a_worker_that_died_reads_interrupted(runs, synthetic_cohort):
    cohort, _ = synthetic_cohort
    job = jobs.create_job(cohort, "died", settings())
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (job.folder / "status.json").write_text(json.dumps({"state": "running", "pid": dead, "fraction": 0.3}))
    assert job.state == "interrupted" and not job.active
    assert "resume" in job.status()["message"]


def test_two_jobs_share_nothing(runs, synthetic_cohort):
    cohort, _ = synthetic_cohort
    first = jobs.create_job(cohort, "a", settings())
    second = jobs.create_job(cohort.subset(cohort.patients.index[:200]), "b", settings())
    assert first.folder != second.folder
    first.cancel()
    assert (first.folder / "STOP").exists() and not (second.folder / "STOP").exists()
    assert second.spec["n_patients"] == 200 and [j.id for j in jobs.list_jobs()] == [second.id, first.id]
