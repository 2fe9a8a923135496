"""Exact statistics (numpy/scipy only; never imports torch)."""
from .logistic import LogisticFit, add_intercept, fit_logistic
from .significance import SignificanceResult, holm, pairwise_lr_test, significance_threshold, wilson_interval

__all__ = ["LogisticFit", "SignificanceResult", "add_intercept", "fit_logistic", "holm",
           "pairwise_lr_test", "significance_threshold", "wilson_interval"]
