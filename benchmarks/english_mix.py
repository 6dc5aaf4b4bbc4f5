"""How much of sentiment3's English answer comes from the built-in ``multilingual``'s English weights: for each
weight ``mix``, macro-F1 on the tweets, Reddit and SST-5-3 dev sets and the share of objective sentences answered
neutral, of softmax((1 - mix) log p_lstm + mix log p_ngram) (``ngram.Companion``; ``pretrained.MIX`` is the one
chosen). mix 0 is the LSTM alone, 1 the n-gram model alone.

Run: ``LSTM_TEXT_DATA=../shared/data python benchmarks/english_mix.py`` (the built-ins), or ``--model runs/x
--ngram runs/y.safetensors`` for others; ``--mix 0,0.4,1`` the weights.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if _SHARED.is_dir():  # the project's machines keep the data beside the checkout, as the Makefile assumes
    os.environ.setdefault("LSTM_TEXT_DATA", str(_SHARED))

from multilingual import scores  # noqa: E402

import lstm_text  # noqa: E402
from lstm_text import ngram  # noqa: E402
from lstm_text.infer.classifier import encode_lines  # noqa: E402

import splits  # noqa: E402  (beside this script)

SETS = ("tweets", "reddit", "sst5-3", "objective")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sentiment3", help="the three-class English model (LSTM)")
    ap.add_argument("--ngram", default="", help="an n-gram model file with English weights (default: the built-in)")
    ap.add_argument("--mix", default="0,0.2,0.3,0.4,0.5,0.6,0.7,1", help="comma-separated weights")
    a = ap.parse_args()
    m = lstm_text.load(a.model)
    ng = ngram.NgramClassifier.read(a.ngram) if a.ngram else ngram.builtin()
    c = ngram.Companion(ng, ("en",), 1.0)
    read = {}
    for name in SETS:
        rows = splits.dev_set(name)
        texts = [t for t, _ in rows]
        p = m.classifier.probs(encode_lines(m.tokenizer, texts))  # (N, C)
        q = c.probs(texts, ["en"] * len(texts), m.labels)  # (N, C)
        read[name] = ([y for _, y in rows], np.log(np.maximum(p, 1e-12)), np.log(np.maximum(q, 1e-12)))
    print(f"{'mix':>5}  " + "  ".join(f"{s:>10}" for s in SETS) + "   (objective: share neutral; else macro-F1)")
    for w in (float(x) for x in a.mix.split(",")):
        row = []
        for name, (gold, lp, lq) in read.items():
            pred = [m.labels[i] for i in ((1 - w) * lp + w * lq).argmax(1)]
            neutral = float(np.mean([x == "neutral" for x in pred]))
            row.append(neutral if name == "objective" else scores(gold, pred)["macro_f1"])
        print(f"{w:5.2f}  " + "  ".join(f"{x:10.3f}" for x in row))


if __name__ == "__main__":
    sys.exit(main())
