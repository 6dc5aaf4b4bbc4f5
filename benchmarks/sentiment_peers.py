"""Sentiment peers on every dev set of ``splits`` (benchmarks/splits.py): lstm-text's built-in models against TF-IDF +
logistic regression, VADER and TextBlob, in one run.

Per dev set and model: accuracy (macro-F1 where the set has three classes; on ``objective``, whose lines are all
neutral, accuracy is the share predicted neutral) and lines/s, best of ``--reps`` passes over the same lines,
start-up and training excluded (TF-IDF + LR training time is reported apart).

Rules, untuned: VADER compound >= 0.05 positive, <= -0.05 negative, else neutral (binary sets: >= 0 positive);
TextBlob polarity > 0.1 / < -0.1 (binary: >= 0); TF-IDF (word 1-2 grams, sublinear tf) + LR (C=4,
max_iter=1000) trained on the ``--train`` parts (binary sets) or the ``--train3`` parts (three-class sets);
lstm-text ``load("sentiment")`` (binary) and ``load("sentiment3")``, in-process on its default threads.

Run: ``LSTM_TEXT_DATA=../shared/data python benchmarks/sentiment_peers.py --json /tmp/peers.json``.
The peers need ``pip install 'lstm-text[bench]'``; a missing one is skipped with a line saying so.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does: classify runs its own threads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import lstm_text  # noqa: E402

import splits  # noqa: E402

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if _SHARED.is_dir():  # the project's machines keep the data beside the checkout, as the Makefile assumes
    os.environ.setdefault(splits.DATA_ENV, str(_SHARED))

INSTALL = "pip install 'lstm-text[bench]'"
BINARY = ("negative", "positive")

Predict = Callable[[list[str]], list[str]]


@dataclass
class Peer:
    """A model under test: one predict function for binary sets and one for three-class sets."""

    name: str
    binary: Predict | None = None
    three: Predict | None = None
    about: dict = field(default_factory=dict)  # version, rules, start-up and training seconds


def band(score: float, width: float) -> str:
    return "positive" if score >= width else "negative" if score <= -width else "neutral"


def sign(score: float) -> str:
    return "positive" if score >= 0 else "negative"


def missing(package: str, name: str) -> None:
    print(f"{name} skipped: {package} is not installed; {INSTALL}", file=sys.stderr)


def lstm_peer(model: str, model3: str, need2: bool, need3: bool) -> Peer:
    t = time.perf_counter()
    peer = Peer("lstm-text", about={"version": lstm_text.__version__})
    for need, path, attr in ((need2, model, "binary"), (need3, model3, "three")):
        if not need:
            continue
        m = lstm_text.load(path)

        def predict(texts: list[str], m=m) -> list[str]:
            return [r["label"] for r in m.classify(texts)]

        predict(["a fine film"])  # builds the NumPy classifier: start-up, not speed
        setattr(peer, attr, predict)
        peer.about[attr] = {"model": m.meta.get("path") or path, "labels": m.labels, "threads": m.classifier.threads}
    peer.about["startup_s"] = time.perf_counter() - t
    return peer


def tfidf_peer(train: list[str], train3: list[str], need2: bool, need3: bool) -> Peer | None:
    t = time.perf_counter()
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        missing("scikit-learn", "TF-IDF + LR")
        return None
    peer = Peer("TF-IDF + LR", about={"version": version("scikit-learn"), "import_s": time.perf_counter() - t})
    peer.about["config"] = (
        "TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression(C=4, max_iter=1000)"
    )
    for need, names, attr in ((need2, train, "binary"), (need3, train3, "three")):
        if not need:
            continue
        pairs = [p for name in names for p in splits.train_set(name)]
        pipe = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=4, max_iter=1000)
        )
        t = time.perf_counter()
        pipe.fit([x for x, _ in pairs], [y for _, y in pairs])
        seconds = time.perf_counter() - t

        def predict(texts: list[str], pipe=pipe) -> list[str]:
            return [str(y) for y in pipe.predict(texts)]

        setattr(peer, attr, predict)
        labels = [str(c) for c in pipe[-1].classes_]
        peer.about[attr] = {"train": names, "examples": len(pairs), "labels": labels, "train_s": seconds}
    return peer


def vader_peer() -> Peer | None:
    t = time.perf_counter()
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        missing("vaderSentiment", "VADER")
        return None
    sia = SentimentIntensityAnalyzer()

    def binary(texts: list[str]) -> list[str]:
        return [sign(sia.polarity_scores(x)["compound"]) for x in texts]

    def three(texts: list[str]) -> list[str]:
        return [band(sia.polarity_scores(x)["compound"], 0.05) for x in texts]

    about = {"version": version("vaderSentiment"), "binary": "compound >= 0", "three": "compound +-0.05"}
    return Peer("VADER", binary, three, {**about, "startup_s": time.perf_counter() - t})


def textblob_peer() -> Peer | None:
    t = time.perf_counter()
    try:
        from textblob import TextBlob
    except ImportError:
        missing("textblob", "TextBlob")
        return None

    def binary(texts: list[str]) -> list[str]:
        return [sign(TextBlob(x).sentiment.polarity) for x in texts]

    def three(texts: list[str]) -> list[str]:
        return [band(TextBlob(x).sentiment.polarity, 0.1) for x in texts]

    binary(["a fine film"])  # the pattern lexicon loads on first use: start-up, not speed
    about = {"version": version("textblob"), "binary": "polarity >= 0", "three": "polarity > 0.1 / < -0.1"}
    return Peer("TextBlob", binary, three, {**about, "startup_s": time.perf_counter() - t})


def timed(predict: Predict, texts: list[str], reps: int) -> tuple[list[str], float]:
    """Predictions and lines/s, the fastest of ``reps`` passes."""
    best, preds = float("inf"), []
    for _ in range(reps):
        t = time.perf_counter()
        preds = predict(texts)
        best = min(best, time.perf_counter() - t)
    return preds, len(texts) / best


def scores(gold: list[str], pred: list[str], classes: list[str]) -> dict:
    """Accuracy, the share predicted neutral, and macro-F1 over the set's classes when there are three or more."""
    res = {
        "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold),
        "neutral": pred.count("neutral") / len(pred),
    }
    if len(classes) >= 3:
        f1 = []
        for c in classes:
            tp = sum(g == p == c for g, p in zip(gold, pred))
            prec, rec = tp / max(pred.count(c), 1), tp / max(gold.count(c), 1)
            f1.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
        res["macro_f1"] = sum(f1) / len(f1)
    res["predicted"] = {c: pred.count(c) for c in sorted(set(pred), key=str)}
    return res


def names_arg(registry: dict) -> Callable[[str], list[str]]:
    def parse(s: str) -> list[str]:
        names = [n.strip() for n in s.split(",") if n.strip()]
        bad = [n for n in names if n not in registry]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown set {', '.join(bad) or s!r}; known: {', '.join(registry)}")
        return names

    return parse


def report(res: dict) -> None:
    head = ["dev set", "lines", "model", "accuracy", "macro-F1", "lines/s", "vs lstm-text"]
    rows = []
    for name, s in res["sets"].items():
        base = s["results"].get("lstm-text", {}).get("lines_per_s")
        for model, r in s["results"].items():
            f1 = f"{r['macro_f1']:.3f}" if "macro_f1" in r else "-"
            ratio = f"{r['lines_per_s'] / base:.2f}" if base else "-"
            rows.append([name, f"{s['lines']:,}", model, f"{r['accuracy']:.3f}", f1, f"{r['lines_per_s']:,.0f}", ratio])
    notes = [f"lines/s: best of {res['reps']} passes over the same lines, start-up and training excluded"]
    if "objective" in res["sets"]:
        notes.append("objective: every line is neutral; accuracy = share predicted neutral")
    tfidf = res["peers"].get("TF-IDF + LR", {})
    for part in ("binary", "three"):
        if part in tfidf:
            t = tfidf[part]
            notes.append(
                f"TF-IDF + LR ({part}): trained on {'+'.join(t['train'])} ({t['examples']:,} examples) "
                f"in {t['train_s']:.1f} s"
            )
    lt = res["peers"]["lstm-text"]
    for part in ("binary", "three"):
        if part in lt:
            notes.append(f"lstm-text ({part}): {lt[part]['model']}, {lt[part]['threads']} thread(s)")
    if res["limit"]:
        notes.append(f"--limit {res['limit']}: the first {res['limit']} lines of each dev set only")
        for name, s in res["sets"].items():
            held = [c for c, n in s["gold"].items() if n]
            if len(held) < len(s["classes"]):  # imdb and pros_cons files are sorted by label
                notes.append(f"{name}: those lines are all {'/'.join(held)}; accuracy there is one class's recall")
    if sys.stdout.isatty():
        from rich.table import Table

        from lstm_text.ui import out

        table = Table(title="Sentiment dev sets: lstm-text and peers", title_justify="left")
        for i, h in enumerate(head):
            table.add_column(h, justify="left" if i in (0, 2) else "right")
        for r in rows:
            table.add_row(*r)
        out().print(table)
    else:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            cells = [c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
            print("  ".join(cells).rstrip())
    for n in notes:
        print(n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--sets",
        type=names_arg(splits.SENTIMENT_DEV),
        default=list(splits.SENTIMENT_DEV),
        help=f"dev sets to score, comma-separated (default: all: {','.join(splits.SENTIMENT_DEV)})",
    )
    p.add_argument(
        "--train",
        type=names_arg(splits.SENTIMENT_TRAIN),
        default=["sst2-phrases", "imdb", "pros_cons"],
        help="train parts for the binary TF-IDF + LR: the built-in model's training data (default: %(default)s)",
    )
    p.add_argument(
        "--train3",
        type=names_arg(splits.SENTIMENT_TRAIN),
        default=["sst5-3", "objective", "tweets", "reddit"],
        help="train parts for the three-class TF-IDF + LR: the built-in sentiment3's fine-tuning data (default: "
        "%(default)s; its encoder comes from sentiment: add sst2-phrases,imdb,pros_cons to give the peer all of it)",
    )
    p.add_argument("--model", default="sentiment", help="lstm-text model for binary sets (a path or built-in name)")
    p.add_argument("--model3", default="sentiment3", help="lstm-text model for three-class sets")
    p.add_argument("--reps", type=int, default=3, help="timed passes per set and model; the fastest counts")
    p.add_argument("--limit", type=int, default=0, help="score only the first N lines of each dev set")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args()
    if a.reps < 1 or a.limit < 0:
        p.error("--reps must be at least 1 and --limit at least 0")
    try:
        res = run(a)
    except lstm_text.LstmTextError as e:
        sys.exit(f"error: {e}")
    report(res)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2) + "\n")
        print(f"figures written to {a.json}")


def run(a: argparse.Namespace) -> dict:
    sets = {}
    for name in a.sets:
        pairs = splits.dev_set(name)
        classes = sorted({lab for _, lab in pairs})  # of the whole set: --limit does not change its kind
        sets[name] = {"pairs": pairs[: a.limit] if a.limit else pairs, "classes": classes}
    for s in sets.values():
        s["binary"] = set(s["classes"]) <= set(BINARY)
    need2 = any(s["binary"] for s in sets.values())
    need3 = not all(s["binary"] for s in sets.values())
    peers = [lstm_peer(a.model, a.model3, need2, need3), tfidf_peer(a.train, a.train3, need2, need3)]
    peers = [x for x in [*peers, vader_peer(), textblob_peer()] if x]
    res = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor(), "cores": os.cpu_count()},
        "limit": a.limit,
        "reps": a.reps,
        "peers": {x.name: x.about for x in peers},
        "sets": {},
    }
    for name, s in sets.items():
        texts, gold = [t for t, _ in s["pairs"]], [lab for _, lab in s["pairs"]]
        out = {"about": splits.SENTIMENT_DEV[name].about, "lines": len(texts), "classes": s["classes"], "results": {}}
        out["gold"] = {c: gold.count(c) for c in s["classes"]}
        for x in peers:
            predict = x.binary if s["binary"] else x.three
            if predict is None:
                continue
            print(f"{name}: {x.name} ...", file=sys.stderr, flush=True)
            pred, rate = timed(predict, texts, a.reps)
            out["results"][x.name] = {**scores(gold, pred, s["classes"]), "lines_per_s": rate}
        res["sets"][name] = out
    return res


if __name__ == "__main__":
    main()
