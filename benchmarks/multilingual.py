"""Sentiment in every language folder of ``$LSTM_TEXT_DATA/multilingual``: lstm-text's models against the peer a
practitioner writes first for an unfamiliar language, a character TF-IDF + logistic regression trained on
exactly that folder's train split.

Per folder: macro-F1 and accuracy on ``dev.tsv`` (macro-F1 over the labels the dev set holds, so a binary model
on a three-class folder scores 0 on neutral), and lines/s (best of ``--reps`` passes, one thread, start-up and
training excluded). The peer is untuned: ``TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5),
sublinear_tf=True, min_df=2) + LogisticRegression(C=4, max_iter=1000)``.

Run: ``LSTM_TEXT_DATA=../shared/data python benchmarks/multilingual.py --json /tmp/ml.json`` (the peer needs
``pip install 'lstm-text[bench]'``). ``--model sentiment3 --model runs/x`` picks the lstm-text models (default:
both built-ins); ``--folders ko,zh`` a subset; ``--no-peer`` skips the peer, ``--peer-json`` reuses its figures
from an earlier ``--json`` file (training it on all 28 folders takes about ten minutes).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if _SHARED.is_dir():  # the project's machines keep the data beside the checkout, as the Makefile assumes
    os.environ.setdefault("LSTM_TEXT_DATA", str(_SHARED))

from sentiment_peers import timed  # noqa: E402  (beside this script: predictions and lines/s, best of reps)

PEER = "char TF-IDF + LR"
MIN_TRAIN = 1000  # the targets concern folders with at least this many training rows


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """``(text, label)`` pairs of a ``label<TAB>text`` file with a header."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["text"], r["label"]) for r in rows if r["text"]]


def scores(gold: list[str], pred: list[str]) -> dict:
    """Accuracy and macro-F1 over the labels ``gold`` holds."""
    labels = sorted(set(gold))
    f1s = []
    for c in labels:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
    return {"acc": acc, "macro_f1": sum(f1s) / len(f1s)}


def peer_scores(train: list[tuple[str, str]], dev: list[tuple[str, str]], reps: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True, min_df=2),
        LogisticRegression(C=4, max_iter=1000),
    )
    t = time.perf_counter()
    pipe.fit([x for x, _ in train], [y for _, y in train])
    train_s = time.perf_counter() - t
    pred, rate = timed(lambda xs: [str(y) for y in pipe.predict(xs)], [x for x, _ in dev], reps)
    return {**scores([y for _, y in dev], pred), "lines_s": rate, "train_s": train_s}


def model_scores(model, dev: list[tuple[str, str]], reps: int) -> dict:
    texts = [x for x, _ in dev]
    pred, rate = timed(lambda xs: [r["label"] for r in model.classify(xs)], texts, reps)
    out = {**scores([y for _, y in dev], pred), "lines_s": rate}
    langs = [r.get("lang") for r in model.classify(texts[:200])]
    if any(langs):
        out["lang"] = max(set(langs), key=langs.count)  # the language the model said it read, most often
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="lstm-text model (name, run or file); repeatable")
    ap.add_argument("--folders", default="", help="comma-separated folder names (default: all)")
    ap.add_argument("--reps", type=int, default=2, help="passes over each dev set; the fastest counts")
    ap.add_argument("--no-peer", action="store_true", help="skip the character TF-IDF + LR peer")
    ap.add_argument("--peer-json", type=Path, help="take the peer's figures from an earlier --json file")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()

    root = Path(os.environ["LSTM_TEXT_DATA"]) / "multilingual"
    folders = sorted(p.name for p in root.iterdir() if (p / "train.tsv").is_file())
    if args.folders:
        want = args.folders.split(",")
        unknown = sorted(set(want) - set(folders))
        if unknown:
            sys.exit(f"unknown folders: {', '.join(unknown)}; there are: {', '.join(folders)}")
        folders = want

    import torch

    torch.set_num_threads(1)
    import lstm_text

    names = args.model or ["sentiment", "sentiment3"]
    models = {}
    for name in names:
        m = lstm_text.load(name)
        m.classifier.threads = 1
        m.classify(["warm-up"])
        models[name] = m
    old = json.loads(args.peer_json.read_text())["folders"] if args.peer_json else {}

    results: dict[str, dict] = {}
    for folder in folders:
        train, dev = read_tsv(root / folder / "train.tsv"), read_tsv(root / folder / "dev.tsv")
        row: dict = {"train_rows": len(train), "dev_rows": len(dev), "labels": sorted({y for _, y in dev})}
        if folder in old and PEER in old[folder]:
            row[PEER] = old[folder][PEER]
        elif not args.no_peer:
            row[PEER] = peer_scores(train, dev, args.reps)
        for name, m in models.items():
            row[name] = model_scores(m, dev, args.reps)
        results[folder] = row
        print(folder, json.dumps({k: v for k, v in row.items() if isinstance(v, dict)}), file=sys.stderr, flush=True)

    print(table(results, names))
    if args.json:
        about = {"python": platform.python_version(), "machine": platform.machine(), "threads": 1}
        args.json.write_text(json.dumps({"about": about, "models": names, "folders": results}, indent=1))


def table(results: dict[str, dict], names: list[str]) -> str:
    cols = [PEER, *names]
    head = (
        "| folder | train rows | "
        + " | ".join(f"{c} macro-F1 / acc" for c in cols)
        + " | lines/s ("
        + ", ".join(cols)
        + ") |"
    )
    lines = [head, "| --- " * (3 + len(cols)) + "|"]
    sums = {c: [] for c in cols}
    for folder, row in results.items():
        cells = []
        for c in cols:
            s = row.get(c)
            cells.append(f"{s['macro_f1']:.3f} / {s['acc']:.3f}" if s else "-")
            if s and row["train_rows"] >= MIN_TRAIN:
                sums[c].append(s["macro_f1"])
        rates = ", ".join(f"{row[c]['lines_s']:,.0f}" if c in row else "-" for c in cols)
        lines.append(f"| {folder} | {row['train_rows']:,} | " + " | ".join(cells) + f" | {rates} |")
    means = " | ".join(f"{sum(v) / len(v):.3f}" if v else "-" for v in sums.values())
    lines.append(f"| mean, folders with >= {MIN_TRAIN:,} train rows | | {means} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
