"""Regenerate the bundled demo cohort (synthetic; no real patient) with the project's own generator.

    python assets/make_demo.py

Writes assets/demo/events.csv.gz and assets/demo/patients.csv. The same seed gives the same files.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from dice_core.data.synthetic import make_synthetic_cohort, write_cohort  # noqa: E402

N_PATIENTS = 600  # small enough to train the demo grid in about a minute on a laptop CPU
N_SUBGROUPS = 3
N_HOURS = 24  # hourly steps: train with window_hours=24, bin_hours=1
N_VARIABLES = 6
SEED = 2024


def main() -> None:
    cohort, _ = make_synthetic_cohort(N_PATIENTS, N_SUBGROUPS, N_HOURS, N_VARIABLES, seed=SEED)
    out = HERE / "demo"
    out.mkdir(exist_ok=True)
    write_cohort(cohort, out / "events.csv.gz", out / "patients.csv", decimals=2)
    print(f"wrote {out}: {cohort.n_patients} patients, {len(cohort.events)} events")


if __name__ == "__main__":
    main()
