"""Checkpoints are data: safetensors tensors plus JSON metadata (config, tokenizer, training summary).

A run directory holds ``model.safetensors`` (best weights, self-contained: copy it anywhere), and while
training ``resume.safetensors`` (weights, optimiser, RNG and data position). Loading never unpickles.
Every file is written atomically: temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import LstmTextError

FORMAT = "lstm-text"
VERSION = 1
MODEL_FILE = "model.safetensors"
RESUME_FILE = "resume.safetensors"


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def read_safetensors(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file, with one clear error for a damaged or foreign file."""
    from safetensors.torch import load

    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise LstmTextError(f"cannot read {path}: {e.strerror}") from None
    if len(raw) < 8:
        raise LstmTextError(f"{path} is not an lstm-text model file (too short)")
    try:
        n = int.from_bytes(raw[:8], "little")
        meta = json.loads(raw[8 : 8 + n]).get("__metadata__", {}) if n < len(raw) else None
        tensors = load(raw)
    except Exception:
        meta = None
    if meta is None:
        raise LstmTextError(f"{path} is damaged or not an lstm-text model file (not a valid safetensors file)")
    return tensors, meta


def model_path(arg: str | Path) -> Path:
    p = Path(arg)
    if p.is_dir():
        if (p / MODEL_FILE).is_file():
            return p / MODEL_FILE
        raise LstmTextError(f"{p} has no {MODEL_FILE}: is it a run directory made by 'lstm-text train'?")
    if p.is_file():
        return p
    from . import pretrained

    if str(arg) in pretrained.NAMES:
        return pretrained.path(str(arg))
    raise LstmTextError(f"model not found: {arg} (give a run directory or a .safetensors file)")


def load_model(arg: str | Path, device: str = "cpu"):
    """(model, tokenizer, metadata) from a run directory, a model file or a built-in model name."""
    import torch

    from .config import ModelConfig
    from .model import LSTMModel
    from .tokenizer import tokenizer_from_dict

    path = model_path(arg)
    tensors, meta = read_safetensors(path)
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
    model = LSTMModel(cfg)  # (the meta device would skip the random init, but importing its kernels costs ~1 s)
    expected = {k: tuple(v.shape) for k, v in _stored(model).items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        bad = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        extra = sorted(set(got) - set(expected))
        raise LstmTextError(
            f"{path}: tensors do not match the config (missing {missing[:3]}, "
            f"wrong shape {bad[:3]}, unexpected {extra[:3]})"
        )
    model.load_state_dict(tensors, strict=False)
    if cfg.lm_head and cfg.tie_weights:
        model.lm_head.weight = model.embed.weight
    for t in model.parameters():
        if not torch.isfinite(t).all():
            raise LstmTextError(f"{path} holds non-finite weights")
    model.eval()
    return model.to(device), tokenizer, {"training": training, "path": str(path)}
