"""Exact pairwise likelihood-ratio tests between clusters (DICE paper, section 3.3).

Outcome model: y ~ intercept + one-hot(cluster, reference level dropped) + covariates, fitted by
maximum likelihood on hard memberships (`fit_logistic`). For clusters k1 != k2:

    alt  = the model with k1 as reference level (column k1 removed)
    null = the same model with columns k1 and k2 both removed (k1 and k2 merged)
    G    = 2 (loglik_alt - loglik_null),   p = chi2.sf(G, 1)

`alt` is the full model whatever its reference level (a reparametrisation), so it is fitted once;
one null model is fitted per unordered pair. The p-values equal those of statsmodels' Logit
likelihood-ratio test on the same designs.

Awkward clusters never raise:
- an empty cluster (size 0) has no column; every p-value and G involving it is NaN, with a note;
- a cluster whose outcome is all 0 or all 1 separates the data: its coefficient runs to -inf/+inf
  and its rows contribute log-likelihood 0 at the supremum. We fit the other rows only, which is
  that limit exactly (the G and p of its pairs stay finite and exact), flag `separated`, and give
  it the odds ratio 0 (no events) or inf (all events) against the reference, with a NaN interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from ..errors import ConfigError, ModelFileError
from .logistic import fit_logistic

FORMAT = "dice-significance/1"


def significance_threshold(alpha: float = 0.05) -> float:
    """The G a pair must exceed to be significant at level alpha (1 degree of freedom): 3.841 for 0.05."""
    return float(chi2.isf(alpha, 1))


def holm(p_matrix) -> np.ndarray:
    """Holm-corrected p-values over the K(K-1)/2 unique pairs of a symmetric K x K p-value matrix.

    Returns a symmetric matrix with zero diagonal; NaN pairs stay NaN and do not count in m.
    """
    p_matrix = np.asarray(p_matrix, dtype=float)
    K = p_matrix.shape[0]
    upper = np.triu_indices(K, k=1)
    p = p_matrix[upper]
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]  # (m - i + 1) p_(i), i from 1
    adjusted = np.full(p.shape, np.nan)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.zeros((K, K))
    out[upper] = adjusted
    return out + out.T


@dataclass
class SignificanceResult:
    """Exact statistics of one clustering. Arrays are indexed by cluster (0 = highest risk)."""

    K: int
    reference: int
    alpha: float
    p_values: np.ndarray  # (K, K) symmetric, zero diagonal, NaN for pairs with an empty cluster
    G: np.ndarray  # (K, K) likelihood-ratio statistics, same layout
    sizes: np.ndarray  # (K,) patients per cluster
    events: np.ndarray  # (K,) patients with the outcome per cluster
    outcome_rates: np.ndarray  # (K,) events / sizes (NaN for an empty cluster)
    odds_ratios: np.ndarray  # (K,) vs the reference, adjusted for covariates; reference = 1
    odds_ratio_ci: np.ndarray  # (K, 2) 95% Wald interval from the full fit
    separated: bool  # any separation: a cluster with 0%/100% outcome, or from covariates
    separation_clusters: list[int] = field(default_factory=list)
    empty_clusters: list[int] = field(default_factory=list)
    covariate_names: list[str] = field(default_factory=list)
    loglik_full: float = float("nan")
    n_obs: int = 0
    notes: list[str] = field(default_factory=list)  # everything flagged, in plain words
    cluster_notes: list[str] = field(default_factory=list)  # (K,) why a row is odd, else ""

    @property
    def off_diagonal_p(self) -> np.ndarray:
        return self.p_values[np.triu_indices(self.K, k=1)]

    @property
    def all_significant(self) -> bool:
        """Every pair differs: every off-diagonal p < alpha (False if any p is NaN)."""
        p = self.off_diagonal_p
        return bool(p.size > 0 and np.all(p < self.alpha))

    @property
    def min_G(self) -> float:
        G = self.G[np.triu_indices(self.K, k=1)]
        return float(np.nanmin(G)) if np.any(~np.isnan(G)) else float("nan")

    @property
    def max_p(self) -> float:
        p = self.off_diagonal_p
        return float(np.nanmax(p)) if np.any(~np.isnan(p)) else float("nan")

    @property
    def G_threshold(self) -> float:
        return significance_threshold(self.alpha)

    def holm(self) -> np.ndarray:
        return holm(self.p_values)

    def summary(self) -> pd.DataFrame:
        """One row per cluster: size, events, outcome rate with Wilson 95% CI, odds ratio vs the
        reference with its 95% CI, and the likelihood-ratio p-value vs the reference."""
        low, high = wilson_interval(self.events, self.sizes)
        p_ref = self.p_values[:, self.reference].copy()
        p_ref[self.reference] = np.nan
        notes = list(self.cluster_notes) or [""] * self.K
        notes[self.reference] = "; ".join(filter(None, ["reference level", notes[self.reference]]))
        return pd.DataFrame({
            "cluster": np.arange(self.K), "size": self.sizes, "events": self.events,
            "outcome_rate": self.outcome_rates, "rate_ci_low": low, "rate_ci_high": high,
            "odds_ratio": self.odds_ratios, "or_ci_low": self.odds_ratio_ci[:, 0],
            "or_ci_high": self.odds_ratio_ci[:, 1], "p_vs_reference": p_ref, "note": notes,
        })

    def pairs(self) -> pd.DataFrame:
        """One row per unordered pair k1 < k2: G, p, Holm-corrected p, significance at alpha."""
        k1, k2 = np.triu_indices(self.K, k=1)
        p = self.p_values[k1, k2]
        p_holm = self.holm()[k1, k2]
        empty = set(self.empty_clusters)
        notes = []
        for a, b in zip(k1.tolist(), k2.tolist()):
            gone = [str(k) for k in (a, b) if k in empty]
            notes.append(f"cluster {' and '.join(gone)} empty: no test" if gone else "")
        return pd.DataFrame({
            "k1": k1, "k2": k2, "G": self.G[k1, k2], "p": p, "p_holm": p_holm,
            "significant": p < self.alpha, "significant_holm": p_holm < self.alpha, "note": notes,
        })

    def to_dict(self) -> dict:
        """JSON-safe dict: NaN -> None, +/-inf -> "inf"/"-inf"."""
        data = {"format": FORMAT, "K": self.K, "reference": self.reference, "alpha": self.alpha,
                "separated": self.separated, "n_obs": self.n_obs,
                "separation_clusters": list(self.separation_clusters),
                "empty_clusters": list(self.empty_clusters),
                "covariate_names": list(self.covariate_names),
                "notes": list(self.notes), "cluster_notes": list(self.cluster_notes),
                "loglik_full": _to_json(self.loglik_full),
                # derived, for readers of the JSON; from_dict recomputes them
                "all_significant": self.all_significant, "min_G": _to_json(self.min_G),
                "max_p": _to_json(self.max_p)}
        for name in _ARRAYS:
            data[name] = _to_json(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SignificanceResult":
        if data.get("format") != FORMAT:
            raise ModelFileError(f"significance record has format {data.get('format')!r}, expected {FORMAT!r}")
        missing = [k for k in ("K", "reference", "alpha", "separated", *_ARRAYS) if k not in data]
        if missing:
            raise ModelFileError(f"significance record is missing {missing}; re-run the exact test to rebuild it")
        arrays = {name: _from_json(data[name]) for name in _ARRAYS}
        arrays["sizes"] = arrays["sizes"].astype(int)
        arrays["events"] = arrays["events"].astype(int)
        return cls(K=int(data["K"]), reference=int(data["reference"]), alpha=float(data["alpha"]),
                   separated=bool(data["separated"]), **arrays,
                   separation_clusters=[int(k) for k in data.get("separation_clusters", [])],
                   empty_clusters=[int(k) for k in data.get("empty_clusters", [])],
                   covariate_names=list(data.get("covariate_names", [])),
                   loglik_full=float(_from_json(data.get("loglik_full"))),
                   n_obs=int(data.get("n_obs", 0)), notes=list(data.get("notes", [])),
                   cluster_notes=list(data.get("cluster_notes", [])))


_ARRAYS = ("p_values", "G", "sizes", "events", "outcome_rates", "odds_ratios", "odds_ratio_ci")


def pairwise_lr_test(clusters, y, covariates=None, n_clusters: int | None = None,
                     alpha: float = 0.05, reference: int | None = None) -> SignificanceResult:
    """Exact likelihood-ratio test for every pair of clusters, odds ratios and cluster rates.

    clusters: (n,) hard memberships 0..K-1 (cluster 0 = highest risk by convention).
    y: (n,) outcome 0/1. covariates: None, an (n, C) array or a DataFrame of numeric columns
    (already dummy-coded). n_clusters: K (default: max label + 1; give it so that empty clusters
    at the end are seen). reference: the level odds ratios are against (default K-1, the lowest risk).
    """
    clusters, y, V, names, K = _check_inputs(clusters, y, covariates, n_clusters)
    reference = K - 1 if reference is None else int(reference)
    if not 0 <= reference < K:
        raise ConfigError(f"reference={reference} must be a cluster between 0 and {K - 1}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha={alpha} must be between 0 and 1")
    onehot = (clusters[:, None] == np.arange(K)).astype(float)
    sizes = onehot.sum(axis=0).astype(int)
    events = (onehot.T @ y).round().astype(int)
    model = _OutcomeModel(onehot, y, V, sizes, events)

    full = model.fit(base={reference})
    G = np.zeros((K, K))
    for k1, k2 in zip(*np.triu_indices(K, k=1)):
        if sizes[k1] == 0 or sizes[k2] == 0:
            G[k1, k2] = G[k2, k1] = np.nan
            continue
        null = model.fit(base={k1, k2})
        G[k1, k2] = G[k2, k1] = max(0.0, 2.0 * (full.loglik - null.loglik))  # G >= 0; clip rounding
        model.flag_fit(null, f"null model merging clusters {k1} and {k2}")
    p_values = np.where(np.isnan(G), np.nan, chi2.sf(G, 1))
    np.fill_diagonal(p_values, 0.0)
    model.flag_fit(full, "full model")

    odds_ratios, ci = _odds_ratios(full, model, reference)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(sizes > 0, events / np.maximum(sizes, 1), np.nan)
    separation_clusters = [k for k in range(K) if model.cluster_separated[k]]
    return SignificanceResult(
        K=K, reference=reference, alpha=float(alpha), p_values=p_values, G=G, sizes=sizes,
        events=events, outcome_rates=rates, odds_ratios=odds_ratios, odds_ratio_ci=ci,
        separated=bool(separation_clusters) or model.fit_separated,
        separation_clusters=separation_clusters,
        empty_clusters=[k for k in range(K) if sizes[k] == 0], covariate_names=names,
        loglik_full=full.loglik, n_obs=int(y.size), notes=model.notes, cluster_notes=model.cluster_notes)


class _FitResult:
    """Log-likelihood of one design plus, for the full model, where each cluster's column is."""

    def __init__(self, loglik, fit=None, columns=None):
        self.loglik = loglik
        self.fit = fit  # LogisticFit, or None when every row belonged to a separated group
        self.columns = columns or {}  # cluster -> column index in the design


class _OutcomeModel:
    """Builds and fits y ~ 1 + dummies(clusters not in `base`) + covariates for a given base.

    The clusters in `base` share the intercept (one cluster: a reference level; two: a merged
    pair). A group of rows with a single outcome value (separated) is left out of the fit: its
    contribution to the log-likelihood at the supremum is exactly 0.
    """

    def __init__(self, onehot, y, V, sizes, events):
        self.onehot, self.y, self.V, self.sizes, self.events = onehot, y, V, sizes, events
        K = onehot.shape[1]
        self.cluster_separated = [bool(sizes[k] > 0 and events[k] in (0, sizes[k])) for k in range(K)]
        self.fit_separated = False
        self.notes: list[str] = []
        self.cluster_notes = [""] * K
        for k in range(K):
            if sizes[k] == 0:
                self._note(k, "empty cluster: its p-values and odds ratio are undefined (NaN)")
            elif self.cluster_separated[k]:
                what = "no events" if events[k] == 0 else "only events"
                self._note(k, f"{what} (outcome rate {events[k] / sizes[k]:.0%}): separation; "
                              f"its odds ratio is a limit and has no confidence interval")

    def _note(self, k, text):
        self.cluster_notes[k] = text
        self.notes.append(f"cluster {k}: {text}")

    def fit(self, base: set[int]) -> _FitResult:
        keep_rows = np.ones(self.y.size, dtype=bool)
        columns = []
        for k in range(self.onehot.shape[1]):
            if k in base or self.sizes[k] == 0:
                continue
            if self.cluster_separated[k]:
                keep_rows &= self.onehot[:, k] == 0
            else:
                columns.append(k)
        in_base = self.onehot[:, sorted(base)].sum(axis=1) > 0
        base_events, base_size = self.y[in_base].sum(), in_base.sum()
        if base_size > 0 and base_events in (0, base_size):
            keep_rows &= ~in_base
        if not keep_rows.any():
            return _FitResult(0.0)
        design = np.column_stack([np.ones(keep_rows.sum()), self.onehot[keep_rows][:, columns],
                                  self.V[keep_rows]])
        fit = fit_logistic(design, self.y[keep_rows])
        return _FitResult(fit.loglik, fit, {k: 1 + i for i, k in enumerate(columns)})

    def flag_fit(self, result: _FitResult, what: str):
        fit = result.fit
        if fit is None:
            return
        if fit.separated and not self.fit_separated:
            self.fit_separated = True
            self.notes.append(f"{what}: separation by the covariates ({fit.message}); "
                              f"estimates are unreliable")
        elif not fit.converged:
            self.notes.append(f"{what}: {fit.message}")


def _odds_ratios(full: _FitResult, model: _OutcomeModel, reference: int):
    """Odds ratio of each cluster vs the reference with its 95% Wald interval (from the full fit).

    A separated cluster (or a separated reference) gets the limit of odds_k / odds_ref with
    odds(0%) = 0 and odds(100%) = inf: 0, inf, or NaN when both are limits of the same kind.
    """
    K = model.onehot.shape[1]
    odds_ratios = np.full(K, np.nan)
    ci = np.full((K, 2), np.nan)
    z = norm.ppf(0.975)
    ref_separated = model.cluster_separated[reference]
    for k in range(K):
        if model.sizes[k] == 0 or model.sizes[reference] == 0:
            continue
        if k == reference:
            odds_ratios[k] = 1.0
        elif model.cluster_separated[k] or ref_separated:
            odds_ratios[k] = _limit_odds_ratio(model, k, reference)
        else:
            j = full.columns[k]
            beta, se = full.fit.params[j], full.fit.bse[j]
            with np.errstate(over="ignore"):  # a huge se (separation by covariates) gives inf
                odds_ratios[k] = np.exp(beta)
                ci[k] = np.exp([beta - z * se, beta + z * se])
    return odds_ratios, ci


def _limit_odds_ratio(model, k, reference) -> float:
    def log_odds_sign(c):  # -1: rate 0, +1: rate 1, 0: in between
        if not model.cluster_separated[c]:
            return 0
        return 1 if model.events[c] == model.sizes[c] else -1

    difference = log_odds_sign(k) - log_odds_sign(reference)
    return {0: np.nan}.get(difference, np.inf if difference > 0 else 0.0)


def wilson_interval(events, sizes, alpha: float = 0.05):
    """Wilson score interval of a proportion (NaN where size is 0); same as statsmodels' 'wilson'."""
    events = np.asarray(events, dtype=float)
    n = np.asarray(sizes, dtype=float)
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = events / n
        centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)  # clip rounding


def _check_inputs(clusters, y, covariates, n_clusters):
    clusters = np.asarray(clusters)
    y = np.asarray(y, dtype=float).ravel()
    if clusters.ndim != 1 or clusters.size != y.size:
        raise ConfigError(f"clusters has shape {clusters.shape} but y has {y.size} values; "
                          f"give one hard cluster label per patient")
    if clusters.size == 0:
        raise ConfigError("no patients: clusters and y are empty")
    if not np.issubdtype(clusters.dtype, np.integer):
        as_int = clusters.astype(float).astype(np.int64)
        if not np.array_equal(as_int, clusters.astype(float)):
            raise ConfigError("clusters must hold integer labels 0..K-1 (hard memberships)")
        clusters = as_int
    if not np.all((y == 0) | (y == 1)):
        raise ConfigError("the outcome y must hold only 0 and 1")
    K = int(clusters.max()) + 1 if n_clusters is None else int(n_clusters)
    if clusters.min() < 0 or clusters.max() >= K:
        raise ConfigError(f"cluster labels range {clusters.min()}..{clusters.max()}, outside 0..{K - 1}")
    if K < 2:
        raise ConfigError(f"need at least 2 clusters to compare, got K={K}")
    V, names = _covariate_matrix(covariates, y.size)
    return clusters, y, V, names, K


def _covariate_matrix(covariates, n):
    if covariates is None:
        return np.empty((n, 0)), []
    if isinstance(covariates, pd.DataFrame):
        names = [str(c) for c in covariates.columns]
        for name in covariates.columns:
            if not pd.api.types.is_numeric_dtype(covariates[name]):
                raise ConfigError(f"covariate column {name!r} is not numeric; dummy-code it first")
        V = covariates.to_numpy(dtype=float)
    else:
        V = np.asarray(covariates, dtype=float)
        V = V[:, None] if V.ndim == 1 else V
        names = [f"covariate_{j}" for j in range(V.shape[1])]
    if V.shape[0] != n:
        raise ConfigError(f"covariates have {V.shape[0]} rows but there are {n} patients")
    bad = [names[j] for j in range(V.shape[1]) if not np.all(np.isfinite(V[:, j]))]
    if bad:
        raise ConfigError(f"covariate column(s) {bad} hold missing or infinite values; impute them first")
    return V, names


def _to_json(value):
    """NaN -> None, inf -> "inf"; arrays become nested lists."""
    array = np.asarray(value)
    if array.ndim == 0:
        x = array.item()
        if isinstance(x, float):
            if np.isnan(x):
                return None
            if np.isinf(x):
                return "inf" if x > 0 else "-inf"
        return x
    return [_to_json(v) for v in array]


def _from_json(value):
    def scalar(x):
        if x is None:
            return np.nan
        if isinstance(x, str):
            return float(x)  # "inf" / "-inf"
        return x

    if isinstance(value, list):
        return np.array(_map_nested(value, scalar), dtype=float)
    return scalar(value)


def _map_nested(value, fn):
    return [_map_nested(v, fn) for v in value] if isinstance(value, list) else fn(value)
