"""What a stage hands back: figures (a value, its unit, an optional target) and notes."""
from __future__ import annotations

import math


class Figures:
    """Collects one stage's figures. `target` is (op, bound, text), op one of "<=", ">=", "<", "==".

    basis: "measured", or "projected" / "extrapolated" for figures computed from measured ones
    (the status then says so).
    """

    def __init__(self):
        self.rows: list[dict] = []
        self.notes: list[str] = []

    def add(self, key: str, label: str, value, unit: str = "", target=None, basis: str = "measured"):
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        self.rows.append({"key": key, "label": label, "value": value, "unit": unit,
                          "target": None if target is None else list(target), "basis": basis})

    def note(self, text: str):
        self.notes.append(text)

    def to_dict(self) -> dict:
        return {"figures": self.rows, "notes": self.notes}


def status(row: dict) -> str:
    """'met' / 'missed' against the row's target ('' when it has none), with the basis if not measured."""
    if not row.get("target"):
        return ""
    op, bound, _ = row["target"]
    value = row["value"]
    if value is None:
        return "n/a"
    ok = {"<=": value <= bound, ">=": value >= bound, "<": value < bound, "==": value == bound}[op]
    word = "met" if ok else "missed"
    return word if row.get("basis", "measured") == "measured" else f"{word} ({row['basis']})"


def format_value(row: dict) -> str:
    value, unit = row["value"], row["unit"]
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            text = f"{value:,.0f}"
        elif abs(value) >= 100:
            text = f"{value:.0f}"
        elif abs(value) >= 10:
            text = f"{value:.1f}"
        elif abs(value) >= 1:
            text = f"{value:.2f}"
        else:
            text = f"{value:.3f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()
