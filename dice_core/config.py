"""Configuration as small frozen dataclasses, with the paper's values as defaults."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .errors import ConfigError


def _from_dict(cls, data: dict):
    """Build a dataclass from a dict, rejecting unknown keys with a suggestion-friendly message."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown option(s) {unknown}; known options are {sorted(names)}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
    return cls(**kwargs)


@dataclass(frozen=True)
class ColumnMap:
    """Names of the columns in the user's events and patients tables."""

    patient_id: str = "patient_id"
    time: str = "time"
    variable: str = "variable"
    value: str = "value"
    outcome: str = "outcome"
    positive_label: str | None = None  # None: 1/True/"yes"... is positive for a 0/1-like column
    covariates: tuple[str, ...] | None = None  # None: every patients column but id, outcome, group
    group: str | None = None  # column for per-group (fairness) metrics, e.g. race
    index_time: str | None = None  # patients column with each patient's index timestamp

    to_dict = asdict
    from_dict = classmethod(_from_dict)


@dataclass(frozen=True)
class PreprocessConfig:
    """Binning of irregular events into T steps; see docs/method-choices.md."""

    window_hours: float = 48.0
    bin_hours: float = 1.0
    mask_as_input: bool = True  # append the missingness mask to the encoder's input
    split_ratios: tuple[float, float, float] = (4.0, 1.0, 1.0)
    # Heavy tails (urine output, liver enzymes) make a few entries dominate the squared-error loss:
    # log_skewed takes log(1 + x) of a non-negative numeric variable whose training values have a
    # skewness above 2; clip_sd clips standardised values to +-clip_sd (None: no clipping).
    log_skewed: bool = False
    clip_sd: float | None = None

    def __post_init__(self):
        if not self.window_hours > 0 or not self.bin_hours > 0:
            raise ConfigError(f"window_hours={self.window_hours} and bin_hours={self.bin_hours} must be > 0")
        if self.bin_hours > self.window_hours:
            raise ConfigError(f"bin_hours={self.bin_hours} is larger than window_hours={self.window_hours}")
        if self.clip_sd is not None and not self.clip_sd > 0:
            raise ConfigError(f"clip_sd={self.clip_sd} must be > 0 (or None for no clipping)")
        if len(self.split_ratios) != 3 or min(self.split_ratios) <= 0:
            raise ConfigError(f"split_ratios={self.split_ratios} must be three positive numbers (train, val, test)")

    @property
    def n_steps(self) -> int:
        return int(round(self.window_hours / self.bin_hours))

    to_dict = asdict
    from_dict = classmethod(_from_dict)


@dataclass(frozen=True)
class DICEConfig:
    """One architecture N(K, d) and its training schedule (paper, section 4.1)."""

    n_clusters: int = 4  # K
    hidden_size: int = 35  # d
    lambda_cluster: float = 0.1  # lambda1: ||z - M c||^2
    lambda_classifier: float = 10.0  # lambda2: cluster classifier cross-entropy
    lambda_outcome: float = 1.0  # lambda3: outcome negative log-likelihood
    lambda_significance: float = 1.0  # lambda4: hinge on alpha_G - G over cluster pairs
    alpha: float = 0.05
    n_pretrain_epochs: int = 1
    n_iter: int = 60
    n_epoch: int = 1
    batch_size: int = 128
    learning_rate: float = 1e-3
    masked_reconstruction: bool = False  # True: score only observed entries
    seed: int = 0
    device: str = "auto"  # "auto" = CUDA when available, else CPU
    # Early stopping (off in the paper): stop once a significant iteration exists, validation AUC
    # has not improved by min_delta for `patience` iterations, and memberships have settled
    # (fewer than settled_fraction of training patients changed cluster in each of the last 3).
    early_stopping: bool = False
    patience: int = 10
    min_delta: float = 0.002
    settled_fraction: float = 0.01

    def __post_init__(self):
        if not 2 <= self.n_clusters <= 10:
            raise ConfigError(f"n_clusters K={self.n_clusters} must be between 2 and 10")
        if not 2 <= self.hidden_size <= 512:
            raise ConfigError(f"hidden_size d={self.hidden_size} must be between 2 and 512")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha={self.alpha} must be between 0 and 1")
        for name in ("n_iter", "n_epoch", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        for name in ("lambda_cluster", "lambda_classifier", "lambda_outcome", "lambda_significance"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate} must be > 0")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device={self.device!r} must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        if self.n_pretrain_epochs < 0:
            raise ConfigError(f"n_pretrain_epochs={self.n_pretrain_epochs} must be >= 0")

    to_dict = asdict
    from_dict = classmethod(_from_dict)

    def replace(self, **changes) -> "DICEConfig":
        return _from_dict(DICEConfig, {**asdict(self), **changes})


@dataclass(frozen=True)
class SearchConfig:
    """The K x d grid of the architecture search (paper section 3.4.2)."""

    n_clusters: tuple[int, ...] = (2, 3, 4, 5)
    hidden_sizes: tuple[int, ...] = (10, 15, 20, 25, 30, 35, 40)
    strategy: str = "grid"  # or "halving" (successive halving over iterations)

    def __post_init__(self):
        if not self.n_clusters or not self.hidden_sizes:
            raise ConfigError("the search grid needs at least one K and one d")
        if self.strategy not in ("grid", "halving"):
            raise ConfigError(f"strategy={self.strategy!r} must be 'grid' or 'halving'")

    to_dict = asdict
    from_dict = classmethod(_from_dict)
