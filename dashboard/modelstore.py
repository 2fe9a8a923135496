"""Named models on disk: models/<name>/ is a dice_core model directory (safetensors + JSON) plus
studio.json saying which run it came from (so the Patient page can draw it among its training
patients). Saving never overwrites: a name that exists is refused."""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from dashboard import ui

STUDIO_JSON = "studio.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def check_name(name: str) -> str:
    from dice_core.errors import ConfigError

    name = (name or "").strip()
    if not NAME_PATTERN.match(name) or name.endswith((".tmp", ".upload")):
        raise ConfigError(f"'{name}' cannot be a model name: use 1 to 64 letters, digits, spaces, '-', '_' or '.', "
                          "starting with a letter or digit")
    if model_path(name).exists():
        raise ConfigError(f"a model named '{name}' already exists; choose another name (saved models are never "
                          "overwritten)")
    return name


def model_path(name: str) -> Path:
    return ui.models_dir() / name


def model_info(name: str) -> dict:
    try:
        return json.loads((model_path(name) / STUDIO_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _write_info(path: Path, info: dict):
    (path / STUDIO_JSON).write_text(json.dumps({"saved": datetime.now().isoformat(timespec="seconds"), **info},
                                               indent=1))


def save_from_run(name: str, source_dir: Path, job_id: str, analysis: str) -> Path:
    """Copy a run's model under a name (the model files are re-written with that name)."""
    from dice_core.modelfile import load_model, save_model

    name = check_name(name)
    dest = model_path(name)
    save_model(load_model(source_dir), dest, name=name)
    _write_info(dest, {"job": job_id, "analysis": analysis})
    return dest


def save_upload(name: str, archive) -> Path:
    """Unpack an uploaded archive as a model (dice_core refuses anything it did not write)."""
    from dice_core.modelfile import unpack_model

    name = check_name(name)
    dest = unpack_model(archive, model_path(name))
    _write_info(dest, {"uploaded": getattr(archive, "name", "archive")})
    return dest


def list_models() -> list[dict]:
    """Saved models, newest first, with what the Models page lists."""
    from dice_core.errors import DiceError
    from dice_core.modelfile import read_metadata

    out = []
    for path in ui.models_dir().iterdir():
        if not path.is_dir() or path.name.endswith((".tmp", ".upload")):
            continue
        try:
            meta = read_metadata(path)
        except DiceError:
            continue  # not a model directory (or damaged): not offered
        info = model_info(path.name)
        cfg = meta.get("config", {})
        out.append({"name": path.name, "K": cfg.get("n_clusters"), "d": cfg.get("hidden_size"),
                    "validation AUC": meta.get("val_auc"), "all levels differ": meta.get("significant"),
                    "saved": info.get("saved", ""), "from run": info.get("job", info.get("uploaded", ""))})
    return sorted(out, key=lambda m: m["saved"], reverse=True)
