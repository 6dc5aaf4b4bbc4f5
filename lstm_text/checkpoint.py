"""Checkpoints are data: safetensors tensors plus JSON metadata (config, tokenizer, training summary).

A run directory holds ``model.safetensors`` (best weights, self-contained: copy it anywhere), and while
training ``resume.safetensors`` (weights, optimiser, RNG, the task's carried tensors, and as JSON metadata
the loop's position, the run's configuration and the tokenizer). This module owns both formats.
Loading never unpickles. Every file is written atomically: temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import LstmTextError

if TYPE_CHECKING:
    from .config import ModelConfig
    from .tokenizer import Tokenizer

FORMAT = "lstm-text"
VERSION = 1
MODEL_FILE = "model.safetensors"
RESUME_FILE = "resume.safetensors"


def save_arrays(path: str | Path, key: str, meta: dict, tensors: dict) -> None:
    """Write NumPy ``tensors`` and ``meta`` (JSON under ``key`` in the header) as one safetensors file, atomically:
    the built-in NumPy models (``langid.Langid``, ``ngram.NgramClassifier``)."""
    from safetensors.numpy import save

    atomic_write(Path(path), save(tensors, metadata={key: json.dumps(meta)}))


def read_arrays(path: str | Path, key: str, what: str) -> tuple[dict, dict]:
    """(meta, tensors) of a file ``save_arrays`` wrote with ``key``; a clear error naming ``what`` it should be
    when it is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "np") as f:
            meta = json.loads((f.metadata() or {})[key])
            return meta, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except (OSError, KeyError, ValueError, SafetensorError) as e:
        raise LstmTextError(f"{path} is not {what}: {e}") from None


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash at any moment leaves the old or the new file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a model file is as shareable as any other
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a failed write (no space left) names no file: name it
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _stored(model) -> dict:
    """State dict without tied duplicates (safetensors stores each storage once)."""
    sd = model.state_dict()
    if model.cfg.lm_head and model.cfg.tie_weights:
        sd.pop("lm_head.weight", None)
    return sd


def append_jsonl(path: Path, record: dict) -> None:
    """Add one JSON line to a small log, atomically: a crash leaves the old lines or all of the new ones."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else b""
    atomic_write(path, old + (json.dumps(record) + "\n").encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def model_tensors(model) -> dict:
    return {k: v.detach().to("cpu").contiguous() for k, v in _stored(model).items()}


def save_model(path: Path, model, tokenizer, training: dict | None = None) -> None:
    from safetensors.torch import save

    meta = {
        "format": FORMAT,
        "format_version": str(VERSION),
        "config": json.dumps(model.cfg.to_dict()),
        "tokenizer": json.dumps(tokenizer.to_dict()),
        "training": json.dumps(training or {}),
    }
    atomic_write(path, save(model_tensors(model), metadata=meta))


def read_safetensors(path: Path, framework: str = "numpy") -> tuple[dict, dict]:
    """(arrays, metadata) of a safetensors file, with one clear error for a damaged or foreign file.

    ``framework``: "numpy" (model files: no torch needed) or "torch" (the resume state)."""
    load: Callable[[bytes], dict]  # name -> np.ndarray or torch.Tensor
    if framework == "torch":
        from safetensors.torch import load
    else:
        from safetensors.numpy import load

    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise LstmTextError(f"cannot read {path}: {e.strerror}") from None
    if len(raw) < 8:
        raise LstmTextError(f"{path} is not an lstm-text model file (too short)")
    try:
        n = int.from_bytes(raw[:8], "little")
        meta = json.loads(raw[8 : 8 + n]).get("__metadata__", {}) if n < len(raw) else None
        arrays = load(raw)
    except Exception:
        meta = None
    if meta is None:
        raise LstmTextError(f"{path} is damaged or not an lstm-text model file (not a valid safetensors file)")
    return arrays, meta


def model_path(arg: str | Path) -> Path:
    p = Path(arg)
    if p.is_dir():
        if (p / MODEL_FILE).is_file():
            return p / MODEL_FILE
        if (p / RESUME_FILE).is_file():
            raise LstmTextError(
                f"the run in {p} was interrupted before its first save, so it has no {MODEL_FILE} yet; continue its "
                f"training with {{out}} {p} {{resume}}"
            )
        raise LstmTextError(f"{p} has no {MODEL_FILE}: is it a run directory made by 'lstm-text train'?")
    if p.is_file():
        return p
    from . import pretrained

    if str(arg) in pretrained.NAMES:
        return pretrained.path(str(arg))
    import difflib

    close = difflib.get_close_matches(str(arg), list(pretrained.NAMES), n=1, cutoff=0.75)
    hint = f"; did you mean the built-in model {close[0]!r}?" if close else ""
    raise LstmTextError(
        f"model not found: {arg} (give a run directory, a .safetensors file or a built-in model: "
        f"{', '.join(pretrained.NAMES)}){hint}"
    )


@dataclass
class Checkpoint:
    """A model file read and validated, as data: config, tokenizer, NumPy weights, training metadata."""

    cfg: ModelConfig
    tokenizer: Tokenizer
    weights: dict  # name -> float32 np.ndarray, as ``infer.packed.tensor_shapes`` names them
    meta: dict  # {"training": ..., "path": ...}


def read_model(arg: str | Path) -> Checkpoint:
    """Read a run directory, a model file or a built-in model name, without torch: every check is here."""
    import numpy as np

    from .config import ModelConfig
    from .infer.packed import tensor_shapes
    from .tokenizer import tokenizer_from_dict

    path = model_path(arg)
    arrays, meta = read_safetensors(path)
    if meta.get("format") != FORMAT:
        raise LstmTextError(f"{path} is not an lstm-text model file (no lstm-text format marker)")
    try:
        version = int(meta.get("format_version", "0"))
    except ValueError:
        version = -1
    if version > VERSION:
        raise LstmTextError(
            f"{path} uses model format {version}, newer than this lstm-text reads ({VERSION}); upgrade lstm-text"
        )
    if version != VERSION:
        raise LstmTextError(f"{path} has an unknown model format version {meta.get('format_version')!r}")
    try:
        cfg = ModelConfig.from_dict(json.loads(meta["config"]))
        tok_d = json.loads(meta["tokenizer"])
        training = json.loads(meta.get("training", "{}"))
    except (KeyError, ValueError, TypeError) as e:
        raise LstmTextError(f"{path} has damaged metadata ({e})") from None
    tokenizer = tokenizer_from_dict(tok_d)
    if tokenizer.vocab_size != cfg.vocab_size:
        raise LstmTextError(f"{path}: tokenizer has {tokenizer.vocab_size} ids but the model {cfg.vocab_size}")
    expected = tensor_shapes(cfg)
    got = {k: tuple(v.shape) for k, v in arrays.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        bad = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        extra = sorted(set(got) - set(expected))
        raise LstmTextError(
            f"{path}: tensors do not match the config (missing {missing[:3]}, "
            f"wrong shape {bad[:3]}, unexpected {extra[:3]})"
        )
    weights = {}
    for k, v in arrays.items():
        if v.dtype.kind != "f" or not np.isfinite(v).all():
            raise LstmTextError(f"{path} holds non-finite or non-float weights ({k})")
        weights[k] = v.astype(np.float32)
    return Checkpoint(cfg, tokenizer, weights, {"training": training, "path": str(path)})


def build_model(ckpt: Checkpoint, device: str = "cpu"):
    """The torch ``LSTMModel`` of a checkpoint, in eval mode on ``device``."""
    import torch

    from .model import LSTMModel

    model = LSTMModel(ckpt.cfg)  # (the meta device would skip the random init, but importing it costs ~1 s)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in ckpt.weights.items()}, strict=False)
    if ckpt.cfg.lm_head and ckpt.cfg.tie_weights:
        model.lm_head.weight = model.embed.weight
    model.eval()
    return model.to(device)


def load_model(arg: str | Path, device: str = "cpu"):
    """(torch model, tokenizer, metadata) from a run directory, a model file or a built-in model name."""
    ckpt = read_model(arg)
    return build_model(ckpt, device), ckpt.tokenizer, ckpt.meta


# -- the resume state ------------------------------------------------------------------------------------
def write_resume(path: Path, model, opt, *, tensors: dict, state: dict, tokenizer) -> None:
    """Everything a run needs to continue bit-exactly: weights, optimiser moments, the torch RNG, the task's
    carried tensors (``tensors``, e.g. the LM's LSTM state) and ``state`` (JSON: loop position, configs)."""
    import torch
    from safetensors.torch import save

    t = {f"model.{k}": v for k, v in model_tensors(model).items()}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            t[f"opt.{i}.{k}"] = v.detach().cpu().contiguous()
    t["rng.cpu"] = torch.get_rng_state()
    t |= {f"task.{k}": v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"format": FORMAT + "-resume", "resume": json.dumps(state), "tokenizer": json.dumps(tokenizer.to_dict())}
    atomic_write(path, save(t, metadata=meta))


def read_resume(path: Path) -> tuple[dict, dict, object]:
    """(tensors, state, tokenizer) of a resume file."""
    from .tokenizer import tokenizer_from_dict

    tensors, meta = read_safetensors(path, "torch")
    try:
        state, tok = json.loads(meta["resume"]), json.loads(meta["tokenizer"])
    except (KeyError, ValueError) as e:
        raise LstmTextError(f"{path} has damaged resume metadata ({e})") from None
    return tensors, state, tokenizer_from_dict(tok)


def restore_resume(path: Path, tensors: dict, model, opt) -> dict:
    """Load a resume file's weights, optimiser moments and RNG into ``model`` and ``opt``; the task's tensors."""
    import torch

    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:  # a tied head is stored once, as the embedding
        raise LstmTextError(f"{{resume}}: {path} does not match the model it was saved with", "resume")
    sd = opt.state_dict()
    for i in sd["state"].keys() | {int(k.split(".")[1]) for k in tensors if k.startswith("opt.")}:
        sd["state"][i] = {k.split(".")[2]: tensors[k] for k in tensors if k.startswith(f"opt.{i}.")}
    opt.load_state_dict(sd)
    torch.set_rng_state(tensors["rng.cpu"])
    return {k[5:]: v for k, v in tensors.items() if k.startswith("task.")}
