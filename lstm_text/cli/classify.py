"""``classify`` (one output line per input line) and ``evaluate`` (bpc, or accuracy on a labelled file)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

import lstm_text

from ..config import ClassifyConfig, Device
from ..data import read_lines
from ..data.labelled import is_labelled_name
from .options import Quantize, _q, checked, option


class OutFormat(str, Enum):
    text = "text"
    tsv = "tsv"
    jsonl = "jsonl"


def classify(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Input files, one text per line ('-' or none: stdin).")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Classifier run directory, model file or built-in name.")
    ] = "sentiment",
    fmt: Annotated[
        OutFormat, typer.Option("--format", "-f", help="text, tsv (label, score, text) or jsonl.")
    ] = OutFormat.text,
    batch_size: int = option(ClassifyConfig, "batch_size"),
    threshold: float = option(ClassifyConfig, "threshold"),
    abstain_label: str = option(ClassifyConfig, "abstain_label"),
    explain: bool = option(
        ClassifyConfig,
        "explain",
        help="Show which words drove each decision: coloured on a terminal, else a last column of word:weight.",
    ),
    lang: bool = option(ClassifyConfig, "lang"),
    quantize: Annotated[
        Quantize, typer.Option(help="int8: hold the lookup table in int8 (4x less memory).")
    ] = Quantize.none,
):
    """Classify the sentiment of each input line: exactly one output line per input line, in order.

    An empty (or blank) line gets an empty label and score in text and tsv output, null in jsonl. So does a line
    in a language the model does not read (found by the built-in langid; a notice at the end counts them).

    Runs on the CPU without torch (NumPy), so it starts fast."""
    from ..langid import Unread
    from ..ui import classified, notice

    opts = checked(
        ClassifyConfig, batch_size=batch_size, threshold=threshold, abstain_label=abstain_label, explain=explain
    )
    m = lstm_text.load(model, quantize=_q(quantize))
    if not m.labels:
        raise typer.BadParameter(
            f"{model} is a language model without a classification head; train one with 'lstm-text train-classifier'",
            param_hint="--model",
        )
    paths: list[str | Path] = list(files or [])
    unread = Unread(m.languages)
    classified(unread(m.classify_lines(read_lines(paths), **opts)), fmt.value, explain, lang)
    if unread.counts:
        notice(unread.notice())


def evaluate(
    model: Annotated[str, typer.Argument(help="Run directory or model file.")],
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Text file to measure [default: a language model's whole validation split, from the token cache]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    quantize: Annotated[Quantize, typer.Option(help="int8: measure the int8 inference path instead.")] = Quantize.none,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.cpu,
    text_column: Annotated[
        str | None, typer.Option(help="Text column or key of a labelled file \\[default: the model's training one]")
    ] = None,
    label_column: Annotated[str | None, typer.Option(help="Label column or key of a labelled file.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Encoding of a labelled file \\[default: UTF-8, or UTF-16 with a BOM]")
    ] = None,
):
    """Measure a model on a file: bits per character for a language model; accuracy, macro-F1, confusion
    matrix and calibration error for a classifier on a labelled file."""
    from ..ui import classification_report, lm_report, out

    m = lstm_text.load(model, device.value, _q(quantize))
    if file is None:
        if not m.has_lm:
            raise typer.BadParameter("a classifier needs a labelled file to measure", param_hint="FILE")
        r = m.evaluate_validation()
        if as_json:
            print(json.dumps(r))
        else:
            lm_report(out(), r, r["split"])
        return
    labelled = m.labels and (not m.has_lm or is_labelled_name(file))
    cols = {"text_column": text_column, "label_column": label_column, "encoding": encoding}
    r = m.evaluate_labelled(file, **cols) if labelled else m.evaluate_file(file)
    if as_json:
        print(json.dumps(r))
    else:
        (classification_report if labelled else lm_report)(out(), r, str(file))
