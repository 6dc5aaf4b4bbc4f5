"""``info`` (a model's facts) and ``export`` (ONNX graphs for other runtimes)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

import lstm_text

from ..errors import LstmTextError
from ..plot import metrics_path, read_metrics, validation_key
from .options import REQUIRED, Quantize, _q


class ExportFormat(str, Enum):
    onnx = "onnx"


def info(
    model: Annotated[str, typer.Argument(help="Run directory, model file or built-in model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
):
    """Show a model's heads, configuration, parameter count, tokenizer and training summary."""
    from ..ui import info_table, out

    d = lstm_text.load(model).info()
    if as_json:
        print(json.dumps(d))
    else:
        table = info_table(f"lstm-text model {model}", d)
        curve = _validation_curve(d["path"])
        if curve:
            table.add_row(*curve)
        out().print(table)


def export(
    model: Annotated[str, typer.Argument(help="Run directory, model file or built-in model name.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write (an earlier export there is replaced).")
    ] = REQUIRED,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="onnx: graphs for onnxruntime and other ONNX runtimes.")
    ] = ExportFormat.onnx,
    quantize: Annotated[
        Quantize, typer.Option(help="int8: int8 weights (onnxruntime's dynamic quantization; smaller, may differ).")
    ] = Quantize.none,
    check: Annotated[
        bool, typer.Option(help="Run the export with onnxruntime beside lstm-text's own paths; show the differences.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print export.json (and the check) as JSON.")] = False,
):
    """Export a model for other runtimes: ONNX graphs (a language model's steps with its LSTM state as inputs and
    outputs; a classifier's probabilities), the tokenizer as data, and export.json describing them.

    Needs the export extra: pip install 'lstm-text\\[export]'."""
    from ..ui import out

    manifest = lstm_text.load(model).export(out_dir, format=fmt.value, quantize=_q(quantize), check=check)
    if as_json:
        print(json.dumps(manifest))
        return
    console = out()
    files = sorted(p.name for p in out_dir.iterdir())
    console.print(f"wrote {out_dir}: {', '.join(files)}", markup=False, highlight=False)
    for name, diff in manifest.get("check", {}).items():
        what = {"lm_logits": "language-model logits", "classifier_probs": "class probabilities"}[name]
        console.print(f"onnxruntime vs lstm-text, largest |difference| of {what}: {diff:.2e}", highlight=False)


def _validation_curve(model_file: str | None) -> tuple[str, str] | None:
    """(name, sparkline and first -> last value) of the validations of the run a model file lies in, if any."""
    from ..ui import sparkline

    if not model_file or metrics_path(model_file) is None:
        return None
    try:
        records = read_metrics(model_file)
        key = validation_key(records)
    except LstmTextError:
        return None
    vals = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    name = {"val_bpc": "val bpc"}.get(key, key.replace("_", " "))
    return f"training: {name} curve", f"{sparkline(vals)}  {vals[0]:.4f} -> {vals[-1]:.4f} ({len(vals)} validations)"
