"""SST-2 dev as published (tokenized, lower case) against the same sentences written as people write them
(detokenized, capitalised: ``sst.detokenize`` + ``sst.capitalise``, beside this script), in one run, for each model;
and accuracy on the dev sentences holding a word that the SST-2 training phrases never show.

    .venv/bin/python benchmarks/raw_text.py [--model sentiment --model runs/x ...]

Prints each model's accuracy on both forms and the gap in points (goal: under 1 point), then on the
sentences with unseen words and on the rest.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does

import numpy as np  # noqa: E402

import lstm_text  # noqa: E402
from lstm_text.data.labelled import read_labelled  # noqa: E402
from lstm_text.normalize import normalize  # noqa: E402

from sst import capitalise, detokenize  # noqa: E402


def accuracy(model, pairs) -> float:
    pred = [r["label"] for r in model.classify([t for t, _ in pairs])]
    return float(np.mean([p == g for p, (_, g) in zip(pred, pairs)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="model(s) to score (default: sentiment)")
    ap.add_argument("--data", default=os.environ.get("LSTM_TEXT_DATA", str(Path(__file__).parents[2] / "shared/data")))
    a = ap.parse_args(argv)
    pairs = read_labelled([Path(a.data) / "sst2" / "dev.tsv"])
    raw = [(capitalise(detokenize(t)), lab) for t, lab in pairs]
    print(f"{len(pairs)} SST-2 dev sentences; e.g. {pairs[1][0]!r} -> {raw[1][0]!r}")
    seen = {w for t, _ in read_labelled([Path(a.data) / "sst2" / "train_phrases.tsv"]) for w in normalize(t).split()}
    unseen = [p for p in pairs if any(w not in seen for w in normalize(p[0]).split())]
    rest = [p for p in pairs if p not in unseen]
    print(f"{len(unseen)} of them hold a word the SST-2 training phrases never show")
    for name in a.model or ["sentiment"]:
        m = lstm_text.load(name)
        tok, written = accuracy(m, pairs), accuracy(m, raw)
        print(f"{name}: tokenized {tok:.4f}  as written {written:.4f}  gap {100 * (tok - written):+.2f} points")
        print(f"{name}: with unseen words {accuracy(m, unseen):.4f}  the rest {accuracy(m, rest):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
