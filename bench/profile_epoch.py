"""Where the joint epoch's time goes: torch.profiler over joint epochs of K=4, d=35 on set A.

    python bench/profile_epoch.py [--physionet PATH] [--threads N] [--epochs 2] [--top 15]

Prints the operators with the most self CPU time (one warm-up epoch first, not profiled), the
share of the LSTM kernels, and the epoch's achieved FLOP/s against torch.matmul in the same
process (the `flops` stage's ratio). It explains that figure; it is not part of `bench/run.py`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench.measure import autoencoder_epoch_flops, matmul_gflops  # noqa: E402
from bench.stages import PAPER_D, PAPER_K, load_set_a, prepare, split_parts  # noqa: E402
from dice_core.config import DICEConfig  # noqa: E402
from dice_core.data.physionet import default_physionet_path  # noqa: E402
from dice_core.model.network import DICENetwork  # noqa: E402
from dice_core.model.trainer import DICETrainer, Tensors  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--physionet", default=str(default_physionet_path()))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--epochs", type=int, default=2, help="profiled epochs")
    parser.add_argument("--top", type=int, default=15, help="operators listed")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    cohort, _ = load_set_a({"physionet": args.physionet})
    split, _, data, _ = prepare(cohort)
    config = DICEConfig(n_clusters=PAPER_K, hidden_size=PAPER_D)
    trainer = DICETrainer(config)
    train = Tensors.from_prepared(split_parts(data, split)["train"], trainer.device)
    torch.manual_seed(0)
    net = DICENetwork(data.n_inputs, data.n_features, data.V.shape[1], PAPER_D, PAPER_K)
    opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    labels, centroids = trainer.kmeans(trainer.embed(net, train).numpy())
    labels, centroids = torch.as_tensor(labels, dtype=torch.long), torch.as_tensor(centroids)

    def epoch():
        trainer.joint_epoch(net, train, labels, centroids, opt)

    epoch()  # builds the oneDNN kernels of each batch shape
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.epochs):
            epoch()
    epoch_s = (time.perf_counter() - start) / args.epochs  # profiled: a little slower than unprofiled
    start = time.perf_counter()
    epoch()
    plain_s = time.perf_counter() - start

    table = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in table)
    lstm = sum(e.self_cpu_time_total for e in table if "lstm" in e.key.lower() or "rnn" in e.key.lower())
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    flops = autoencoder_epoch_flops(len(train), data.n_steps, data.n_inputs, data.n_features, PAPER_D)
    matmul = matmul_gflops()
    print(f"threads {torch.get_num_threads()}; epoch {plain_s:.3f} s unprofiled ({epoch_s:.3f} s profiled); "
          f"LSTM operators {lstm / total:.0%} of the self CPU time; achieved {flops / plain_s / 1e9:.1f} GFLOP/s "
          f"vs matmul {matmul:.1f} GFLOP/s (ratio {flops / plain_s / 1e9 / matmul:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
