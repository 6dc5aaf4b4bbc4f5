"""Transfer: train without one source, score on that source's dev set (lstm-text, TF-IDF + LR, VADER), one run.

The built-in models are also scored on held-out test sets of domains they never saw; this measures that
situation on the data we have. For each ``--hold-out`` source, lstm-text's binary recipe (the flags of
``make pretrained``'s ``sentiment``, ``--recipe`` to change them) trains on the other binary train parts,
TF-IDF + LR (as in ``sentiment_peers.py``) on the same parts, and all three are scored on the held-out
source's dev set. VADER needs no training, so it is the same on every row.

Run: ``LSTM_TEXT_DATA=../shared/data python benchmarks/transfer.py --hold-out imdb --json /tmp/transfer.json``
(needs ``pip install 'lstm-text[bench]'`` for the peers; trains for minutes: nothing else should run).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lstm_text

import splits

HERE = Path(__file__).resolve().parents[1]
_SHARED = HERE.parent / "shared" / "data"
if _SHARED.is_dir():
    os.environ.setdefault(splits.DATA_ENV, str(_SHARED))

SOURCES = {"sst2": "sst2-phrases", "imdb": "imdb", "pros_cons": "pros_cons"}  # dev set -> its train part
RECIPE = (  # make pretrained's sentiment
    "--tune-vectors 20000 --hidden 64 --dropout 0.3 --embed-dropout 0.1 --batch-size 32 --seed 0 --vocab-size 6000 "
    "--epochs 4"
)


def accuracy(pred: list[str], gold: list[str]) -> float:
    return sum(p == g for p, g in zip(pred, gold)) / len(gold)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hold-out", default="imdb", help=f"comma-separated, of: {', '.join(SOURCES)}")
    p.add_argument("--recipe", default=RECIPE, help="train-classifier flags (default: %(default)s)")
    p.add_argument("--vectors", default=str(splits.data_dir() / "glove" / "glove.6B.100d.100k.txt"))
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    held = [h.strip() for h in a.hold_out.split(",") if h.strip()]
    if not held or any(h not in SOURCES for h in held):
        p.error(f"--hold-out: choose from {', '.join(SOURCES)}")
    res = {"recipe": a.recipe, "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [*SOURCES.values()]:
            splits.write_split(name, "train", Path(tmp) / f"{name}.tsv")
        for h in held:
            keep = [s for d, s in SOURCES.items() if d != h]
            dev = splits.dev_set(h)
            texts, gold = [t for t, _ in dev], [lab for _, lab in dev]
            row = {"trained_on": keep, "dev_lines": len(dev)}
            out = Path(tmp) / f"without-{h}"
            cmd = [sys.executable, "-m", "lstm_text", "train-classifier", *[f"{tmp}/{s}.tsv" for s in keep]]
            cmd += ["--vectors", a.vectors, *shlex.split(a.recipe), "--out", str(out), "--quiet"]
            t = time.perf_counter()
            subprocess.run(cmd, check=True)
            row["lstm-text"] = {"train_s": time.perf_counter() - t}
            m = lstm_text.load(out)
            row["lstm-text"]["accuracy"] = accuracy([r["label"] for r in m.classify(texts)], gold)
            try:
                from sklearn.feature_extraction.text import TfidfVectorizer
                from sklearn.linear_model import LogisticRegression
                from sklearn.pipeline import make_pipeline

                pairs = [x for s in keep for x in splits.train_set(s)]
                pipe = make_pipeline(
                    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=4, max_iter=1000)
                )
                pipe.fit([x for x, _ in pairs], [y for _, y in pairs])
                row["TF-IDF + LR"] = {"accuracy": accuracy([str(y) for y in pipe.predict(texts)], gold)}
            except ImportError:
                print("TF-IDF + LR skipped: pip install 'lstm-text[bench]'", file=sys.stderr)
            try:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                sia = SentimentIntensityAnalyzer()
                pred = ["positive" if sia.polarity_scores(x)["compound"] >= 0 else "negative" for x in texts]
                row["VADER"] = {"accuracy": accuracy(pred, gold)}
            except ImportError:
                print("VADER skipped: pip install 'lstm-text[bench]'", file=sys.stderr)
            res["rows"][h] = row
            cells = "  ".join(f"{k} {v['accuracy']:.3f}" for k, v in row.items() if isinstance(v, dict))
            print(f"held out {h} ({len(dev):,} dev lines; trained on {'+'.join(keep)}): {cells}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
