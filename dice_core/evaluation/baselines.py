"""The paper's baselines (section 4.1), each followed by k-means with the same K and d as DICE:

- PCA of the flattened binned sequences;
- AE: the same LSTM autoencoder trained on reconstruction only, the epoch with the lowest
  validation reconstruction error kept;
- AE + classification: the autoencoder trained jointly with a logistic outcome classifier on z,
  the epoch with the highest validation AUC kept.

Each returns a Representation: z for every patient of the prepared data, and k-means clusters
fitted on the training split (numbered by outcome rate, highest first, as DICE's).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.nn import functional as F

from ..errors import CancelledError
from ..model.network import LSTMAutoencoder
from ..model.trainer import order_by_rate, resolve_device


@dataclass
class Representation:
    name: str
    z: np.ndarray  # (patients, d), rows as in the prepared data
    clusters: np.ndarray  # (patients,)


def kmeans_on_train(z, train_rows, y_train, k, seed):
    """k-means fitted on the training rows, every patient assigned, clusters ordered by risk."""
    km = KMeans(k, n_init=10, random_state=seed).fit(z[train_rows].astype(np.float64))
    labels_train, centroids, order = order_by_rate(km.labels_, km.cluster_centers_, y_train)
    dist = ((z[:, None, :] - centroids[None]) ** 2).sum(-1)
    return dist.argmin(1)


def pca_representation(data, train_rows, k, d, seed=0) -> Representation:
    flat = data.X.reshape(len(data.X), -1)
    n_comp = min(d, flat.shape[1], len(train_rows))
    z = PCA(n_comp, random_state=seed).fit(flat[train_rows]).transform(flat).astype(np.float32)
    return Representation("PCA", z, kmeans_on_train(z, train_rows, data.y[train_rows].astype(int), k, seed))


def _autoencoder(data, train_rows, val_rows, d, n_epochs, with_classifier, config, should_stop):
    """Train an LSTM autoencoder (optionally with an outcome classifier on z); keep the best epoch."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)
    x, mask, y = as_t(data.X), as_t(data.mask), as_t(data.y)
    n_features = data.mask.shape[2]
    ae = LSTMAutoencoder(x.shape[2], n_features, d).to(device)
    head = nn.Linear(d, 1).to(device)
    opt = torch.optim.Adam(list(ae.parameters()) + list(head.parameters()), lr=config.learning_rate)
    tr = torch.as_tensor(train_rows, device=device)
    va = torch.as_tensor(val_rows, device=device)

    def recon_loss(rows):
        z = ae.encode(x[rows])
        err = (ae.decode(z, x.shape[1]) - x[rows][..., :n_features]) ** 2
        if config.masked_reconstruction:
            m = mask[rows]
            return z, (err * m).sum() / m.sum().clamp_min(1.0)
        return z, err.mean()

    best_score, best_state = -np.inf, None
    for _ in range(n_epochs):
        for idx in torch.randperm(len(tr), generator=gen).split(config.batch_size):
            if should_stop():
                raise CancelledError("baseline training was cancelled")
            rows = tr[idx.to(device)]
            z, loss = recon_loss(rows)
            if with_classifier:
                loss = loss + F.binary_cross_entropy_with_logits(head(z).squeeze(1), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            z_val, val_loss = recon_loss(va)
            if with_classifier:
                score = roc_auc_score(data.y[val_rows], head(z_val).squeeze(1).cpu().numpy())
            else:
                score = -val_loss.item()
        if score > best_score:
            best_score, best_state = score, copy.deepcopy(ae.state_dict())
    ae.load_state_dict(best_state)
    with torch.no_grad():
        z = torch.cat([ae.encode(x[i:i + 512]) for i in range(0, len(x), 512)]).cpu().numpy()
    return z


def autoencoder_representation(data, train_rows, val_rows, k, d, config, with_classifier=False,
                               should_stop=lambda: False) -> Representation:
    n_epochs = max(1, config.n_pretrain_epochs + config.n_iter * config.n_epoch)
    z = _autoencoder(data, train_rows, val_rows, d, n_epochs, with_classifier, config, should_stop)
    name = "AE + classification" if with_classifier else "AE"
    return Representation(name, z, kmeans_on_train(z, train_rows, data.y[train_rows].astype(int), k, config.seed))


def all_baselines(data, train_rows, val_rows, config, progress=lambda e: None, should_stop=lambda: False):
    """PCA, AE and AE + classification with the K, d and schedule of `config`."""
    k, d = config.n_clusters, config.hidden_size
    progress({"stage": "baseline PCA", "fraction": 0.0})
    reps = [pca_representation(data, train_rows, k, d, config.seed)]
    progress({"stage": "baseline AE", "fraction": 0.1})
    reps.append(autoencoder_representation(data, train_rows, val_rows, k, d, config, False, should_stop))
    progress({"stage": "baseline AE + classification", "fraction": 0.55})
    reps.append(autoencoder_representation(data, train_rows, val_rows, k, d, config, True, should_stop))
    progress({"stage": "baselines done", "fraction": 1.0})
    return reps
