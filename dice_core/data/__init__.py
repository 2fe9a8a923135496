"""The input boundary: reading, validating and generating cohorts."""
from .cohort import Cohort, Problem, ValidationReport
from .io import load_cohort, load_events_for_scoring
from .physionet import PLAUSIBLE_RANGES, default_physionet_path, load_physionet2012
from .synthetic import make_synthetic_cohort, write_cohort
from .validate import check_split_feasible, check_time_window, window_report

__all__ = ["Cohort", "Problem", "ValidationReport", "load_cohort", "load_events_for_scoring", "load_physionet2012",
           "default_physionet_path", "PLAUSIBLE_RANGES", "make_synthetic_cohort", "write_cohort",
           "check_split_feasible", "check_time_window", "window_report"]
