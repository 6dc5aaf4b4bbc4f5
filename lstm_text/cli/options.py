"""What the commands share: the command line's own choice enums (config has the options'), ``option`` (a Typer
option derived from a config field), the help of the run options, reading a prompt, the torchrun rank."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from ..config import RESUMABLE, STOPPING_RULES, TrainConfig, default_of, help_of
from ..data import read_text
from ..errors import LstmTextError, flag


class Quantize(str, Enum):
    none = "none"
    int8 = "int8"


class Sentiment(str, Enum):
    positive = "positive"
    negative = "negative"


def _q(q: Quantize) -> str:
    return "" if q == Quantize.none else q.value


def _rank() -> int:
    """This process's rank under torchrun (0 otherwise)."""
    return int(os.environ.get("RANK", "0") or 0)


REQUIRED: Any = ...  # the default of an option Typer requires (Ellipsis), typed so that it fits any annotation


def _shown(value) -> str:
    """ " [default: X]" for a help text whose option defaults to None (so a resumed run keeps its own value)."""
    return f" \\[default: {str(value).lower() if isinstance(value, bool) else value}]"  # \\[: not Rich markup


_FIELD = object()  # option()'s default: the field's own


def option(
    cls, name: str, *decls: str, help: str | None = None, default=_FIELD, given: bool = False, show: bool = True, **kw
):
    """The ``typer.Option`` of field ``name`` of the config class ``cls``, with the field's help and default
    (``help``, ``default``: this command's own, where they differ: a classifier's defaults, a wording that names
    DATA). ``given``: the option defaults to None, so that only what the command line gives overrides (a resumed
    run keeps its own values), and the help says the default (unless not ``show``)."""
    text = help_of(cls, name, flag) if help is None else help
    value = default_of(cls, name) if default is _FIELD else default
    if given:
        return typer.Option(None, *decls, help=text + (_shown(value) if show else ""), **kw)
    return typer.Option(value, *decls, help=text, **kw)


def checked(cls, **fields) -> dict:
    """``fields`` once the config class ``cls`` accepts them (its checks are the library's), before any model
    loads; a value it refuses is a usage error (exit 2) naming the option."""
    try:
        cls(**fields)
    except LstmTextError as e:
        raise typer.BadParameter(e.render(flag)) from None
    return fields


_STOPS, _OTHERS = [flag(k) for k in STOPPING_RULES], [flag(k) for k in RESUMABLE if k not in STOPPING_RULES]
RESUME_HELP = (
    f"Continue the interrupted run in --out. Stopping rules given now ({', '.join(_STOPS)}) replace the run's; "
    f"{', '.join(_OTHERS[:-1])} and {_OTHERS[-1]} may change too; other options may not."
)
OVERWRITE_HELP = "Replace the run already in --out (its model, resume state and metrics log)."
KEEP_RESUME_HELP = (
    "Keep resume.safetensors (3x the model) after the run finishes, so --resume can extend it; "
    "--no-keep-resume removes it at the end." + _shown(default_of(TrainConfig, "keep_resume"))
)


def _given(**kw) -> dict:
    """The options given on the command line (not None), enums as their values."""
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in kw.items() if v is not None}


def _read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
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
