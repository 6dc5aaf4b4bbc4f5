"""Figures as PNG files: training curves of run directories (``metrics.jsonl``) and the histogram of cells'
memory (``probe.time_constants``). matplotlib is optional (``pip install 'lstm-text[plot]'``) and imported
only here, on first use; reading the metrics needs nothing but the standard library.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .errors import LstmTextError

METRICS_FILE = "metrics.jsonl"
SIZE = (12.0, 8.0)  # inches; at DPI a curves figure is 1200 x 800 pixels
DPI = 100


def metrics_path(run: str | Path) -> Path | None:
    """The metrics log of a run directory, or of the run directory a model file lies in; None without one."""
    p = Path(run)
    for d in (p, p.parent) if p.is_file() else (p,):
        if (d / METRICS_FILE).is_file():
            return d / METRICS_FILE
    return None


def read_metrics(run: str | Path) -> list[dict]:
    """The validation records of a run, one per validation (``step``, ``elapsed``, ``train_loss``, ``val_bpc``
    for a language model; ``dev_loss``, ``dev_accuracy`` ... for a classifier), in step order."""
    path = metrics_path(run)
    if path is None:
        raise LstmTextError(f"{run} has no {METRICS_FILE}: give a run directory made by 'lstm-text train'")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            raise LstmTextError(f"{path} line {n} is not JSON: the metrics log is damaged") from None
        if isinstance(rec, dict) and "step" in rec:
            records.append(rec)
    if not records:
        raise LstmTextError(f"{path} has no validation records yet")
    return sorted(records, key=lambda r: r["step"])


def validation_key(records: list[dict]) -> str:
    """The validation figure a run logs: ``val_bpc`` for a language model, else ``dev_loss`` (classifiers)."""
    for key in ("val_bpc", "dev_loss"):
        if any(_finite(r.get(key)) for r in records):
            return key
    raise LstmTextError("the metrics log has neither val_bpc nor dev_loss")


def time_axis(runs: dict[str, list[dict]]) -> tuple[str, str]:
    """(record key, axis label) of the curves' time axis: wall-clock seconds of the whole run (``wall``:
    validation and saving included), or training seconds (``elapsed``) when a run's log predates ``wall``."""
    if all(_finite(r.get("wall")) for recs in runs.values() for r in recs):
        return "wall", "wall-clock seconds (validation and saving included)"
    return "elapsed", "training seconds (validation and saving not counted)"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or one clear error naming the extra to install."""
    try:
        import matplotlib
    except ImportError:
        raise LstmTextError("plotting needs matplotlib: pip install 'lstm-text[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_png(runs: dict[str, list[dict]], out: str | Path, size: tuple[float, float] = SIZE, dpi: int = DPI) -> None:
    """Train loss and validation figure against steps (top) and seconds (bottom, ``time_axis``), runs overlaid.

    Args:
        runs: label -> ``read_metrics`` records.
        out: the PNG to write.
    """
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=size, dpi=dpi)
    keys = {label: validation_key(recs) for label, recs in runs.items()}
    val_names = {"val_bpc": "validation bits per character", "dev_loss": "dev loss (nats)"}
    for row, (x, xlabel) in enumerate((("step", "step"), time_axis(runs))):
        for col, (what, ylabel) in enumerate((("train_loss", "train loss (nats per token)"), ("val", None))):
            ax = axes[row][col]
            for label, recs in runs.items():
                key = keys[label] if what == "val" else what
                pts = [(r[x], r[key]) for r in recs if _finite(r.get(x)) and _finite(r.get(key))]
                if pts:
                    ax.plot(*zip(*pts), marker="." if len(pts) < 50 else None, label=label)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel or " / ".join(sorted({val_names[k] for k in keys.values()})))
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)


def memory_png(
    tau,
    out: str | Path,
    edges: tuple[float, ...],
    title: str = "",
    size: tuple[float, float] = (8.0, 5.0),
    dpi: int = DPI,
) -> None:
    """A histogram of cells' memory tau (L, H) in tokens over ``edges`` bins, one bar group per layer."""
    import numpy as np

    from .probe import memory_histogram

    plt = pyplot()
    counts = memory_histogram(tau, edges)  # (L, bins)
    L, bins = counts.shape
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    x = np.arange(bins)
    width = 0.8 / L
    for k in range(L):
        bars = ax.bar(x + (k - (L - 1) / 2) * width, counts[k], width, label=f"layer {k}")
        ax.bar_label(bars, [str(n) if n else "" for n in counts[k]], fontsize="small")  # a few cells stay readable
    names = [f"{lo:g}-{hi:g}" if math.isfinite(hi) else f"{lo:g}+" for lo, hi in zip(edges[:-1], edges[1:])]
    ax.set_xticks(x, names, rotation=45)
    ax.set_xlabel("memory tau = -1 / ln(mean forget gate), tokens")
    ax.set_ylabel("cells")
    ax.set_title(title or "how far back the cells remember")
    if L > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
