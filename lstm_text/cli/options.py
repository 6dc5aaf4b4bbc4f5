"""What the commands share: the choice enums, the option helpers, reading a prompt, the torchrun rank."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path

import typer

from ..config import TrainConfig


class TokenizerKind(str, Enum):
    char = "char"
    bpe = "bpe"
    unigram = "unigram"
    word = "word"


class Quantize(str, Enum):
    none = "none"
    int8 = "int8"


def _q(q: Quantize) -> str:
    return "" if q == Quantize.none else q.value


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


def _rank() -> int:
    """This process's rank under torchrun (0 otherwise)."""
    return int(os.environ.get("RANK", "0") or 0)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Sentiment(str, Enum):
    positive = "positive"
    negative = "negative"


def _default(cls, name: str) -> str:
    """ " [default: X]" for a help text whose option defaults to None (so a resumed run keeps its own value)."""
    import dataclasses

    v = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    return f" \\[default: {str(v).lower() if isinstance(v, bool) else v}]"  # \\[: not Rich markup


RESUME_HELP = (
    "Continue the interrupted run in --out. Stopping rules given now (--max-steps, --epochs, --time-budget) replace "
    "the run's; --patience, --eval-interval, --device and --keep-resume may change too; other options may not."
)
OVERWRITE_HELP = "Replace the run already in --out (its model, resume state and metrics log)."
KEEP_RESUME_HELP = (
    "Keep resume.safetensors (3x the model) after the run finishes, so --resume can extend it; "
    "--no-keep-resume removes it at the end." + _default(TrainConfig, "keep_resume")
)


def _given(**kw) -> dict:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in kw.items() if v is not None}


def _read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    from ..data import read_text

    if prompt is not None and prompt_file is not None:
        raise typer.BadParameter("give PROMPT or --prompt-file, not both", param_hint="--prompt-file")
    if prompt_file is not None:
        if str(prompt_file) == "-":
            return sys.stdin.read()
        return read_text(prompt_file)
    if prompt == "-":
        return sys.stdin.read()
    return prompt or ""


def _writable(path: Path | None, hint: str) -> None:
    if path is not None and not path.parent.is_dir():
        raise typer.BadParameter(f"no such directory: {path.parent}", param_hint=hint)
