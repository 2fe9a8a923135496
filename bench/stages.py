"""The benchmark stages. Each runs in its own process (bench/worker.py), so its peak memory is its own.

A stage is `stage(params, figs)`: it reads sizes from `params` (see MODES in bench/run.py) and adds
figures and notes to `figs`. Progress goes to stderr; the table is built by bench/run.py.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from dice_core.config import DICEConfig, SearchConfig
from dice_core.data import load_physionet2012
from dice_core.errors import CohortError
from dice_core.evaluation.metrics import clustering_metrics, representation_auc
from dice_core.model import DICE
from dice_core.model.dice import rows_of
from dice_core.model.network import DICENetwork
from dice_core.model.trainer import DICETrainer, Tensors
from dice_core.preprocess import Preprocessor, stratified_split
from dice_core.scoring import score_patients
from dice_core.search import run_search

from .cohorts import read_synthetic_parquet, resample_cohort, write_synthetic_parquet
from .figures import Figures
from .measure import (autoencoder_epoch_flops, available_memory_mb, current_rss_mb, matmul_gflops, peak_rss_mb,
                      usable_cores)

PAPER_K, PAPER_D, PAPER_ITERATIONS = 4, 35, 60


def say(message: str):
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ shared steps

def load_set_a(params) -> tuple:
    path = params["physionet"]
    if not Path(path).exists():
        raise CohortError(f"PhysioNet set A not found at {path}: pass --physionet PATH (the set-a folder or "
                          "set-a.tar.gz) or set DICE_PHYSIONET_PATH")
    start = time.perf_counter()
    cohort = load_physionet2012(path)
    return cohort, time.perf_counter() - start


def prepare(cohort, seed: int = 0):
    """Split 4:1:1, fit the preprocessor on the training split, transform everyone (as DICE.fit does)."""
    start = time.perf_counter()
    split = stratified_split(cohort.patients.index.to_numpy(), cohort.y, seed=seed)
    preprocessor = Preprocessor().fit(cohort, split.train)
    data = preprocessor.transform(cohort)
    return split, preprocessor, data, time.perf_counter() - start


def split_parts(data, split):
    return {name: data.subset(rows_of(data, getattr(split, name))) for name in ("train", "val", "test")}


class RefitTimer:
    """Times DICETrainer.refit_heads (the L-BFGS head refit that the trainer counts inside
    seconds_epoch) by wrapping it for the duration of a `with` block; behaviour is unchanged."""

    def __enter__(self):
        self.seconds, self.original = [], DICETrainer.refit_heads
        original, seconds = self.original, self.seconds

        def timed(trainer, *args, **kwargs):
            start = time.perf_counter()
            result = original(trainer, *args, **kwargs)
            seconds.append(time.perf_counter() - start)
            return result
        DICETrainer.refit_heads = timed
        return self

    def __exit__(self, *exc):
        DICETrainer.refit_heads = self.original


def train_paper_architecture(data, split, preprocessor, n_iter: int, **config_changes):
    """DICE K=4, d=35 with pre-training timed on its own; returns (model, pretrain_s, refit seconds)."""
    config = DICEConfig(n_clusters=PAPER_K, hidden_size=PAPER_D, n_iter=n_iter).replace(**config_changes)
    parts = split_parts(data, split)
    trainer = DICETrainer(config)
    start = time.perf_counter()
    autoencoder = trainer.pretrain_autoencoder(Tensors.from_prepared(parts["train"], trainer.device),
                                               data.n_inputs, data.n_features)
    pretrain_s = time.perf_counter() - start
    with RefitTimer() as refit:
        model = DICE(config).fit_prepared(data, split, preprocessor, init_autoencoder=autoencoder)
    return model, pretrain_s, refit.seconds


def aucs_on_test(model, data, split) -> tuple[float, float]:
    """Test AUC of the outcome head, and of a logistic regression on the representation (train -> test)."""
    parts = split_parts(data, split)
    head = roc_auc_score(parts["test"].y, model.predict_proba(parts["test"]))
    probe = representation_auc(model.transform(parts["train"]), parts["train"].y,
                               model.transform(parts["test"]), parts["test"].y)
    return float(head), float(probe)


# ------------------------------------------------------------------------------------ stages

def stage_preprocess(params, figs: Figures):
    cohort, load_s = load_set_a(params)
    say(f"loaded {cohort.n_patients} stays in {load_s:.1f} s")
    split, preprocessor, data, prep_s = prepare(cohort)
    figs.add("import_s", "import set A (read + parse + clean)", load_s, "s")
    figs.add("preprocess_s", "preprocessing (split, fit, transform)", prep_s, "s")
    figs.add("import_preprocess_s", "import + preprocessing", load_s + prep_s, "s")
    figs.add("peak_mb", "peak memory", peak_rss_mb(), "MB")
    figs.note(f"set A: {cohort.n_patients:,} stays, {len(cohort.events):,} events -> X {data.X.shape} "
              f"float32 ({data.X.nbytes / 2 ** 20:.0f} MB), from {params['physionet']}")


def stage_train(params, figs: Figures):
    n_iter = params["train_iter"]
    cohort, load_s = load_set_a(params)
    split, preprocessor, data, prep_s = prepare(cohort)
    say(f"training K={PAPER_K}, d={PAPER_D} for {n_iter} iterations")
    model, pretrain_s, refit_s = train_paper_architecture(data, split, preprocessor, n_iter)
    history = model.history_
    median = lambda key: float(np.median([h[key] for h in history]))  # noqa: E731
    refit = float(np.median(refit_s))
    epoch_only = float(np.median([h["seconds_epoch"] - r for h, r in zip(history, refit_s)]))
    per_iteration = model.train_time_ / len(history)
    figs.add("iteration_s", f"outer iteration, mean wall ({len(history)} iterations)", per_iteration, "s",
             ("<=", 1.0, "<= 1.0 s (reference implementation 6.3 s)"))
    parts = ("seconds_epoch", "seconds_embed", "seconds_kmeans", "seconds_validation", "seconds_exact_test")
    figs.add("iteration_median_s", "outer iteration, median of the per-iteration sums (robust to interruptions)",
             float(np.median([sum(h[k] for k in parts) for h in history])), "s")
    figs.add("refit_s", "  head refit (L-BFGS), median", refit, "s")
    figs.add("epoch_s", "  joint epoch, median", epoch_only, "s")
    figs.add("embed_s", "  embedding, median", median("seconds_embed"), "s")
    figs.add("kmeans_s", "  k-means, median", median("seconds_kmeans"), "s")
    figs.add("validation_s", "  validation, median", median("seconds_validation"), "s")
    figs.add("exact_test_s", "  exact test, median", median("seconds_exact_test"), "s")
    figs.add("pretrain_s", "pre-training (1 epoch)", pretrain_s, "s")
    figs.add("total_s", "total wall (import, preprocessing, pre-training, iterations)",
             load_s + prep_s + pretrain_s + model.train_time_, "s")
    figs.add("peak_mb", "peak memory", peak_rss_mb(), "MB")
    head, probe = aucs_on_test(model, data, split)
    figs.add("val_auc", f"validation AUC (kept iteration {model.best_iteration_})", float(model.val_auc_))
    figs.add("test_auc_head", "test AUC, outcome head", head)
    figs.add("test_auc_probe", "test AUC, logistic regression on the representation", probe)
    figs.add("significant", "every pair of clusters significant", bool(model.significant_))
    figs.note("the trainer's seconds_epoch includes the L-BFGS head refit; the benchmark times the refit "
              "by wrapping DICETrainer.refit_heads and shows the epoch without it")
    figs.note("pre-training is the process's first training: it also pays one-off start-up costs (torch/oneDNN "
              "kernels built at the first forward/backward of each batch shape); compare with the joint epoch")


def stage_flops(params, figs: Figures):
    cohort, _ = load_set_a(params)
    split, _, data, _ = prepare(cohort)
    train_data = split_parts(data, split)["train"]
    config = DICEConfig(n_clusters=PAPER_K, hidden_size=PAPER_D)
    trainer = DICETrainer(config)
    train = Tensors.from_prepared(train_data, trainer.device)
    torch.manual_seed(0)
    net = DICENetwork(data.n_inputs, data.n_features, data.V.shape[1], PAPER_D, PAPER_K)
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    labels, centroids = trainer.kmeans(trainer.embed(net, train).numpy())
    labels_t, centroids_t = torch.as_tensor(labels, dtype=torch.long), torch.as_tensor(centroids)
    flops = autoencoder_epoch_flops(len(train), data.n_steps, data.n_inputs, data.n_features, PAPER_D)
    main_threads = params["threads"]
    thread_counts = sorted({1, min(2, usable_cores()), main_threads})
    results, first_epoch_s = {}, None
    for threads in thread_counts:
        torch.set_num_threads(threads)
        first_s, epoch_s = time_epochs(lambda: trainer.joint_epoch(net, train, labels_t, centroids_t, opt),
                                       params["flops_repeats"])
        if first_epoch_s is None:  # the process's first joint epoch
            first_epoch_s = first_s
        results[threads] = (epoch_s, flops / epoch_s / 1e9, matmul_gflops())
        say(f"{threads} thread(s): epoch {epoch_s:.3f} s, {results[threads][1]:.1f} GFLOP/s, "
            f"matmul {results[threads][2]:.1f} GFLOP/s")
    torch.set_num_threads(main_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "TF32 on top of oneDNN ... Intel GPUs": irrelevant here
        with torch.backends.mkldnn.flags(enabled=False):  # the LSTM without oneDNN, for comparison
            _, no_onednn_s = time_epochs(lambda: trainer.joint_epoch(net, train, labels_t, centroids_t, opt),
                                         params["flops_repeats"])
    epoch_s, achieved, matmul = results[main_threads]
    figs.add("epoch_flops_g", "FLOPs per joint epoch (LSTM + read-out, fwd + bwd)", flops / 1e9, "GFLOP")
    figs.add("epoch_s", f"joint epoch, {main_threads} thread(s), median of {params['flops_repeats']}", epoch_s, "s")
    figs.add("epoch_gflops", "achieved by the epoch", achieved, "GFLOP/s")
    figs.add("matmul_gflops", "torch.matmul 2048x2048 float32, same process", matmul, "GFLOP/s")
    figs.add("ratio", "epoch / matmul throughput", achieved / matmul, "",
             (">=", 0.4, ">= 0.40"))
    figs.add("first_epoch_s", f"first joint epoch in the process ({thread_counts[0]} thread(s), builds kernels)",
             first_epoch_s, "s")
    figs.add("epoch_s_no_onednn", f"joint epoch, {main_threads} thread(s), oneDNN off (comparison)",
             no_onednn_s, "s")
    for threads in thread_counts:
        if threads != main_threads:
            figs.add(f"epoch_s_{threads}t", f"joint epoch with {threads} thread(s) (comparison)",
                     results[threads][0], "s")
    fastest = min(results, key=lambda t: results[t][0])
    figs.note("thread comparison on the joint epoch: " + ", ".join(
        f"{t} thread(s) {results[t][0]:.3f} s" for t in thread_counts) + f"; fastest: {fastest}")
    figs.note(f"FLOPs: encoder LSTM (I={data.n_inputs}, H={PAPER_D}), decoder LSTM (H={PAPER_D}), read-out to "
              f"{data.n_features} values, {len(train):,} patients x {data.n_steps} steps, backward = 2x forward; "
              "classifier/outcome heads left out (negligible); the epoch excludes the L-BFGS head refit")


def time_epochs(run_epoch, repeats: int) -> tuple[float, float]:
    """Wall of a first (warm-up) epoch, and the median of `repeats` epochs after it. The first
    forward/backward at each new batch shape builds oneDNN kernels, so it is slower."""
    times = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - start)
    return times[0], float(np.median(times[1:]))


def stage_search(params, figs: Figures):
    n_iter, ks, ds = params["search_iter"], tuple(params["search_K"]), tuple(params["search_d"])
    cohort, _ = load_set_a(params)
    base = DICEConfig(n_iter=n_iter)
    out = Path(params["out_dir"]) / "search"
    walls, selected, records = {}, {}, {}
    for strategy in ("grid", "halving"):
        say(f"search {strategy}: K {ks} x d {ds}, {n_iter} iterations")
        start = time.perf_counter()
        result = run_search(cohort, SearchConfig(n_clusters=ks, hidden_sizes=ds, strategy=strategy), base,
                            out_dir=out / f"{strategy}_it{n_iter}", resume=False)
        walls[strategy] = time.perf_counter() - start
        selected[strategy] = (result.selected["K"], result.selected["d"])
        records[strategy] = result.records
    label = f"{len(ks)} x {len(ds)} architectures, {n_iter} iterations"
    full = n_iter == PAPER_ITERATIONS and len(ks) * len(ds) == 28
    grid_target = ("<=", 20 * 60, "<= 20 min") if full else None
    figs.add("grid_s", f"grid search wall ({label})", walls["grid"], "s", grid_target)
    figs.add("grid_selected", "grid: selected architecture", "K={}, d={}".format(*selected["grid"]))
    figs.add("halving_s", "successive-halving wall", walls["halving"], "s")
    figs.add("halving_selected", "halving: selected architecture", "K={}, d={}".format(*selected["halving"]))
    figs.add("same_selection", "halving selects the grid's architecture", selected["grid"] == selected["halving"],
             "", ("==", True, "same"))
    figs.add("halving_ratio", "halving wall / grid wall", walls["halving"] / walls["grid"], "",
             ("<=", 1 / 3, "<= 0.33"))
    if not full:
        project_full_search(records, walls, n_iter, figs)


def project_full_search(records: dict, walls: dict, n_iter: int, figs: Figures):
    """Full-schedule times estimated from a shorter search: each architecture's seconds per iteration
    times the paper's 60, plus the search's fixed costs (preprocessing, pre-training per d, files)."""
    from dice_core.search.nas import halving_iterations, halving_rungs

    grid = records["grid"]
    per_iteration = grid["seconds"] / grid["n_iter"]
    fixed = walls["grid"] - grid["seconds"].sum()
    n_full_grid = 28
    mean_cost = per_iteration.mean()
    grid_full = fixed + mean_cost * PAPER_ITERATIONS * n_full_grid
    halving_iters = halving_iterations(halving_rungs(PAPER_ITERATIONS, n_full_grid))
    halving_full = fixed + mean_cost * halving_iters
    figs.add("grid_full_projected_s", "full grid (28 x 60 iterations), projected", grid_full, "s",
             ("<=", 20 * 60, "<= 20 min"), basis="projected")
    figs.add("halving_full_ratio_projected", "full halving / full grid, projected", halving_full / grid_full, "",
             ("<=", 1 / 3, "<= 0.33"), basis="projected")
    figs.note(f"search ran {n_iter} iterations per architecture, not the paper's 60, so its selection may differ "
              f"from the full search's; the projection = measured mean seconds per iteration per architecture "
              f"({mean_cost:.2f} s) x iterations of the full schedule + the measured fixed costs ({fixed:.0f} s); "
              f"halving at 60 iterations trains {halving_iters} architecture-iterations vs {n_full_grid * 60} "
              f"for the grid (survivors continue from the previous rung), and every training also has fixed costs "
              f"(k-means starts, model files) that this projection leaves out. Measure it: "
              f"python bench/run.py --only search-full")


def stage_scoring(params, figs: Figures):
    cohort, _ = load_set_a(params)
    split, preprocessor, data, _ = prepare(cohort)
    model, _, _ = train_paper_architecture(data, split, preprocessor, params["score_model_iter"])
    single_patient_latency(model, cohort, split, params, figs)
    batch_throughput(model, cohort, params, figs)
    figs.note(f"the model is K={PAPER_K}, d={PAPER_D} trained {params['score_model_iter']} iteration(s): "
              "scoring cost does not depend on the weights")
    umap_stage(model, split_parts(data, split), params, figs)


def single_patient_latency(model, cohort, split, params, figs: Figures):
    """score_patients on one-patient cohorts (test patients); each request carries one patient's
    events, so the cohorts are cut beforehand. The first call builds the batch-size-1 kernels."""
    n = params["single_reps"] + 1
    ids = (list(split.test) * (1 + n // max(len(split.test), 1)))[:n]
    start = time.perf_counter()
    singles = [cohort.subset([pid]) for pid in ids]
    subset_ms = (time.perf_counter() - start) / n * 1000
    latencies = []
    for one in singles:
        start = time.perf_counter()
        score_patients(model, one)
        latencies.append((time.perf_counter() - start) * 1000)
    first, rest = latencies[0], latencies[1:]
    figs.add("single_first_ms", "one patient, first call in the process", first, "ms")
    figs.add("single_median_ms", f"one patient, median of the next {len(rest)} (preprocessing included)",
             float(np.median(rest)), "ms")
    figs.add("single_p95_ms", "one patient, p95", float(np.percentile(rest, 95)), "ms", ("<=", 50, "<= 50 ms"))
    figs.note(f"one-patient cohorts are cut with Cohort.subset before timing ({subset_ms:.0f} ms each from set A's "
              f"{len(cohort.events):,} events; not part of scoring)")


def batch_throughput(model, cohort, params, figs: Figures):
    """score_patients on set-A stays drawn with replacement; first call (new batch shapes) and again."""
    n = params["batch_patients"]
    batch = resample_cohort(cohort, n, seed=1)
    walls = []
    for _ in range(2):
        start = time.perf_counter()
        scores = score_patients(model, batch)
        walls.append(time.perf_counter() - start)
    assert len(scores) == n
    start = time.perf_counter()
    model.prepare(batch)
    prepare_s = time.perf_counter() - start
    figs.add("batch_rate", f"batch of {n:,} patients, first call", n / walls[0], "patients/s",
             (">=", 5000, ">= 5,000/s"))
    figs.add("batch_rate_again", "  the same batch again", n / walls[1], "patients/s", (">=", 5000, ">= 5,000/s"))
    figs.add("batch_prepare_s", "  preprocessing of the batch (timed separately)", prepare_s, "s")
    figs.note(f"the batch is {n:,} set-A stays drawn with replacement (seed 1), {len(batch.events):,} events; "
              "'again' reuses the kernels that the first call built for its batch shapes")


def umap_stage(model, parts, params, figs: Figures):
    from dice_core.viz.embedding import MapEmbedding

    z_train = model.transform(parts["train"])
    if params.get("umap_patients"):
        z_train = z_train[: params["umap_patients"]]
    z_other = np.concatenate([model.transform(parts["val"]), model.transform(parts["test"])])
    start = time.perf_counter()
    MapEmbedding(seed=0).fit(z_train)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    embedding = MapEmbedding(seed=0).fit(z_train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    embedding.transform(z_other)
    transform_s = time.perf_counter() - start
    figs.add("umap_first_fit_s", f"UMAP first fit, {len(z_train):,} training patients (import + numba compile)",
             first_s, "s")
    figs.add("umap_fit_s", "UMAP fit (warm)", fit_s, "s")
    figs.add("umap_transform_s", f"UMAP transform of {len(z_other):,} validation + test patients", transform_s, "s")


def stage_scale(params, figs: Figures):
    """Runs the generation and the measurement of each size in their own processes (bench/worker.py).

    Before each size, its peak memory is predicted from the sizes measured so far (linear in the
    number of patients: the generator gives every patient the same expected number of events); a
    size whose prediction is over `memory_guard` of the memory available now is not generated nor
    run, and the prediction is reported as extrapolated instead.
    """
    from .worker import run_worker

    cache = Path(params["out_dir"]) / "cache"
    measured = []  # (patients, peak MB, baseline MB) of each measured size
    for n in params["scale_sizes"]:
        predicted, free = predicted_peak_mb(measured, n), available_memory_mb()
        if predicted is not None and predicted > params["memory_guard"] * free:
            figs.add(f"peak_mb_{n}", f"{n:,} patients: peak memory, extrapolated from the smaller sizes", predicted,
                     "MB", scale_target(n), basis="extrapolated")
            figs.note(f"{n:,} patients not run: the predicted peak {predicted / 1024:.1f} GB is over "
                      f"{params['memory_guard']:.0%} of the {free / 1024:.1f} GB available now; run it on a larger "
                      f"machine with --only scale --scale-sizes {n}")
            continue
        folder = cache / f"synthetic_P{n}_V{params['scale_variables']}_T{params['scale_steps']}"
        if not (folder / "info.json").is_file():
            say(f"generating {n:,} synthetic patients into {folder}")
            run_worker("scale-generate", {**params, "folder": str(folder), "n_patients": n})
        info = json.loads((folder / "info.json").read_text())
        if info["note"] and info["note"] not in figs.notes:
            figs.note(info["note"])
        say(f"measuring {n:,} patients ({info['events']:,} events)")
        result = run_worker("scale-measure", {**params, "folder": str(folder), "n_patients": n})
        figs.rows.extend(result["figures"])
        figs.notes.extend(result["notes"])
        baseline = next(r["value"] for r in result["figures"] if r["key"].startswith("baseline_mb"))
        measured.append((n, result["peak_rss_mb"], baseline))


def predicted_peak_mb(measured: list, size: int):
    """Peak memory at `size`, linear through the last two measured sizes (or from the process
    baseline through the only one); None before any size is measured."""
    if not measured:
        return None
    if len(measured) == 1:
        done, peak, baseline = measured[0]
        return baseline + (peak - baseline) * size / done
    (n1, p1, _), (n2, p2, _) = measured[-2:]
    return p2 + (p2 - p1) / (n2 - n1) * (size - n2)


def scale_target(n_patients: int):
    return ("<", 4096, "< 4 GB") if n_patients == 100_000 else None


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def stage_scale_generate(params, figs: Figures):
    folder = Path(params["folder"])
    info = write_synthetic_parquet(folder, params["n_patients"], params["scale_steps"], params["scale_variables"])
    (folder / "info.json").write_text(json.dumps(info))  # written last: marks a complete cache entry


def stage_scale_measure(params, figs: Figures):
    n = params["n_patients"]
    baseline = current_rss_mb()  # Python, numpy, pandas, torch and dice_core imported
    start = time.perf_counter()
    cohort = read_synthetic_parquet(Path(params["folder"]))
    read_s = time.perf_counter() - start
    events_mb = cohort.events.memory_usage(deep=True).sum() / 2 ** 20
    split, preprocessor, data, prep_s = prepare(cohort)
    peak_after_prep = peak_rss_mb()
    say(f"{n:,} patients prepared in {prep_s:.0f} s; training 1 pre-training epoch + 1 outer iteration")
    model, pretrain_s, _ = train_paper_architecture(data, split, preprocessor, n_iter=1)
    record = model.history_[0]
    z = model.transform(split_parts(data, split)["train"])
    quality = clustering_metrics(z, model.predict(z), max_samples=5000)
    prefix = f"{n:,} patients:"
    figs.add(f"baseline_mb_{n}", f"{prefix} memory before reading (libraries imported)", baseline, "MB")
    figs.add(f"read_s_{n}", f"{prefix} read Parquet", read_s, "s")
    figs.add(f"preprocess_s_{n}", f"{prefix} preprocessing", prep_s, "s")
    figs.add(f"pretrain_s_{n}", f"{prefix} pre-training epoch", pretrain_s, "s")
    figs.add(f"epoch_s_{n}", f"{prefix} joint epoch (incl. head refit)", record["seconds_epoch"], "s")
    figs.add(f"iteration_s_{n}", f"{prefix} one outer iteration (wall)", model.train_time_, "s")
    figs.add(f"peak_prep_mb_{n}", f"{prefix} peak memory after preprocessing", peak_after_prep, "MB")
    figs.add(f"peak_mb_{n}", f"{prefix} peak memory, preprocessing + training", peak_rss_mb(), "MB", scale_target(n))
    figs.note(f"{n:,} synthetic patients x {params['scale_steps']} steps, {len(cohort.variables)} variables: "
              f"{len(cohort.events):,} events ({events_mb:.0f} MB as a DataFrame), X {data.X.nbytes / 2 ** 20:.0f} MB; "
              f"silhouette {quality['silhouette']:.3f} on a subsample of {quality['silhouette_sample_size']:,} "
              f"(quadratic in patients), everything else on all {len(z):,} training patients")


def stage_early_stopping(params, figs: Figures):
    names = {f.name for f in dataclasses.fields(DICEConfig)}
    if "early_stopping" not in names:
        figs.note("skipped: DICEConfig has no early_stopping option yet")
        return
    cohort, _ = load_set_a(params)
    split, preprocessor, data, _ = prepare(cohort)
    train_paper_architecture(data, split, preprocessor, n_iter=1)  # warm-up, so both runs start warm
    for label, changes in (("fixed", {}), ("early", {"early_stopping": True})):
        say(f"training K={PAPER_K}, d={PAPER_D}, {label} schedule")
        start = time.perf_counter()
        model, _, _ = train_paper_architecture(data, split, preprocessor, params["early_iter"], **changes)
        wall = time.perf_counter() - start
        head, probe = aucs_on_test(model, data, split)
        name = "fixed schedule" if label == "fixed" else "early stopping"
        figs.add(f"{label}_iterations", f"{name}: iterations used", len(model.history_))
        figs.add(f"{label}_s", f"{name}: wall (pre-training + iterations)", wall, "s")
        figs.add(f"{label}_val_auc", f"{name}: validation AUC", float(model.val_auc_))
        figs.add(f"{label}_test_auc_head", f"{name}: test AUC, outcome head", head)
        figs.add(f"{label}_test_auc_probe", f"{name}: test AUC, representation probe", probe)
    settings = {k: getattr(DICEConfig(), k) for k in ("patience", "min_delta", "settled_fraction") if k in names}
    figs.note(f"early stopping with the default settings {settings}, at most {params['early_iter']} iterations")


STAGES = {
    "preprocess": stage_preprocess,
    "train": stage_train,
    "flops": stage_flops,
    "search": stage_search,
    "search-full": stage_search,
    "scoring": stage_scoring,
    "scale": stage_scale,
    "early-stopping": stage_early_stopping,
    # helpers run as their own processes by stage_scale
    "scale-generate": stage_scale_generate,
    "scale-measure": stage_scale_measure,
}
