"""Self-training on unlabelled movie sentences: does it move SST-2 dev? (lstm-text only, seeds side by side.)

A teacher (default: the built-in ``sentiment``) labels sentences cut from ``imdb/unsup.txt``; the confident
ones (top probability >= ``--min-prob``, as many of each class) join the SST-2 training phrases, and the
``sentiment`` recipe trains with and without them for each seed, selected and scored on SST-2 dev. The
runs train on SST-2 phrases only (2-3 minutes a run on 2 cores), a proxy for the full recipe's 18 minutes.

Run: ``LSTM_TEXT_DATA=../shared/data python benchmarks/self_train.py --seeds 0,1,2 --json /tmp/self_train.json``
(trains for minutes: nothing else should run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import statistics
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

RECIPE = (  # make pretrained's sentiment, without its --vectors (given by --vectors)
    "--tune-vectors 20000 --hidden 64 --dropout 0.3 --embed-dropout 0.1 --batch-size 32 --vocab-size 6000 --epochs 4"
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")  # a stop, space, then what starts a sentence


def sentences(path: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct sentences of 4-50 words from a one-review-per-line file, in a seeded random order."""
    seen: dict[str, None] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            for s in SENTENCE_END.split(line.strip()):
                if 4 <= len(s.split()) <= 50:
                    seen.setdefault(s)
    out = list(seen)
    random.Random(seed).shuffle(out)
    return out[:n]


def pseudo_labels(teacher, texts: list[str], n: int, min_prob: float) -> list[tuple[str, str]]:
    """(label, text) of the teacher's confident answers, ``n // classes`` of each class at most."""
    by: dict[str, list[str]] = {lab: [] for lab in teacher.labels}
    for r, t in zip(teacher.classify(texts), texts):
        if r["score"] >= min_prob:
            by[r["label"]].append(t)
    k = n // len(by)
    return [(lab, t) for lab, ts in by.items() for t in ts[:k]]


def write_tsv(path: Path, pairs) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("label\ttext\n")
        f.writelines(f"{lab}\t{t}\n" for lab, t in pairs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--teacher", default="sentiment", help="classifier that labels the sentences")
    p.add_argument("--sentences", type=int, default=50_000, help="pseudo-labelled sentences added (all classes)")
    p.add_argument("--pool", type=int, default=400_000, help="unlabelled sentences the teacher reads")
    p.add_argument("--min-prob", type=float, default=0.9)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--recipe", default=RECIPE, help="train-classifier flags (default: %(default)s)")
    p.add_argument("--vectors", default=str(splits.data_dir() / "glove" / "glove.6B.100d.100k.txt"))
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    res: dict = {"recipe": a.recipe, "teacher": a.teacher, "min_prob": a.min_prob, "runs": {}}
    dev = splits.dev_set("sst2")
    texts, gold = [t for t, _ in dev], [lab for _, lab in dev]
    with tempfile.TemporaryDirectory() as tmp:
        train, dev_file, extra = Path(tmp) / "phrases.tsv", Path(tmp) / "dev.tsv", Path(tmp) / "pseudo.tsv"
        splits.write_split("sst2-phrases", "train", train)
        splits.write_split("sst2", "dev", dev_file)
        pool = sentences(splits.data_dir() / "imdb" / "unsup.txt", a.pool)
        pairs = pseudo_labels(lstm_text.load(a.teacher), pool, a.sentences, a.min_prob)
        random.Random(0).shuffle(pairs)
        write_tsv(extra, pairs)
        res["pseudo"] = {lab: sum(x == lab for x, _ in pairs) for lab in sorted({x for x, _ in pairs})}
        print(f"{len(pool):,} sentences read, {len(pairs):,} pseudo-labelled {res['pseudo']}", flush=True)
        for name, files in (("phrases", [train]), ("phrases + pseudo", [train, extra])):
            for seed in seeds:
                out = Path(tmp) / f"{len(files)}-{seed}"
                cmd = [sys.executable, "-m", "lstm_text", "train-classifier", *map(str, files), "--dev", str(dev_file)]
                cmd += ["--vectors", a.vectors, *shlex.split(a.recipe), "--seed", str(seed), "--out", str(out)]
                t = time.perf_counter()
                subprocess.run([*cmd, "--quiet"], check=True)
                pred = [r["label"] for r in lstm_text.load(out).classify(texts)]
                acc, took = sum(x == y for x, y in zip(pred, gold)) / len(gold), time.perf_counter() - t
                res["runs"].setdefault(name, []).append({"seed": seed, "accuracy": acc, "train_s": took})
                print(f"{name:18s} seed {seed}: SST-2 dev {acc:.2%} ({took:.0f} s)", flush=True)
    for name, runs in res["runs"].items():
        print(f"{name:18s} mean {statistics.mean(r['accuracy'] for r in runs):.2%} over {len(runs)} seed(s)")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
