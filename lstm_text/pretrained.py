"""Built-in models shipped inside the package (made by ``make pretrained`` from the project's commands)."""

from __future__ import annotations

from pathlib import Path

from .errors import LstmTextError

HERE = Path(__file__).resolve().parent / "pretrained"
NAMES = {
    "sentiment": "negative/positive sentiment: SST-2 phrases, IMDB reviews, product pros and cons; GloVe words",
    "sentiment3": "negative/neutral/positive sentiment: SST-5 (merged), objective sentences as neutral, pros and "
    "cons; GloVe words",
}


def path(name: str) -> Path:
    p = HERE / name / "model.safetensors"
    if not p.is_file():
        raise LstmTextError(
            f"the built-in model {name!r} is not installed in this copy of lstm-text "
            "(run 'make pretrained' in a source checkout)"
        )
    return p
