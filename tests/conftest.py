"""Shared fixtures.

- every test starts from seeded numpy / random / torch generators;
- `synthetic_cohort` (session): `(cohort, true_labels)` from make_synthetic_cohort with 300
  patients, 3 subgroups, 12 steps (window 12 hours) and 5 variables; do not modify it;
- `physionet_path`: the PhysioNet set A path, or a skip with a clear message when it is absent.
"""
import random

import numpy as np
import pytest

from dice_core.data.physionet import default_physionet_path
from dice_core.data.synthetic import make_synthetic_cohort


@pytest.fixture(autouse=True)
def _seed_generators():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # the data and statistics tests do not need torch
        return
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synthetic_cohort():
    return make_synthetic_cohort(n_patients=300, n_subgroups=3, n_steps=12, n_variables=5, seed=0)


@pytest.fixture(scope="session")
def physionet_path():
    path = default_physionet_path()
    if not path.exists():
        pytest.skip(f"PhysioNet set A not found at {path}; set DICE_PHYSIONET_PATH")
    return path
