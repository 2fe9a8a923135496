"""Exact maximum-likelihood logistic regression (Newton-Raphson), in numpy only.

Used for the exact significance test after training and, during training, to check every
candidate checkpoint, so it must be fast (a few thousand rows x ~10 columns in about a
millisecond) and must never crash or return a silent NaN on awkward data:

- aliased columns (a covariate constant in the data, a dummy that is all zero, two identical
  columns) are dropped before fitting, in column order, and recorded in `LogisticFit.aliased`;
- separation (some fitted probabilities reach 0 or 1 and the parameters diverge, e.g. a cluster
  with no events) is detected and flagged in `LogisticFit.separated`, with the reason.

The log-likelihood is still meaningful under separation: Newton's method increases it
monotonically towards its supremum, and the fit stops when it no longer changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import expit

from ..errors import ConfigError

# A column is aliased when its part orthogonal to the earlier kept columns is smaller than this
# fraction of its norm (R's lm uses 1e-7 on a QR; 1e-6 leaves margin for the Gram matrix).
ALIAS_RTOL = 1e-6
# A regular Newton fit converges quadratically: when the log-likelihood stops changing the last
# step is tiny too. A step larger than this at that point means parameters run off to infinity.
DIVERGING_STEP = 1e-3
# Fitted probabilities this close to 0 or 1 only happen under (quasi-)separation in practice.
PROBABILITY_EDGE = 1e-10


@dataclass
class LogisticFit:
    """Result of `fit_logistic`. Arrays are indexed like the columns of the X given to it.

    Aliased columns have `params` and `bse` equal to NaN, and their indices are in `aliased`.
    """

    params: np.ndarray
    bse: np.ndarray
    cov: np.ndarray
    loglik: float
    converged: bool
    separated: bool
    n_iter: int
    n_obs: int
    aliased: tuple[int, ...] = ()
    message: str = ""  # why the fit is flagged (separation, no convergence), else ""
    kept: tuple[int, ...] = field(default=(), repr=False)

    def linear_predictor(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        kept = list(self.kept)
        return X[:, kept] @ self.params[kept]

    def predict_proba(self, X) -> np.ndarray:
        """P(y = 1 | X) for a design laid out like the one that was fitted."""
        return expit(self.linear_predictor(X))


def add_intercept(X) -> np.ndarray:
    """Return X with a leading column of ones (X may be (n,) or (n, p), or have 0 columns)."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    return np.column_stack([np.ones(X.shape[0]), X])


def fit_logistic(X, y, *, max_iter: int = 100, tol: float = 1e-10) -> LogisticFit:
    """Fit P(y = 1) = expit(X @ params) by maximum likelihood (Newton-Raphson with step halving).

    X: (n, p) design; it includes an intercept column only if the caller added one
    (`add_intercept`). y: (n,) of 0/1. Stops when the log-likelihood changes by less than
    tol * (1 + |loglik|). Standard errors come from the inverse Hessian at the optimum.
    """
    X, y = _check_design(X, y)
    n, p = X.shape
    kept = independent_columns(X)
    Xk = X[:, kept]
    beta = np.zeros(len(kept))
    eta = np.zeros(n)
    loglik = _loglik(y, eta)
    converged, last_step, n_iter = False, np.inf, 0
    for n_iter in range(1, max_iter + 1):
        mu = expit(eta)
        step = _solve(_hessian(Xk, mu), Xk.T @ (y - mu))
        beta, eta, change = _halving_step(Xk, y, beta, step, loglik)
        loglik += change
        last_step = float(np.max(np.abs(step), initial=0.0))
        if abs(change) <= tol * (1.0 + abs(loglik)):
            converged = True
            break
    return _finish(X, y, Xk, kept, beta, eta, loglik, converged, last_step, n_iter)


def independent_columns(X, rtol: float = ALIAS_RTOL) -> list[int]:
    """Indices of the columns of X kept, in order, when each column that is (numerically) a
    linear combination of the columns kept before it is dropped. Earlier columns win, so put
    the intercept and the terms of interest first.

    Works on the Gram matrix of the unit-norm columns (a Cholesky factorisation that skips
    dependent columns): p x p work after one product, much cheaper than a QR of the n x p X.
    """
    X = np.asarray(X, dtype=float)
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))
    scale = np.where(norms > 0, norms, 1.0)
    gram = (X.T @ X) / np.outer(scale, scale)
    kept: list[int] = []
    L = np.zeros((X.shape[1], X.shape[1]))  # Cholesky factor of gram[kept][:, kept], grown in place
    for j in range(X.shape[1]):
        if norms[j] == 0.0:
            continue
        m = len(kept)
        l = solve_triangular(L[:m, :m], gram[kept, j], lower=True, check_finite=False)
        residual2 = gram[j, j] - l @ l  # squared norm of the part of column j outside kept columns
        if residual2 > rtol**2:
            L[m, :m], L[m, m] = l, np.sqrt(residual2)
            kept.append(j)
    return kept


def _check_design(X, y):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    if X.ndim != 2:
        raise ConfigError(f"fit_logistic: X must be a 2-D (rows x columns) array, got shape {X.shape}")
    if X.shape[0] != y.shape[0]:
        raise ConfigError(f"fit_logistic: X has {X.shape[0]} rows but y has {y.shape[0]} values")
    if X.shape[0] == 0:
        raise ConfigError("fit_logistic: no rows to fit")
    if not np.all(np.isfinite(X)):
        bad = sorted(set(np.nonzero(~np.isfinite(X))[1].tolist()))
        raise ConfigError(f"fit_logistic: X column(s) {bad} hold NaN or inf; impute or drop them first")
    if not np.all((y == 0) | (y == 1)):
        raise ConfigError("fit_logistic: y must hold only 0 and 1 (found other values)")
    return X, y


def _loglik(y, eta) -> float:
    # log P = y * eta - log(1 + exp(eta)), computed without overflow
    return float(y @ eta - np.logaddexp(0.0, eta).sum())


def _hessian(Xk, mu):
    return (Xk.T * (mu * (1.0 - mu))) @ Xk


def _solve(H, g):
    try:
        return np.linalg.solve(H, g)
    except np.linalg.LinAlgError:  # singular Hessian (weights collapsed under separation)
        return np.linalg.lstsq(H, g, rcond=None)[0]


def _halving_step(Xk, y, beta, step, loglik):
    """Take the Newton step, halving it until the log-likelihood does not decrease."""
    t = 1.0
    for _ in range(30):
        new_beta = beta + t * step
        new_eta = Xk @ new_beta
        change = _loglik(y, new_eta) - loglik
        if change >= -1e-12 * (1.0 + abs(loglik)):
            return new_beta, new_eta, change
        t /= 2.0
    return beta, Xk @ beta, 0.0  # no ascent direction left: we are at the optimum numerically


def _finish(X, y, Xk, kept, beta, eta, loglik, converged, last_step, n_iter) -> LogisticFit:
    n, p = X.shape
    mu = expit(eta)
    separation = []  # each entry is one sign of (quasi-)separation
    if converged and last_step > DIVERGING_STEP:
        separation.append("parameters diverge while the log-likelihood is flat")
    if np.any(np.minimum(mu, 1.0 - mu) < PROBABILITY_EDGE):
        separation.append("fitted probabilities of 0 or 1")
    H = _hessian(Xk, mu)
    try:
        cov_kept = np.linalg.inv(H)
        if not np.all(np.isfinite(cov_kept)) or np.any(np.diag(cov_kept) < 0):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        cov_kept = np.linalg.pinv(H)
        separation.append("singular Hessian")
    reasons = separation + ([] if converged else [f"did not converge in {n_iter} iterations"])
    params = np.full(p, np.nan)
    params[kept] = beta
    cov = np.full((p, p), np.nan)
    cov[np.ix_(kept, kept)] = cov_kept
    bse = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    bse[np.isnan(params)] = np.nan
    aliased = tuple(j for j in range(p) if j not in set(kept))
    return LogisticFit(params=params, bse=bse, cov=cov, loglik=float(loglik), converged=converged,
                       separated=bool(separation), n_iter=n_iter, n_obs=n, aliased=aliased,
                       message="; ".join(reasons), kept=tuple(kept))
