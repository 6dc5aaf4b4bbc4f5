"""Speed figures for benchmarks/README.md: how close training, generation and classification come to this machine's
matmul rate. The measurements live in ``lstm_text.bench`` (``lstm-text bench`` shows the same table); this
script runs them with the settings benchmarks/README.md gives and writes ``benchmarks/results.json``.

Run: ``make bench`` (``python benchmarks/speed.py``). ``--quick`` is a smoke check with tiny counts;
``--threads N`` sets torch's threads; ``--model`` adds classification lines/s for that classifier
(default: the built-in ``sentiment`` when installed), on ``--lines FILE`` (default: synthetic SST-like lines).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the CLI does: classify runs its own threads

import torch  # noqa: E402

from lstm_text import bench  # noqa: E402
from lstm_text.config import ModelConfig, TrainConfig  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("layers", "hidden", "embed", "batch-size", "seq-len", "threads"):
        p.add_argument(f"--{flag}", type=int)
    p.add_argument("--json", type=Path, default=Path(__file__).parent / "results.json")
    p.add_argument("--model", default="sentiment", help="classifier to time ('' to skip)")
    p.add_argument("--lines", type=Path, help="text file of lines to classify (a TSV's text column is used)")
    p.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs; figures are noise")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    given = {k: v for k, v in vars(a).items() if v is not None}
    cfg = ModelConfig(
        vocab_size=len(bench.CHARS) + 2, **{k: given[k] for k in ("layers", "hidden", "embed") if k in given}
    )
    small = {"batch_size": 8, "seq_len": 32} if a.quick else {}
    tcfg = TrainConfig(**{**small, **{k: given[k] for k in ("batch_size", "seq_len") if k in given}})
    clf, lines = None, None
    if a.model:
        import lstm_text

        try:
            clf = lstm_text.load(a.model)
        except lstm_text.LstmTextError as e:
            print(f"classification skipped: {e}")
    if a.lines:
        raw = a.lines.read_text(encoding="utf-8").splitlines()
        lines = [ln.split("\t", 1)[-1] for ln in raw[1:]] if a.lines.suffix == ".tsv" else raw
    res = bench.run(cfg=cfg, tcfg=tcfg, quick=a.quick, classifier=clf, lines=lines)
    from lstm_text.ui import bench_report, out

    bench_report(out(), res)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(res, indent=2) + "\n")
    print(f"figures written to {a.json}")


if __name__ == "__main__":
    main()
