"""``inspect`` (what the LSTM's cells do on a text) and ``plot`` (training curves)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

import lstm_text

from ..plot import curves_png, read_metrics
from ..plot import memory_png as memory_png_file
from .options import REQUIRED, _read_prompt, _writable


class Gate(str, Enum):
    cell = "cell"
    hidden = "hidden"
    input = "input"
    forget = "forget"
    output = "output"


def inspect_cmd(
    model: Annotated[str, typer.Argument(help="Run directory or model file (a left-to-right LSTM).")],
    text: Annotated[str | None, typer.Argument(help="Text to read ('-': stdin).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the text from this file ('-': stdin).")] = None,
    cell: Annotated[
        int | None, typer.Option(help="Colour the text by this cell (0-based) instead of by surprisal.")
    ] = None,
    layer: Annotated[
        int | None,
        typer.Option(help="Layer (0-based) of --cell (default: the top one); with --find, rank this layer only."),
    ] = None,
    quantity: Annotated[  # the library's name; --gate on the command line
        Gate,
        typer.Option("--gate", help="What a cell shows: its cell state, hidden state, or input/forget/output gate."),
    ] = Gate.cell,
    signal: Annotated[  # the library's name; --find on the command line
        str | None,
        typer.Option(
            "--find",
            help="Rank cells by |correlation| with a signal of the text: quote, line-position, bracket-depth, "
            "word-start, or a REGEX (1 inside its matches, multiline).",
            show_default=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option(help="Cells --find lists.")] = 10,
    memory: Annotated[
        bool, typer.Option("--memory", help="Histogram of the cells' memory, tau = -1 / ln(mean forget gate).")
    ] = False,
    memory_png: Annotated[
        Path | None, typer.Option(help="Write the memory histogram to this PNG (needs the plot extra).")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Write one self-contained HTML page: selectable cell/gate/layer, values on hover."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every array as JSON (for notebooks).")] = False,
    untrained: Annotated[
        bool, typer.Option("--untrained", help="Inspect MODEL's configuration at its seeded initialisation instead.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the --untrained initialisation.")] = 0,
    max_tokens: Annotated[int, typer.Option(help="Read at most this many tokens of the text.")] = 20_000,
):
    """Show what the LSTM does on a text: every layer's gates, cell and hidden state and the surprisal of each token.

    The text is coloured by surprisal, by one --cell, or by the cell that tracks a --find signal best."""
    from .. import probe
    from ..ui import err, find_table, inspect_text, memory_table, out, warn

    if top < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--top")
    if max_tokens < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--max-tokens")
    _writable(html, "--html")
    _writable(memory_png, "--memory-png")
    source = _read_prompt(text, file)
    trace = lstm_text.load(model).inspect(source, max_tokens=max_tokens, untrained=untrained, seed=seed)
    if trace.truncated:
        warn(f"the text is longer than --max-tokens {max_tokens:,}: its first {max_tokens:,} tokens are inspected")
    v = probe.view(trace, cell=cell, layer=layer, quantity=quantity.value, signal=signal, top=top)
    if v.cell is None and trace.surprisal is None and not (as_json or memory or html or memory_png):
        raise typer.BadParameter("this model has no language-model head, so no surprisal: choose a --cell")
    L, T, H = trace.shape
    if html is not None:
        from ..probe_page import MAX_TOKENS as PAGE_TOKENS
        from ..probe_page import page

        title = f"lstm-text inspect {model}" + (" (untrained)" if untrained else "")
        html.write_text(
            page(trace, title=title, found=v.found, layer=v.layer, cell=v.cell or 0, quantity=v.start), "utf-8"
        )
        note = f" (its first {PAGE_TOKENS:,} tokens)" if T > PAGE_TOKENS else ""
        err.print(f"wrote {html}{note}", markup=False)
    if memory_png is not None:
        what = "untrained " if untrained else ""
        memory_png_file(v.tau, memory_png, probe.MEMORY_EDGES, f"memory of {what}{model} over {T:,} tokens")
        err.print(f"wrote {memory_png}", markup=False)
    if as_json:
        print(json.dumps(probe.to_json(trace, v.found)))
        return
    console = out()
    if v.found:
        console.print(
            find_table(v.found, f"cells whose {quantity.value} tracks {signal!r} (Pearson r over {T:,} tokens)")
        )
    if memory:
        counts, median = v.memory()
        title = f"memory of {L * H:,} cells over {T:,} tokens (median tau {median:.1f})"
        console.print(memory_table(counts, probe.MEMORY_EDGES, title))
    if not v.chosen and (memory or html or memory_png):
        return  # the text view comes with --cell, or when nothing else was asked for
    values, signed, scale = v.colours()
    console.print(inspect_text(trace.tokens, values, signed=signed, scale=scale))
    if v.cell is None:
        mean = float(values[1:].mean()) if T > 1 else float("nan")
        err.print(f"surprisal: white 0 bits, red 8+ bits; mean {mean:.3f} bits per token", markup=False)
    else:
        how = f"blue -{scale:.2f}, white 0, red +{scale:.2f}" if signed else "white 0, red 1"
        err.print(f"layer {v.layer} cell {v.cell} {quantity.value}: {how}", markup=False)


def plot(
    runs: Annotated[list[str], typer.Argument(help="Run directories (their metrics.jsonl).", show_default=False)],
    out_png: Annotated[Path, typer.Option("--out", "-o", help="Image to write (PNG).")] = REQUIRED,
):
    """Plot training curves: train loss and validation bpc against steps and wall time, runs overlaid."""
    from ..ui import err

    _writable(out_png, "--out")
    names = [Path(r).resolve().name for r in runs]
    labels = [n if names.count(n) == 1 else str(r) for n, r in zip(names, runs)]
    curves_png({label: read_metrics(r) for label, r in zip(labels, runs)}, out_png)
    err.print(f"wrote {out_png}", markup=False)
