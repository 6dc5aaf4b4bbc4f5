"""Built-in models shipped inside the package (made by ``make pretrained`` from the project's commands)."""

from __future__ import annotations

from pathlib import Path

from .errors import LstmTextError

HERE = Path(__file__).resolve().parent / "pretrained"
NAMES = {
    "sentiment": "negative/positive sentiment, trained on SST-2",
    "sentiment3": "negative/neutral/positive sentiment, trained on SST-5 with its labels merged",
}


def path(name: str) -> Path:
    p = HERE / name / "model.safetensors"
    if not p.is_file():
        raise LstmTextError(
            f"the built-in model {name!r} is not installed in this copy of lstm-text "
            "(run 'make pretrained' in a source checkout)"
        )
    return p
