"""Fit the built-in language-ID model (``lstm_text.langid.fit``) on ``langid_data.py``'s lines and report it on
the dev lines: accuracy, macro-F1, and each language's share named right with what it is taken for.

Run (the Makefile's ``pretrained`` target does): ``python benchmarks/langid_fit.py runs/langid --out
lstm_text/pretrained/langid/langid.safetensors`` (and its card, README.md beside it; ``--json F`` writes the
figures).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from lstm_text import langid
from lstm_text.data.labelled import read_labelled


def report(m: langid.Langid, heads: list[str], gold: list[str]) -> dict:
    """Accuracy, macro-F1 and per-language recall (with the two languages each is most often taken for)."""
    pred = [m.labels[i] for i in m.probs(heads).argmax(1)]
    per, f1s = {}, []
    for lang in m.labels:
        tp = sum(g == p == lang for g, p in zip(gold, pred))
        n_gold, n_pred = gold.count(lang), pred.count(lang)
        f1s.append(2 * tp / (n_gold + n_pred) if tp else 0.0)
        wrong = Counter(p for g, p in zip(gold, pred) if g == lang and p != lang)
        per[lang] = {"recall": tp / max(n_gold, 1), "taken_for": dict(wrong.most_common(2))}
    acc = float(np.mean([g == p for g, p in zip(gold, pred)]))
    return {"accuracy": acc, "macro_f1": float(np.mean(f1s)), "languages": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder with langid_data.py's train.tsv and dev.tsv")
    ap.add_argument("--out", type=Path, required=True, help="the model file to write")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    train = read_labelled([a.data / "train.tsv"])
    dev = read_labelled([a.data / "dev.tsv"])
    t0 = time.perf_counter()
    m = langid.fit([t for t, _ in train], [y for _, y in train], epochs=a.epochs, seed=a.seed)
    secs = time.perf_counter() - t0
    r = report(m, [t for t, _ in dev], [y for _, y in dev])
    m.facts = {
        "train_lines": len(train), "dev_lines": len(dev), "epochs": a.epochs, "seed": a.seed,
        "fit_seconds": round(secs, 1), "dev_accuracy": r["accuracy"], "dev_macro_f1": r["macro_f1"],
    }  # fmt: skip
    m.save(a.out)
    (a.out.parent / "README.md").write_text(langid.card(m), encoding="utf-8")
    print(f"{a.out}: {len(train):,} lines, {len(m.labels)} languages, fitted in {secs:.0f} s")
    print(f"dev ({len(dev):,} lines): accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}")
    for lang, x in r["languages"].items():
        print(f"  {lang:4} {x['recall']:.3f}  {x['taken_for']}")
    if a.json:
        a.json.write_text(json.dumps(r | {"facts": m.facts}, indent=1))


if __name__ == "__main__":
    main()
