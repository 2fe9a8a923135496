"""Small measuring helpers: memory, machine description, matmul throughput, analytic FLOP counts.

Everything here is plain standard library / numpy / torch so a stage can import it before
dice_core.
"""
from __future__ import annotations

import os
import platform
import resource
import time
from datetime import datetime, timezone


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb() -> float:
    return _proc_status_mb("VmRSS")


def available_memory_mb() -> float:
    """MemAvailable from /proc/meminfo: what can be allocated without swapping others out."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all processes, all CPUs)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds used by this process and its finished children."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def machine_info(threads: int) -> dict:
    import numpy
    import torch

    with open("/proc/meminfo") as fh:
        total_kb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal:"))
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpu_model(),
        "cores_usable": usable_cores(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(total_kb / 1024 ** 2, 1),
        "torch_threads": threads,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "load_average_at_start": load_average(),
    }


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best-of-`repeats` float32 torch.matmul throughput (n x n times n x n = 2 n^3 FLOPs)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up (thread pool, caches)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def lstm_flops(n_inputs: int, hidden: int) -> int:
    """Forward FLOPs of one LSTM layer for one sequence element: 4 gates, each a (I+H) x H
    matrix-vector product (a multiply-add = 2 FLOPs). Element-wise gate work is left out."""
    return 2 * 4 * hidden * (n_inputs + hidden)


def autoencoder_epoch_flops(n_patients: int, n_steps: int, n_inputs: int, n_features: int, hidden: int) -> int:
    """Forward + backward FLOPs of one epoch of the LSTM autoencoder (encoder, decoder, read-out).

    Backward is counted as twice the forward (gradients for weights and for activations), the
    usual convention. The cluster classifier and outcome heads (K and C wide) are negligible
    beside the LSTMs and are left out, so the achieved FLOP/s slightly understates the work.
    """
    per_step = (lstm_flops(n_inputs, hidden)  # encoder: the patient's values (and mask) in
                + lstm_flops(hidden, hidden)  # decoder: z fed at every step
                + 2 * hidden * n_features)  # linear read-out to the values
    return 3 * per_step * n_patients * n_steps
