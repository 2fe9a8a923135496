"""Evaluation: metrics (numpy/scikit-learn only) and baselines.

Only metrics are imported here, so `import dice_core.evaluation` never pulls in torch;
import `dice_core.evaluation.baselines` explicitly when you need it.
"""
from .metrics import (calibration_table, choose_threshold, clustering_metrics, fit_representation_classifier,
                      group_auc, outcome_metrics, representation_auc, summary_features)

__all__ = ["calibration_table", "choose_threshold", "clustering_metrics", "fit_representation_classifier",
           "group_auc", "outcome_metrics", "representation_auc", "summary_features"]


def evaluate(*args, **kwargs):
    """DICE against the baselines on the test split; see dice_core.evaluation.report (imports torch)."""
    from .report import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


__all__.append("evaluate")
