"""Rich output: consoles (status to stderr, results to stdout), the training progress bar, tables and reports,
and classify's output lines (text, tsv, jsonl; the explained words). Only the front ends import it."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .errors import render

err = Console(stderr=True, highlight=False)


def out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def tokens_line(t: dict) -> str:
    """Where the token files came from: the cache, or built now (how long, how much text was sampled)."""
    size = f"{t['bytes'] / 1e6:,.1f} MB in {t['files']:,} file{'s' if t['files'] != 1 else ''}"
    if t.get("cache_hit"):
        return f"tokens: {size}, from the cache ({t['seconds']:.1f} s)"
    line = f"tokens: {size} tokenized in {t['seconds']:.1f} s"
    if "sample_bytes" in t:
        line += f"; the tokenizer trained on a sample of {t['sample_bytes'] / 1e6:,.1f} MB ({t['sample_share']:.0%})"
    if t.get("rebuilt_damaged"):
        line += "; a damaged cache copy was rebuilt"
    return line


def error(msg: str) -> None:
    """One line on stderr, never wrapped."""
    line = " ".join(str(msg).split())
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()


def warn(msg: str) -> None:
    sys.stderr.write(f"warning: {msg}\n")
    sys.stderr.flush()


def notice(msg: str) -> None:
    sys.stderr.write(f"notice: {msg}\n")
    sys.stderr.flush()


def _fmt(v: float, spec: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


class TrainProgress:
    """The training callback: a progress bar on stderr with step, loss, val bpc, tokens/s and ETA."""

    def __init__(
        self, quiet: bool = False, metric: str = "val_bpc", label: str = "val bpc", name: Callable[[str], str] = str
    ):
        """``name``: how notices and warnings say a parameter (``flag`` on the command line; Python's own name)."""
        self.quiet, self.metric, self.label, self.name = quiet, metric, label, name
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.last_step: dict = {}  # the latest step event: tokens/s and progress for the plain eval lines

    def __call__(self, event: str, info: dict) -> None:
        message = render(info["template"], self.name) if event in ("notice", "warning") else ""
        if event == "warning":
            warn(message)
        if event == "notice" and not self.quiet:
            (self.progress.console if self.progress else err).print(f"notice: {message}", markup=False)
        if self.quiet:
            return
        if event == "start":
            if info["start_step"]:
                err.print(resuming_line(info), markup=False)
            if "tokens" in info:
                err.print(tokens_line(info["tokens"]), soft_wrap=True)
            sample = info.get("val_sample_tokens")
            procs = info.get("world_size", 1)
            err.print(
                f"[bold]training[/] {info['params']:,} parameters on {info['device']}"
                + (f" x {procs} processes" if procs > 1 else "")
                + f", vocab {info['vocab_size']}, {info['train_tokens']:,} train / {info['val_tokens']:,} val tokens"
                + (f" (validating on a fixed sample of {sample:,})" if sample else "")
                + f", batch {info['batch_size']}, {info['steps_per_epoch']:,} steps per epoch"
            )
            self.progress = Progress(
                TextColumn("step {task.fields[step]}"),
                BarColumn(),
                TextColumn(
                    "loss {task.fields[loss]}  " + self.label + " {task.fields[bpc]}  {task.fields[tok_s]} tok/s"
                ),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=err,
                transient=False,
                disable=not err.is_terminal and not os.environ.get("LSTM_TEXT_PROGRESS"),
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "train", total=1000, step=info["start_step"], loss="-", bpc="-", tok_s="-"
            )
        elif event == "step" and self.progress and self.task is not None:
            self.last_step = info
            self.progress.update(
                self.task,
                completed=int(1000 * min(info["progress"], 1.0)),
                step=info["step"],
                loss=_fmt(info["loss"]),
                bpc=_fmt(info[self.metric]),
                tok_s=f"{info['tok_s']:,.0f}",
            )
        elif event == "eval":
            line = (
                f"step {info['step']:>6}  epoch {info['epoch']:.2f}  train loss {info['train_loss']:.3f}  "
                f"{self.label} {info[self.metric]:.4f}  {info['elapsed']:.0f}s"
            )
            p, tok_s = self.last_step.get("progress", 0.0), self.last_step.get("tok_s", 0.0)
            if tok_s:
                line += f"  {tok_s:,.0f} tok/s"
            if 0 < p < 1:  # from training time so far; validation adds to it
                line += f"  eta {_duration(info['elapsed'] * (1 - p) / p)}"
            (self.progress.console if self.progress else err).print(line, soft_wrap=True)
        elif event == "end" and self.progress:
            self.progress.stop()


def resuming_line(info: dict) -> str:
    """Where a resumed run starts and what stops it: the step limit, the time budget (wall-clock seconds of the
    whole run, the time spent before the interruption included), or both."""
    line = f"resuming at step {info['start_step']:,}"
    total, budget = info.get("total_steps"), info.get("time_budget")
    if total:
        line += f" of {total:,}"
    if budget:
        line += f",{' or' if total else ''} until {budget:g} s of --time-budget ({info.get('wall', 0.0):.0f} s spent)"
    return line if total or budget else line + " of an open-ended run"


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def kv_table(title: str, rows: list[tuple[str, object]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(
            k,
            v
            if isinstance(v, str)
            else format(v, ",.4f")
            if isinstance(v, float)
            else f"{v:,}"
            if isinstance(v, int)
            else str(v),
        )
    return t


def train_summary(run: object, s: dict, classifier: bool = False) -> None:
    """The closing table of a training run, on stderr."""
    rows = [("steps", s["steps"]), ("epochs", s["epochs"]), ("training seconds", s["seconds"])]
    if "wall_seconds" in s:
        rows.append(("wall seconds", s["wall_seconds"]))
    if s.get("stop") == "patience":
        rows.append(("stopped", f"no better dev score in the last {s['config']['patience']} validations"))
    if classifier:
        rows += [("dev accuracy", s["dev_accuracy"]), ("dev macro-F1", s["dev_macro_f1"])]
        rows += [("dev ECE (calibrated)", s["dev_ece"])]
    else:
        rows += [("best val bpc", s["best_val_bpc"]), ("last val bpc", s["last_val_bpc"])]
    rows.append(("model", f"{run}/model.safetensors"))
    resume = Path(str(run)) / "resume.safetensors"
    if resume.is_file():  # kept (--keep-resume, the default): say what it is for and how to drop it
        size = resume.stat().st_size / 1e6
        rows.append(("resume state", f"{resume} ({size:,.1f} MB): --resume extends the run; delete it, or train "
                     "with --no-keep-resume, if you will not"))  # fmt: skip
    err.print(kv_table(f"trained {run}", rows))


def lm_report(console: Console, r: dict, title: str) -> None:
    """A language model's figures on a text."""
    rows = [("bits per character", r["bpc"]), ("loss per token (nats)", r["loss"])]
    rows += [("perplexity per token", r["perplexity"]), ("tokens", r["tokens"]), ("characters", r["characters"])]
    console.print(kv_table(title, rows))


def info_table(title: str, d: dict) -> Table:
    """``lstm-text info``: heads, size, tokenizer, configuration and the training summary's main figures."""
    tr = d["training"]
    rows = [
        ("path", d["path"]),
        ("heads", ", ".join(d["heads"])),
        ("parameters", d["parameters"]),
        ("tokenizer", f"{d['tokenizer']} ({d['vocab_size']} ids)"),
    ]
    rows += [(k, str(v)) for k, v in d["config"].items() if k not in ("vocab_size",)]
    for k in ("steps", "epochs", "seconds", "best_val_bpc", "last_val_bpc", "corpus", "dev_accuracy"):
        if tr.get(k) is not None:
            rows.append((f"training: {k}", tr[k] if not isinstance(tr[k], list) else " ".join(map(str, tr[k]))))
    rows += [(f"card: {k}", v) for k, v in d.get("card", {}).items() if v is not None]
    return kv_table(title, rows)


def classification_report(console: Console, r: dict, title: str) -> None:
    """Accuracy, macro-F1, ECE; per-class precision/recall; the confusion matrix (rows: gold label)."""
    console.print(
        kv_table(
            title,
            [
                ("accuracy", r["accuracy"]),
                ("macro-F1", r["macro_f1"]),
                ("expected calibration error", r["ece"]),
                ("examples", r["examples"]),
            ],
        )
    )
    per = Table(title="per class", title_justify="left")
    for col in ("label", "precision", "recall", "F1", "support"):
        per.add_column(col, justify="left" if col == "label" else "right")
    for lab, v in r["per_class"].items():
        per.add_row(lab, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", f"{v['support']:,}")
    console.print(per)
    cm = Table(title="confusion matrix (rows: gold, columns: predicted)", title_justify="left")
    cm.add_column("gold \\ predicted")
    for lab in r["labels"]:
        cm.add_column(lab, justify="right")
    for lab, row in zip(r["labels"], r["confusion"]):
        cm.add_row(lab, *[f"{v:,}" for v in row])
    console.print(cm)
    if r.get("skipped"):
        warn(
            f"{r['skipped']} example(s) with labels the model does not know were skipped: "
            f"{', '.join(r['unknown_labels'][:5])}"
        )


_HIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # C0 but tab, DEL, C1, bidi


def visible(text: str) -> str:
    """``text`` for a terminal: control characters as escapes (``\\x1b``), so that input text cannot move the
    cursor, clear the screen, set the window title or reorder what is shown."""
    return _HIDDEN.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", text)


def classified(pairs, fmt: str = "text", explain: bool = False, lang: bool = False) -> None:
    """``lstm-text classify``'s output on stdout, one line per (text, result) of ``Model.classify_lines``: text
    (label, score, text), tsv (label, score to 4 decimals, text) or jsonl (the text and the result). An empty line
    gets an empty label and score (jsonl: null). ``lang``: a language column after the score (jsonl has "lang"
    always). ``explain``: each word's weight too, a last column (coloured words on a terminal; jsonl: an "explain"
    list). On a terminal, control characters of the text show as escapes."""
    from .infer.classifier import score_text

    w = sys.stdout
    console = None
    shown: Callable[[str], str] = str  # piped: the text as it came
    if fmt != "jsonl" and w.isatty():  # a terminal: input text cannot drive it
        shown = visible
        if explain and fmt == "text":  # coloured words; piped: a fourth column
            console = out()
    for text, r in pairs:
        weights = r["explain"] if explain else []
        column = f"{r['lang']}\t" if lang else ""
        if fmt == "jsonl":
            d = {"text": text, **r}
            if explain:
                d["explain"] = [[t, round(v, 4)] for t, v in weights]
            w.write(json.dumps(d, ensure_ascii=False) + "\n")
        elif console is not None:
            console.print(explained(r, weights, text, column))
        else:
            if r["label"] is None:  # an empty or unread line: empty label and score in every format (jsonl: null)
                line = f"\t\t{column}{shown(text)}"
            elif fmt == "tsv":
                line = f"{r['label']}\t{r['score']:.4f}\t{column}{shown(text)}"
            else:
                line = f"{r['label']}\t{score_text(r)}\t{column}{shown(text)}"
            if explain:  # each word with how much it moved the answer's probability
                line += "\t" + " ".join(f"{shown(word)}:{v:+.3f}" for word, v in weights)
            w.write(line + "\n")
    w.flush()


def explained(r: dict, weights: list[tuple[str, float]], text: str, column: str = ""):
    """The line with words that pushed towards the label in green and against it in red (``column``: the
    language column, when asked for)."""
    from rich.text import Text

    from .infer.classifier import score_text

    t = Text(f"{r['label']}\t{score_text(r)}\t{column}")
    if not weights:
        t.append(visible(text))
        return t
    top = max(abs(w) for _, w in weights) or 1.0
    for i, (word, w) in enumerate(weights):
        if i:
            t.append(" ")
        strength = abs(w) / top
        style = (
            ("bold green" if w > 0 else "bold red")
            if strength > 0.5
            else (("green" if w > 0 else "red") if strength > 0.15 else "")
        )
        t.append(visible(word), style=style)
    return t


def bench_report(console: Console, r: dict) -> None:
    """The tables of ``lstm_text.bench.run``'s figures."""
    m = r["machine"]
    console.print(
        f"[bold]{m['cpu']}[/], {m['platform']}, torch {m['torch']}, {m['threads']} threads"
        + ("  [yellow](--quick: figures are noise)[/]" if r["quick"] else "")
    )
    peak = r["gemm_gflops"]
    t = Table(title="fp32 GEMM (m x k x n)", title_justify="left")
    for c in ("shape", "GFLOP/s", "/ square"):
        t.add_column(c, justify="right")
    for k, v in r["gemm_shapes_gflops"].items():
        t.add_row(k, f"{v:.1f}", f"{v / peak:.2f}")
    console.print(t)
    tr, cfg = r["train"], r["model"]
    t = Table(
        title=f"training, {cfg['layers']}x{cfg['hidden']} e{cfg['embed']}, batch {r['batch_size']} x {r['seq_len']}",
        title_justify="left",
    )
    for c in ("tokens/s", "matmul params/token", "GFLOP/s", "/ GEMM"):
        t.add_column(c, justify="right")
    t.add_row(
        f"{tr['tokens_per_s']:,.0f}", f"{tr['matmul_params']:,}", f"{tr['gflops']:.1f}", f"{tr['share_of_gemm']:.2f}"
    )
    console.print(t)
    t = Table(title="generation, batch 1 (tokens/s)", title_justify="left")
    cols = ("model", "lstm-text", "int8", "matmul bound", "naive nn.LSTM", "/ bound", "int8 / bound", "naive / bound")
    for c in cols:
        t.add_column(c, justify="right")
    for g in r["generate"]:
        t.add_row(
            g["model"],
            f"{g['tokens_per_s']:,.0f}",
            f"{g['int8_tokens_per_s']:,.0f}",
            f"{g['bound_tokens_per_s']:,.0f}",
            f"{g['naive_tokens_per_s']:,.0f}",
            f"{g['share_of_bound']:.2f}",
            f"{g['int8_share_of_bound']:.2f}",
            f"{g['naive_share_of_bound']:.2f}",
        )
    console.print(t)
    console.print(
        "time to first token after a 1,000-character prompt: "
        + "; ".join(
            f"{g['model']}: {g['first_token_s_1000_chars'] * 1e3:.0f} ms "
            f"(stepping the prompt: {g['first_token_s_1000_chars_stepped'] * 1e3:.0f} ms)"
            for g in r["generate"]
        )
    )
    if "classify" in r:
        c = r["classify"]
        t = Table(title=f"classification, {c['lines']:,} lines, {c['threads']} threads (lines/s)", title_justify="left")
        for col in ("model loaded", "int8 table", "whole command", "one-line command (s)"):
            t.add_column(col, justify="right")
        t.add_row(
            f"{c['lines_per_s']:,.0f}",
            f"{c['int8_lines_per_s']:,.0f}",
            f"{c['cli_lines_per_s']:,.0f}",
            f"{c['cli_one_line_s']:.2f}",
        )
        console.print(t)


# -- inspect: the text coloured by a cell or by surprisal, ranked cells, memory ------------------------------
def _shade(v: float, signed: bool) -> str:
    """A background colour: white to red for v in [0, 1]; signed: blue (-1) to white to red (+1)."""
    a = min(abs(v), 1.0)
    c = round(255 * (1 - a))
    return f"rgb({c},{c},255)" if signed and v < 0 else f"rgb(255,{c},{c})"


def inspect_text(tokens: list[str], values, signed: bool, scale: float):
    """The tokens with backgrounds by ``values`` (T,) / ``scale``; NaN (no value) stays uncoloured."""
    from rich.text import Text

    t = Text()
    for tok, v in zip(tokens, values):
        if math.isnan(v):
            t.append(tok)
        else:
            t.append(tok, style=f"black on {_shade(v / scale, signed)}")
    return t


def find_table(found: dict, title: str) -> Table:
    """``lstm-text inspect --find``: the cells that track the signal best."""
    t = Table(title=title, title_justify="left")
    for c in ("rank", "layer", "cell", "r"):
        t.add_column(c, justify="right")
    for i, row in enumerate(found["top"], 1):
        t.add_row(str(i), str(row["layer"]), str(row["cell"]), f"{row['r']:+.3f}")
    return t


def memory_table(counts, edges, title: str) -> Table:
    """The cells per memory bin (tokens), one bar column per layer: ``probe.memory_histogram``'s counts."""
    t = Table(title=title, title_justify="left")
    t.add_column("tau (tokens)", justify="right")
    top = max(int(counts.max()), 1)
    for k in range(counts.shape[0]):
        t.add_column(f"layer {k} cells", justify="left")
    last = int(counts.sum(0).nonzero()[0].max())  # bins past the longest memory are left out
    for b, (lo, hi) in enumerate(zip(edges[: last + 2], edges[1 : last + 2])):
        name = f"{lo:g}-{hi:g}" if math.isfinite(hi) else f"{lo:g}+"
        cells = [f"{'█' * math.ceil(30 * n / top) if n else ''} {n}" for n in counts[:, b].tolist()]
        t.add_row(name, *cells)
    return t


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """One line of block characters, low to high; more values than ``width`` are sampled evenly."""
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return ""
    if len(vals) > width:
        vals = [vals[round(i * (len(vals) - 1) / (width - 1))] for i in range(width)]
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(SPARKS[min(int((v - lo) / span * len(SPARKS)), len(SPARKS) - 1)] for v in vals)
