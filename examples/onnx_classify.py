#!/usr/bin/env python3
"""Classify lines with an lstm-text ONNX export, on onnxruntime and NumPy only (no torch, no lstm-text).

    lstm-text export sentiment -o EXPORT_DIR
    python examples/onnx_classify.py EXPORT_DIR < lines.txt

Prints one `label<TAB>score` per input line, in order (`-<TAB>-` for an empty line): the label and probability
`lstm-text classify` gives. Lines are batched by length so each batch pads only to its own longest line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_tokenizer import Tokenizer  # noqa: E402

BATCH = 64  # lines per graph call: onnxruntime's LSTM kernel is faster on small batches (measured 32-64 > 512)


def cut(ids: list[int], n: int) -> list[int]:
    """At most n ids: a longer line keeps its first quarter and its last three quarters (as lstm-text)."""
    if len(ids) <= n:
        return ids
    return ids[: n // 4] + ids[len(ids) - (n - n // 4) :]


def classify(folder: Path, lines: list[str], threads: int = 0) -> list[tuple[str, float] | None]:
    tok = Tokenizer(folder)
    spec = tok.manifest["graphs"]["classifier.onnx"]
    n, chars = spec["max_tokens"], spec["max_chars"]
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(folder / "classifier.onnx"), opts, providers=["CPUExecutionProvider"])
    keep = [i for i, line in enumerate(lines) if line.strip()]
    seqs = {}
    for i in keep:
        t = lines[i]
        t = t if len(t) <= chars else t[: chars // 4] + " " + t[-(chars - chars // 4) :]
        seqs[i] = cut(tok.encode(t), n)
    order = sorted(keep, key=lambda i: len(seqs[i]))
    results: list[tuple[str, float] | None] = [None] * len(lines)
    for s in range(0, len(order), BATCH):
        rows = order[s : s + BATCH]
        lengths = np.array([len(seqs[i]) for i in rows], np.int64)
        ids = np.full((len(rows), max(1, int(lengths.max()))), tok.pad, np.int64)  # (B, T), right-padded
        for r, i in enumerate(rows):
            ids[r, : lengths[r]] = seqs[i]
        probs = sess.run(["probs"], {"input_ids": ids, "lengths": lengths})[0]  # (B, C)
        for r, i in enumerate(rows):
            j = int(probs[r].argmax())
            results[i] = (spec["labels"][j], float(probs[r, j]))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export_dir", type=Path)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its choice)")
    a = ap.parse_args()
    stdin = open(sys.stdin.fileno(), encoding="utf-8", newline="\n", closefd=False)
    lines = [line.rstrip("\r\n") for line in stdin]
    out = sys.stdout
    for r in classify(a.export_dir, lines, a.threads):
        out.write("-\t-\n" if r is None else f"{r[0]}\t{r[1]:.6f}\n")


if __name__ == "__main__":
    main()
