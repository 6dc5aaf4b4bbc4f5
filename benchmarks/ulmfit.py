"""ULMFiT on this project's data: a language model on IMDB's 50,000 unlabelled reviews (plus the labelled training
texts), then the `sentiment` classifier's data fine-tuned from it, scored on the same dev sets as `sentiment`.

Steps, each a plain lstm-text command (printed as it runs):
1. normalise ``imdb/unsup.txt`` and the training parts of SST-2 (sentences), IMDB and pros/cons into one corpus,
   and the labelled splits into TSV files: the LM's SentencePiece tokenizer does not normalise, so the
   classifier reads text the LM saw (never a dev line);
2. ``lstm-text train CORPUS --tokenizer unigram --vocab-size 8000`` for ``--lm-budget`` seconds;
3. ``lstm-text train-classifier ... --init LM`` (discriminative learning rates, gradual unfreezing);
4. ``lstm-text evaluate`` on SST-2, IMDB and pros/cons dev.

Run: ``LSTM_TEXT_DATA=../shared/data python benchmarks/ulmfit.py --work /tmp/ulm`` (about 35 minutes on
2 cores with the defaults; nothing else should run). ``--scratch`` also trains the same classifier from
scratch, which isolates what the pretraining adds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from lstm_text.normalize import normalize

import splits

SOURCES = ["sst2-phrases", "imdb", "pros_cons"]  # the built-in `sentiment`'s training parts
DEVS = ["sst2", "imdb", "pros_cons"]
LM_TEXTS = ["sst2", "imdb", "pros_cons"]  # labelled training texts the LM also reads (SST-2 whole sentences)


def run(cmd: list[str]) -> str:
    print("$ " + shlex.join(cmd), flush=True)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def write_tsv(path: Path, pairs) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("label\ttext\n")
        for text, label in pairs:
            f.write(f"{label}\t{normalize(text)}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, required=True, help="folder for the corpus, splits and runs")
    p.add_argument("--lm-budget", type=int, default=1500, help="seconds of LM training")
    p.add_argument("--lm", default="--hidden 128 --embed 128 --batch-size 64 --seq-len 64 --dropout 0.1")
    p.add_argument("--clf", default="--dropout 0.3 --batch-size 32 --epochs 1.5 --lr 0.005 --seed 0")
    p.add_argument("--scratch", action="store_true", help="also train the classifier without the LM")
    a = p.parse_args()
    lt = [sys.executable, "-m", "lstm_text"]
    a.work.mkdir(parents=True, exist_ok=True)
    corpus = a.work / "corpus.txt"
    if not corpus.exists():
        with open(corpus.with_suffix(".tmp"), "w", encoding="utf-8") as f:
            with open(splits.data_dir() / "imdb" / "unsup.txt", encoding="utf-8") as unsup:
                f.writelines(normalize(line) + "\n" for line in unsup)
            for s in LM_TEXTS:
                f.writelines(normalize(t) + "\n" for t, _ in splits.train_set(s))
        corpus.with_suffix(".tmp").rename(corpus)
        for s in SOURCES:
            write_tsv(a.work / f"train-{s}.tsv", splits.train_set(s))
        for s in DEVS:
            write_tsv(a.work / f"dev-{s}.tsv", splits.dev_set(s))
    lm = a.work / "lm"
    if not (lm / "model.safetensors").exists():
        run(
            [*lt, "train", str(corpus), "--tokenizer", "unigram", "--vocab-size", "8000", *shlex.split(a.lm)]
            + ["--val-fraction", "0.01", "--time-budget", str(a.lm_budget), "--seed", "0", "--out", str(lm), "-q"]
        )
    data = [str(a.work / f"train-{s}.tsv") for s in SOURCES]
    devs = [x for s in DEVS for x in ("--dev", str(a.work / f"dev-{s}.tsv"))]
    variants = {"ulmfit": ["--init", str(lm)]}
    if a.scratch:  # the LM's shape and tokenizer kind, trained on the labelled data alone
        variants["scratch"] = ["--tokenizer", "unigram", "--vocab-size", "8000", "--hidden", "128", "--embed", "128"]
        variants["scratch"] += ["--no-bidirectional", "--no-normalize"]
    res = {}
    for name, extra in variants.items():
        out = a.work / name
        if not (out / "model.safetensors").exists():
            run([*lt, "train-classifier", *data, *devs, *extra, *shlex.split(a.clf), "--out", str(out), "-q"])
        res[name] = {}
        for s in DEVS:
            ev = json.loads(run([*lt, "evaluate", str(out), str(a.work / f"dev-{s}.tsv"), "--json"]))
            res[name][s] = ev["accuracy"]
        print(name, "  ".join(f"{s} {v:.4f}" for s, v in res[name].items()), flush=True)
    (a.work / "results.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
