"""Model files: a directory of safetensors weights and JSON, never a pickle.

    model/
      model.json          format marker, configuration, preprocessing, centroids, cluster rates,
                          exact statistics, training history, package version, weights checksum
      weights.safetensors the network's tensors
      split.json          training/validation/test patient ids (kept out of exported archives)

Loading needs no training data and refuses a directory or archive that DICE Studio did not write.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .. import __version__
from ..config import DICEConfig, PreprocessConfig
from ..errors import ModelFileError

FORMAT = "dice-studio-model"
FORMAT_VERSION = 1
MODEL_JSON, WEIGHTS, SPLIT_JSON = "model.json", "weights.safetensors", "split.json"
ARCHIVE_MEMBERS = {MODEL_JSON, WEIGHTS, SPLIT_JSON}
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def json_safe(obj):
    """Replace NaN/inf by None so the JSON is standard; numpy types become Python ones."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def save_model(model, path, *, name: str | None = None) -> Path:
    """Write a fitted DICE model to the directory `path` (created; an existing model is replaced)."""
    path = Path(path)
    check_model_destination(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().numpy() for k, v in model.network_.state_dict().items()}
    save_file(weights, str(tmp / WEIGHTS))
    pre = model.preprocessor_
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
        "name": name or path.name,
        "config": model.config.to_dict(), "preprocess_config": model.preprocess.to_dict(),
        "preprocessor": pre.to_dict(),
        "network": {"n_inputs": int(model.network_.autoencoder.encoder.input_size),
                    "n_features": int(model.network_.n_features),
                    "n_covariates": int(model.network_.outcome.alt_covariates.numel())},
        "centroids": model.centroids_, "cluster_rates": model.cluster_rates_,
        "cluster_sizes": model.cluster_sizes_, "significance": model.significance_.to_dict(),
        "val_auc": model.val_auc_, "significant": model.significant_, "best_iteration": model.best_iteration_,
        "train_time_s": model.train_time_, "history": model.history_,
        "weights_sha256": _sha256(tmp / WEIGHTS),
    }
    (tmp / MODEL_JSON).write_text(json.dumps(json_safe(meta), indent=1))
    split = {k: [str(p) for p in getattr(model.split_, k)] for k in ("train", "val", "test")}
    (tmp / SPLIT_JSON).write_text(json.dumps(split))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def is_model_dir(path) -> bool:
    try:
        return json.loads((Path(path) / MODEL_JSON).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_model_destination(path) -> None:
    """Refuse to write a model over anything but an empty folder or an earlier DICE model."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelFileError(f"{path} is a file; give a folder name for the model")
    if path.is_dir() and any(path.iterdir()) and not is_model_dir(path):
        raise ModelFileError(f"{path} already holds files that are not a DICE Studio model; choose a new or "
                             "empty folder (nothing was overwritten)")
    parent = path.parent if not path.exists() else path
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise ModelFileError(f"cannot write to {parent}: choose a folder you can write to")


def read_metadata(path) -> dict:
    """model.json of a model directory, after checking that DICE Studio wrote it."""
    path = Path(path)
    meta_file = path / MODEL_JSON
    if not meta_file.is_file() or not (path / WEIGHTS).is_file():
        raise ModelFileError(f"{path} is not a DICE Studio model: it needs {MODEL_JSON} and {WEIGHTS}")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{meta_file} is not valid JSON ({exc}); the model directory is damaged") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{meta_file} was not written by DICE Studio (no '{FORMAT}' format marker)")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path} uses model format {meta.get('format_version')}; this DICE Studio "
                             f"reads up to {FORMAT_VERSION}: upgrade dice-studio")
    if meta.get("weights_sha256") != _sha256(path / WEIGHTS):
        raise ModelFileError(f"{path / WEIGHTS} does not match the checksum in {MODEL_JSON}: the file was "
                             "changed or damaged; export the model again")
    return meta


def load_model(path):
    """Load a model directory written by save_model; no training data is needed."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        return _model_from_metadata(path, meta)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise ModelFileError(f"{path / MODEL_JSON} is incomplete or inconsistent ({type(exc).__name__}: {exc}); "
                             "the model folder was changed or damaged: export or train it again") from exc


def _model_from_metadata(path: Path, meta: dict):
    from ..model.dice import DICE
    from ..preprocess.preprocessor import Preprocessor
    from ..preprocess.split import Split
    from ..stats.significance import SignificanceResult

    model = DICE(DICEConfig.from_dict(meta["config"]), PreprocessConfig.from_dict(meta["preprocess_config"]))
    model.preprocessor_ = Preprocessor.from_dict(meta["preprocessor"])
    net = model._build_network(**meta["network"])
    import torch
    state = {k: torch.from_numpy(v) for k, v in load_file(str(path / WEIGHTS)).items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(f"{path / WEIGHTS} does not fit the architecture described in {MODEL_JSON} "
                             "(K, d or the number of variables differ): the model folder was changed or damaged"
                             ) from exc
    model.network_ = net
    nan = lambda xs: np.array([np.nan if x is None else x for x in xs], dtype=float)
    model.centroids_ = np.asarray(meta["centroids"], dtype=np.float32)
    model.cluster_rates_ = nan(meta["cluster_rates"])
    model.cluster_sizes_ = np.asarray(meta["cluster_sizes"], dtype=int)
    model.significance_ = SignificanceResult.from_dict(meta["significance"])
    model.val_auc_ = meta["val_auc"] if meta["val_auc"] is not None else float("nan")
    model.significant_ = bool(meta["significant"])
    model.best_iteration_ = meta["best_iteration"]
    model.train_time_ = meta["train_time_s"]
    model.history_ = meta["history"]
    model.version_ = meta["package_version"]
    model.name_ = meta.get("name", path.name)
    split_file = path / SPLIT_JSON
    if split_file.is_file():
        s = json.loads(split_file.read_text())
        model.split_ = Split(np.array(s["train"]), np.array(s["val"]), np.array(s["test"]))
    else:
        model.split_ = None
    _check_shapes(model, path)
    return model


def _check_shapes(model, path):
    k, d = model.config.n_clusters, model.config.hidden_size
    if model.centroids_.shape != (k, d) or model.cluster_rates_.shape != (k,) or model.cluster_sizes_.shape != (k,):
        raise ModelFileError(f"{path / MODEL_JSON}: centroids, cluster rates or sizes do not match K={k}, d={d}; "
                             "the model folder was changed or damaged")


def pack_model(path, *, include_split: bool = False) -> bytes:
    """A zip archive of a model directory, for download. Patient ids stay out unless asked for."""
    path = Path(path)
    read_metadata(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in (MODEL_JSON, WEIGHTS) + ((SPLIT_JSON,) if include_split else ()):
            if (path / member).is_file():
                zf.write(path / member, member)
    return buf.getvalue()


def unpack_model(archive, dest) -> Path:
    """Check an uploaded archive (bytes, path or file object) and unpack it to `dest` as a model."""
    if isinstance(archive, (bytes, bytearray)):
        archive = io.BytesIO(archive)
    label = getattr(archive, "name", "the uploaded archive")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"{label} is not a zip archive of a DICE Studio model ({exc})") from exc
    with zf:
        names = set(zf.namelist())
        unexpected = names - ARCHIVE_MEMBERS
        if unexpected or not {MODEL_JSON, WEIGHTS} <= names:
            raise ModelFileError(f"{label} is not a DICE Studio model archive: it must hold {MODEL_JSON} and "
                                 f"{WEIGHTS} only (found {sorted(names)})")
        if sum(i.file_size for i in zf.infolist()) > MAX_ARCHIVE_BYTES:
            raise ModelFileError(f"{label} unpacks to more than {MAX_ARCHIVE_BYTES // 2**20} MiB; refused")
        dest = Path(dest)
        tmp = dest.with_name(dest.name + ".upload")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for member in names:
            (tmp / member).write_bytes(zf.read(member))
    try:
        load_model(tmp)  # refuses anything DICE Studio did not write
    except ModelFileError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelFileError(f"{label} could not be read as a DICE Studio model: {exc}") from exc
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


__all__ = ["save_model", "load_model", "read_metadata", "pack_model", "unpack_model", "json_safe", "ModelFileError"]
