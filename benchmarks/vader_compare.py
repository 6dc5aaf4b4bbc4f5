"""VADER, the lexicon baseline, against lstm-text's built-in ``sentiment`` classifier on SST-2 dev, in one run.

Accuracy on the 872 dev sentences (VADER: positive iff compound >= 0, untuned; also the usual +-0.05 neutral
band, neutral counted wrong) and lines/s, best of 3, over the dev sentences repeated to ``--lines`` lines,
start-up excluded (VADER's import + lexicon load is reported apart). lstm-text runs in-process on one thread
(VADER is single-threaded Python) and on its default threads.

Run: ``python benchmarks/vader_compare.py --vader-python /path/to/venv/bin/python --json /tmp/vader.json``.
VADER runs in that interpreter (``pip install vaderSentiment`` there), or here when this one has it.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does: classify runs its own threads

import lstm_text  # noqa: E402
from lstm_text import bench  # noqa: E402
from lstm_text.data.labelled import read_labelled  # noqa: E402
from lstm_text.evaluate import evaluate_labelled  # noqa: E402
from lstm_text.infer.classifier import Classifier  # noqa: E402

INSTALL = (
    "vaderSentiment not found; install it in a venv of its own and pass its python: python3 -m venv vader-venv"
    " && vader-venv/bin/pip install vaderSentiment, then --vader-python vader-venv/bin/python"
)


def vader_figures(texts: list[str], gold: list[str], n: int, reps: int) -> dict:
    """VADER's accuracy and lines/s. Self-contained (stdlib + vaderSentiment): it also runs via ``python -c``."""
    import time
    from importlib.metadata import version

    t = time.perf_counter()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    startup = time.perf_counter() - t
    comp = [sia.polarity_scores(x)["compound"] for x in texts]
    band = ["positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral" for c in comp]
    lines = (texts * (n // len(texts) + 1))[:n]
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for x in lines:
            sia.polarity_scores(x)
        best = min(best, time.perf_counter() - t)
    return {
        "accuracy": sum((c >= 0) == (g == "positive") for c, g in zip(comp, gold)) / len(gold),
        "accuracy_band_0.05": sum(b == g for b, g in zip(band, gold)) / len(gold),
        "neutral_in_band": band.count("neutral"),
        "lines_per_s": n / best,
        "startup_s": startup,
        "threads": 1,
        "version": version("vaderSentiment"),
    }


def run_vader(python: str | None, texts: list[str], gold: list[str], n: int, reps: int) -> dict:
    """``vader_figures`` in ``python`` (a subprocess, JSON both ways), else here; exits 2 when neither has it."""
    if python:
        call = "import json, sys\nprint(json.dumps(vader_figures(**json.load(sys.stdin))))"
        code = f"{inspect.getsource(vader_figures)}\n{call}\n"
        args = json.dumps({"texts": texts, "gold": gold, "n": n, "reps": reps})
        try:
            p = subprocess.run([python, "-c", code], input=args, capture_output=True, text=True, encoding="utf-8")
        except OSError as e:
            sys.exit(f"cannot run --vader-python {python}: {e}")
        if p.returncode == 0:
            return {**json.loads(p.stdout), "python": python}
        if "ModuleNotFoundError" not in p.stderr:
            sys.exit(f"VADER failed in {python}:\n{p.stderr}")
    elif importlib.util.find_spec("vaderSentiment"):
        return {**vader_figures(texts, gold, n, reps), "python": sys.executable}
    print(INSTALL)
    sys.exit(2)


def lstm_figures(model, clf: Classifier, pairs: list[tuple[str, str]], lines: list[str], reps: int) -> dict:
    """Accuracy, and lines/s as ``classify`` runs (each line's language too, langid on as many threads as the
    classifier) and without the language."""

    model.gate(["warm-up"])  # langid loaded before timing
    return {
        "accuracy": evaluate_labelled(model.read, model.labels, pairs)["accuracy"],
        "lines_per_s": bench.classify_rate(clf, model.tokenizer, lines, reps, gate=model.gate),
        "lines_per_s_without_lang": bench.classify_rate(clf, model.tokenizer, lines, reps),
        "threads": clf.threads,
    }


def report(res: dict) -> None:
    from rich.table import Table

    from lstm_text.ui import out

    v = res["vader"]
    title = f"SST-2 dev ({res['examples']} sentences); lines/s over {res['lines']:,} lines, best of {res['reps']}"
    t = Table(title=title, title_justify="left")
    for c in ("", "accuracy", "lines/s", "/ VADER lines/s"):
        t.add_column(c, justify="right")
    rows = [("VADER (compound >= 0)", v), ("lstm-text (1 thread)", res["lstm_text_1_thread"])]
    d = res["lstm_text_default"]
    for name, r in rows + [(f"lstm-text (default: {d['threads']} threads)", d)]:
        rate = r["lines_per_s"]
        t.add_row(name, f"{r['accuracy']:.3f}", f"{rate:,.0f}", f"{rate / v['lines_per_s']:.2f}")
        if "lines_per_s_without_lang" in r:  # classify answers each line's language: what that costs
            rate = r["lines_per_s_without_lang"]
            t.add_row("  without lang", "", f"{rate:,.0f}", f"{rate / v['lines_per_s']:.2f}")
    out().print(t)
    print(
        f"VADER {v['version']}: accuracy {v['accuracy_band_0.05']:.3f} with the +-0.05 neutral band "
        f"({v['neutral_in_band']} neutral, counted wrong); start-up (import + lexicon) {v['startup_s']:.3f} s"
    )
    print(f"lstm-text: load + classifier build {res['lstm_text_load_s']:.3f} s (imports excluded)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    data = Path(os.environ.get("LSTM_TEXT_DATA", Path(__file__).resolve().parents[1] / "../shared/data"))
    p.add_argument("--vader-python", help="a python interpreter that has vaderSentiment")
    p.add_argument("--dev", type=Path, default=data / "sst2/dev.tsv", help="SST-2 dev TSV (label<TAB>text)")
    p.add_argument("--model", default="sentiment", help="lstm-text classifier")
    p.add_argument("--lines", type=int, default=20_000, help="lines timed: the dev sentences repeated")
    p.add_argument("--reps", type=int, default=3, help="timed passes; the fastest counts")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args()
    pairs = read_labelled([a.dev])
    texts, gold = [t for t, _ in pairs], [lab for _, lab in pairs]
    lines = (texts * (a.lines // len(texts) + 1))[: a.lines]
    res = {"machine": bench.machine(), "dev": str(a.dev.resolve()), "examples": len(pairs), "lines": len(lines)}
    res["reps"] = a.reps
    res["vader"] = run_vader(a.vader_python, texts, gold, a.lines, a.reps)
    t = time.perf_counter()
    model = lstm_text.load(a.model)
    default = model.classifier
    res["lstm_text_load_s"] = time.perf_counter() - t
    res["model"] = model.meta.get("path")
    one = Classifier(model.cfg, model.ckpt.weights, threads=1)
    res["lstm_text_1_thread"] = lstm_figures(model, one, pairs, lines, a.reps)
    res["lstm_text_default"] = lstm_figures(model, default, pairs, lines, a.reps)
    report(res)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2) + "\n")
        print(f"figures written to {a.json}")


if __name__ == "__main__":
    main()
