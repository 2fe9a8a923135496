"""Algorithm 1 of the DICE paper: the training loop of one architecture N(K, d).

1. pre-train the autoencoder on the reconstruction loss;
2. repeat n_iter times: embed the training patients, run k-means (warm-started from the previous
   centroids), number the clusters by outcome rate, then optimise the joint objective (eq. 7) for
   n_epoch epochs with the clusters as pseudo-labels;
3. after each iteration, run the exact likelihood-ratio test on hard memberships and keep the
   iteration with the best validation AUC among those where every pair is significant.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F

from ..config import DICEConfig
from ..errors import CancelledError, ConfigError
from ..stats.significance import pairwise_lr_test, significance_threshold
from .network import DICENetwork


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} was asked for, but this torch has no usable CUDA GPU; "
                          "use --device cpu or auto")
    return torch.device(name)


@dataclass
class Tensors:
    """One split of PreparedData as tensors on the training device."""

    x: torch.Tensor  # (n, T, F_in) encoder input
    v: torch.Tensor  # (n, C) covariates
    y: torch.Tensor  # (n,) outcome as float
    mask: torch.Tensor  # (n, T, F) observed entries

    @classmethod
    def from_prepared(cls, data, device) -> "Tensors":
        y = data.y if data.y is not None else np.zeros(len(data.patient_ids), np.float32)
        as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)
        return cls(as_t(data.X), as_t(data.V), as_t(y), as_t(data.mask))

    def __len__(self):
        return self.x.shape[0]


@dataclass
class LoopState:
    """Where Algorithm 1 stands after some outer iterations: everything the next iteration needs,
    so that `DICETrainer.resume` continues a training exactly as if it had never stopped (successive
    halving continues its survivors instead of training them again). The data are not kept."""

    net: DICENetwork
    opt: torch.optim.Optimizer
    generator: torch.Generator  # the mini-batch order
    z: np.ndarray  # training representations after the last iteration
    labels: np.ndarray
    centroids: np.ndarray
    history: list = field(default_factory=list)
    best: tuple | None = None  # (val AUC, snapshot) of the best iteration with every pair significant
    best_any: tuple | None = None  # (val AUC, snapshot) of the best iteration
    stopped_early: bool = False
    seconds: float = 0.0  # training time so far


@dataclass
class TrainingResult:
    state_dict: dict
    centroids: np.ndarray  # (K, d), cluster 0 = highest training outcome rate
    train_labels: np.ndarray  # hard memberships of the training patients
    cluster_rates: np.ndarray
    significance: object  # SignificanceResult on the training split
    val_auc: float
    significant: bool
    best_iteration: int
    history: list = field(default_factory=list)
    train_time: float = 0.0
    state: LoopState | None = None  # to continue the training (DICETrainer.resume)


def cluster_rates(labels, y, k):
    return np.array([y[labels == j].mean() if np.any(labels == j) else np.nan for j in range(k)])


def reference_cluster(labels, y, k) -> int:
    """The level odds ratios are reported against: the lowest-risk cluster that has both outcomes
    (a reference without events would make every odds ratio infinite); K-1 if none has."""
    for j in range(k - 1, -1, -1):
        events, size = y[labels == j].sum(), np.sum(labels == j)
        if 0 < events < size:
            return j
    return k - 1


def order_by_rate(labels, centroids, y):
    """Renumber clusters by outcome rate, highest first (empty clusters last)."""
    k = len(centroids)
    rates = np.nan_to_num(cluster_rates(labels, y, k), nan=-1.0)
    order = np.argsort(-rates, kind="stable")
    new_index = np.empty(k, dtype=int)
    new_index[order] = np.arange(k)
    return new_index[labels], centroids[order], order


def settled(history: list[dict], cfg: DICEConfig) -> bool:
    """Early-stopping rule: no validation AUC gain of min_delta in `patience` iterations, and
    memberships stable (change below settled_fraction) in each of the last three."""
    if len(history) <= cfg.patience:
        return False
    aucs = np.nan_to_num([h["val_auc"] for h in history], nan=-1.0)
    no_gain = aucs[-cfg.patience:].max() <= aucs[:-cfg.patience].max() + cfg.min_delta
    stable = all(h["membership_change"] < cfg.settled_fraction for h in history[-3:])
    return bool(no_gain and stable)


class DICETrainer:
    """Trains one DICENetwork. `progress(dict)` reports; `should_stop()` cancels between batches."""

    def __init__(self, config: DICEConfig, progress=None, should_stop=None):
        self.config = config
        self.device = resolve_device(config.device)
        self.progress = progress or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self.generator = torch.Generator().manual_seed(config.seed)

    # -- building blocks -------------------------------------------------------------------
    def _batches(self, n):
        order = torch.randperm(n, generator=self.generator)
        for start in range(0, n, self.config.batch_size):
            if self.should_stop():
                raise CancelledError("training was cancelled")
            yield order[start:start + self.config.batch_size].to(self.device)

    def _reconstruction_loss(self, net, x, mask, z):
        n_features = net.n_features
        recon = net.autoencoder.decode(z, x.shape[1])
        err = (recon - x[..., :n_features]) ** 2
        if self.config.masked_reconstruction:
            return (err * mask).sum() / mask.sum().clamp_min(1.0)
        return err.mean()

    @torch.no_grad()
    def embed(self, net, data: Tensors, batch=512):
        net.eval()
        z = torch.cat([net.encode(data.x[i:i + batch]) for i in range(0, len(data), batch)])
        net.train()
        return z

    @torch.no_grad()
    def predict_outcome(self, net, data: Tensors, centroids: np.ndarray, batch=512):
        net.eval()
        m = torch.as_tensor(centroids, device=self.device)
        p = torch.cat([net.outcome_probability(net.encode(data.x[i:i + batch]), data.v[i:i + batch], m)
                       for i in range(0, len(data), batch)])
        net.train()
        return p

    def _optimizer(self, net):
        heads = list(net.outcome.parameters())
        head_ids = {id(p) for p in heads}
        rest = [p for p in net.parameters() if id(p) not in head_ids]
        lr = self.config.learning_rate
        # The logistic heads are tiny and must track the moving representation: larger steps.
        return torch.optim.Adam([{"params": rest, "lr": lr}, {"params": heads, "lr": 10 * lr}])

    # -- phases ----------------------------------------------------------------------------
    def pretrain_autoencoder(self, train: Tensors, n_inputs: int, n_features: int) -> dict:
        """Eq. 1 alone for n_pretrain_epochs. Depends only on d, the seed and the data, so the
        search can share one pre-trained autoencoder between every K of the same d."""
        torch.manual_seed(self.config.seed)
        self.generator.manual_seed(self.config.seed)
        net = DICENetwork(n_inputs, n_features, 0, self.config.hidden_size, self.config.n_clusters).to(self.device)
        opt = torch.optim.Adam(net.autoencoder.parameters(), lr=self.config.learning_rate)
        for _ in range(self.config.n_pretrain_epochs):
            for idx in self._batches(len(train)):
                x = train.x[idx]
                loss = self._reconstruction_loss(net, x, train.mask[idx], net.encode(x))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return copy.deepcopy(net.autoencoder.state_dict())

    def joint_epoch(self, net, train: Tensors, labels, centroids, opt):
        """One epoch of eq. 7 with k-means labels as pseudo-labels; returns mean loss terms."""
        cfg = self.config
        alpha_g = significance_threshold(cfg.alpha)
        n_train = float(len(train))
        sums = np.zeros(5)
        n_batches = 0
        for idx in self._batches(len(train)):
            x, v, y, lab = train.x[idx], train.v[idx], train.y[idx], labels[idx]
            z = net.encode(x)
            ae = self._reconstruction_loss(net, x, train.mask[idx], z)
            clus = ((z - centroids[lab]) ** 2).sum(1).mean()
            logits = net.classifier(z)
            cls = F.cross_entropy(logits, lab)
            c = F.softmax(logits, dim=1)
            nll_alt = F.binary_cross_entropy_with_logits(net.outcome.alt_logits(c, v), y)
            # Null heads fit on detached memberships: they follow the data, they do not shape it.
            null_fit = F.binary_cross_entropy_with_logits(
                net.outcome.null_logits(c.detach(), v), y[:, None].expand(-1, len(net.outcome.pairs)),
                reduction="none").mean(0).sum()
            # Significance: G on summed log-likelihoods (batch mean scaled to the training size),
            # with the heads' weights frozen so that only the representation can raise G.
            per_alt = F.binary_cross_entropy_with_logits(
                net.outcome.alt_logits(c, v, detach_weights=True), y, reduction="none")
            per_null = F.binary_cross_entropy_with_logits(
                net.outcome.null_logits(c, v, detach_weights=True), y[:, None].expand(-1, len(net.outcome.pairs)),
                reduction="none")
            g = 2.0 * n_train * (per_null.mean(0) - per_alt.mean())
            sig = F.relu(alpha_g - g).mean()
            loss = (ae + cfg.lambda_cluster * clus + cfg.lambda_classifier * cls
                    + cfg.lambda_outcome * nll_alt + null_fit + cfg.lambda_significance * sig)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += [ae.item(), clus.item(), cls.item(), nll_alt.item(), sig.item()]
            n_batches += 1
        return dict(zip(["loss_ae", "loss_cluster", "loss_classifier", "loss_outcome", "loss_significance"],
                        sums / max(n_batches, 1)))

    def refit_heads(self, net, z: np.ndarray, labels: np.ndarray, train: Tensors, max_iter: int = 50):
        """Fit the cluster classifier, then the outcome heads, to convergence on the current (fixed)
        representation with L-BFGS: a coordinate step of eq. 7 that lets the joint epoch start from
        heads that match the new pseudo-labels, so batch likelihood ratios are meaningful at once."""
        z_t = torch.as_tensor(z, device=self.device)
        lab_t = torch.as_tensor(labels, dtype=torch.long, device=self.device)
        pairs = len(net.outcome.pairs)

        def fit(params, loss_fn):
            opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn() + 1e-4 * sum((p ** 2).sum() for p in params)  # keeps separated fits finite
                loss.backward()
                return loss
            opt.step(closure)

        fit(list(net.classifier.parameters()), lambda: F.cross_entropy(net.classifier(z_t), lab_t))
        with torch.no_grad():
            c = F.softmax(net.classifier(z_t), dim=1)
        y = train.y
        fit(list(net.outcome.parameters()), lambda: (
            F.binary_cross_entropy_with_logits(net.outcome.alt_logits(c, train.v), y)
            + F.binary_cross_entropy_with_logits(net.outcome.null_logits(c, train.v), y[:, None].expand(-1, pairs),
                                                 reduction="none").mean(0).sum()))

    def kmeans(self, z: np.ndarray, centroids=None):
        k = self.config.n_clusters
        if centroids is None:
            km = KMeans(k, n_init=10, random_state=self.config.seed)
        else:  # warm start keeps cluster identities stable across iterations
            km = KMeans(k, init=centroids, n_init=1, random_state=self.config.seed)
        labels = km.fit_predict(z.astype(np.float64))
        return labels, km.cluster_centers_.astype(np.float32)

    # -- the whole of Algorithm 1 ----------------------------------------------------------
    def fit(self, train_data, val_data, n_inputs, n_features, n_covariates, init_autoencoder=None) -> TrainingResult:
        """Pre-training (unless `init_autoencoder` is given), then `config.n_iter` outer iterations."""
        state = self.start(train_data, n_inputs, n_features, n_covariates, init_autoencoder)
        return self.resume(state, train_data, val_data, self.config.n_iter)

    def start(self, train_data, n_inputs, n_features, n_covariates, init_autoencoder=None) -> LoopState:
        """The network from the pre-trained autoencoder and the first k-means pseudo-labels."""
        cfg = self.config
        started = time.perf_counter()
        train = Tensors.from_prepared(train_data, self.device)
        if init_autoencoder is None:
            self.progress({"stage": "pre-training autoencoder", "fraction": 0.0})
            init_autoencoder = self.pretrain_autoencoder(train, n_inputs, n_features)
        torch.manual_seed(cfg.seed + 1)
        self.generator.manual_seed(cfg.seed + 1)
        net = DICENetwork(n_inputs, n_features, n_covariates, cfg.hidden_size, cfg.n_clusters).to(self.device)
        net.autoencoder.load_state_dict(init_autoencoder)
        opt = self._optimizer(net)
        z = self.embed(net, train).cpu().numpy()
        labels, centroids = self.kmeans(z)
        labels, centroids, order = order_by_rate(labels, centroids, train_data.y.astype(int))
        net.permute_clusters(order)
        return LoopState(net, opt, self.generator, z, labels, centroids, seconds=time.perf_counter() - started)

    def resume(self, state: LoopState, train_data, val_data, until: int) -> TrainingResult:
        """Outer iterations from where `state` stands up to iteration `until` (Algorithm 1, step 2),
        then the kept iteration; `state` is updated in place and returned with the result."""
        cfg = self.config
        started = time.perf_counter()
        self.generator = state.generator
        train = Tensors.from_prepared(train_data, self.device)
        val = Tensors.from_prepared(val_data, self.device)
        y_train = train_data.y.astype(int)
        y_val = val_data.y.astype(int)
        net, opt, z, labels, centroids = state.net, state.opt, state.z, state.labels, state.centroids
        covariates = pd.DataFrame(train_data.V, columns=train_data.covariate_names)  # names for the report
        history, first = state.history, len(state.history)
        for it in range(first, until if not state.stopped_early else first):
            previous_labels = labels
            t_refit = time.perf_counter()
            self.refit_heads(net, z, labels, train)
            t0 = time.perf_counter()
            losses = self.joint_epochs(net, train, labels, centroids, opt)
            t1 = time.perf_counter()
            z = self.embed(net, train).cpu().numpy()
            t2 = time.perf_counter()
            labels, centroids = self.kmeans(z, centroids)
            labels, centroids, order = order_by_rate(labels, centroids, y_train)
            net.permute_clusters(order)
            t3 = time.perf_counter()
            p_val = self.predict_outcome(net, val, centroids).cpu().numpy()
            val_auc = roc_auc_score(y_val, p_val) if len(np.unique(y_val)) == 2 else float("nan")
            t4 = time.perf_counter()
            sig = pairwise_lr_test(labels, y_train, covariates, n_clusters=cfg.n_clusters, alpha=cfg.alpha,
                                   reference=reference_cluster(labels, y_train, cfg.n_clusters))
            t5 = time.perf_counter()
            record = {
                "iteration": it + 1, "val_auc": float(val_auc), "all_significant": bool(sig.all_significant),
                "min_G": float(sig.min_G), "max_p": float(sig.max_p),
                "membership_change": float(np.mean(labels != previous_labels)),
                "smallest_cluster": int(np.bincount(labels, minlength=cfg.n_clusters).min()),
                "seconds_refit": t0 - t_refit, "seconds_epoch": t1 - t0, "seconds_embed": t2 - t1, "seconds_kmeans": t3 - t2,
                "seconds_validation": t4 - t3, "seconds_exact_test": t5 - t4, **losses,
            }
            history.append(record)
            state.z, state.labels, state.centroids = z, labels, centroids
            snapshot = lambda: (copy.deepcopy(net.state_dict()), centroids.copy(), labels.copy(), sig, it + 1)
            if state.best_any is None or val_auc > state.best_any[0]:
                state.best_any = (val_auc, snapshot())
            if sig.all_significant and (state.best is None or val_auc > state.best[0]):
                state.best = (val_auc, snapshot())
            elapsed = time.perf_counter() - started
            self.progress({
                "stage": "training", "fraction": (it + 1 - first) / (until - first), "iteration": it + 1,
                "message": f"iteration {it + 1}/{until}, val AUC {val_auc:.3f}, "
                           f"{'all pairs significant' if sig.all_significant else 'NOT all significant'}",
                "eta_s": elapsed / (it + 1 - first) * (until - it - 1),
            })
            if cfg.early_stopping and state.best is not None and settled(history, cfg):
                state.stopped_early = True
                self.progress({"stage": "training", "fraction": 1.0, "iteration": it + 1,
                               "message": f"stopped early at iteration {it + 1}: AUC and memberships settled"})
                break
        state.seconds += time.perf_counter() - started
        chosen = state.best if state.best is not None else state.best_any
        val_auc, (state_dict, kept_centroids, kept_labels, sig, best_it) = chosen
        return TrainingResult(
            state_dict=state_dict, centroids=kept_centroids, train_labels=kept_labels,
            cluster_rates=cluster_rates(kept_labels, y_train, cfg.n_clusters), significance=sig,
            val_auc=float(val_auc), significant=state.best is not None, best_iteration=best_it,
            history=list(history), train_time=state.seconds, state=state,
        )

    def joint_epochs(self, net, train, labels, centroids, opt):
        labels_t = torch.as_tensor(labels, dtype=torch.long, device=self.device)
        centroids_t = torch.as_tensor(centroids, device=self.device)
        for _ in range(self.config.n_epoch):
            losses = self.joint_epoch(net, train, labels_t, centroids_t, opt)
        return losses
