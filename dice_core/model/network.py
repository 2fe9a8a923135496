"""The torch modules of DICE: LSTM autoencoder, cluster classifier and outcome heads.

Only modules live here; the training loop is in trainer.py and the estimator in dice.py.
"""
from __future__ import annotations

from itertools import combinations

import torch
from torch import nn
from torch.nn import functional as F


class LSTMAutoencoder(nn.Module):
    """Encoder E: an LSTM whose last hidden state is z. Decoder F: an LSTM fed z at every step."""

    def __init__(self, n_inputs: int, n_features: int, hidden_size: int):
        super().__init__()
        self.encoder = nn.LSTM(n_inputs, hidden_size, batch_first=True)
        self.decoder = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, n_features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.encoder(x)
        return h[-1]

    def decode(self, z: torch.Tensor, n_steps: int) -> torch.Tensor:
        out, _ = self.decoder(z.unsqueeze(1).expand(-1, n_steps, -1))
        return self.readout(out)


def pair_merge_matrices(n_clusters: int) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """For each unordered pair (k1, k2), a K x (K-1) 0/1 matrix that merges columns k1 and k2.

    Multiplying memberships c (n x K) by it gives the design of the null model in which the two
    clusters share one coefficient (equivalently: both columns removed, k1 as the reference).
    """
    pairs = list(combinations(range(n_clusters), 2))
    merges = torch.zeros(len(pairs), n_clusters, n_clusters - 1)
    for p, (k1, k2) in enumerate(pairs):
        others = [k for k in range(n_clusters) if k not in (k1, k2)]
        merges[p, k1, 0] = merges[p, k2, 0] = 1.0
        for j, k in enumerate(others, start=1):
            merges[p, k, j] = 1.0
    return pairs, merges


class OutcomeHeads(nn.Module):
    """Logistic regressions of the outcome on cluster membership c plus covariates v.

    The full ("alternative") model has one coefficient per cluster and no separate intercept:
    memberships sum to one, so this is the same model as intercept + K-1 dummies, whichever
    cluster is the reference. One null model per pair merges the pair's two columns. The
    likelihood ratio of a pair is then G = 2 (loglik_alt - loglik_null), as in the exact test.
    """

    def __init__(self, n_clusters: int, n_covariates: int):
        super().__init__()
        self.pairs, merges = pair_merge_matrices(n_clusters)
        self.register_buffer("merges", merges)
        self.alt_cluster = nn.Parameter(torch.zeros(n_clusters))
        self.alt_covariates = nn.Parameter(torch.zeros(n_covariates))
        n_pairs = len(self.pairs)
        self.null_cluster = nn.Parameter(torch.zeros(n_pairs, n_clusters - 1))
        self.null_covariates = nn.Parameter(torch.zeros(n_pairs, n_covariates))

    def alt_logits(self, c, v, detach_weights: bool = False):
        wc, wv = self.alt_cluster, self.alt_covariates
        if detach_weights:
            wc, wv = wc.detach(), wv.detach()
        return c @ wc + v @ wv

    def null_logits(self, c, v, detach_weights: bool = False):
        """(n, n_pairs) logits of every pair's null model."""
        wc, wv = self.null_cluster, self.null_covariates
        if detach_weights:
            wc, wv = wc.detach(), wv.detach()
        merged = torch.einsum("nk,pkj->npj", c, self.merges)
        return torch.einsum("npj,pj->np", merged, wc) + v @ wv.T

    @torch.no_grad()
    def reset_nulls_from_alt(self):
        """Start every null model from the full one, the merged pair at its mean coefficient."""
        for p, (k1, k2) in enumerate(self.pairs):
            others = [k for k in range(self.alt_cluster.numel()) if k not in (k1, k2)]
            self.null_cluster[p, 0] = 0.5 * (self.alt_cluster[k1] + self.alt_cluster[k2])
            self.null_cluster[p, 1:] = self.alt_cluster[others]
            self.null_covariates[p] = self.alt_covariates

    @torch.no_grad()
    def permute_clusters(self, order):
        """Renumber clusters: new cluster j is old cluster order[j]."""
        self.alt_cluster.copy_(self.alt_cluster[list(order)])
        self.reset_nulls_from_alt()


class DICENetwork(nn.Module):
    """Autoencoder + cluster classifier g(z; theta1) + outcome heads g(c, v; theta2)."""

    def __init__(self, n_inputs: int, n_features: int, n_covariates: int, hidden_size: int, n_clusters: int):
        super().__init__()
        self.autoencoder = LSTMAutoencoder(n_inputs, n_features, hidden_size)
        self.classifier = nn.Linear(hidden_size, n_clusters)
        self.outcome = OutcomeHeads(n_clusters, n_covariates)
        self.n_features = n_features

    def encode(self, x):
        return self.autoencoder.encode(x)

    def memberships(self, z):
        """Soft cluster memberships from the classifier (rows sum to one)."""
        return F.softmax(self.classifier(z), dim=1)

    def outcome_probability(self, z, v, centroids):
        """Outcome probability at inference: the outcome head on the hard membership of the
        nearest centroid (eq. 2, as patients are assigned to risk levels) plus covariates."""
        nearest = torch.cdist(z, centroids).argmin(1)
        c = F.one_hot(nearest, centroids.shape[0]).to(z.dtype)
        return torch.sigmoid(self.outcome.alt_logits(c, v))

    @torch.no_grad()
    def permute_clusters(self, order):
        order = list(order)
        self.classifier.weight.copy_(self.classifier.weight[order])
        self.classifier.bias.copy_(self.classifier.bias[order])
        self.outcome.permute_clusters(order)
